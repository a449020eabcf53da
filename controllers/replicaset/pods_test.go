package replicaset

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// testPod is a pod described by the fields that decide the order of
// deletion and the status.
type testPod struct {
	name     string
	node     string
	phase    corev1.PodPhase
	readyAt  time.Time // zero: not ready
	created  time.Time
	restarts int32
	cost     string
	labels   map[string]string
}

func (tp testPod) pod() *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: tp.name, Namespace: "default", CreationTimestamp: metav1.NewTime(tp.created),
			Labels: tp.labels},
		Spec:   corev1.PodSpec{NodeName: tp.node},
		Status: corev1.PodStatus{Phase: tp.phase},
	}
	if tp.phase == "" {
		p.Status.Phase = corev1.PodRunning
	}
	if tp.cost != "" {
		p.Annotations = map[string]string{PodDeletionCost: tp.cost}
	}
	if !tp.readyAt.IsZero() {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(tp.readyAt)}}
	}
	if tp.restarts > 0 {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{RestartCount: tp.restarts}}
	}
	return p
}

func TestPodsToDelete(t *testing.T) {
	ready := t0
	tests := []struct {
		name string
		pods []testPod // in the expected order of deletion
	}{
		{"unscheduled first", []testPod{{name: "a"}, {name: "b", node: "n1", readyAt: ready}}},
		{"pending before unknown before running", []testPod{
			{name: "a", node: "n1", phase: corev1.PodPending},
			{name: "b", node: "n2", phase: corev1.PodUnknown},
			{name: "c", node: "n3"},
		}},
		{"not ready first", []testPod{{name: "a", node: "n1"}, {name: "b", node: "n2", readyAt: ready}}},
		{"lower deletion cost first", []testPod{
			{name: "a", node: "n1", readyAt: ready, cost: "-5"},
			{name: "b", node: "n2", readyAt: ready},
			{name: "c", node: "n3", readyAt: ready, cost: "100"},
		}},
		{"crowded node first", []testPod{
			{name: "a", node: "n1", readyAt: ready, created: t0.Add(time.Minute)},
			{name: "b", node: "n1", readyAt: ready, created: t0},
			{name: "c", node: "n2", readyAt: ready, created: t0.Add(time.Hour)},
		}},
		{"ready for less time first", []testPod{
			{name: "a", node: "n1", readyAt: ready.Add(time.Minute)},
			{name: "b", node: "n2", readyAt: ready},
		}},
		{"more restarts first", []testPod{
			{name: "a", node: "n1", readyAt: ready, restarts: 3},
			{name: "b", node: "n2", readyAt: ready},
		}},
		{"newer first", []testPod{
			{name: "a", node: "n1", readyAt: ready, created: t0.Add(time.Minute)},
			{name: "b", node: "n2", readyAt: ready, created: t0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []string
			var pods []*corev1.Pod
			for _, tp := range tt.pods {
				want = append(want, tp.name)
				pods = append(pods, tp.pod())
			}
			// The answer does not depend on the order pods come in.
			slices.Reverse(pods)
			got := names(podsToDelete(pods, len(pods)-1))
			if !slices.Equal(got, want[:len(want)-1]) {
				t.Errorf("got %v, want %v", got, want[:len(want)-1])
			}
		})
	}
}

func names(pods []*corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

func TestCalculateStatus(t *testing.T) {
	now := t0.Add(time.Minute)
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Generation: 3},
		Spec: appsv1.ReplicaSetSpec{
			MinReadySeconds: 10,
			Template:        corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", "tier": "fe"}}},
		},
		Status: appsv1.ReplicaSetStatus{Conditions: []appsv1.ReplicaSetCondition{{Type: appsv1.ReplicaSetReplicaFailure}}},
	}
	full := map[string]string{"app": "web", "tier": "fe", "extra": "x"}
	pods := []*corev1.Pod{
		testPod{name: "available", labels: full, readyAt: now.Add(-time.Minute)}.pod(),
		testPod{name: "ready-4s", labels: full, readyAt: now.Add(-4 * time.Second)}.pod(),
		testPod{name: "ready-8s", labels: map[string]string{"app": "web"}, readyAt: now.Add(-8 * time.Second)}.pod(),
		testPod{name: "not-ready", labels: full}.pod(),
	}
	got, wait := calculateStatus(rs, pods, now)
	want := appsv1.ReplicaSetStatus{
		Replicas: 4, FullyLabeledReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 1, ObservedGeneration: 3,
		Conditions: rs.Status.Conditions,
	}
	if got.Replicas != want.Replicas || got.FullyLabeledReplicas != want.FullyLabeledReplicas ||
		got.ReadyReplicas != want.ReadyReplicas || got.AvailableReplicas != want.AvailableReplicas ||
		got.ObservedGeneration != want.ObservedGeneration || len(got.Conditions) != 1 {
		t.Errorf("got %+v, want %+v", got, want)
	}
	// ready-8s is available 2 s from now.
	if want := 2*time.Second + time.Millisecond; wait != want {
		t.Errorf("wait: got %v, want %v", wait, want)
	}

	// Without minReadySeconds every ready pod is available at once.
	rs.Spec.MinReadySeconds = 0
	got, wait = calculateStatus(rs, pods, now)
	if got.AvailableReplicas != 3 || wait != 0 {
		t.Errorf("minReadySeconds 0: got available %d wait %v, want 3 and 0", got.AvailableReplicas, wait)
	}
}

func TestIsActive(t *testing.T) {
	now := metav1.NewTime(t0)
	tests := []struct {
		name string
		pod  *corev1.Pod
		want bool
	}{
		{"running", &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning}}, true},
		{"pending", &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending}}, true},
		{"terminating", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}}, false},
		{"succeeded", &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodSucceeded}}, false},
		{"failed", &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isActive(tt.pod); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSlowStartBatch(t *testing.T) {
	tests := []struct {
		name      string
		count     int
		failAt    int32 // the call that fails (1-based); 0: none
		wantCalls int32
		wantOK    int
	}{
		{"all succeed", 10, 0, 10, 10},
		// Batches 1, 2, 4: the failure is in the third, so the fourth
		// is never started.
		{"failure stops the next batch", 100, 5, 7, 6},
		{"first call fails", 100, 1, 1, 0},
		{"nothing to do", 0, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			ok, err := slowStartBatch(context.Background(), tt.count, 1, func() error {
				if calls.Add(1) == tt.failAt {
					return errors.New("boom")
				}
				return nil
			})
			if calls.Load() != tt.wantCalls || ok != tt.wantOK || (err != nil) != (tt.failAt != 0) {
				t.Errorf("got %d calls, %d successes, err %v; want %d calls, %d successes", calls.Load(), ok, err, tt.wantCalls, tt.wantOK)
			}
		})
	}
	t.Run("stops when the context ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		var calls atomic.Int32
		ok, err := slowStartBatch(ctx, 100, 1, func() error {
			if calls.Add(1) == 3 {
				cancel()
			}
			return nil
		})
		if calls.Load() != 3 || ok != 3 || !errors.Is(err, context.Canceled) {
			t.Errorf("got %d calls, %d successes, err %v; want 3, 3, context canceled", calls.Load(), ok, err)
		}
	})
}
