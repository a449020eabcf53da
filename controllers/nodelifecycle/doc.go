// Package nodelifecycle is the node lifecycle controller: it notices
// nodes that stopped heartbeating, marks them and their pods not ready,
// taints them, and evicts the pods that do not tolerate the taint, so that
// their ReplicaSets replace them on healthy nodes. It merges what
// Kubernetes splits into the node lifecycle controller and the taint
// eviction controller.
//
// A node's kubelet (or simulated node) renews its Lease in kube-node-lease
// every few seconds. For each node, Reconcile:
//
//  1. judges the node's freshness as Kubernetes does, on the controller's
//     clock (Deps.Clock) only: the controller keeps, per node, the last
//     heartbeat it saw (the Lease's resourceVersion and renewTime, the
//     Ready condition's lastHeartbeatTime) and when it saw it change
//     (observedAt), updated from the Lease and Node informer events and
//     in Reconcile. The node's timestamps are never compared with the
//     controller's clock, so clock skew between machines does not matter.
//     Run starts, once the caches have synced, by setting observedAt to
//     now for every node: a newly started or elected controller waits one
//     grace period before it judges a node stale;
//  2. if now - observedAt exceeds the grace period, sets the node's Ready
//     condition (and the pressure conditions) to Unknown with reason
//     NodeStatusUnknown, and records a NodeNotReady event;
//  3. sets the taints the node's health calls for: node.kubernetes.io/
//     unreachable with effects NoSchedule and NoExecute while the Lease is
//     stale, node.kubernetes.io/not-ready while the node reports
//     Ready=False, neither otherwise. So a node whose Lease is renewed
//     again loses its taints; its Ready condition is for its kubelet to
//     set;
//  4. while the Lease is stale, sets the Ready condition of the node's pods
//     to False;
//  5. evicts (deletes) the node's pods that do not tolerate one of its
//     NoExecute taints at once, and those that tolerate them for
//     tolerationSeconds once that long has passed since the taint's
//     timeAdded (the API server gives every pod 300 s by default);
//  6. asks to be called again when the next thing is due: the grace
//     period running out, or the next eviction.
//
// The decisions are pure functions (Observe, Stale, DesiredTaints,
// EvictionDelay) of the objects and the time; Reconcile does the reads and writes around
// them. Every write is a compare-and-swap on resourceVersion.
//
// The caller's duties, in order: build the controller with New (which
// registers its informer handlers), start the informer factory, then call
// Run (which waits for the caches) until ctx ends.
package nodelifecycle
