package algorithm

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// Schedule picks the node for pod from snap, or explains why none fits.
//
// It visits the nodes in order starting at cfg.Start (wrapping around) and
// runs the filters on each, stopping once it has found
// numFeasibleNodesToFind nodes that fit. It scores those, and the highest
// total wins. Between equal totals the node visited first wins; since the
// next search starts just past the winner (Result.NextStart), equal nodes
// take pods in turn, round-robin, and in a large cluster the searches
// move on through all the nodes.
//
// When no node fits the error is a *FitError. With no nodes at all it is
// ErrNoNodesAvailable. Schedule does not modify snap or pod.
func Schedule(snap *Snapshot, pod *corev1.Pod, cfg Config) (Result, error) {
	res, _, err := schedule(snap, pod, cfg)
	return res, err
}

// schedule is Schedule, also returning the scored candidates so that
// tests can show why the winner won.
func schedule(snap *Snapshot, pod *corev1.Pod, cfg Config) (Result, []candidate, error) {
	n := len(snap.Nodes)
	if n == 0 {
		return Result{}, nil, ErrNoNodesAvailable
	}
	p := preparePod(pod)
	want := numFeasibleNodesToFind(n, cfg.PercentageOfNodesToScore)
	start := ((cfg.Start % n) + n) % n

	cands := make([]candidate, 0, want)
	var unfit tally
	evaluated := 0
	for i := start; evaluated < n && len(cands) < want; {
		ni := snap.Nodes[i]
		if ni == nil || ni.Node == nil {
			return Result{}, nil, fmt.Errorf("snapshot entry %d has no node", i)
		}
		evaluated++
		if f, taint := filter(p, ni); f != 0 {
			unfit.add(f, taint)
		} else {
			cands = append(cands, candidate{node: ni, index: i})
		}
		if i++; i == n {
			i = 0
		}
	}
	if len(cands) == 0 {
		return Result{Evaluated: evaluated, NextStart: start}, nil, unfit.fitError(n)
	}

	score(p, cands, cfg.Weights)
	best := 0
	for i := 1; i < len(cands); i++ {
		if cands[i].total > cands[best].total {
			best = i
		}
	}
	return Result{
		Node:      cands[best].node.Node.Name,
		Evaluated: evaluated,
		Feasible:  len(cands),
		NextStart: (cands[best].index + 1) % n,
	}, cands, nil
}

// numFeasibleNodesToFind is how many fitting nodes are enough to stop
// looking, by Kubernetes' rule: every node in a cluster of fewer than
// MinFeasibleNodesToFind nodes; otherwise percentage of them (with 0
// meaning 50% less 1% per 125 nodes, never below 5%), but at least
// MinFeasibleNodesToFind.
func numFeasibleNodesToFind(numNodes, percentage int) int {
	if numNodes < MinFeasibleNodesToFind || percentage >= 100 {
		return numNodes
	}
	if percentage <= 0 {
		percentage = max(50-numNodes/125, 5)
	}
	return max(numNodes*percentage/100, MinFeasibleNodesToFind)
}
