package scheduler

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/skiffdev/skiff/internal/wait"
)

var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// queuePod is a pending pod with a priority, created at epoch+age.
func queuePod(name string, priority int32, created time.Duration) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:         "default",
			Name:              name,
			UID:               types.UID("uid-" + name),
			CreationTimestamp: metav1.NewTime(epoch.Add(created)),
		},
		Spec: corev1.PodSpec{Priority: &priority},
	}
}

func newTestQueue() (*Queue, *testingclock.FakeClock) {
	clk := testingclock.NewFakeClock(epoch.Add(time.Hour))
	return NewQueue(clk), clk
}

// mustPop pops without waiting and fails when nothing is active.
func mustPop(t *testing.T, q *Queue) *QueuedPod {
	t.Helper()
	qp, _, _ := q.tryPop()
	if qp == nil {
		t.Fatalf("got no active pod, want one (%+v)", q.Stats())
	}
	return qp
}

// expectNoneActive fails when a pod is active.
func expectNoneActive(t *testing.T, q *Queue) {
	t.Helper()
	if qp, _, _ := q.tryPop(); qp != nil {
		t.Fatalf("got active pod %s, want none", podKey(qp.Pod))
	}
}

func TestQueueOrder(t *testing.T) {
	q, _ := newTestQueue()
	q.Add(queuePod("low-old", 0, 0))
	q.Add(queuePod("high-new", 100, 3*time.Second))
	q.Add(queuePod("low-new", 0, 2*time.Second))
	q.Add(queuePod("high-old", 100, time.Second))
	q.Add(queuePod("low-new-2", 0, 2*time.Second)) // same second: arrival decides
	q.Add(queuePod("negative", -5, 0))
	nilPriority := queuePod("unset", 0, 2*time.Second)
	nilPriority.Spec.Priority = nil // counts as 0
	q.Add(nilPriority)

	want := []string{"high-old", "high-new", "low-old", "low-new", "low-new-2", "unset", "negative"}
	for i, name := range want {
		qp := mustPop(t, q)
		if qp.Pod.Name != name {
			t.Fatalf("pop %d: got %s, want %s", i, qp.Pod.Name, name)
		}
		if qp.Attempts != 1 {
			t.Errorf("pop %d: got %d attempts, want 1", i, qp.Attempts)
		}
	}
	expectNoneActive(t, q)
}

func TestQueueAddTwiceKeepsOneEntry(t *testing.T) {
	q, _ := newTestQueue()
	p := queuePod("a", 0, 0)
	q.Add(p)
	newer := p.DeepCopy()
	newer.ResourceVersion = "7"
	q.Add(newer)
	if got := q.Stats(); got != (QueueStats{Active: 1}) {
		t.Fatalf("got %+v, want one active pod", got)
	}
	if qp := mustPop(t, q); qp.Pod != newer {
		t.Errorf("got resourceVersion %q, want the newest version", qp.Pod.ResourceVersion)
	}
}

func TestQueueBackoffDoubles(t *testing.T) {
	q, clk := newTestQueue()
	q.Add(queuePod("a", 0, 0))
	wants := []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i, want := range wants {
		qp := mustPop(t, q)
		if qp.Attempts != i+1 {
			t.Fatalf("got %d attempts, want %d", qp.Attempts, i+1)
		}
		q.Requeue(qp, false)
		if got := q.Stats(); got != (QueueStats{Backoff: 1}) {
			t.Fatalf("after failure %d: got %+v, want the pod in backoff", i+1, got)
		}
		clk.Step(want - time.Millisecond)
		expectNoneActive(t, q)
		clk.Step(time.Millisecond)
	}
	mustPop(t, q)
}

func TestQueueBackoffDoesNotBlockOthers(t *testing.T) {
	q, clk := newTestQueue()
	q.Add(queuePod("old", 0, 0))
	qp := mustPop(t, q)
	q.Requeue(qp, false)
	q.Add(queuePod("new", 0, time.Second))
	if got := mustPop(t, q).Pod.Name; got != "new" {
		t.Fatalf("got %s, want new while old backs off", got)
	}
	clk.Step(InitialBackoff)
	if got := mustPop(t, q).Pod.Name; got != "old" {
		t.Fatalf("got %s, want old after its backoff", got)
	}
}

