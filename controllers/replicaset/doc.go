// Package replicaset is the ReplicaSet controller: it keeps
// spec.replicas pods running for every ReplicaSet, and reports them in
// its status.
//
// It watches ReplicaSets and pods (through shared informers) and writes
// pods (create, delete, and patches of their ownerReferences), the
// ReplicaSets' status subresource, and events. Event handlers only
// enqueue ReplicaSet keys; Reconcile(ctx, key) does the work, in this
// order:
//
//  1. Claim pods. Among the namespace's active pods (neither finished
//     nor terminating), the ReplicaSet owns those whose controller
//     reference names it. It adopts matching orphans (after re-reading
//     itself from the API server, to be sure it is not being deleted)
//     and releases owned pods whose labels stopped matching its
//     selector, both with a patch of the pod's ownerReferences made
//     conditional on its resourceVersion. A ReplicaSet being deleted
//     adopts and releases nothing.
//  2. Manage replicas, unless earlier writes have not been seen yet (see
//     controller.Expectations) or the ReplicaSet is being deleted. Too few pods:
//     create them from the template in batches of 1, 2, 4, … (a failure
//     stops the next batch, so a doomed create fails once, not a
//     thousand times), each named "<replicaset>-<5 random characters>",
//     with the template's labels and a controller ownerReference with
//     blockOwnerDeletion. Too many: delete the ones that matter least
//     first (unscheduled, pending, not ready, lower
//     controller.kubernetes.io/pod-deletion-cost, crowded node, ready
//     for less time, more restarts, newer). At most BurstReplicas per
//     Reconcile either way. Events SuccessfulCreate, SuccessfulDelete,
//     FailedCreate and FailedDelete are recorded on the ReplicaSet.
//  3. Write status (replicas, fullyLabeledReplicas, readyReplicas,
//     availableReplicas, observedGeneration) with UpdateStatus, only
//     when it changed. A pod is available once it has been Ready for
//     more than minReadySeconds; Reconcile asks to be called again when
//     the next ready pod becomes available.
//
// A caller builds the controller with New (which adds the handlers to a
// Factory's informers), starts the Factory, and calls Run, which waits
// for the caches and returns after ctx ends and every worker has
// stopped. ctx is the controller's leadership: once it has ended no pod
// create or delete starts (each checks ctx first) and writes in flight
// are cancelled, each bounded by WriteTimeout, so that a deposed leader
// does not create or delete pods next to a new one. Creates that never
// happened are ticked off the expectations.
package replicaset
