package algorithm

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// benchSnapshot is a cluster of numNodes nodes (8 cpu, 32Gi, three zones)
// each running podsPerNode pods of 100m and 128Mi from ten ReplicaSets.
func benchSnapshot(numNodes, podsPerNode int) *Snapshot {
	snap := &Snapshot{}
	for i := range numNodes {
		name := fmt.Sprintf("node-%05d", i)
		ni := NewNodeInfo(testNode(name, "8", "32Gi",
			withLabels("topology.kubernetes.io/zone", fmt.Sprint("zone-", i%3), "kubernetes.io/hostname", name)))
		for j := range podsPerNode {
			ni.AddPod(testPod(fmt.Sprintf("running-%d-%d", i, j), "100m", "128Mi", withOwner(fmt.Sprint("rs-", (i+j)%10))))
		}
		snap.Nodes = append(snap.Nodes, ni)
	}
	return snap
}

// benchSchedule runs one decision per iteration on an unchanging snapshot,
// so every iteration does the same work.
func benchSchedule(b *testing.B, snap *Snapshot, pod *corev1.Pod) {
	cfg := Config{Weights: DefaultWeights}
	b.ReportAllocs()
	for b.Loop() {
		res, err := Schedule(snap, pod, cfg)
		if err != nil {
			b.Fatal(err)
		}
		cfg.Start = res.NextStart
	}
}

// BenchmarkSchedule5000Nodes is one decision in a cluster of 5,000 nodes
// carrying two pods each, for the pod the benchmark creates
// (100m cpu, 128Mi, owned by a ReplicaSet), with the default search bound
// (500 feasible nodes) and the default weights.
func BenchmarkSchedule5000Nodes(b *testing.B) {
	benchSchedule(b, benchSnapshot(5000, 2), testPod("web", "100m", "128Mi", withOwner("rs-3")))
}

// BenchmarkSchedule5000NodesConstrained adds what makes filtering and
// scoring work harder: a toleration, a nodeSelector, required and
// preferred node affinity, and a host port.
func BenchmarkSchedule5000NodesConstrained(b *testing.B) {
	const zone = "topology.kubernetes.io/zone"
	benchSchedule(b, benchSnapshot(5000, 2), testPod("web", "100m", "128Mi", withOwner("rs-3"),
		withTolerations(corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpExists}),
		withNodeSelector(zone, "zone-1"),
		withRequired(expr(zone, corev1.NodeSelectorOpIn, "zone-0", "zone-1")),
		withPreferred(corev1.PreferredSchedulingTerm{Weight: 10, Preference: expr("kubernetes.io/hostname", corev1.NodeSelectorOpExists)}),
		withHostPorts(corev1.ContainerPort{HostPort: 8080, ContainerPort: 8080})))
}

// BenchmarkScheduleAndAssume places the 10,000 pods one after
// another on 5,000 empty nodes, each counted on its node before the next
// decision as the scheduler does (ns/op is per pod); after 10,000 pods the
// cluster starts again empty.
func BenchmarkScheduleAndAssume(b *testing.B) {
	var (
		snap   *Snapshot
		byName map[string]*NodeInfo
		cfg    = Config{Weights: DefaultWeights}
	)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%10000 == 0 {
			b.StopTimer()
			snap = benchSnapshot(5000, 0)
			byName = map[string]*NodeInfo{}
			for _, ni := range snap.Nodes {
				byName[ni.Node.Name] = ni
			}
			b.StartTimer()
		}
		pod := testPod(fmt.Sprint("web-", i), "100m", "128Mi", withOwner(fmt.Sprint("rs-", i%20)))
		res, err := Schedule(snap, pod, cfg)
		if err != nil {
			b.Fatal(err)
		}
		cfg.Start = res.NextStart
		byName[res.Node].AddPod(pod)
	}
}