func TestQueueUnschedulableWaitsForAMove(t *testing.T) {
	q, clk := newTestQueue()
	q.Add(queuePod("a", 0, 0))
	q.Requeue(mustPop(t, q), true)
	if got := q.Stats(); got != (QueueStats{Unschedulable: 1}) {
		t.Fatalf("got %+v, want the pod parked", got)
	}
	clk.Step(MaxBackoff) // backoff over, but no event yet
	expectNoneActive(t, q)

	if moved := q.MoveAllToActiveOrBackoff(); moved != 1 {
		t.Fatalf("moved %d pods, want 1", moved)
	}
	if qp := mustPop(t, q); qp.Attempts != 2 {
		t.Fatalf("got %d attempts, want 2", qp.Attempts)
	}
}

func TestQueueMoveRespectsBackoff(t *testing.T) {
	q, clk := newTestQueue()
	q.Add(queuePod("a", 0, 0))
	q.Requeue(mustPop(t, q), true)
	// A node is added at once: the pod still waits out its 1 s backoff.
	q.MoveAllToActiveOrBackoff()
	if got := q.Stats(); got != (QueueStats{Backoff: 1}) {
		t.Fatalf("got %+v, want the pod in backoff", got)
	}
	expectNoneActive(t, q)
	clk.Step(InitialBackoff)
	mustPop(t, q)
}

func TestQueueMoveWhileInFlight(t *testing.T) {
	q, clk := newTestQueue()
	q.Add(queuePod("a", 0, 0))
	qp := mustPop(t, q)
	// A node is added while the decision is being made, which may have
	// missed it: the pod must not be parked waiting for that event.
	q.MoveAllToActiveOrBackoff()
	q.Requeue(qp, true)
	if got := q.Stats(); got != (QueueStats{Backoff: 1}) {
		t.Fatalf("got %+v, want the pod in backoff", got)
	}
	clk.Step(InitialBackoff)
	qp = mustPop(t, q)
	// This time nothing happened during the attempt: parked.
	q.Requeue(qp, true)
	if got := q.Stats(); got != (QueueStats{Unschedulable: 1}) {
		t.Fatalf("got %+v, want the pod parked", got)
	}
}

func TestQueueUpdateWhileInFlight(t *testing.T) {
	q, _ := newTestQueue()
	p := queuePod("a", 0, 0)
	q.Add(p)
	qp := mustPop(t, q)

	tolerating := p.DeepCopy()
	tolerating.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}}
	q.Update(tolerating)
	if got := q.Stats(); got != (QueueStats{InFlight: 1}) {
		t.Fatalf("got %+v, want the pod still in flight, not tried twice", got)
	}
	q.Requeue(qp, true)
	if got := q.Stats(); got != (QueueStats{Backoff: 1}) {
		t.Fatalf("got %+v, want the changed pod in backoff, not parked", got)
	}
}

func TestQueueUpdateOfParkedPod(t *testing.T) {
	q, clk := newTestQueue()
	p := queuePod("a", 0, 0)
	q.Add(p)
	q.Requeue(mustPop(t, q), true)
	clk.Step(InitialBackoff)

	// The scheduler's own status write must not wake the pod up.
	withCondition := p.DeepCopy()
	withCondition.ResourceVersion = "8"
	withCondition.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse}}
	q.Update(withCondition)
	if got := q.Stats(); got != (QueueStats{Unschedulable: 1}) {
		t.Fatalf("after a status change: got %+v, want the pod parked", got)
	}

	relabelled := withCondition.DeepCopy()
	relabelled.Labels = map[string]string{"app": "web"}
	q.Update(relabelled)
	if qp := mustPop(t, q); qp.Pod != relabelled {
		t.Fatalf("got %v, want the relabelled pod", qp.Pod.Labels)
	}
}

