package daemonset

import (
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const curHash = "new"

// testNode is a node named name with labels and taints.
func testNode(name string, labels map[string]string, taints ...corev1.Taint) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: corev1.NodeSpec{Taints: taints}}
}

// podState is how a test pod stands.
type podState int

const (
	available podState = iota // ready for long enough
	readyJust                 // ready since now
	notReady                  // running, not ready
	failed
	terminating
	unbound // not yet bound (target node through affinity)
)

// testPod is pod name for node, of template hash, in state, created age
// seconds before now.
func testPod(name, node, hash string, state podState, age int) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{RevisionHashLabel: hash},
			CreationTimestamp: metav1.NewTime(now.Add(-time.Duration(age) * time.Second))},
		Spec:   corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	ready := corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(now.Add(-time.Hour))}
	switch state {
	case available:
		p.Status.Conditions = []corev1.PodCondition{ready}
	case readyJust:
		ready.LastTransitionTime = metav1.NewTime(now)
		p.Status.Conditions = []corev1.PodCondition{ready}
	case notReady:
		ready.Status = corev1.ConditionFalse
		p.Status.Conditions = []corev1.PodCondition{ready}
	case failed:
		p.Status.Phase = corev1.PodFailed
	case terminating:
		p.DeletionTimestamp = &metav1.Time{Time: now}
		p.Status.Conditions = []corev1.PodCondition{ready}
	case unbound:
		p.Spec.NodeName = ""
		p.Spec.Affinity = pinnedTo(nil, node)
		p.Status.Phase = corev1.PodPending
	}
	return p
}

func testDaemonSet(mutate ...func(*appsv1.DaemonSet)) *appsv1.DaemonSet {
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "default", Generation: 2},
		Spec: appsv1.DaemonSetSpec{
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: "busybox"}}}},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: new(intstr.FromInt32(1)), MaxSurge: new(intstr.FromInt32(0))}},
		},
	}
	for _, m := range mutate {
		m(ds)
	}
	return ds
}

func maxUnavailable(v intstr.IntOrString) func(*appsv1.DaemonSet) {
	return func(ds *appsv1.DaemonSet) {
		ds.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &v, MaxSurge: new(intstr.FromInt32(0))}
	}
}

func maxSurge(v intstr.IntOrString) func(*appsv1.DaemonSet) {
	return func(ds *appsv1.DaemonSet) {
		ds.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{MaxUnavailable: new(intstr.FromInt32(0)), MaxSurge: &v}
	}
}

func onDelete(ds *appsv1.DaemonSet) {
	ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
}

func nodes(names ...string) []*corev1.Node {
	var out []*corev1.Node
	for _, n := range names {
		out = append(out, testNode(n, nil))
	}
	return out
}

