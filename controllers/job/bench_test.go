package job_test

// BenchmarkJobs1000 measures the whole control plane running 1,000 Jobs
// of one pod each, in one process: the API server on its embedded etcd,
// the controller manager (leader election on), the scheduler, and 100
// simulated nodes (simnodes, reporting each bound pod Running at once).
// The benchmark plays the containers: each pod it sees Running it marks
// Succeeded, as a kubelet would when the container exits 0. It reports
//
//   - run-s: seconds from the first Job create call to the last Job's
//     Complete condition (every pod counted, its tracking finalizer
//     removed);
//   - jobs/s: 1000 divided by run-s.
//
// Run it beside the Deployment benchmark, so that both figures come from
// the same machine at the same time:
//
//	go test ./controllers/deployment/ ./controllers/job/ -run '^$' -bench 'BenchmarkDeployment1000|BenchmarkJobs1000' -benchtime 1x
//
// The figures are read off the output by a person, never asserted.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/skiffdev/skiff/apiserver/auth"
	"github.com/skiffdev/skiff/controllers"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/informers"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
	"github.com/skiffdev/skiff/scheduler"
)

const (
	benchJobs  = 1000
	benchNodes = 100
	// benchWait bounds every wait of the benchmark.
	benchWait = 5 * time.Minute
	// benchWriters create Jobs and finish pods, each this many at once.
	benchWriters = 16
)

var benchLogger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

func BenchmarkJobs1000(b *testing.B) {
	cl := testenv.NewCluster(b, testenv.WithLogger(benchLogger),
		testenv.WithTimeout(time.Duration(b.N)*2*benchWait+2*benchWait), testenv.WithStopTimeout(30*time.Second))
	ctx, admin := cl.Ctx, cl.Client

	simCfg := cl.SimNodes(benchNodes)
	simCfg.Client = testenv.NewClient(b, cl.Server)
	simCfg.StartDelay = 0
	simCfg.CPU = resource.MustParse("16")
	simCfg.Memory = resource.MustParse("64Gi")
	simCfg.Pods = resource.MustParse("110")
	cl.StartSimNodes(simCfg)

	schedCfg := scheduler.DefaultConfig()
	schedCfg.Client = cl.ClientAs(auth.SchedulerUser)
	cl.Start("scheduler", func(ctx context.Context) error { return scheduler.Run(ctx, schedCfg) })

	ctrlCfg := controllers.DefaultConfig()
	ctrlCfg.Client = cl.ClientAs(auth.ControllersUser)
	cl.Start("controllers", func(ctx context.Context) error { return controllers.Run(ctx, ctrlCfg) })

	wait.For(b, benchWait, fmt.Sprintf("%d nodes", benchNodes), func() (bool, error) {
		list, err := admin.Nodes().List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return false, err
		}
		return len(list.Items) == benchNodes, fmt.Errorf("%d nodes", len(list.Items))
	})

	// The player of containers has a connection of its own.
	player := testenv.NewClient(b, cl.Server)
	// Warm up: one Job run to completion shows the controllers hold the
	// Lease with synced caches and the scheduler runs.
	if _, err := admin.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "warmup"}}); err != nil {
		b.Fatal(err)
	}
	runJobs(b, ctx, admin, player, "warmup", 1)

	var sum time.Duration
	b.ResetTimer()
	for iter := range b.N {
		ns := "bench-" + strconv.Itoa(iter)
		if _, err := admin.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			b.Fatal(err)
		}
		d := runJobs(b, ctx, admin, player, ns, benchJobs)
		b.Logf("%d jobs complete in %v (%.0f jobs/s)", benchJobs, d, benchJobs/d.Seconds())
		sum += d
	}
	b.StopTimer()
	runS := sum.Seconds() / float64(b.N)
	b.ReportMetric(runS, "run-s")
	b.ReportMetric(benchJobs/runS, "jobs/s")
}

// runJobs creates n Jobs of one pod in ns, finishes each pod once it
// runs, and returns the time from the first create to the last Job's
// Complete condition.
func runJobs(b *testing.B, ctx context.Context, admin, player *client.Client, ns string, n int) time.Duration {
	ctx, cancel := context.WithTimeout(ctx, benchWait)
	defer cancel()

	// Watch the namespace's pods and Jobs.
	f := informers.NewFactory(player, 0, informers.WithNamespace(ns))
	running := make(chan *corev1.Pod, 2*n)
	var complete atomic.Int64
	allDone := make(chan struct{})
	var doneOnce sync.Once
	seen := sync.Map{} // pod UID → true once handed to a finisher
	onPod := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok || p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			return
		}
		if _, dup := seen.LoadOrStore(p.UID, true); !dup {
			running <- p
		}
	}
	finished := sync.Map{}
	onJob := func(obj any) {
		j, ok := obj.(*batchv1.Job)
		if !ok {
			return
		}
		for _, c := range j.Status.Conditions {
			if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
				if _, dup := finished.LoadOrStore(j.UID, true); !dup && complete.Add(1) == int64(n) {
					doneOnce.Do(func() { close(allDone) })
				}
			}
		}
	}
	if _, err := f.Pods().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onPod, UpdateFunc: func(_, o any) { onPod(o) }}); err != nil {
		b.Fatal(err)
	}
	if _, err := f.Jobs().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onJob, UpdateFunc: func(_, o any) { onJob(o) }}); err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	f.Start(ctx)
	// Stop the informers and the finishers before returning.
	defer func() { cancel(); wg.Wait(); f.Wait() }()
	if !f.WaitForCacheSync(ctx) {
		b.Fatal("the benchmark's caches did not sync")
	}

	// Finishers: a kubelet reporting the container's exit 0.
	for range benchWriters {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case p := <-running:
					if err := succeed(ctx, player, p); err != nil && ctx.Err() == nil {
						b.Errorf("finishing pod %s: %v", p.Name, err)
					}
				}
			}
		})
	}

	start := time.Now()
	next := atomic.Int64{}
	var creators sync.WaitGroup
	for range benchWriters {
		creators.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				if _, err := admin.Jobs(ns).Create(ctx, benchJob(ns, int(i))); err != nil {
					b.Errorf("creating job %d: %v", i, err)
					return
				}
			}
		})
	}
	creators.Wait()
	select {
	case <-allDone:
	case <-ctx.Done():
		b.Fatalf("%d of %d jobs complete after %v", complete.Load(), n, benchWait)
	}
	return time.Since(start)
}

// succeed marks a running pod Succeeded, its containers exited 0.
func succeed(ctx context.Context, c *client.Client, p *corev1.Pod) error {
	for try := 0; ; try++ {
		next := p.DeepCopy()
		next.Status.Phase = corev1.PodSucceeded
		now := metav1.Now()
		for i := range next.Status.ContainerStatuses {
			cs := &next.Status.ContainerStatuses[i]
			cs.Ready, cs.Started = false, new(false)
			cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed", StartedAt: now, FinishedAt: now}}
		}
		for i := range next.Status.Conditions {
			if cond := &next.Status.Conditions[i]; cond.Type == corev1.PodReady || cond.Type == corev1.ContainersReady {
				cond.Status = corev1.ConditionFalse
			}
		}
		_, err := c.Pods(p.Namespace).UpdateStatus(ctx, next)
		if err == nil || try == 5 {
			return err
		}
		if p, err = c.Pods(p.Namespace).Get(ctx, p.Name); err != nil {
			return err
		}
	}
}

func benchJob(ns string, i int) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "job-" + strconv.Itoa(i)},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "work", Image: "busybox",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")}}}},
		}}},
	}
}
