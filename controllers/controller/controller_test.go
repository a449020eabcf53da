package controller

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
	fcache "k8s.io/client-go/tools/cache/testing"

	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/queue"
)

// deadline bounds every wait of these tests.
const deadline = 10 * time.Second

// start runs r with workers workers on a new queue until the test ends
// (or stop is called), and returns the queue and stop, which waits for
// Run to return.
func start(t *testing.T, workers int, r Reconciler) (q interface{ Add(string) }, stop func()) {
	t.Helper()
	return startWith(t, context.Background(), workers, r)
}

// startWith is start with Run's context made from parent.
func startWith(t *testing.T, parent context.Context, workers int, r Reconciler) (q interface{ Add(string) }, stop func()) {
	t.Helper()
	wq := queue.New(t.Name())
	ctx, cancel := context.WithCancel(parent)
	done := make(chan struct{})
	go func() {
		Run(ctx, "test", workers, wq, r)
		close(done)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(deadline):
				t.Fatal("Run did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return wq, stop
}

// wait receives from ch, failing the test after the deadline.
func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(deadline):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

func TestErrorIsRetriedWithBackoff(t *testing.T) {
	const failures = 4
	calls := make(chan time.Time, failures+1)
	var n int
	r := ReconcilerFunc(func(ctx context.Context, key string) (Result, error) {
		n++ // one key is never reconciled twice at once
		calls <- time.Now()
		if n <= failures {
			return Result{}, errors.New("not yet")
		}
		return Result{}, nil
	})
	q, _ := start(t, 2, r)
	q.Add("default/web")
	var times []time.Time
	for range failures + 1 {
		times = append(times, wait(t, calls, "a reconcile"))
	}
	// Each retry waits at least twice as long as the one before.
	for i := 1; i < len(times); i++ {
		want := queue.BaseDelay << (i - 1)
		if got := times[i].Sub(times[i-1]); got < want {
			t.Errorf("retry %d came after %v, want at least %v", i, got, want)
		}
	}
}

func TestRequeueAfter(t *testing.T) {
	const after = 100 * time.Millisecond
	calls := make(chan time.Time, 2)
	var n int
	r := ReconcilerFunc(func(ctx context.Context, key string) (Result, error) {
		n++
		calls <- time.Now()
		if n == 1 {
			return Result{RequeueAfter: after}, nil
		}
		return Result{}, nil
	})
	q, _ := start(t, 1, r)
	q.Add("default/web")
	first := wait(t, calls, "the first reconcile")
	second := wait(t, calls, "the requeued reconcile")
	if got := second.Sub(first); got < after {
		t.Errorf("requeued after %v, want at least %v", got, after)
	}
}

func TestKeyIsNeverHandledByTwoWorkers(t *testing.T) {
	// mu guards inFlight and calls.
	var mu sync.Mutex
	inFlight := map[string]int{}
	calls := map[string]int{}
	started := make(chan string, 100)
	release := make(chan struct{})
	r := ReconcilerFunc(func(ctx context.Context, key string) (Result, error) {
		mu.Lock()
		inFlight[key]++
		calls[key]++
		if inFlight[key] > 1 {
			t.Errorf("key %q reconciled by %d workers at once", key, inFlight[key])
		}
		first := key == "a" && calls[key] == 1
		mu.Unlock()
		started <- key
		if first {
			<-release
		}
		mu.Lock()
		inFlight[key]--
		mu.Unlock()
		return Result{}, nil
	})
	q, _ := start(t, 4, r)
	q.Add("a")
	if got := wait(t, started, "a to start"); got != "a" {
		t.Fatalf("got %q, want a", got)
	}
	// While "a" is being reconciled, it is added again and again; other
	// workers are free (they reconcile "b"), yet none takes "a".
	for range 10 {
		q.Add("a")
	}
	q.Add("b")
	if got := wait(t, started, "b to start"); got != "b" {
		t.Fatalf("got %q, want b", got)
	}
	close(release)
	// The adds made while "a" was in flight merge into one more reconcile.
	if got := wait(t, started, "a to be reconciled again"); got != "a" {
		t.Fatalf("got %q, want a", got)
	}
	q.Add("c")
	if got := wait(t, started, "c to start"); got != "c" {
		t.Fatalf("got %q, want c (a was reconciled a third time)", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls["a"] != 2 {
		t.Errorf("a reconciled %d times, want 2", calls["a"])
	}
}

func TestShutdownWaitsForWorkers(t *testing.T) {
	entered := make(chan struct{})
	finished := make(chan struct{})
	r := ReconcilerFunc(func(ctx context.Context, key string) (Result, error) {
		close(entered)
		<-ctx.Done() // the reconcile sees the shutdown through its context
		close(finished)
		return Result{}, ctx.Err()
	})
	q, stop := start(t, 2, r)
	q.Add("default/web")
	wait(t, entered, "the reconcile to start")
	stop()
	select {
	case <-finished:
	default:
		t.Fatal("Run returned before its worker finished")
	}
	wq := q.(interface{ ShuttingDown() bool })
	if !wq.ShuttingDown() {
		t.Error("the queue was not shut down")
	}
}

// TestLogsThroughTheContextsLogger: Run logs through the logger of its
// ctx, to which it adds the controller's name once, and hands Reconcile a
// ctx whose logger has the key too; the line about a failed Reconcile
// has both.
func TestLogsThroughTheContextsLogger(t *testing.T) {
	var out bytes.Buffer // written by the workers, read once Run returned
	log := slog.New(slog.NewTextHandler(&out, nil)).With("component", "controllers")
	done := make(chan struct{})
	var n int
	r := ReconcilerFunc(func(ctx context.Context, key string) (Result, error) {
		n++
		logging.From(ctx).Info("reconciling", "try", n)
		if n == 1 {
			return Result{}, errors.New("not yet")
		}
		close(done)
		return Result{}, nil
	})
	q, stop := startWith(t, logging.Into(context.Background(), log), 1, r)
	q.Add("default/web")
	wait(t, done, "the second reconcile")
	stop()

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{
		`msg=reconciling component=controllers controller=test key=default/web try=1`,
		`msg="reconcile failed; retrying" component=controllers controller=test key=default/web err="not yet" retries=0`,
		`msg=reconciling component=controllers controller=test key=default/web try=2`,
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), out.String())
	}
	for i, l := range lines {
		// Drop "time=... level=INFO ".
		if _, rest, _ := strings.Cut(l, " level=INFO "); rest != want[i] {
			t.Errorf("line %d: got %q, want %q", i, l, want[i])
		}
	}
}

func TestKey(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
	tests := []struct {
		name string
		obj  any
		want string
	}{
		{"namespaced", pod, "default/web"},
		{"cluster-scoped", node, "n1"},
		{"tombstone", cache.DeletedFinalStateUnknown{Key: "default/gone", Obj: pod}, "default/gone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Key(tt.obj)
			if !ok || got != tt.want {
				t.Errorf("got %q, %v, want %q", got, ok, tt.want)
			}
		})
	}
	if _, ok := Key("not an object"); ok {
		t.Error("Key of a string: got ok, want not ok")
	}
}

func TestUnwrap(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}}
	tests := []struct {
		name string
		obj  any
		ok   bool
	}{
		{"object", pod, true},
		{"tombstone", cache.DeletedFinalStateUnknown{Key: "default/web", Obj: pod}, true},
		{"another type", &corev1.Node{}, false},
		{"tombstone of another type", cache.DeletedFinalStateUnknown{Key: "n1", Obj: &corev1.Node{}}, false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Unwrap[*corev1.Pod](tt.obj)
			if ok != tt.ok || (ok && got != pod) {
				t.Errorf("got %v, %v, want %v", got, ok, tt.ok)
			}
		})
	}
}

