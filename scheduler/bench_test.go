package scheduler

// BenchmarkSchedule10kPods measures the whole control plane scheduling a
// burst of pods, in one process: the API server on its embedded etcd
// (fsync on), simulated nodes (simnodes, reporting each bound pod Running
// at once), and the scheduler. Each iteration creates 10,000 pods (100m
// cpu, 128Mi each) from concurrent clients and watches them get bound. It
// reports
//
//   - pods/s: pods divided by the time from the first create to the last
//     binding seen by the watch;
//   - p50-ms, p99-ms: per pod, from the start of its create call to the
//     moment the watch showed it bound;
//   - creates/s: how fast the clients got their pods in (the scheduler
//     cannot bind faster than pods are created);
//   - events-dropped: Scheduled events the scheduler's event recorder
//     dropped because its buffer was full;
//
// and fails if any node ends up over-committed. Run it with
//
//	go test ./scheduler/ -run '^$' -bench BenchmarkSchedule10kPods -benchtime 1x
//
// The target (≥ 1,000 pods/s at 5,000 nodes, p99 ≤ 2 s) is read
// off the output by a person, never asserted.

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiffdev/skiff/apiserver/auth"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
)

const (
	benchPods = 10000
	// benchCreators is how many goroutines create pods, spread over
	// benchConnections client connections.
	benchCreators    = 32
	benchConnections = 8
	// benchTimeout bounds one iteration.
	benchTimeout = 5 * time.Minute
)

func BenchmarkSchedule10kPods(b *testing.B) {
	for _, nodes := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) {
			benchmarkSchedule(b, nodes)
		})
	}
}

func benchmarkSchedule(b *testing.B, nodes int) {
	cl := testenv.NewCluster(b, testenv.WithTimeout(time.Duration(b.N+1)*benchTimeout), testenv.WithStopTimeout(2*time.Minute))
	ctx, admin := cl.Ctx, cl.Client

	// Simulated nodes: 8 cpu, 32Gi, 110 pods each, on a connection of
	// their own, as in their own process.
	simCfg := cl.SimNodes(nodes)
	simCfg.Client = testenv.NewClient(b, cl.Server)
	cl.StartSimNodes(simCfg)
	waitNodes(b, ctx, admin, nodes)

	// The scheduler, with its own connection, as in its own process.
	cfg := DefaultConfig()
	cfg.Client = cl.ClientAs(auth.SchedulerUser)
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	cl.Start("scheduler", s.Run)
	wait.For(b, time.Minute, "the scheduler to see every node", func() (bool, error) {
		return s.cache.NodeCount() == nodes, fmt.Errorf("%d nodes", s.cache.NodeCount())
	})

	creators := make([]*client.Client, benchConnections)
	for i := range creators {
		creators[i] = testenv.NewClient(b, cl.Server)
	}

	var pods, created, p50, p99 float64
	var wall time.Duration
	b.ResetTimer()
	for iter := range b.N {
		ns := "bench-" + strconv.Itoa(iter)
		if _, err := admin.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			b.Fatal(err)
		}
		r := runBurst(b, ctx, admin, creators, ns)
		pods += benchPods
		wall += r.wall
		created = float64(benchPods) / r.createWall.Seconds()
		p50, p99 = r.p50, r.p99
	}
	b.StopTimer()
	b.ReportMetric(pods/wall.Seconds(), "pods/s")
	b.ReportMetric(p50, "p50-ms")
	b.ReportMetric(p99, "p99-ms")
	b.ReportMetric(created, "creates/s")
	b.ReportMetric(float64(s.recorder.Dropped()), "events-dropped")
	checkNotOvercommitted(b, ctx, admin)
}

// burstResult is what one burst measured.
type burstResult struct {
	wall       time.Duration // first create to last binding seen
	createWall time.Duration // first create to last create returned
	p50, p99   float64       // creation-to-bound per pod, in ms
}

// runBurst creates benchPods pods in ns and waits until the watch has
// seen every one bound.
func runBurst(b *testing.B, ctx context.Context, admin *client.Client, creators []*client.Client, ns string) burstResult {
	list, err := admin.Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	createdAt := make([]time.Time, benchPods)
	boundAt := make([]time.Time, benchPods)
	var bound atomic.Int64
	allBound := make(chan struct{})
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watchDone := make(chan error, 1)
	go func() {
		watchDone <- watchBindings(watchCtx, admin, ns, list.ResourceVersion, func(i int, at time.Time) {
			if boundAt[i].IsZero() {
				boundAt[i] = at
				if bound.Add(1) == benchPods {
					close(allBound)
				}
			}
		})
	}()

	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, benchCreators)
	for w := range benchCreators {
		c := creators[w%len(creators)]
		wg.Go(func() {
			for i := w; i < benchPods; i += benchCreators {
				createdAt[i] = time.Now()
				if _, err := c.Pods(ns).Create(ctx, benchPod(ns, i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	createWall := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatalf("creating pods: %v", err)
	}
	select {
	case <-allBound:
	case err := <-watchDone:
		b.Fatalf("watching pods: %v (%d of %d bound)", err, bound.Load(), benchPods)
	case <-ctx.Done():
		b.Fatalf("timed out with %d of %d pods bound", bound.Load(), benchPods)
	}
	stopWatch()
	<-watchDone

	lat := make([]time.Duration, benchPods)
	last := start
	for i := range lat {
		lat[i] = boundAt[i].Sub(createdAt[i])
		if boundAt[i].After(last) {
			last = boundAt[i]
		}
	}
	slices.Sort(lat)
	return burstResult{
		wall:       last.Sub(start),
		createWall: createWall,
		p50:        millis(lat[len(lat)/2]),
		p99:        millis(lat[len(lat)*99/100]),
	}
}

// watchBindings watches the pods of ns from resourceVersion and calls
// onBound with the pod's index the first time each is seen bound, until
// ctx ends. A watch that ends is resumed from the last resourceVersion.
func watchBindings(ctx context.Context, c *client.Client, ns, resourceVersion string, onBound func(i int, at time.Time)) error {
	for ctx.Err() == nil {
		w, err := c.Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: resourceVersion, AllowWatchBookmarks: true})
		if err != nil {
			return err
		}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				w.Stop()
				return fmt.Errorf("watch error: %v", ev.Object)
			}
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			resourceVersion = pod.ResourceVersion
			if ev.Type == watch.Bookmark || pod.Spec.NodeName == "" {
				continue
			}
			if i, err := strconv.Atoi(strings.TrimPrefix(pod.Name, "pod-")); err == nil && i < benchPods {
				onBound(i, time.Now())
			}
		}
		w.Stop()
	}
	return nil
}

// benchPod is pod i of a burst: one container asking for 100m cpu and
// 128Mi of memory.
func benchPod(ns string, i int) *corev1.Pod {
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("100m"),
		corev1.ResourceMemory: resource.MustParse("128Mi"),
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pod-" + strconv.Itoa(i), Labels: map[string]string{"app": "bench"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "nginx:1.27",
			Resources: corev1.ResourceRequirements{Requests: res, Limits: res},
		}}},
	}
}

// waitNodes waits until count nodes are registered.
func waitNodes(b *testing.B, ctx context.Context, c *client.Client, count int) {
	wait.For(b, 2*time.Minute, fmt.Sprintf("%d nodes", count), func() (bool, error) {
		list, err := c.Nodes().List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return false, err
		}
		return len(list.Items) == count, fmt.Errorf("%d nodes", len(list.Items))
	})
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