func TestDecide(t *testing.T) {
	noSchedule := corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}
	noExecute := corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoExecute}
	tests := []struct {
		name       string
		ds         *appsv1.DaemonSet
		nodes      []*corev1.Node
		pods       []*corev1.Pod
		wantCreate []string
		wantDelete []string
		// status: desired, current, ready, available, updated, misscheduled
		wantStatus [6]int32
	}{
		{name: "a pod per node", ds: testDaemonSet(), nodes: nodes("n1", "n2", "n3"),
			wantCreate: []string{"n1", "n2", "n3"}, wantStatus: [6]int32{3, 0, 0, 0, 0, 0}},
		{name: "nothing to do", ds: testDaemonSet(), nodes: nodes("n1", "n2"),
			pods:       []*corev1.Pod{testPod("a", "n1", curHash, available, 9), testPod("b", "n2", curHash, available, 9)},
			wantStatus: [6]int32{2, 2, 2, 2, 2, 0}},
		{name: "an unbound pod counts for its node", ds: testDaemonSet(), nodes: nodes("n1"),
			pods:       []*corev1.Pod{testPod("a", "n1", curHash, unbound, 1)},
			wantStatus: [6]int32{1, 1, 0, 0, 1, 0}},
		{name: "nodeSelector", ds: testDaemonSet(func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.NodeSelector = map[string]string{"disk": "ssd"} }),
			nodes: []*corev1.Node{testNode("n1", map[string]string{"disk": "ssd"}), testNode("n2", nil)},
			pods:  []*corev1.Pod{testPod("b", "n2", curHash, available, 9)}, wantCreate: []string{"n1"}, wantDelete: []string{"b"},
			wantStatus: [6]int32{1, 0, 0, 0, 0, 1}},
		{name: "required node affinity", ds: testDaemonSet(func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a", "b"}}}}}}}}
		}),
			nodes:      []*corev1.Node{testNode("n1", map[string]string{"zone": "a"}), testNode("n2", map[string]string{"zone": "c"}), testNode("n3", map[string]string{"zone": "b"})},
			wantCreate: []string{"n1", "n3"}, wantStatus: [6]int32{2, 0, 0, 0, 0, 0}},
		{name: "NoSchedule taint: no new pod, a running one stays", ds: testDaemonSet(),
			nodes: []*corev1.Node{testNode("n1", nil, noSchedule), testNode("n2", nil, noSchedule)},
			pods:  []*corev1.Pod{testPod("a", "n1", curHash, available, 9)}, wantStatus: [6]int32{0, 0, 0, 0, 0, 1}},
		{name: "NoExecute taint evicts", ds: testDaemonSet(), nodes: []*corev1.Node{testNode("n1", nil, noExecute)},
			pods: []*corev1.Pod{testPod("a", "n1", curHash, available, 9)}, wantDelete: []string{"a"}, wantStatus: [6]int32{0, 0, 0, 0, 0, 1}},
		{name: "tolerated taints", ds: testDaemonSet(func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}}
		}), nodes: []*corev1.Node{testNode("n1", nil, noExecute), testNode("n2", nil, noSchedule)},
			wantCreate: []string{"n1", "n2"}, wantStatus: [6]int32{2, 0, 0, 0, 0, 0}},
		// The daemon tolerations keep a pod on a node that is not ready
		// (n1: its NoSchedule taint keeps new pods off, as in
		// Kubernetes) or unreachable (n2), and let pods start on nodes
		// under pressure (n3) or cordoned (n4), not on one without a
		// pod network unless hostNetwork (n5).
		{name: "daemon tolerations: not ready, unreachable, pressure, cordoned", ds: testDaemonSet(), nodes: []*corev1.Node{
			testNode("n1", nil, corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute}, corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule}),
			testNode("n2", nil, corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute}),
			testNode("n3", nil, corev1.Taint{Key: corev1.TaintNodeDiskPressure, Effect: corev1.TaintEffectNoSchedule}, corev1.Taint{Key: corev1.TaintNodeMemoryPressure, Effect: corev1.TaintEffectNoSchedule}),
			testNode("n4", nil, corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}),
			testNode("n5", nil, corev1.Taint{Key: corev1.TaintNodeNetworkUnavailable, Effect: corev1.TaintEffectNoSchedule}),
		}, pods: []*corev1.Pod{testPod("a", "n1", curHash, notReady, 9), testPod("b", "n2", curHash, available, 9)},
			wantCreate: []string{"n3", "n4"}, wantStatus: [6]int32{3, 1, 1, 1, 1, 1}},
		{name: "network-unavailable tolerated with hostNetwork", ds: testDaemonSet(func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.HostNetwork = true }),
			nodes:      []*corev1.Node{testNode("n1", nil, corev1.Taint{Key: corev1.TaintNodeNetworkUnavailable, Effect: corev1.TaintEffectNoSchedule})},
			wantCreate: []string{"n1"}, wantStatus: [6]int32{1, 0, 0, 0, 0, 0}},
		{name: "failed pod deleted, replaced later", ds: testDaemonSet(), nodes: nodes("n1"),
			pods: []*corev1.Pod{testPod("a", "n1", curHash, failed, 9)}, wantDelete: []string{"a"}, wantStatus: [6]int32{1, 1, 0, 0, 1, 0}},
		{name: "terminating pod: no replacement yet", ds: testDaemonSet(), nodes: nodes("n1"),
			pods: []*corev1.Pod{testPod("a", "n1", "old", terminating, 9)}, wantStatus: [6]int32{1, 1, 1, 1, 0, 0}},
		{name: "duplicates: the oldest stays", ds: testDaemonSet(), nodes: nodes("n1"),
			pods:       []*corev1.Pod{testPod("young", "n1", curHash, available, 1), testPod("old", "n1", curHash, available, 9)},
			wantDelete: []string{"young"}, wantStatus: [6]int32{1, 1, 1, 1, 1, 0}},
		{name: "unbound pod of a vanished node", ds: testDaemonSet(), nodes: nodes("n1"),
			pods:       []*corev1.Pod{testPod("a", "n1", curHash, available, 9), testPod("gone", "n9", curHash, unbound, 9), testPod("bound", "n8", curHash, available, 9)},
			wantDelete: []string{"gone"}, wantStatus: [6]int32{1, 1, 1, 1, 1, 0}},
		{name: "rolling update: one at a time", ds: testDaemonSet(), nodes: nodes("n1", "n2", "n3"),
			pods:       []*corev1.Pod{testPod("a", "n1", "old", available, 9), testPod("b", "n2", "old", available, 9), testPod("c", "n3", "old", available, 9)},
			wantDelete: []string{"a"}, wantStatus: [6]int32{3, 3, 3, 3, 0, 0}},
		{name: "rolling update: waits while a new pod is not available", ds: testDaemonSet(func(ds *appsv1.DaemonSet) { ds.Spec.MinReadySeconds = 30 }),
			nodes:      nodes("n1", "n2", "n3"),
			pods:       []*corev1.Pod{testPod("a", "n1", curHash, readyJust, 1), testPod("b", "n2", "old", available, 9), testPod("c", "n3", "old", available, 9)},
			wantStatus: [6]int32{3, 3, 3, 2, 1, 0}},
		{name: "rolling update: next once available", ds: testDaemonSet(), nodes: nodes("n1", "n2", "n3"),
			pods:       []*corev1.Pod{testPod("a", "n1", curHash, available, 1), testPod("b", "n2", "old", available, 9), testPod("c", "n3", "old", available, 9)},
			wantDelete: []string{"b"}, wantStatus: [6]int32{3, 3, 3, 3, 1, 0}},
		{name: "rolling update: a missing pod counts as unavailable", ds: testDaemonSet(), nodes: nodes("n1", "n2", "n3"),
			pods:       []*corev1.Pod{testPod("b", "n2", "old", available, 9), testPod("c", "n3", "old", available, 9)},
			wantCreate: []string{"n1"}, wantStatus: [6]int32{3, 2, 2, 2, 0, 0}},
		{name: "rolling update: unavailable old pods are replaced at once", ds: testDaemonSet(), nodes: nodes("n1", "n2", "n3"),
			pods:       []*corev1.Pod{testPod("a", "n1", "old", notReady, 9), testPod("b", "n2", "old", notReady, 9), testPod("c", "n3", "old", available, 9)},
			wantDelete: []string{"a", "b"}, wantStatus: [6]int32{3, 3, 1, 1, 0, 0}},
		{name: "rolling update: maxUnavailable 50% of 3 rounds up to 2", ds: testDaemonSet(maxUnavailable(intstr.FromString("50%"))), nodes: nodes("n1", "n2", "n3"),
			pods:       []*corev1.Pod{testPod("a", "n1", "old", available, 9), testPod("b", "n2", "old", available, 9), testPod("c", "n3", "old", available, 9)},
			wantDelete: []string{"a", "b"}, wantStatus: [6]int32{3, 3, 3, 3, 0, 0}},
		{name: "rolling update: template generation label counts as updated", ds: testDaemonSet(), nodes: nodes("n1"),
			pods: func() []*corev1.Pod {
				p := testPod("a", "n1", "", available, 9)
				p.Labels = map[string]string{TemplateGenerationLabel: "2"}
				return []*corev1.Pod{p}
			}(), wantStatus: [6]int32{1, 1, 1, 1, 1, 0}},
		{name: "OnDelete: old pods stay", ds: testDaemonSet(onDelete), nodes: nodes("n1", "n2"),
			pods:       []*corev1.Pod{testPod("a", "n1", "old", available, 9)},
			wantCreate: []string{"n2"}, wantStatus: [6]int32{2, 1, 1, 1, 0, 0}},
		{name: "surge: new pods first, on maxSurge nodes", ds: testDaemonSet(maxSurge(intstr.FromInt32(2))), nodes: nodes("n1", "n2", "n3"),
			pods:       []*corev1.Pod{testPod("a", "n1", "old", available, 9), testPod("b", "n2", "old", available, 9), testPod("c", "n3", "old", available, 9)},
			wantCreate: []string{"n1", "n2"}, wantStatus: [6]int32{3, 3, 3, 3, 0, 0}},
		{name: "surge: the old pod goes once the new one is available", ds: testDaemonSet(maxSurge(intstr.FromInt32(1))), nodes: nodes("n1", "n2"),
			pods: []*corev1.Pod{testPod("a", "n1", "old", available, 9), testPod("a2", "n1", curHash, available, 1),
				testPod("b", "n2", "old", available, 9)},
			// n1 counts against maxSurge until its old pod is terminating.
			wantDelete: []string{"a"}, wantStatus: [6]int32{2, 2, 2, 2, 0, 0}},
		{name: "surge: waits for the new pod", ds: testDaemonSet(maxSurge(intstr.FromInt32(1))), nodes: nodes("n1", "n2"),
			pods: []*corev1.Pod{testPod("a", "n1", "old", available, 9), testPod("a2", "n1", curHash, notReady, 1),
				testPod("b", "n2", "old", available, 9)},
			wantStatus: [6]int32{2, 2, 2, 2, 0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{DaemonSet: tc.ds, Hash: curHash, Nodes: tc.nodes, Pods: tc.pods, Now: now}
			plan := Decide(in)
			if !slices.Equal(plan.Create, tc.wantCreate) {
				t.Errorf("create on %v, want %v", plan.Create, tc.wantCreate)
			}
			var deleted []string
			for _, p := range plan.Delete {
				deleted = append(deleted, p.Name)
			}
			slices.Sort(deleted)
			if !slices.Equal(deleted, tc.wantDelete) {
				t.Errorf("delete %v, want %v", deleted, tc.wantDelete)
			}
			s := plan.Status
			got := [6]int32{s.DesiredNumberScheduled, s.CurrentNumberScheduled, s.NumberReady, s.NumberAvailable, s.UpdatedNumberScheduled, s.NumberMisscheduled}
			if got != tc.wantStatus {
				t.Errorf("status (desired, current, ready, available, updated, misscheduled) %v, want %v", got, tc.wantStatus)
			}
			if s.NumberUnavailable != s.DesiredNumberScheduled-s.NumberAvailable {
				t.Errorf("numberUnavailable %d, want %d", s.NumberUnavailable, s.DesiredNumberScheduled-s.NumberAvailable)
			}
			if s.ObservedGeneration != tc.ds.Generation {
				t.Errorf("observedGeneration %d, want %d", s.ObservedGeneration, tc.ds.Generation)
			}
		})
	}
}