// podInformer returns an informer of one pod, default/web, whose first
// list waits until release is closed.
func podInformer(release <-chan struct{}) cache.SharedIndexInformer {
	src := fcache.NewFakeControllerSource()
	src.Add(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}})
	lw := &cache.ListWatch{
		ListFunc: func(opts metav1.ListOptions) (runtime.Object, error) {
			<-release
			return src.List(opts)
		},
		WatchFunc: src.Watch,
	}
	return cache.NewSharedIndexInformerWithOptions(lw, &corev1.Pod{}, cache.SharedIndexInformerOptions{})
}

// TestLoopWaitsForCaches checks that nothing of a controller runs before
// its handlers have been handed what their informer listed: then the
// OnSynced functions, then the first Reconcile, which finds the pod in
// the cache.
func TestLoopWaitsForCaches(t *testing.T) {
	release := make(chan struct{})
	var released atomic.Bool
	inf := podInformer(release)
	steps := make(chan string, 10)
	l := NewLoop("test", 2, ReconcilerFunc(func(ctx context.Context, key string) (Result, error) {
		if _, exists, _ := inf.GetStore().GetByKey(key); !exists {
			t.Errorf("reconcile of %q: not in the cache", key)
		}
		steps <- "reconcile " + key
		return Result{}, nil
	}))
	l.OnSynced(func(context.Context) {
		if !released.Load() {
			t.Error("OnSynced called before the informer listed")
		}
		steps <- "synced"
	})
	if err := l.Watch(inf, EnqueueHandler(l.Queue())); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Go(func() { inf.RunWithContext(ctx) })
	wg.Go(func() { l.Run(ctx) })

	released.Store(true)
	close(release)
	if got := wait(t, steps, "OnSynced"); got != "synced" {
		t.Fatalf("got %q, want synced", got)
	}
	if got := wait(t, steps, "the first reconcile"); got != "reconcile default/web" {
		t.Fatalf("got %q, want reconcile default/web", got)
	}
}

// TestLoopStoppedBeforeSync checks that a loop whose context ends before
// its caches sync returns, with its queue shut down, having run nothing.
func TestLoopStoppedBeforeSync(t *testing.T) {
	release := make(chan struct{}) // closed only when the test ends
	t.Cleanup(func() { close(release) })
	inf := podInformer(release)
	l := NewLoop("test", 1, ReconcilerFunc(func(ctx context.Context, key string) (Result, error) {
		t.Errorf("reconcile of %q before the caches synced", key)
		return Result{}, nil
	}))
	l.OnSynced(func(context.Context) { t.Error("OnSynced called before the caches synced") })
	if err := l.Watch(inf, EnqueueHandler(l.Queue())); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { inf.RunWithContext(ctx) })
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	cancel()
	wait(t, done, "Run to return")
	wg.Wait()
	if !l.Queue().ShuttingDown() {
		t.Error("the queue was not shut down")
	}
}
