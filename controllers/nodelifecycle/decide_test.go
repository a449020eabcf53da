package nodelifecycle

import (
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestStale(t *testing.T) {
	tests := []struct {
		name      string
		observed  time.Time
		wantStale bool
		wantLeft  time.Duration
	}{
		{"just renewed", t0, false, 40 * time.Second},
		{"at the limit", t0.Add(-40 * time.Second), false, 0},
		{"past the limit", t0.Add(-41 * time.Second), true, -time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stale, left := Stale(tt.observed, t0, 40*time.Second)
			if stale != tt.wantStale || left != tt.wantLeft {
				t.Errorf("got %v, %v, want %v, %v", stale, left, tt.wantStale, tt.wantLeft)
			}
		})
	}
}

func TestObserve(t *testing.T) {
	// The node's clock is an hour behind the controller's: it does not
	// matter, only changes do.
	skewed := t0.Add(-time.Hour)
	hb := Heartbeat{LeaseResourceVersion: "5", LeaseRenewTime: skewed, ReadyHeartbeat: skewed}
	seen := Observation{Heartbeat: hb, ObservedAt: t0.Add(-10 * time.Second)}
	tests := []struct {
		name   string
		prev   Observation
		found  bool
		hb     Heartbeat
		wantAt time.Time
	}{
		{"first sight is now", Observation{}, false, hb, t0},
		{"first sight without heartbeat is now", Observation{}, false, Heartbeat{}, t0},
		{"unchanged keeps observedAt", seen, true, hb, seen.ObservedAt},
		{"lease renewed", seen, true, Heartbeat{"6", skewed.Add(time.Second), skewed}, t0},
		{"lease renewed to an earlier time", seen, true, Heartbeat{"6", skewed.Add(-time.Second), skewed}, t0},
		{"lease updated, same renewTime", seen, true, Heartbeat{"6", skewed, skewed}, t0},
		{"status posted", seen, true, Heartbeat{"5", skewed, skewed.Add(time.Second)}, t0},
		{"lease deleted is no heartbeat", seen, true, Heartbeat{ReadyHeartbeat: skewed}, seen.ObservedAt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Observe(tt.prev, tt.found, tt.hb, t0)
			if !got.ObservedAt.Equal(tt.wantAt) || got.Heartbeat != tt.hb {
				t.Errorf("got %+v, want observedAt %v and heartbeat %+v", got, tt.wantAt, tt.hb)
			}
		})
	}
}

func TestHeartbeatOf(t *testing.T) {
	hbTime := metav1.NewTime(t0.Add(-time.Hour))
	node := &corev1.Node{Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: hbTime},
	}}}
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "7"}, Spec: coordinationv1.LeaseSpec{RenewTime: new(metav1.NewMicroTime(t0))}}
	if got, want := HeartbeatOf(node, lease), (Heartbeat{"7", t0, hbTime.Time}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	// The controller's own Ready=Unknown for a node that never posted
	// status is no heartbeat.
	var never corev1.NodeStatus
	MarkUnknown(&never, t0)
	if got := HeartbeatOf(&corev1.Node{Status: never}, nil); got != (Heartbeat{}) {
		t.Errorf("never updated: got %+v, want none", got)
	}
}

func TestMarkUnknown(t *testing.T) {
	earlier := metav1.NewTime(t0.Add(-time.Minute))
	status := corev1.NodeStatus{Conditions: []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: earlier, LastTransitionTime: earlier},
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, LastTransitionTime: earlier},
		{Type: "Custom", Status: corev1.ConditionTrue, LastTransitionTime: earlier},
	}}
	readyChanged, changed := MarkUnknown(&status, t0)
	if !readyChanged || !changed {
		t.Fatalf("got readyChanged=%v changed=%v, want true, true", readyChanged, changed)
	}
	want := []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionUnknown, Reason: ReasonNodeStatusUnknown, Message: MessageNodeStatusUnknown, LastHeartbeatTime: earlier, LastTransitionTime: metav1.NewTime(t0)},
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionUnknown, Reason: ReasonNodeStatusUnknown, Message: MessageNodeStatusUnknown, LastTransitionTime: metav1.NewTime(t0)},
		{Type: "Custom", Status: corev1.ConditionTrue, LastTransitionTime: earlier},
	}
	if !equality.Semantic.DeepEqual(status.Conditions, want) {
		t.Errorf("got %+v, want %+v", status.Conditions, want)
	}
	if readyChanged, changed := MarkUnknown(&status, t0.Add(time.Second)); readyChanged || changed {
		t.Errorf("second call: got readyChanged=%v changed=%v, want false, false", readyChanged, changed)
	}

	var never corev1.NodeStatus
	if readyChanged, _ := MarkUnknown(&never, t0); !readyChanged || never.Conditions[0].Reason != ReasonNodeStatusNeverUpdated {
		t.Errorf("node without conditions: got %+v, want Ready Unknown (%s)", never.Conditions, ReasonNodeStatusNeverUpdated)
	}
}

