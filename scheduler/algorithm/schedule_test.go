package algorithm

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestNumFeasibleNodesToFind(t *testing.T) {
	tests := []struct {
		nodes, percentage, want int
	}{
		{0, 0, 0},
		{10, 0, 10},
		{99, 0, 99},
		{99, 1, 99},
		{100, 0, 100},     // 49% of 100 is 49, but at least 100
		{1000, 0, 420},    // 50 - 8 = 42%
		{5000, 0, 500},    // 50 - 40 = 10%
		{6000, 0, 300},    // 50 - 48 = 2%, raised to 5%
		{100000, 0, 5000}, // 5%
		{1000, 10, 100},   // 10% of 1000
		{1000, 5, 100},    // 50, raised to 100
		{5000, 30, 1500},  // 30%
		{5000, 100, 5000}, // everything
		{5000, 150, 5000}, // more than everything is everything
		{5000, -1, 500},   // negative means the default
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d nodes %d%%", tt.nodes, tt.percentage), func(t *testing.T) {
			if got := numFeasibleNodesToFind(tt.nodes, tt.percentage); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestFitErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  FitError
		want string
	}{
		{"the issue's example, sorted as Kubernetes sorts it",
			FitError{NumAllNodes: 3, Reasons: map[string]int{ReasonInsufficientCPU: 2, "node(s) had untolerated taint {key: value}": 1}},
			"0/3 nodes are available: 1 node(s) had untolerated taint {key: value}, 2 Insufficient cpu."},
		{"equal counts sort by reason",
			FitError{NumAllNodes: 6, Reasons: map[string]int{ReasonInsufficientMemory: 3, ReasonInsufficientCPU: 3}},
			"0/6 nodes are available: 3 Insufficient cpu, 3 Insufficient memory."},
		{"counts sort as text",
			FitError{NumAllNodes: 12, Reasons: map[string]int{ReasonTooManyPods: 2, ReasonNodeAffinity: 10}},
			"0/12 nodes are available: 10 node(s) didn't match Pod's node affinity/selector, 2 Too many pods."},
		{"no reasons", FitError{NumAllNodes: 0}, "0/0 nodes are available."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestScheduleFitError(t *testing.T) {
	snap := &Snapshot{Nodes: []*NodeInfo{
		nodeInfo(testNode("n1", "1", "4Gi")),
		nodeInfo(testNode("n2", "1", "1Gi")),
		nodeInfo(testNode("n3", "8", "8Gi", withTaints(corev1.Taint{Key: "key", Value: "value", Effect: corev1.TaintEffectNoSchedule}))),
	}}
	_, err := Schedule(snap, testPod("p", "2", "2Gi"), Config{Weights: DefaultWeights})
	var fe *FitError
	if !errors.As(err, &fe) {
		t.Fatalf("got error %v, want a *FitError", err)
	}
	want := map[string]int{ReasonInsufficientCPU: 2, ReasonInsufficientMemory: 1, "node(s) had untolerated taint {key: value}": 1}
	if fe.NumAllNodes != 3 || !reflect.DeepEqual(fe.Reasons, want) {
		t.Errorf("got %d nodes %v, want 3 nodes %v", fe.NumAllNodes, fe.Reasons, want)
	}
	if got, want := err.Error(), "0/3 nodes are available: 1 Insufficient memory, 1 node(s) had untolerated taint {key: value}, 2 Insufficient cpu."; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestScheduleErrors(t *testing.T) {
	if _, err := Schedule(&Snapshot{}, testPod("p", "", ""), Config{}); !errors.Is(err, ErrNoNodesAvailable) {
		t.Errorf("empty snapshot: got %v, want %v", err, ErrNoNodesAvailable)
	}
	snap := &Snapshot{Nodes: []*NodeInfo{nodeInfo(testNode("n1", "1", "1Gi")), {}}}
	if _, err := Schedule(snap, testPod("p", "", ""), Config{Start: 1}); err == nil {
		t.Error("NodeInfo without a node: got no error")
	}
}

// TestScheduleRoundRobin: equal nodes take pods in turn when the caller
// passes NextStart on, whether or not the search covers every node.
func TestScheduleRoundRobin(t *testing.T) {
	for _, numNodes := range []int{3, 250} {
		t.Run(fmt.Sprint(numNodes, " nodes"), func(t *testing.T) {
			snap := &Snapshot{}
			for i := range numNodes {
				snap.Nodes = append(snap.Nodes, nodeInfo(testNode(fmt.Sprintf("n%03d", i), "4", "8Gi")))
			}
			cfg := Config{} // every weight 0: all nodes tie
			seen := map[string]bool{}
			for i := range numNodes {
				res, err := Schedule(snap, testPod(fmt.Sprint("p", i), "", ""), cfg)
				if err != nil {
					t.Fatal(err)
				}
				if seen[res.Node] {
					t.Fatalf("pod %d: got %s again before every node had a pod", i, res.Node)
				}
				seen[res.Node] = true
				cfg.Start = res.NextStart
			}
		})
	}
}

func TestScheduleSearchBound(t *testing.T) {
	snap := &Snapshot{}
	for i := range 1000 {
		node := testNode(fmt.Sprintf("n%04d", i), "4", "8Gi")
		if i%2 == 1 {
			node.Spec.Unschedulable = true
		}
		snap.Nodes = append(snap.Nodes, nodeInfo(node))
	}
	tests := []struct {
		name                string
		cfg                 Config
		evaluated, feasible int
		nextStart           int
		node                string
	}{
		// Adaptive: 42% of 1000 = 420 feasible; half the nodes fit, so 839 are visited.
		{"adaptive", Config{}, 839, 420, 1, "n0000"},
		{"from the middle", Config{Start: 990}, 839, 420, 991, "n0990"},
		{"past the end wraps", Config{Start: 1990}, 839, 420, 991, "n0990"},
		{"negative wraps", Config{Start: -10}, 839, 420, 991, "n0990"},
		{"next start is past the winner", Config{Start: 998}, 839, 420, 999, "n0998"},
		// Only 500 fit: all are visited.
		{"everything", Config{PercentageOfNodesToScore: 100, Start: 4}, 1000, 500, 5, "n0004"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Schedule(snap, testPod("p", "", ""), tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			want := Result{Node: tt.node, Evaluated: tt.evaluated, Feasible: tt.feasible, NextStart: tt.nextStart}
			if res != want {
				t.Errorf("got %+v, want %+v", res, want)
			}
		})
	}
}

func TestScheduleDoesNotModify(t *testing.T) {
	ni := nodeInfo(testNode("n1", "4", "8Gi"), testPod("a", "1", "1Gi", withOwner("rs")))
	before := ni.Clone()
	pod := testPod("p", "1", "1Gi", withOwner("rs"))
	podBefore := pod.DeepCopy()
	if _, err := Schedule(&Snapshot{Nodes: []*NodeInfo{ni}}, pod, Config{Weights: DefaultWeights}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ni, before) {
		t.Error("Schedule changed the snapshot")
	}
	if !reflect.DeepEqual(pod, podBefore) {
		t.Error("Schedule changed the pod")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg     Config
		wantErr bool
	}{
		{Config{Weights: DefaultWeights}, false},
		{Config{PercentageOfNodesToScore: 100}, false},
		{Config{PercentageOfNodesToScore: 101}, true},
		{Config{PercentageOfNodesToScore: -1}, true},
		{Config{Weights: Weights{Spread: -1}}, true},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate(); (err != nil) != tt.wantErr {
			t.Errorf("%+v: got %v, want error %v", tt.cfg, err, tt.wantErr)
		}
	}
}