func TestDecideRecheckAfterMinReadySeconds(t *testing.T) {
	ds := testDaemonSet(func(ds *appsv1.DaemonSet) { ds.Spec.MinReadySeconds = 30 })
	plan := Decide(Input{DaemonSet: ds, Hash: curHash, Nodes: nodes("n1"), Pods: []*corev1.Pod{testPod("a", "n1", curHash, readyJust, 1)}, Now: now})
	if plan.RecheckAfter != 30*time.Second {
		t.Errorf("recheck after %v, want 30s", plan.RecheckAfter)
	}
}

func TestNewPodIsPinnedAndTolerant(t *testing.T) {
	ds := testDaemonSet(func(ds *appsv1.DaemonSet) {
		ds.Spec.Template.Labels = map[string]string{"app": "agent"}
		ds.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: new(int64(30))}}
	})
	pod := newPod(ds, "n7", curHash)
	if got := targetNode(pod); got != "n7" {
		t.Errorf("target node %q, want n7", got)
	}
	if pod.Labels[RevisionHashLabel] != curHash || pod.Labels[TemplateGenerationLabel] != "2" || pod.Labels["app"] != "agent" {
		t.Errorf("labels %v", pod.Labels)
	}
	if len(pod.Spec.Tolerations) != len(daemonTolerations) {
		t.Errorf("tolerations %v, want the %d daemon tolerations (the user's not-ready one replaced)", pod.Spec.Tolerations, len(daemonTolerations))
	}
	for _, tol := range pod.Spec.Tolerations {
		if tol.TolerationSeconds != nil {
			t.Errorf("toleration %v has tolerationSeconds; daemon pods are never evicted for their node's health", tol)
		}
	}
	if ds.Spec.Template.Spec.Affinity != nil {
		t.Error("newPod changed the template")
	}
}

