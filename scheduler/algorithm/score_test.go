package algorithm

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestLeastAllocatedScore(t *testing.T) {
	tests := []struct {
		name     string
		node     *corev1.Node
		existing []*corev1.Pod
		pod      *corev1.Pod
		want     int64
	}{
		// (4000-1000)/4000 = 75, (8-2)/8 = 75.
		{"empty node", testNode("n", "4", "8Gi"), nil, testPod("p", "1", "2Gi"), 75},
		// cpu (4000-3000)/4000 = 25, memory (8-2)/8 = 75: average 50.
		{"cpu used", testNode("n", "4", "8Gi"), []*corev1.Pod{testPod("a", "2", "0")}, testPod("p", "1", "2Gi"), 50},
		// The running pod names no memory, so it counts 200Mi: (8192-200-2048)/8192 = 72; (25+72)/2.
		{"defaults for running pods", testNode("n", "4", "8Gi"), []*corev1.Pod{testPod("a", "2", "")}, testPod("p", "1", "2Gi"), 48},
		// The pod counts 100m and 200Mi: (4000-100)*100/4000 = 97, (8192-200)*100/8192 = 97.
		{"defaults for a pod without requests", testNode("n", "4", "8Gi"), nil, testPod("p", "", ""), 97},
		{"a request of zero is not defaulted", testNode("n", "4", "8Gi"), nil, testPod("p", "0", "0"), 100},
		{"over-committed scores 0", testNode("n", "1", "1Gi"), nil, testPod("p", "2", "2Gi"), 0},
		{"full", testNode("n", "1", "1Gi"), nil, testPod("p", "1", "1Gi"), 0},
		// No memory to speak of: cpu alone counts.
		{"no memory allocatable", testNode("n", "4", "0"), nil, testPod("p", "1", "0"), 75},
		{"nothing allocatable", testNode("n", "0", "0"), nil, testPod("p", "1", "1Gi"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := leastAllocatedScore(preparePod(tt.pod), nodeInfo(tt.node, tt.existing...)); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestBalancedAllocationScore(t *testing.T) {
	tests := []struct {
		name     string
		node     *corev1.Node
		existing []*corev1.Pod
		pod      *corev1.Pod
		want     int64
	}{
		{"equal shares", testNode("n", "4", "8Gi"), nil, testPod("p", "1", "2Gi"), 100},
		// cpu 50%, memory 0%: 1 - 0.5/2 = 0.75.
		{"cpu only", testNode("n", "4", "8Gi"), nil, testPod("p", "2", ""), 75},
		// cpu 100%, memory 0%.
		{"worst", testNode("n", "4", "8Gi"), nil, testPod("p", "4", ""), 50},
		// Shares are capped at 1: cpu 200% counts as 100%.
		{"over-committed cpu", testNode("n", "1", "8Gi"), nil, testPod("p", "2", ""), 50},
		// Existing pods count: cpu (1+1)/4 = 50%, memory (0+2)/8 = 25%.
		{"with pods", testNode("n", "4", "8Gi"), []*corev1.Pod{testPod("a", "1", "")}, testPod("p", "1", "2Gi"), 87},
		// Actual requests, not defaults: a pod without requests is balanced on an empty node.
		{"no requests", testNode("n", "4", "8Gi"), nil, testPod("p", "", ""), 100},
		{"one resource unknown", testNode("n", "4", "0"), nil, testPod("p", "2", ""), 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := balancedAllocationScore(preparePod(tt.pod), nodeInfo(tt.node, tt.existing...)); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestSpreadScore(t *testing.T) {
	owned := func(name, owner string) *corev1.Pod { return testPod(name, "", "", withOwner(owner)) }
	nodes := []*NodeInfo{
		nodeInfo(testNode("n1", "4", "8Gi"), owned("a1", "rs-a"), owned("a2", "rs-a"), owned("b1", "rs-b")),
		nodeInfo(testNode("n2", "4", "8Gi"), owned("a3", "rs-a"), owned("b2", "rs-b"), owned("b3", "rs-b")),
		nodeInfo(testNode("n3", "4", "8Gi"), testPod("bare", "", "")),
		nodeInfo(testNode("n4", "4", "8Gi"), owned("a4", "rs-a"), owned("a5", "rs-a"), owned("a6", "rs-a"), owned("a7", "rs-a")),
	}
	tests := []struct {
		name string
		pod  *corev1.Pod
		want []int64
	}{
		// rs-a has 2, 1, 0, 4 pods: 100×(4-n)/4.
		{"rs-a", owned("new", "rs-a"), []int64{50, 75, 100, 0}},
		// rs-b has 1, 2, 0, 0 pods.
		{"rs-b", owned("new", "rs-b"), []int64{50, 0, 100, 100}},
		{"new owner scores the same everywhere", owned("new", "rs-c"), []int64{100, 100, 100, 100}},
		{"a bare pod is not spread", testPod("new", "", ""), []int64{0, 0, 0, 0}},
		{"a non-controller owner does not count", testPod("new", "", "", withOwner("rs-a"), func(p *corev1.Pod) { p.OwnerReferences[0].Controller = nil }), []int64{0, 0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := scoreAll(tt.pod, nodes, func(c candidate) int64 { return c.spread })
			if !equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNodeAffinityScore(t *testing.T) {
	nodes := []*NodeInfo{
		nodeInfo(testNode("n1", "4", "8Gi", withLabels("zone", "a", "disk", "ssd"))),
		nodeInfo(testNode("n2", "4", "8Gi", withLabels("zone", "b", "disk", "ssd"))),
		nodeInfo(testNode("n3", "4", "8Gi", withLabels("zone", "c"))),
	}
	pref := func(weight int32, term corev1.NodeSelectorTerm) corev1.PreferredSchedulingTerm {
		return corev1.PreferredSchedulingTerm{Weight: weight, Preference: term}
	}
	tests := []struct {
		name  string
		terms []corev1.PreferredSchedulingTerm
		want  []int64
	}{
		{"none", nil, []int64{0, 0, 0}},
		{"one term", []corev1.PreferredSchedulingTerm{pref(10, expr("zone", corev1.NodeSelectorOpIn, "a"))}, []int64{100, 0, 0}},
		// n1 matches 10+30, n2 30, n3 nothing: scaled to the best.
		{"weights add up", []corev1.PreferredSchedulingTerm{
			pref(10, expr("zone", corev1.NodeSelectorOpIn, "a")),
			pref(30, expr("disk", corev1.NodeSelectorOpExists)),
		}, []int64{100, 75, 0}},
		{"nothing matches", []corev1.PreferredSchedulingTerm{pref(50, expr("zone", corev1.NodeSelectorOpIn, "z"))}, []int64{0, 0, 0}},
		{"weight 0 is ignored", []corev1.PreferredSchedulingTerm{pref(0, expr("zone", corev1.NodeSelectorOpIn, "a"))}, []int64{0, 0, 0}},
		{"an empty term matches nothing", []corev1.PreferredSchedulingTerm{pref(5, corev1.NodeSelectorTerm{})}, []int64{0, 0, 0}},
		{"every node alike", []corev1.PreferredSchedulingTerm{pref(7, expr("zone", corev1.NodeSelectorOpExists))}, []int64{100, 100, 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := testPod("p", "", "", withPreferred(tt.terms...))
			got := scoreAll(pod, nodes, func(c candidate) int64 { return c.nodeAffinity })
			if !equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestScoreTotal(t *testing.T) {
	nodes := []*NodeInfo{
		nodeInfo(testNode("n1", "4", "8Gi", withLabels("zone", "a")), testPod("a", "1", "1Gi", withOwner("rs"))),
		nodeInfo(testNode("n2", "4", "8Gi")),
	}
	pod := testPod("p", "1", "2Gi", withOwner("rs"),
		withPreferred(corev1.PreferredSchedulingTerm{Weight: 1, Preference: expr("zone", corev1.NodeSelectorOpIn, "a")}))
	tests := []struct {
		name string
		w    Weights
		want []int64
	}{
		// n1: least (50+62)/2=56, balanced 1-|.5-.375|/2 → 93, spread 0, affinity 100.
		// n2: least 75, balanced 100, spread 100, affinity 0.
		{"least only", Weights{LeastAllocated: 1}, []int64{56, 75}},
		{"balanced only", Weights{BalancedAllocation: 1}, []int64{93, 100}},
		{"spread only", Weights{Spread: 1}, []int64{0, 100}},
		{"affinity only", Weights{NodeAffinity: 1}, []int64{100, 0}},
		{"defaults", DefaultWeights, []int64{56 + 93 + 0 + 200, 75 + 100 + 200 + 0}},
		{"all off", Weights{}, []int64{0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := preparePod(pod)
			cands := []candidate{{node: nodes[0]}, {node: nodes[1]}}
			score(p, cands, tt.w)
			got := []int64{cands[0].total, cands[1].total}
			if !equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// scoreAll scores pod on every node as candidates and returns one score.
func scoreAll(pod *corev1.Pod, nodes []*NodeInfo, which func(candidate) int64) []int64 {
	cands := make([]candidate, len(nodes))
	for i, ni := range nodes {
		cands[i] = candidate{node: ni, index: i}
	}
	score(preparePod(pod), cands, DefaultWeights)
	out := make([]int64, len(cands))
	for i, c := range cands {
		out[i] = which(c)
	}
	return out
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