func TestDesiredTaints(t *testing.T) {
	before := metav1.NewTime(t0.Add(-time.Hour))
	now := metav1.NewTime(t0)
	unreachableNoSchedule := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoSchedule}
	unreachableNoExecute := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: &now}
	oldUnreachableNoExecute := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: &before}
	notReadyNoSchedule := corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule}
	notReadyNoExecute := corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute, TimeAdded: &now}
	user := corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoExecute}

	node := func(ready corev1.ConditionStatus, taints ...corev1.Taint) *corev1.Node {
		return &corev1.Node{
			Spec:   corev1.NodeSpec{Taints: taints},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}}},
		}
	}
	tests := []struct {
		name        string
		node        *corev1.Node
		stale       bool
		want        []corev1.Taint
		wantChanged bool
	}{
		{"healthy", node(corev1.ConditionTrue, user), false, []corev1.Taint{user}, false},
		{"stale", node(corev1.ConditionUnknown, user), true, []corev1.Taint{user, unreachableNoSchedule, unreachableNoExecute}, true},
		{"stale, already tainted: timeAdded kept", node(corev1.ConditionUnknown, unreachableNoSchedule, oldUnreachableNoExecute), true, []corev1.Taint{unreachableNoSchedule, oldUnreachableNoExecute}, false},
		{"renewed again", node(corev1.ConditionUnknown, unreachableNoSchedule, user, oldUnreachableNoExecute), false, []corev1.Taint{user}, true},
		{"reports not ready", node(corev1.ConditionFalse), false, []corev1.Taint{notReadyNoSchedule, notReadyNoExecute}, true},
		{"not ready, then stale", node(corev1.ConditionFalse, notReadyNoSchedule, notReadyNoExecute), true, []corev1.Taint{unreachableNoSchedule, unreachableNoExecute}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := DesiredTaints(tt.node, tt.stale, t0)
			if changed != tt.wantChanged || !equality.Semantic.DeepEqual(got, tt.want) {
				t.Errorf("got %v (changed %v), want %v (changed %v)", got, changed, tt.want, tt.wantChanged)
			}
		})
	}
}

func TestEvictionDelay(t *testing.T) {
	added := metav1.NewTime(t0.Add(-10 * time.Second))
	taints := []corev1.Taint{
		{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoSchedule},
		{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: &added},
	}
	secs := func(s int64) *int64 { return &s }
	tol := func(key string, op corev1.TolerationOperator, effect corev1.TaintEffect, seconds *int64) corev1.Toleration {
		return corev1.Toleration{Key: key, Operator: op, Effect: effect, TolerationSeconds: seconds}
	}
	unreachable := corev1.TaintNodeUnreachable
	tests := []struct {
		name        string
		tolerations []corev1.Toleration
		taints      []corev1.Taint
		wantDelay   time.Duration
		wantEvict   bool
	}{
		{"no NoExecute taint", nil, taints[:1], 0, false},
		{"no toleration: at once", nil, taints, 0, true},
		{"NoSchedule toleration does not count", []corev1.Toleration{tol(unreachable, corev1.TolerationOpExists, corev1.TaintEffectNoSchedule, nil)}, taints, 0, true},
		{"other key does not count", []corev1.Toleration{tol("other", corev1.TolerationOpExists, "", nil)}, taints, 0, true},
		{"forever", []corev1.Toleration{tol(unreachable, corev1.TolerationOpExists, corev1.TaintEffectNoExecute, nil)}, taints, 0, false},
		{"tolerate everything", []corev1.Toleration{tol("", corev1.TolerationOpExists, "", nil)}, taints, 0, false},
		{"300s from timeAdded", []corev1.Toleration{tol(unreachable, corev1.TolerationOpExists, corev1.TaintEffectNoExecute, secs(300))}, taints, 290 * time.Second, true},
		{"overdue", []corev1.Toleration{tol(unreachable, corev1.TolerationOpExists, corev1.TaintEffectNoExecute, secs(5))}, taints, -5 * time.Second, true},
		{
			"shortest of the matching tolerations",
			[]corev1.Toleration{
				tol(unreachable, corev1.TolerationOpExists, corev1.TaintEffectNoExecute, nil),
				tol(unreachable, corev1.TolerationOpExists, corev1.TaintEffectNoExecute, secs(60)),
				tol(unreachable, corev1.TolerationOpExists, "", secs(30)),
			},
			taints, 20 * time.Second, true,
		},
		{"negative seconds mean zero", []corev1.Toleration{tol(unreachable, corev1.TolerationOpExists, corev1.TaintEffectNoExecute, secs(-3))}, taints, -10 * time.Second, true},
		{
			"Equal compares the value",
			[]corev1.Toleration{{Key: unreachable, Operator: corev1.TolerationOpEqual, Value: "x", Effect: corev1.TaintEffectNoExecute}},
			taints, 0, true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: corev1.PodSpec{Tolerations: tt.tolerations}}
			delay, evict := EvictionDelay(pod, tt.taints, t0)
			if delay != tt.wantDelay || evict != tt.wantEvict {
				t.Errorf("got %v, %v, want %v, %v", delay, evict, tt.wantDelay, tt.wantEvict)
			}
		})
	}
}
