// Package daemonset is the DaemonSet controller: it runs one pod of every
// DaemonSet on each node the pod belongs on, replaces the pods of an old
// template node by node, keeps the templates' history as
// ControllerRevisions, and reports all of it in the DaemonSet's status.
//
// It watches DaemonSets, pods, nodes and ControllerRevisions (through
// shared informers) and writes pods (create, delete), ControllerRevisions,
// the DaemonSets' status subresource, and events. Event handlers only
// tick off expectations and enqueue DaemonSet keys; a node that comes,
// goes, or changes its labels or taints enqueues every DaemonSet.
// Reconcile(ctx, key) does the work, in this order:
//
//  1. History (history.go). The template, as a strategic merge patch
//     that replaces spec.template, is the data of a ControllerRevision
//     named "<daemonset>-<hash>". The one with the same data becomes the
//     highest-numbered (renumbered if a rollback brought it back), or a
//     new one is created with the next number. Its hash labels the pods
//     made from it (controller-revision-hash).
//  2. Decide (plan.go, pure): from the DaemonSet, the nodes, its pods and
//     the time, which nodes get a pod, which pods go, and the status.
//     Where a pod belongs is in nodes.go: nodeSelector, required node
//     affinity, and the taints the pod tolerates once the daemon
//     tolerations are added.
//  3. Execute, unless earlier writes have not been seen yet
//     (controller.Expectations) or the DaemonSet is being deleted: delete pods,
//     create pods in batches of 1, 2, 4, … each pinned to its node by a
//     required node affinity `metadata.name In [node]` (matchFields),
//     so that the scheduler binds it there, as in Kubernetes. At most
//     BurstReplicas each per Reconcile. A node's failed pods are deleted
//     with a backoff, each reported (FailedDaemonPod). Old revisions
//     beyond revisionHistoryLimit that no pod uses are deleted.
//  4. Write status when it changed; ask to be called again when a ready
//     pod becomes available (minReadySeconds).
//
// The caller builds the controller with New, starts the informer factory
// and calls Run; ctx is the controller's leadership: no write starts
// after it ends.
package daemonset
