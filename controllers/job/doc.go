// Package job is the Job controller: it runs a batch/v1 Job's pods until
// enough of them succeed, or gives up after too many failures or too
// long, and keeps the Job's status: how many pods are active, ready,
// terminating, succeeded and failed, which indexes are complete, when
// it started and finished, and why.
//
// It watches Jobs and pods (shared informers; pods indexed by the UID of
// the Job that controls them) and writes pods, jobs/status, Job deletes
// (ttlSecondsAfterFinished) and events. Event handlers only enqueue the
// Job's key ("namespace/name"), after ticking off what the controller
// waits to see: pod creations and deletions (expectations, as in the
// ReplicaSet controller) and removed finalizers.
//
// A pod that keeps the tracking finalizer while no Job controls it (its
// owner reference removed by hand) is queued under its own key,
// "pod:namespace/name", and Reconcile removes the finalizer: no Job will
// count it. A pod released from its Job also enqueues that Job, which
// replaces it.
//
// Reconcile(ctx, key) does the work, in this order:
//
//  1. Read the Job from the cache. If it is gone, remove the
//     batch.kubernetes.io/job-tracking finalizer from the pods it left
//     (the garbage collector deletes them; the finalizer would keep them
//     forever), and stop. The same is done for pods of an earlier Job of
//     the same name.
//  2. Read its pods from the cache and decide with Decide, a pure
//     function of the Job, its pods, the removals not yet seen and the
//     time (decide.go says what it decides and why). While the cache
//     lags behind this controller's own pod creations or deletions,
//     the plan's creations and deletions are dropped.
//  3. Write the plan's status if it differs, conditional on the Job's
//     resourceVersion: a conflict means the cache was behind, and the
//     key is retried with backoff. Nothing else is written before the
//     status is stored.
//  4. Remove the tracking finalizer from the plan's pods (a strategic
//     merge patch that deletes it from the list), remembering each
//     until the cache shows it; create pods (in batches 1, 2, 4, ...,
//     at most BurstPods); delete pods (UID precondition); delete the
//     Job once its TTL has passed (foreground, as Kubernetes'
//     TTL-after-finished controller does).
//  5. Requeue when time alone changes the decision: a backoff ending,
//     activeDeadlineSeconds or ttlSecondsAfterFinished passing.
//
// Why each finished pod is counted exactly once: a pod is created with
// the tracking finalizer, so it cannot vanish before it is counted. A
// finished pod that has the finalizer is first written into
// status.uncountedTerminatedPods (or, for an Indexed Job's success,
// status.completedIndexes); only after that write its finalizer is
// removed; a UID in uncountedTerminatedPods whose pod has no finalizer
// (or is gone) then moves into the counters. A controller that stops
// between any two of these steps leaves a state from which the next one
// goes on without counting twice or missing a pod, as
// TestJobRestartCountsOnce shows.
//
// A caller builds the controller with New (which adds the handlers and
// the pod index to a Factory's informers), starts the Factory, and calls
// Run, which waits for the caches and returns after ctx ends and every
// worker has stopped.
package job
