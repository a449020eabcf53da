// Package algorithm is the scheduler's decision: a pure function from a
// snapshot of the cluster and one pending pod to the node the pod should
// run on, or to the reasons no node can take it.
//
//	Schedule(snapshot, pod, config) → Result | *FitError
//
// It does no I/O and keeps no state, so it is tested with script files of
// nodes, pods and expected decisions (testdata/). See ../README.md for
// how the scheduler around it queues, assumes and binds.
//
// # The pipeline
//
//	nodes from Config.Start ──► filter ──► enough fit? ──► score ──► highest total
//	(wrapping around)            │          (search bound)              (ties: first visited)
//	                             └─ reasons counted ──► *FitError if none fit
//
// Filter. Each node passes these checks in turn, Kubernetes' order, and
// the first that fails gives the node's reason (the resource check gives
// one reason per resource that is short):
//
//	node unschedulable (cordoned)     node(s) were unschedulable
//	spec.nodeName names another node  node(s) didn't match the requested node name
//	Ready condition not True          node(s) were not ready
//	NoSchedule/NoExecute taint        node(s) had untolerated taint {key: value}
//	nodeSelector, required affinity   node(s) didn't match Pod's node affinity/selector
//	host port already taken           node(s) didn't have free ports for the requested pod ports
//	cpu, memory, pod count            Insufficient cpu, Insufficient memory, Too many pods
//
// A pod that tolerates node.kubernetes.io/unschedulable, not-ready or
// unreachable with effect NoSchedule may use such nodes, as DaemonSet
// pods do. Resources are compared with allocatable minus Requested, the
// sum over the node's pods, assumed pods included.
//
// Search bound. In a large cluster the search stops once it has found
// enough fitting nodes: Config.PercentageOfNodesToScore of them, by
// default 50% less 1% per 125 nodes and at least 5% (500 of 5,000
// nodes), but never fewer than MinFeasibleNodesToFind (100). A cluster
// smaller than that is always searched whole.
//
// Score. Every fitting node found gets four marks from 0 to 100, and
// their sum weighted by Config.Weights decides:
//
//   - LeastAllocated: the average share of cpu and memory left free after
//     placing the pod (containers with no request count 100m and 200Mi);
//   - BalancedAllocation: 100 × (1 - |cpu share - memory share| / 2), so
//     nodes whose cpu and memory fill up evenly are preferred;
//   - Spread: fewer pods of the same controller (ownerReference with
//     controller: true) on the node is better, scaled so that the node
//     with the most scores 0 and a node with none 100;
//   - NodeAffinity: the summed weights of the preferred node affinity
//     terms the node matches, scaled so the best node scores 100.
//
// Select. The highest total wins; between equal totals, the node visited
// first. Result.NextStart is just past the winner, so when the caller
// passes it on as the next Config.Start, equal nodes take pods in turn.
//
// # The caller's duties, in order
//
//  1. Keep one NodeInfo per node: NewNodeInfo when a node appears, SetNode
//     when it changes, AddPod for every pod bound to it, RemovePod when a
//     pod is deleted. Hand Schedule a Snapshot of them sorted by node name.
//  2. Call Schedule for one pod at a time, with Config.Start set to the
//     previous Result.NextStart. Schedule only reads the snapshot, so the
//     NodeInfos need not be copied, as long as nothing changes them during
//     the call.
//  3. On success, assume the pod before binding it: AddPod it (with
//     spec.nodeName set) to the chosen node's NodeInfo at once, so that the
//     next decision sees the resources and ports as taken. Then bind.
//  4. If the bind fails, RemovePod the assumed pod and queue it again.
//  5. On a *FitError, report Error() as the FailedScheduling message and
//     park the pod until a node or pod changes; FitError.Reasons tells
//     what failed and how often. Other errors mean a broken snapshot
//     (ErrNoNodesAvailable: it was empty).
//
// # Glossary
//
//   - feasible: a node that passes every filter for the pod.
//   - assumed pod: a pod the scheduler has counted on a node before the
//     API server has recorded the binding.
//   - snapshot: the nodes and their pods as the decision sees them.
//
// # Tests
//
// The filters and scores have table tests. TestScenarios replays the
// scripts in testdata/ (its doc comment describes their commands); after
// a deliberate change, go test -run TestScenarios -rewrite rewrites their
// expected output, to be reviewed as a diff.
package algorithm