func TestHistoryToDelete(t *testing.T) {
	rev := func(name, hash string, n int64) *appsv1.ControllerRevision {
		return &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{RevisionHashLabel: hash}}, Revision: n}
	}
	revs := []*appsv1.ControllerRevision{rev("r1", "h1", 1), rev("r2", "h2", 2), rev("r3", "h3", 3), rev("r4", "h4", 4)}
	got := historyToDelete(revs, revs[3], map[string]bool{"h1": true}, 1)
	var names []string
	for _, r := range got {
		names = append(names, r.Name)
	}
	// r4 is current, r1 still runs pods, r3 is the one old revision kept.
	if !slices.Equal(names, []string{"r2"}) {
		t.Errorf("delete %v, want [r2]", names)
	}
}

func TestRevisionHash(t *testing.T) {
	a, b := testDaemonSet(), testDaemonSet()
	b.Spec.Template.Spec.Containers[0].Image = "busybox:1.37"
	da, _ := revisionData(a)
	db, _ := revisionData(b)
	if revisionHash(da, nil) == revisionHash(db, nil) {
		t.Error("different templates, same hash")
	}
	if revisionHash(da, nil) == revisionHash(da, new(int32(1))) {
		t.Error("collisionCount does not change the hash")
	}
	a.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
	if d, _ := revisionData(a); string(d) != string(da) {
		t.Error("the update strategy changed the revision's data")
	}
}
