package algorithm

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Resources is an amount of the resources the scheduler counts.
type Resources struct {
	MilliCPU int64
	Memory   int64 // bytes
	Pods     int64
}

// NodeInfo is one node as the scheduler sees it: the node object and the
// pods on it (bound, or assumed by the scheduler and not yet bound).
//
// Build it with NewNodeInfo and change it only through SetNode, AddPod and
// RemovePod, which keep the sums below in step with Pods. Read the fields
// freely.
type NodeInfo struct {
	Node *corev1.Node
	// Pods are the pods on the node, bound or assumed, in the order they
	// were added. A pod is identified by its UID.
	Pods []*corev1.Pod
	// Allocatable is the node's status.allocatable.
	Allocatable Resources
	// Requested is the sum of PodRequests over Pods; PodRequests says
	// what one pod's request is.
	Requested Resources
	// NonZeroRequested is Requested with a default request (100m cpu,
	// 200Mi memory) for every container that names none. Only scoring
	// uses it, so that pods without requests still spread out instead of
	// piling onto the node that looks empty.
	NonZeroRequested Resources
	// UsedPorts are the host ports taken by Pods ("TCP/0.0.0.0/8080").
	UsedPorts map[string]bool

	// ownerPods counts Pods by the UID of their controller (ReplicaSet,
	// StatefulSet, ...) for the spread score.
	ownerPods map[types.UID]int
}

// Snapshot is the state the decision is made from: every node, sorted by
// name. Schedule does not modify it.
type Snapshot struct {
	Nodes []*NodeInfo
}

// Weights weigh the scores; a weight of 0 turns a score off.
type Weights struct {
	// LeastAllocated prefers nodes with more free cpu and memory.
	LeastAllocated int64
	// BalancedAllocation prefers nodes whose cpu and memory use stay
	// balanced after placing the pod.
	BalancedAllocation int64
	// Spread prefers nodes with fewer pods of the same owner.
	Spread int64
	// NodeAffinity honours preferredDuringScheduling node affinity.
	NodeAffinity int64
}

// DefaultWeights are Kubernetes' default plugin weights, more or less.
var DefaultWeights = Weights{LeastAllocated: 1, BalancedAllocation: 1, Spread: 2, NodeAffinity: 2}

// Config tunes a decision.
type Config struct {
	Weights Weights
	// PercentageOfNodesToScore bounds the search in large clusters: once
	// this share of the nodes (at least MinFeasibleNodesToFind) are known
	// to fit, the search stops and the best of them wins. 0 means
	// Kubernetes' adaptive default: 50% less 1% per 125 nodes, never
	// below 5% (10% at 5,000 nodes). 100 searches every node.
	PercentageOfNodesToScore int
	// Start is where the search begins in Snapshot.Nodes, so that
	// successive pods do not always look at the same nodes first. The
	// caller sets it to the previous Result.NextStart.
	Start int
}

// Validate reports a Config that Schedule would have to correct.
func (c Config) Validate() error {
	w := c.Weights
	if w.LeastAllocated < 0 || w.BalancedAllocation < 0 || w.Spread < 0 || w.NodeAffinity < 0 {
		return fmt.Errorf("weights %+v: must not be negative", w)
	}
	if c.PercentageOfNodesToScore < 0 || c.PercentageOfNodesToScore > 100 {
		return fmt.Errorf("percentageOfNodesToScore %d: must be between 0 and 100", c.PercentageOfNodesToScore)
	}
	return nil
}

// MinFeasibleNodesToFind is the least number of fitting nodes a search
// looks for before it may stop early.
const MinFeasibleNodesToFind = 100

// Result is a successful decision.
type Result struct {
	// Node is the chosen node's name.
	Node string
	// Evaluated is how many nodes were looked at; Feasible how many fit.
	Evaluated int
	Feasible  int
	// NextStart is the Config.Start for the next pod: just past the
	// chosen node, so that equal nodes take pods in turn.
	NextStart int
}

// ErrNoNodesAvailable is returned when the snapshot has no nodes at all.
var ErrNoNodesAvailable = errors.New("no nodes available to schedule pods")