func TestQueueDelete(t *testing.T) {
	q, _ := newTestQueue()
	for _, name := range []string{"backoff", "parked", "flying", "active"} {
		q.Add(queuePod(name, 0, 0))
	}
	popped := map[string]*QueuedPod{}
	for range 3 {
		qp := mustPop(t, q)
		popped[qp.Pod.Name] = qp
	}
	q.Requeue(popped["backoff"], false)
	q.Requeue(popped["parked"], true)
	if got := q.Stats(); got != (QueueStats{Active: 1, Backoff: 1, Unschedulable: 1, InFlight: 1}) {
		t.Fatalf("got %+v, want one pod in each place", got)
	}
	for _, name := range []string{"backoff", "parked", "flying", "active"} {
		q.Delete("default/" + name)
	}
	if got := q.Stats(); got != (QueueStats{}) {
		t.Fatalf("got %+v, want an empty queue", got)
	}

	// A pod deleted in flight and created again under the same name: the
	// old attempt's Requeue and Done must leave the new pod alone.
	q.Add(queuePod("flying", 0, 0))
	q.Requeue(popped["flying"], false)
	q.Done(popped["flying"])
	if got := q.Stats(); got != (QueueStats{Active: 1}) {
		t.Fatalf("got %+v, want the new pod active", got)
	}
}

func TestQueueDoneRemoves(t *testing.T) {
	q, _ := newTestQueue()
	q.Add(queuePod("a", 0, 0))
	qp := mustPop(t, q)
	q.Done(qp)
	if got := q.Stats(); got != (QueueStats{}) {
		t.Fatalf("got %+v, want an empty queue", got)
	}
	q.Requeue(qp, false) // after Done: nothing
	if got := q.Stats(); got != (QueueStats{}) {
		t.Fatalf("got %+v, want an empty queue", got)
	}
}

func TestQueueSafetyFlush(t *testing.T) {
	q, clk := newTestQueue()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		q.Run(ctx)
		close(done)
	}()
	defer func() { cancel(); <-done }()

	q.Add(queuePod("a", 0, 0))
	q.Requeue(mustPop(t, q), true)
	waitForWaiters(t, clk)
	clk.Step(unschedulableFlushInterval) // parked 30 s: stays
	waitForStats(t, q, QueueStats{Unschedulable: 1})
	clk.Step(unschedulableFlushInterval) // 60 s: tried again
	waitForStats(t, q, QueueStats{Active: 1})
}

func TestPopWaits(t *testing.T) {
	q, clk := newTestQueue()
	ctx := context.Background()
	got := make(chan string)
	go func() {
		for range 2 {
			qp, err := q.Pop(ctx)
			if err != nil {
				got <- err.Error()
				return
			}
			got <- qp.Pod.Name
			q.Requeue(qp, false)
		}
	}()

	// Pop sleeps until a pod is added...
	q.Add(queuePod("a", 0, 0))
	if name := <-got; name != "a" {
		t.Fatalf("got %s, want a", name)
	}
	// ... and until its backoff ends, on a timer, not by polling.
	waitForWaiters(t, clk)
	select {
	case name := <-got:
		t.Fatalf("got %s before the backoff ended", name)
	default:
	}
	clk.Step(InitialBackoff)
	if name := <-got; name != "a" {
		t.Fatalf("got %s, want a", name)
	}
}

func TestPopEndsWithContext(t *testing.T) {
	q, _ := newTestQueue()
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error)
	go func() {
		_, err := q.Pop(ctx)
		errs <- err
	}()
	cancel()
	if err := <-errs; err != context.Canceled {
		t.Fatalf("got %v, want %v", err, context.Canceled)
	}
}

func TestBackoffFor(t *testing.T) {
	for attempts, want := range map[int]time.Duration{
		0: time.Second, 1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second,
		4: 8 * time.Second, 5: 10 * time.Second, 50: 10 * time.Second,
	} {
		if got := backoffFor(attempts); got != want {
			t.Errorf("backoffFor(%d): got %v, want %v", attempts, got, want)
		}
	}
}

// waitForWaiters waits until a goroutine waits on the fake clock.
func waitForWaiters(t *testing.T, clk *testingclock.FakeClock) {
	t.Helper()
	wait.For(t, 10*time.Second, "a timer on the fake clock", func() (bool, error) {
		return clk.HasWaiters(), nil
	})
}

// waitForStats waits until the queue's counts are want.
func waitForStats(t *testing.T, q *Queue, want QueueStats) {
	t.Helper()
	wait.For(t, 10*time.Second, fmt.Sprintf("queue stats %+v", want), func() (bool, error) {
		got := q.Stats()
		return got == want, fmt.Errorf("got %+v", got)
	})
}
