// Package deployment is the Deployment controller: it rolls a
// Deployment's pod template out through one ReplicaSet per template, and
// reports the rollout in the Deployment's status.
//
// It watches Deployments, ReplicaSets and pod deletions (through shared
// informers) and writes ReplicaSets (create, scale, annotations,
// ownerReferences, delete of old history), the Deployment's status
// subresource, its revision annotation, and ScalingReplicaSet events. The
// ReplicaSet controller makes the pods. Reconcile(ctx, key) does, in
// order:
//
//  1. Claim ReplicaSets: adopt orphans matching the selector (after
//     re-reading the Deployment from the API server), release owned ones
//     that stopped matching.
//  2. A Deployment being deleted only gets its status written.
//  3. Pause: Progressing=Unknown DeploymentPaused while spec.paused,
//     DeploymentResumed after.
//  4. Paused, or spec.replicas changed since the ReplicaSets were last
//     sized (their desired-replicas annotation): resize the current
//     ReplicaSets (proportionally during a rolling update), take no
//     rollout step, write status. A paused Deployment never gets a new
//     ReplicaSet.
//  5. Otherwise one rollout step. The new ReplicaSet, the oldest whose
//     template equals spec.template ignoring pod-template-hash, is
//     created as "<deployment>-<hash>" if missing and gets revision
//     max(old)+1 (an old one brought back by a rollback is renumbered).
//     RollingUpdate: scale the new ReplicaSet up within replicas+maxSurge,
//     else old ones down (unavailable pods first) keeping
//     replicas-maxUnavailable available. Recreate: scale old ones to 0,
//     wait until none of their pods exists, then scale the new one up.
//  6. Once complete, delete the oldest empty old ReplicaSets beyond
//     revisionHistoryLimit; write status with the Available and
//     Progressing conditions and ask to be called again when the progress
//     deadline would pass.
//
// rollout.go holds the rollout arithmetic, the pure decisions (hash,
// fenceposts, rolling step, proportional scaling, history, status and
// conditions), unit-tested on their own in rollout_test.go.
//
// Departures from Kubernetes: pods of a ReplicaSet count as
// max(spec.replicas, status.replicas) against the surge, and an old
// ReplicaSet's available pods as at most its spec.replicas, so that the
// budgets hold at every moment and not only once the ReplicaSet
// controller has caught up; the Deployment's revision annotation is set
// with a metadata patch because the status subresource here changes only
// status; status.terminatingReplicas is not reported.
//
// A caller builds the controller with New, starts the informer Factory,
// and calls Run, which returns after ctx ends and every worker stopped.
package deployment
