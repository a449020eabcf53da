// Package scheduler binds every pending pod to a node that can run it, and
// says why when none can. The decision itself is package algorithm, a pure
// function; this package is the runtime around it: it watches the
// cluster, queues the pods, keeps the picture of the nodes the decisions
// are made from, and writes the results.
//
// # Running it
//
//  1. Start from DefaultConfig, set Connection (or Client, to share one with
//     other components of the process) and change what else you need.
//     AddFlags binds the same fields to command-line flags.
//  2. Call Run(ctx, cfg), or New(cfg) and then Run(ctx) on the result.
//     New checks the configuration; Run lists and watches pods and nodes,
//     waits until it has seen them all, and then schedules until ctx
//     ends. It returns nil when ctx ends. It logs through the logger ctx
//     carries (internal/logging); Run(ctx, cfg) adds component=scheduler
//     to it first.
//  3. Cancel ctx to stop. Bindings in flight are abandoned; their pods
//     stay pending and the next scheduler picks them up.
//
// # What it does with a pod
//
// A pod is this scheduler's when it has no spec.nodeName, is not being
// deleted or finished, and its spec.schedulerName is Config.SchedulerName
// (an empty one counting as "default-scheduler"). Such a pod waits in the
// Queue, by priority and age. The scheduling loop pops one pod at a time
// and asks the Cache to decide (algorithm.Schedule on its own nodes):
//
//   - When a node fits, the pod is counted on that node at once
//     (Cache.Assume), so that the next decision, made a moment later,
//     already sees the capacity taken; one of Config.BindWorkers workers
//     then writes the pods/binding subresource. On success the pod gets
//     a Scheduled event ("Successfully assigned default/web-1 to
//     node-2"), and the watch soon shows it bound, which confirms the
//     assumption. A binding that fails gives the capacity back and the
//     pod is tried again after a backoff; a Conflict (the pod was bound
//     by someone else meanwhile) or NotFound just ends its scheduling.
//   - When no node fits, the pod gets a FailedScheduling warning event and
//     the condition PodScheduled=False, reason Unschedulable, both with
//     the decision's summary ("0/3 nodes are available: 2 Insufficient
//     cpu, 1 node(s) had untolerated taint {dedicated: db}."). It is then
//     parked until something happens that could make it fit: a node
//     added, or changed in its allocatable resources, labels, taints,
//     schedulability or readiness; a pod deleted or finished on a node;
//     a binding that failed. At most a minute passes without a retry.
//
// Bound pods of every scheduler count against their nodes' capacity until
// they are deleted or finish (phase Succeeded or Failed).
//
// See README.md for the pipeline and a glossary.
package scheduler
