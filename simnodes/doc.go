// Package simnodes simulates many nodes in one process, to test the
// control plane at scale without running containers (the idea of
// Kubernetes' kwok).
//
// A simulated node is a Node object, a Lease, and a few lines of code
// that answer for it the way a kubelet would. To the API server, the
// scheduler and the controllers it looks like a real, healthy node; the
// pods bound to it are reported Running with a made-up address, but no
// process ever starts.
//
// Use it like this:
//
//  1. Start from DefaultConfig, set Connection (or Client) and Count, and
//     change what else you need (capacity, StartDelay, ...). AddFlags
//     binds the same fields to command-line flags; Run calls Validate.
//  2. Call Run(ctx, cfg); it logs through the logger ctx carries
//     (internal/logging), with component=simnodes. It registers the nodes
//     first (creating each, or adopting it when a node of that name
//     exists), with a bounded number of requests in flight and a progress
//     line every few seconds. It
//     fails if a node cannot be registered for a reason retrying cannot
//     fix; transient errors are retried.
//  3. Then, until ctx ends, Run renews each node's Lease in kube-node-lease
//     every HeartbeatInterval (spread evenly over the interval) and
//     rewrites each node's status every NodeStatusInterval. It watches the
//     pods bound to any node, with one watch for all simulated nodes, and
//     marks those on simulated nodes Running StartDelay after it first sees
//     them bound. Pods on simulated nodes that are being deleted it deletes
//     again with grace period 0, which is how a kubelet confirms that a pod
//     stopped.
//  4. Cancel ctx. Run returns nil once every goroutine it started has
//     stopped. The nodes stay registered; after their Leases expire the
//     control plane sees them as not ready. Running again with the same
//     names adopts them.
//
// Simulated nodes are named NamePrefix followed by 0, 1, 2, ... and
// carry the label node.kubernetes.io/instance-type=simulated. Node and pod
// addresses come from PodCIDR, one block per node; they are written into
// status and never used on any network.
package simnodes
