// Package nodeipam gives every node its own range of pod addresses, its
// pod CIDR: a block of the cluster CIDR (10.244.0.0/16 by default) of
// NodeCIDRMaskSize bits (/24 by default: 256 nodes of 254 pods each). The
// kubelet takes its pods' IPs from the node's spec.podCIDR, and the
// other nodes route that block to the node, so no CIDR may ever be given
// to two nodes.
//
// The pure core is CIDRSet: the cluster CIDR cut into blocks, a count of
// holders per block, and which prefix each node holds. Allocate hands out
// the next free block, searching from just past the last one handed out;
// Occupy records a prefix someone else chose; Release frees a node's.
//
// Around it, the controller reconciles nodes (key: the node's name):
//
//   - a node no longer in the cache has been deleted: its CIDR is
//     released, and the nodes waiting for one are enqueued again;
//   - a node with a spec.podCIDR (from the kubelet's --pod-cidr, or from
//     an earlier run of this controller) has it recorded as taken. One
//     that overlaps another node's, or lies outside the cluster CIDR, is
//     reported with a Warning event on the node and a log line; it is
//     never changed (the API server does not allow podCIDR to change
//     once set);
//   - a node without one gets the next free block, written into
//     spec.podCIDR and spec.podCIDRs with one merge patch that carries
//     the node's resourceVersion, so that it fails with a conflict (and
//     is retried) if the node changed meanwhile — for example because
//     its kubelet set a pod CIDR of its own. The block stays reserved for
//     that node (by name and UID) until the node is deleted or turns out
//     to have another CIDR;
//   - when no block is free, the node gets a CIDRNotAvailable event
//     ("no remaining CIDRs in cluster CIDR 10.244.0.0/16") once, and
//     waits: the next release enqueues it again.
//
// The controller keeps its state in memory only. It rebuilds it from the
// nodes' spec.podCIDR whenever it starts (Run records every cached node
// before any worker runs), so a restarted or newly elected controller
// never hands out a CIDR a node already has.
//
// The caller's duties, in order: New, start the informer factory, then
// Run, which waits for the caches. Only one controller may run against a
// cluster at a time (the manager's leader election sees to that).
package nodeipam
