package algorithm

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestFitsSchedulable(t *testing.T) {
	cordoned := testNode("n", "1", "1Gi", func(n *corev1.Node) { n.Spec.Unschedulable = true })
	tests := []struct {
		name string
		node *corev1.Node
		pod  *corev1.Pod
		want bool
	}{
		{"schedulable node", testNode("n", "1", "1Gi"), testPod("p", "", ""), true},
		{"cordoned node", cordoned, testPod("p", "", ""), false},
		{"tolerates the unschedulable taint", cordoned, testPod("p", "", "", withTolerations(corev1.Toleration{
			Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule})), true},
		{"tolerates everything", cordoned, testPod("p", "", "", withTolerations(corev1.Toleration{Operator: corev1.TolerationOpExists})), true},
		{"NoExecute toleration is not enough", cordoned, testPod("p", "", "", withTolerations(corev1.Toleration{
			Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute})), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fitsSchedulable(preparePod(tt.pod), tt.node); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFitsNodeName(t *testing.T) {
	tests := []struct {
		name, nodeName string
		want           bool
	}{
		{"no node name", "", true},
		{"this node", "n1", true},
		{"another node", "n2", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := testPod("p", "", "", func(p *corev1.Pod) { p.Spec.NodeName = tt.nodeName })
			if got := fitsNodeName(preparePod(pod), testNode("n1", "1", "1Gi")); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFitsReady(t *testing.T) {
	notReady := corev1.Toleration{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
	unreachable := corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
	defaults := []corev1.Toleration{ // what Kubernetes adds to every pod
		{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
		{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	}
	tests := []struct {
		name        string
		status      corev1.ConditionStatus
		tolerations []corev1.Toleration
		want        bool
	}{
		{"ready", corev1.ConditionTrue, nil, true},
		{"not ready", corev1.ConditionFalse, nil, false},
		{"unknown", corev1.ConditionUnknown, nil, false},
		{"no Ready condition", "", nil, false},
		{"not ready, default tolerations", corev1.ConditionFalse, defaults, false},
		{"unknown, default tolerations", corev1.ConditionUnknown, defaults, false},
		{"not ready, tolerates not-ready", corev1.ConditionFalse, []corev1.Toleration{notReady}, true},
		{"no condition, tolerates not-ready", "", []corev1.Toleration{notReady}, true},
		{"not ready, tolerates unreachable", corev1.ConditionFalse, []corev1.Toleration{unreachable}, false},
		{"unknown, tolerates unreachable", corev1.ConditionUnknown, []corev1.Toleration{unreachable}, true},
		{"unknown, tolerates not-ready", corev1.ConditionUnknown, []corev1.Toleration{notReady}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := testNode("n", "1", "1Gi", withReady(tt.status))
			pod := testPod("p", "", "", withTolerations(tt.tolerations...))
			if got := fitsReady(preparePod(pod), node); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTolerates(t *testing.T) {
	taint := corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}
	tests := []struct {
		name  string
		tol   corev1.Toleration
		taint corev1.Taint
		want  bool
	}{
		{"equal", corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "gpu", Effect: corev1.TaintEffectNoSchedule}, taint, true},
		{"empty operator is equal", corev1.Toleration{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}, taint, true},
		{"other value", corev1.Toleration{Key: "dedicated", Value: "tpu", Effect: corev1.TaintEffectNoSchedule}, taint, false},
		{"other key", corev1.Toleration{Key: "team", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}, taint, false},
		{"other effect", corev1.Toleration{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoExecute}, taint, false},
		{"empty effect matches any", corev1.Toleration{Key: "dedicated", Value: "gpu"}, taint, true},
		{"exists", corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpExists}, taint, true},
		{"exists, other key", corev1.Toleration{Key: "team", Operator: corev1.TolerationOpExists}, taint, false},
		{"exists with no key matches everything", corev1.Toleration{Operator: corev1.TolerationOpExists}, taint, true},
		{"exists with no key, other effect", corev1.Toleration{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}, taint, false},
		{"empty taint value", corev1.Toleration{Key: "k", Operator: corev1.TolerationOpEqual}, corev1.Taint{Key: "k", Effect: corev1.TaintEffectNoSchedule}, true},
		{"gt", corev1.Toleration{Key: "level", Operator: corev1.TolerationOpGt, Value: "3"}, corev1.Taint{Key: "level", Value: "5", Effect: corev1.TaintEffectNoSchedule}, true},
		{"gt, equal", corev1.Toleration{Key: "level", Operator: corev1.TolerationOpGt, Value: "5"}, corev1.Taint{Key: "level", Value: "5", Effect: corev1.TaintEffectNoSchedule}, false},
		{"lt", corev1.Toleration{Key: "level", Operator: corev1.TolerationOpLt, Value: "3"}, corev1.Taint{Key: "level", Value: "1", Effect: corev1.TaintEffectNoSchedule}, true},
		{"lt, not a number", corev1.Toleration{Key: "level", Operator: corev1.TolerationOpLt, Value: "3"}, corev1.Taint{Key: "level", Value: "x", Effect: corev1.TaintEffectNoSchedule}, false},
		{"unknown operator", corev1.Toleration{Key: "dedicated", Operator: "Maybe", Value: "gpu"}, taint, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tolerates(&tt.tol, &tt.taint); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUntoleratedTaint(t *testing.T) {
	noSchedule := corev1.Taint{Key: "a", Value: "1", Effect: corev1.TaintEffectNoSchedule}
	noExecute := corev1.Taint{Key: "b", Value: "2", Effect: corev1.TaintEffectNoExecute}
	prefer := corev1.Taint{Key: "c", Value: "3", Effect: corev1.TaintEffectPreferNoSchedule}
	tolA := corev1.Toleration{Key: "a", Operator: corev1.TolerationOpExists}
	tolB := corev1.Toleration{Key: "b", Operator: corev1.TolerationOpExists}
	tests := []struct {
		name        string
		taints      []corev1.Taint
		tolerations []corev1.Toleration
		want        string // the key of the taint reported, "" for none
	}{
		{"no taints", nil, nil, ""},
		{"NoSchedule", []corev1.Taint{noSchedule}, nil, "a"},
		{"NoExecute", []corev1.Taint{noExecute}, nil, "b"},
		{"PreferNoSchedule is ignored", []corev1.Taint{prefer}, nil, ""},
		{"tolerated", []corev1.Taint{noSchedule}, []corev1.Toleration{tolA}, ""},
		{"first untolerated is reported", []corev1.Taint{prefer, noSchedule, noExecute}, nil, "a"},
		{"second when the first is tolerated", []corev1.Taint{noSchedule, noExecute}, []corev1.Toleration{tolA}, "b"},
		{"all tolerated", []corev1.Taint{noSchedule, noExecute, prefer}, []corev1.Toleration{tolA, tolB}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if taint := untoleratedTaint(tt.tolerations, tt.taints); taint != nil {
				got = taint.Key
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestUntoleratedTaintReason(t *testing.T) {
	for _, tt := range []struct {
		taint corev1.Taint
		want  string
	}{
		{corev1.Taint{Key: "key", Value: "value"}, "node(s) had untolerated taint {key: value}"},
		{corev1.Taint{Key: corev1.TaintNodeNotReady}, "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"},
	} {
		if got := UntoleratedTaintReason(&tt.taint); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

func TestFitsNodeAffinity(t *testing.T) {
	node := testNode("n1", "1", "1Gi", withLabels("zone", "a", "disk", "ssd", "cores", "8", "empty", ""))
	tests := []struct {
		name string
		pod  *corev1.Pod
		want bool
	}{
		{"no constraints", testPod("p", "", ""), true},
		{"nodeSelector match", testPod("p", "", "", withNodeSelector("zone", "a", "disk", "ssd")), true},
		{"nodeSelector one label off", testPod("p", "", "", withNodeSelector("zone", "a", "disk", "hdd")), false},
		{"nodeSelector missing label", testPod("p", "", "", withNodeSelector("gpu", "")), false},
		{"nodeSelector empty value", testPod("p", "", "", withNodeSelector("empty", "")), true},

		{"In", testPod("p", "", "", withRequired(expr("zone", corev1.NodeSelectorOpIn, "b", "a"))), true},
		{"In, other values", testPod("p", "", "", withRequired(expr("zone", corev1.NodeSelectorOpIn, "b", "c"))), false},
		{"In, no label", testPod("p", "", "", withRequired(expr("rack", corev1.NodeSelectorOpIn, "a"))), false},
		{"In without values never matches", testPod("p", "", "", withRequired(expr("zone", corev1.NodeSelectorOpIn))), false},
		{"NotIn", testPod("p", "", "", withRequired(expr("zone", corev1.NodeSelectorOpNotIn, "b"))), true},
		{"NotIn, value listed", testPod("p", "", "", withRequired(expr("zone", corev1.NodeSelectorOpNotIn, "a"))), false},
		{"NotIn, no label", testPod("p", "", "", withRequired(expr("rack", corev1.NodeSelectorOpNotIn, "a"))), true},
		{"Exists", testPod("p", "", "", withRequired(expr("disk", corev1.NodeSelectorOpExists))), true},
		{"Exists, no label", testPod("p", "", "", withRequired(expr("gpu", corev1.NodeSelectorOpExists))), false},
		{"Exists with values never matches", testPod("p", "", "", withRequired(expr("disk", corev1.NodeSelectorOpExists, "ssd"))), false},
		{"DoesNotExist", testPod("p", "", "", withRequired(expr("gpu", corev1.NodeSelectorOpDoesNotExist))), true},
		{"DoesNotExist, label there", testPod("p", "", "", withRequired(expr("disk", corev1.NodeSelectorOpDoesNotExist))), false},
		{"Gt", testPod("p", "", "", withRequired(expr("cores", corev1.NodeSelectorOpGt, "4"))), true},
		{"Gt, equal", testPod("p", "", "", withRequired(expr("cores", corev1.NodeSelectorOpGt, "8"))), false},
		{"Gt, not a number", testPod("p", "", "", withRequired(expr("zone", corev1.NodeSelectorOpGt, "4"))), false},
		{"Gt, no label", testPod("p", "", "", withRequired(expr("gpus", corev1.NodeSelectorOpGt, "0"))), false},
		{"Gt, bad value", testPod("p", "", "", withRequired(expr("cores", corev1.NodeSelectorOpGt, "four"))), false},
		{"Gt, two values", testPod("p", "", "", withRequired(expr("cores", corev1.NodeSelectorOpGt, "1", "2"))), false},
		{"Lt", testPod("p", "", "", withRequired(expr("cores", corev1.NodeSelectorOpLt, "16"))), true},
		{"Lt, equal", testPod("p", "", "", withRequired(expr("cores", corev1.NodeSelectorOpLt, "8"))), false},
		{"Lt, negative", testPod("p", "", "", withRequired(expr("cores", corev1.NodeSelectorOpLt, "-1"))), false},
		{"unknown operator", testPod("p", "", "", withRequired(expr("zone", "Like", "a"))), false},

		{"requirements of a term are ANDed", testPod("p", "", "", withRequired(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
			{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}},
			{Key: "disk", Operator: corev1.NodeSelectorOpIn, Values: []string{"hdd"}},
		}})), false},
		{"terms are ORed", testPod("p", "", "", withRequired(
			expr("zone", corev1.NodeSelectorOpIn, "b"),
			expr("disk", corev1.NodeSelectorOpIn, "ssd"))), true},
		{"an empty term matches nothing", testPod("p", "", "", withRequired(corev1.NodeSelectorTerm{})), false},
		{"no terms match nothing", testPod("p", "", "", withRequired()), false},
		{"a malformed term never matches, others still may", testPod("p", "", "", withRequired(
			expr("cores", corev1.NodeSelectorOpGt, "x"),
			expr("zone", corev1.NodeSelectorOpIn, "a"))), true},
		{"nodeSelector and affinity must both hold", testPod("p", "", "", withNodeSelector("zone", "b"), withRequired(expr("disk", corev1.NodeSelectorOpExists))), false},

		{"matchFields In", testPod("p", "", "", withRequired(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{
			{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"n1"}}}})), true},
		{"matchFields In, other node", testPod("p", "", "", withRequired(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{
			{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"n2"}}}})), false},
		{"matchFields NotIn", testPod("p", "", "", withRequired(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{
			{Key: "metadata.name", Operator: corev1.NodeSelectorOpNotIn, Values: []string{"n2"}}}})), true},
		{"matchFields with two values is malformed", testPod("p", "", "", withRequired(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{
			{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"n1", "n2"}}}})), false},
		{"matchFields on another field is malformed", testPod("p", "", "", withRequired(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{
			{Key: "metadata.uid", Operator: corev1.NodeSelectorOpNotIn, Values: []string{"x"}}}})), false},
		{"matchFields and matchExpressions together", testPod("p", "", "", withRequired(corev1.NodeSelectorTerm{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}},
			MatchFields:      []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"n1"}}},
		})), true},
		{"preferred terms do not filter", testPod("p", "", "", withPreferred(corev1.PreferredSchedulingTerm{Weight: 1, Preference: expr("zone", corev1.NodeSelectorOpIn, "z")})), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fitsNodeAffinity(preparePod(tt.pod), node); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFitsHostPorts(t *testing.T) {
	port := func(proto corev1.Protocol, ip string, p int32) corev1.ContainerPort {
		return corev1.ContainerPort{Protocol: proto, HostIP: ip, HostPort: p, ContainerPort: p}
	}
	tests := []struct {
		name       string
		used, want []corev1.ContainerPort
		fits       bool
	}{
		{"no ports", nil, nil, true},
		{"node has none", nil, []corev1.ContainerPort{port("TCP", "", 80)}, true},
		{"pod wants none", []corev1.ContainerPort{port("TCP", "", 80)}, nil, true},
		{"container port only", []corev1.ContainerPort{port("TCP", "", 80)}, []corev1.ContainerPort{{ContainerPort: 80}}, true},
		{"same port", []corev1.ContainerPort{port("TCP", "", 80)}, []corev1.ContainerPort{port("TCP", "", 80)}, false},
		{"empty protocol is TCP", []corev1.ContainerPort{port("", "", 80)}, []corev1.ContainerPort{port("TCP", "0.0.0.0", 80)}, false},
		{"other protocol", []corev1.ContainerPort{port("UDP", "", 80)}, []corev1.ContainerPort{port("TCP", "", 80)}, true},
		{"other port", []corev1.ContainerPort{port("TCP", "", 8080)}, []corev1.ContainerPort{port("TCP", "", 80)}, true},
		{"port number is a suffix of the used one", []corev1.ContainerPort{port("TCP", "10.0.0.1", 180)}, []corev1.ContainerPort{port("TCP", "", 80)}, true},
		{"wildcard wanted, address used", []corev1.ContainerPort{port("TCP", "10.0.0.1", 80)}, []corev1.ContainerPort{port("TCP", "", 80)}, false},
		{"address wanted, wildcard used", []corev1.ContainerPort{port("TCP", "", 80)}, []corev1.ContainerPort{port("TCP", "10.0.0.1", 80)}, false},
		{"same address", []corev1.ContainerPort{port("TCP", "10.0.0.1", 80)}, []corev1.ContainerPort{port("TCP", "10.0.0.1", 80)}, false},
		{"other address", []corev1.ContainerPort{port("TCP", "10.0.0.1", 80)}, []corev1.ContainerPort{port("TCP", "10.0.0.2", 80)}, true},
		{"second wanted port conflicts", []corev1.ContainerPort{port("TCP", "", 443)}, []corev1.ContainerPort{port("TCP", "", 80), port("TCP", "", 443)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ni := nodeInfo(testNode("n", "1", "1Gi"), testPod("running", "", "", withHostPorts(tt.used...)))
			pod := testPod("p", "", "", withHostPorts(tt.want...))
			if got := fitsHostPorts(preparePod(pod), ni); got != tt.fits {
				t.Errorf("got %v, want %v", got, tt.fits)
			}
		})
	}
}

func TestInsufficientResources(t *testing.T) {
	node := testNode("n", "2", "4Gi", withPodLimit("3"))
	tests := []struct {
		name     string
		existing []*corev1.Pod
		pod      *corev1.Pod
		want     failure
	}{
		{"empty node", nil, testPod("p", "2", "4Gi"), 0},
		{"cpu short", []*corev1.Pod{testPod("a", "1", "1Gi")}, testPod("p", "1001m", "1Gi"), failCPU},
		{"memory short", []*corev1.Pod{testPod("a", "1", "1Gi")}, testPod("p", "1", "3073Mi"), failMemory},
		{"exactly full", []*corev1.Pod{testPod("a", "1", "1Gi")}, testPod("p", "1", "3Gi"), 0},
		{"both short", []*corev1.Pod{testPod("a", "1", "1Gi")}, testPod("p", "3", "8Gi"), failCPU | failMemory},
		{"too many pods", []*corev1.Pod{testPod("a", "", ""), testPod("b", "", ""), testPod("c", "", "")}, testPod("p", "", ""), failPods},
		{"everything", []*corev1.Pod{testPod("a", "1", "1Gi"), testPod("b", "1", ""), testPod("c", "", "3Gi")}, testPod("p", "1", "1Gi"), failPods | failCPU | failMemory},
		{"no request fits a full node", []*corev1.Pod{testPod("a", "2", "4Gi")}, testPod("p", "", ""), 0},
		{"over-committed node still takes zero requests", []*corev1.Pod{testPod("a", "3", "8Gi")}, testPod("p", "0", "0"), 0},
		{"pod bigger than the node", nil, testPod("p", "3", "1Gi"), failCPU},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ni := nodeInfo(node, tt.existing...)
			if got := insufficientResources(preparePod(tt.pod), ni); got != tt.want {
				t.Errorf("got %b, want %b", got, tt.want)
			}
		})
	}
}

func TestFilterOrder(t *testing.T) {
	// A node that fails everything reports only the first failing check
	// of Kubernetes' order, except that resources all count.
	bad := func(n *corev1.Node) {
		n.Spec.Unschedulable = true
		n.Spec.Taints = []corev1.Taint{{Key: "k", Value: "v", Effect: corev1.TaintEffectNoSchedule}}
		n.Status.Conditions = nil
	}
	pod := testPod("p", "2", "2Gi", withNodeSelector("zone", "a"), func(p *corev1.Pod) { p.Spec.NodeName = "other" })
	tests := []struct {
		name string
		node *corev1.Node
		want failure
	}{
		{"unschedulable first", testNode("n", "1", "1Gi", bad), failUnschedulable},
		{"then node name", testNode("n", "1", "1Gi", bad, func(n *corev1.Node) { n.Spec.Unschedulable = false }), failNodeName},
		{"then readiness", testNode("other", "1", "1Gi", bad, func(n *corev1.Node) { n.Spec.Unschedulable = false }), failNotReady},
		{"then taints", testNode("other", "1", "1Gi", bad, func(n *corev1.Node) { n.Spec.Unschedulable = false }, withReady(corev1.ConditionTrue)), failTaint},
		{"then affinity", testNode("other", "1", "1Gi"), failNodeAffinity},
		{"then resources, all of them", testNode("other", "1", "1Gi", withLabels("zone", "a")), failCPU | failMemory},
		{"fits", testNode("other", "2", "2Gi", withLabels("zone", "a")), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, taint := filter(preparePod(pod), nodeInfo(tt.node))
			if got != tt.want {
				t.Errorf("got %b, want %b", got, tt.want)
			}
			if (got == failTaint) != (taint != nil) {
				t.Errorf("got taint %v with failure %b", taint, got)
			}
		})
	}
}

// TestFilterDoesNotAllocate holds the filters to their promise: checking a
// node that fits, or one that does not, allocates nothing.
func TestFilterDoesNotAllocate(t *testing.T) {
	node := testNode("n1", "4", "8Gi", withLabels("zone", "a", "cores", "8"),
		withTaints(corev1.Taint{Key: "dedicated", Value: "web", Effect: corev1.TaintEffectNoSchedule}))
	ni := nodeInfo(node,
		testPod("a", "1", "1Gi", withOwner("rs-1"), withHostPorts(corev1.ContainerPort{HostPort: 9090, ContainerPort: 9090})),
		testPod("b", "1", "1Gi", withOwner("rs-2")))
	pod := testPod("p", "500m", "512Mi", withOwner("rs-1"),
		withTolerations(corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpExists}),
		withNodeSelector("zone", "a"),
		withRequired(expr("cores", corev1.NodeSelectorOpGt, "4")),
		withPreferred(corev1.PreferredSchedulingTerm{Weight: 5, Preference: expr("zone", corev1.NodeSelectorOpIn, "a", "b")}),
		withHostPorts(corev1.ContainerPort{HostPort: 8080, ContainerPort: 8080}))
	p := preparePod(pod)
	misfit := preparePod(testPod("q", "8", "1Gi"))
	cands := []candidate{{node: ni}, {node: ni}}
	allocs := testing.AllocsPerRun(100, func() {
		if f, _ := filter(p, ni); f != 0 {
			t.Fatalf("got failure %b, want none", f)
		}
		if f, _ := filter(misfit, ni); f == 0 {
			t.Fatal("got a fit, want a failure")
		}
		score(p, cands, DefaultWeights)
	})
	if allocs != 0 {
		t.Errorf("got %v allocations per node, want 0", allocs)
	}
}
