package algorithm

// maxScore is the best a node can do on one score, as in Kubernetes.
const maxScore = 100

// scores are one feasible node's marks, each 0..maxScore, and their sum
// weighted by Config.Weights.
type scores struct {
	leastAllocated     int64
	balancedAllocation int64
	spread             int64
	nodeAffinity       int64
	total              int64
}

// candidate is a node that passed every filter, with its scores.
type candidate struct {
	node *NodeInfo
	// index is the node's position in Snapshot.Nodes.
	index int
	scores
	// ownerPods and preferredWeight are the raw counts that spread and
	// nodeAffinity are normalized from.
	ownerPods       int64
	preferredWeight int64
}

// score marks every candidate. LeastAllocated and BalancedAllocation
// depend on one node alone; spread and nodeAffinity are relative, so they
// are normalized across the candidates once all are counted.
func score(p *preparedPod, cands []candidate, w Weights) {
	var maxOwnerPods, maxPreferred int64
	for i := range cands {
		c := &cands[i]
		c.leastAllocated = leastAllocatedScore(p, c.node)
		c.balancedAllocation = balancedAllocationScore(p, c.node)
		c.ownerPods = ownerPodsOn(p, c.node)
		c.preferredWeight = preferredWeightOn(p, c.node)
		maxOwnerPods = max(maxOwnerPods, c.ownerPods)
		maxPreferred = max(maxPreferred, c.preferredWeight)
	}
	for i := range cands {
		c := &cands[i]
		c.spread = spreadScore(p, c.ownerPods, maxOwnerPods)
		c.nodeAffinity = nodeAffinityScore(c.preferredWeight, maxPreferred)
		c.total = w.LeastAllocated*c.leastAllocated +
			w.BalancedAllocation*c.balancedAllocation +
			w.Spread*c.spread +
			w.NodeAffinity*c.nodeAffinity
	}
}

// leastAllocatedScore is the average share of cpu and of memory that
// would still be free after placing the pod, counting default requests
// for containers that name none. A resource the node has none of is left
// out of the average.
func leastAllocatedScore(p *preparedPod, ni *NodeInfo) int64 {
	var sum, n int64
	if alloc := ni.Allocatable.MilliCPU; alloc > 0 {
		sum += freeShare(ni.NonZeroRequested.MilliCPU+p.nonZero.MilliCPU, alloc)
		n++
	}
	if alloc := ni.Allocatable.Memory; alloc > 0 {
		sum += freeShare(ni.NonZeroRequested.Memory+p.nonZero.Memory, alloc)
		n++
	}
	if n == 0 {
		return 0
	}
	return sum / n
}

// freeShare is how much of capacity is left after requested, 0..maxScore.
func freeShare(requested, capacity int64) int64 {
	if requested > capacity {
		return 0
	}
	return (capacity - requested) * maxScore / capacity
}

// balancedAllocationScore prefers nodes where the pod leaves cpu and
// memory equally used: with u the used share of each (actual requests,
// capped at 1), the score is (1 - |u_cpu - u_memory| / 2) × 100 — one
// minus the standard deviation of the two shares, as Kubernetes computes
// it. With only one resource known, the node counts as balanced.
func balancedAllocationScore(p *preparedPod, ni *NodeInfo) int64 {
	cpu, okCPU := usedShare(ni.Requested.MilliCPU+p.requests.MilliCPU, ni.Allocatable.MilliCPU)
	mem, okMem := usedShare(ni.Requested.Memory+p.requests.Memory, ni.Allocatable.Memory)
	if !okCPU || !okMem {
		return maxScore
	}
	diff := cpu - mem
	if diff < 0 {
		diff = -diff
	}
	return int64((1 - diff/2) * maxScore)
}

func usedShare(requested, capacity int64) (float64, bool) {
	if capacity <= 0 {
		return 0, false
	}
	return min(float64(requested)/float64(capacity), 1), true
}

// ownerPodsOn counts the pods on the node with the same controller as the
// pod being placed.
func ownerPodsOn(p *preparedPod, ni *NodeInfo) int64 {
	if p.owner == "" {
		return 0
	}
	return int64(ni.ownerPods[p.owner])
}

// spreadScore gives the candidates with the fewest of the owner's pods the
// most: maxScore × (most - count) / most, so every node scores maxScore
// while no candidate has one yet. A pod with no controller has nothing to
// spread from and scores 0 everywhere.
func spreadScore(p *preparedPod, count, most int64) int64 {
	if p.owner == "" {
		return 0
	}
	if most == 0 {
		return maxScore
	}
	return maxScore * (most - count) / most
}

// preferredWeightOn sums the weights of the pod's preferred node affinity
// terms that the node matches.
func preferredWeightOn(p *preparedPod, ni *NodeInfo) int64 {
	var sum int64
	for i := range p.preferred {
		if p.preferred[i].matches(ni.Node) {
			sum += p.preferred[i].weight
		}
	}
	return sum
}

// nodeAffinityScore scales a node's preferred weight so that the best
// candidate scores maxScore; with no preference matched anywhere every
// node scores 0.
func nodeAffinityScore(weight, most int64) int64 {
	if most == 0 {
		return 0
	}
	return maxScore * weight / most
}
