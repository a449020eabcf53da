package daemonset_test

// BenchmarkDaemonSet1000 measures the whole control plane running a
// DaemonSet on 1,000 simulated nodes, in one process, set up as
// BenchmarkDeployment1000 (controllers/deployment) is: the API server on
// its embedded etcd, the controller manager, the scheduler, and the
// simulated nodes (simnodes, reporting each bound pod Running at once),
// on a connection of their own. It reports
//
//   - create-s: seconds from the DaemonSet's create call to the watch
//     showing all 1,000 pods scheduled, ready and available;
//   - pods/s: 1000 divided by create-s;
//   - rollout-s: seconds from the update changing the image (RollingUpdate,
//     maxUnavailable 10%) to the rollout being complete: every node's pod
//     updated and available, observedGeneration caught up, and no pod of
//     the old template left.
//
// Run it with
//
//	go test ./controllers/daemonset/ -run '^$' -bench BenchmarkDaemonSet1000 -benchtime 1x
//
// The figures are read off the output by a person, never asserted.
//
// It is an external test package: controllers imports this package, so
// the package's own tests cannot import controllers.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffdev/skiff/apiserver/auth"
	"github.com/skiffdev/skiff/controllers"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
	"github.com/skiffdev/skiff/scheduler"
)

const (
	benchNodes = 1000
	// benchWait bounds every wait of the benchmark.
	benchWait = 5 * time.Minute
)

// benchLogger logs warnings and errors only.
var benchLogger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

func BenchmarkDaemonSet1000(b *testing.B) {
	cl := testenv.NewCluster(b, testenv.WithLogger(benchLogger),
		testenv.WithTimeout(time.Duration(b.N)*3*benchWait+2*benchWait), testenv.WithStopTimeout(30*time.Second))
	ctx, admin := cl.Ctx, cl.Client

	simCfg := cl.SimNodes(benchNodes)
	simCfg.Client = testenv.NewClient(b, cl.Server)
	simCfg.StartDelay = 0
	cl.StartSimNodes(simCfg)

	schedCfg := scheduler.DefaultConfig()
	schedCfg.Client = cl.ClientAs(auth.SchedulerUser)
	cl.Start("scheduler", func(ctx context.Context) error { return scheduler.Run(ctx, schedCfg) })

	ctrlCfg := controllers.DefaultConfig()
	ctrlCfg.Client = cl.ClientAs(auth.ControllersUser)
	// Room for a /24 of pod addresses per node on 1,000 nodes (the
	// default /16 has 256), apart from simnodes' own range.
	ctrlCfg.ClusterCIDR = "10.0.0.0/12"
	cl.Start("controllers", func(ctx context.Context) error { return controllers.Run(ctx, ctrlCfg) })

	wait.For(b, benchWait, fmt.Sprintf("%d nodes", benchNodes), func() (bool, error) {
		list, err := admin.Nodes().List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return false, err
		}
		return len(list.Items) == benchNodes, fmt.Errorf("%d nodes", len(list.Items))
	})
	// Warm up: a DaemonSet that selects one node and becomes available
	// shows the controllers hold the Lease with synced caches and the
	// scheduler runs.
	warm := benchDaemonSet("warmup", "default", "busybox:1")
	warm.Spec.Template.Spec.NodeSelector = map[string]string{"kubernetes.io/hostname": "sim-0"}
	if _, err := admin.DaemonSets("default").Create(ctx, warm); err != nil {
		b.Fatal(err)
	}
	wait.For(b, benchWait, "the warm-up DaemonSet to be available", func() (bool, error) {
		ds, err := admin.DaemonSets("default").Get(ctx, "warmup")
		if err != nil {
			return false, err
		}
		return ds.Status.NumberAvailable == 1, fmt.Errorf("%d available", ds.Status.NumberAvailable)
	})

	var createSum, rolloutSum time.Duration
	b.ResetTimer()
	for iter := range b.N {
		ns := "bench-" + strconv.Itoa(iter)
		if _, err := admin.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			b.Fatal(err)
		}
		c, r := runDaemonSet(b, ctx, admin, ns)
		createSum += c
		rolloutSum += r
		// The next round starts on empty nodes.
		b.StopTimer()
		if err := admin.DaemonSets(ns).Delete(ctx, "bench", metav1.DeleteOptions{}); err != nil {
			b.Fatal(err)
		}
		wait.For(b, benchWait, "the DaemonSet's pods to be gone", func() (bool, error) {
			pods, err := admin.Pods(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			return len(pods.Items) == 0, fmt.Errorf("%d pods", len(pods.Items))
		})
		b.StartTimer()
	}
	b.StopTimer()
	createS := createSum.Seconds() / float64(b.N)
	b.ReportMetric(createS, "create-s")
	b.ReportMetric(benchNodes/createS, "pods/s")
	b.ReportMetric(rolloutSum.Seconds()/float64(b.N), "rollout-s")
}

// runDaemonSet creates the DaemonSet in ns, waits until it runs on every
// node, then changes its image and waits until the rollout is done.
func runDaemonSet(b *testing.B, ctx context.Context, admin *client.Client, ns string) (create, rollout time.Duration) {
	dss := admin.DaemonSets(ns)
	list, err := dss.List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	rv := list.ResourceVersion

	start := time.Now()
	ds, err := dss.Create(ctx, benchDaemonSet("bench", ns, "busybox:1"))
	if err != nil {
		b.Fatalf("creating the DaemonSet: %v", err)
	}
	ds, rv = waitDaemonSet(b, ctx, admin, ns, rv, "a pod available on every node", func(ds *appsv1.DaemonSet) bool {
		s := ds.Status
		return s.DesiredNumberScheduled == benchNodes && s.CurrentNumberScheduled == benchNodes && s.NumberAvailable == benchNodes
	})
	create = time.Since(start)
	b.Logf("created: %d available in %v (%.0f pods/s)", ds.Status.NumberAvailable, create, benchNodes/create.Seconds())

	// Rolling update to a new image, at most 10% of the nodes without an
	// available pod at a time.
	start = time.Now()
	for {
		ds.Spec.Template.Spec.Containers[0].Image = "busybox:2"
		updated, err := dss.Update(ctx, ds)
		if err == nil {
			ds = updated
			break
		}
		if time.Since(start) > benchWait {
			b.Fatalf("updating the DaemonSet: %v", err)
		}
		if ds, err = dss.Get(ctx, "bench"); err != nil {
			b.Fatal(err)
		}
	}
	gen := ds.Generation
	waitDaemonSet(b, ctx, admin, ns, rv, "the rollout to complete", func(ds *appsv1.DaemonSet) bool {
		s := ds.Status
		return ds.Generation >= gen && s.ObservedGeneration >= ds.Generation &&
			s.UpdatedNumberScheduled == benchNodes && s.NumberAvailable == benchNodes && s.CurrentNumberScheduled == benchNodes
	})
	wait.For(b, benchWait-time.Since(start), "old pods to be gone", func() (bool, error) {
		pods, err := admin.Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		old := 0
		for _, p := range pods.Items {
			if p.Spec.Containers[0].Image != "busybox:2" {
				old++
			}
		}
		return old == 0 && len(pods.Items) == benchNodes, fmt.Errorf("%d pods, %d of the old template", len(pods.Items), old)
	})
	rollout = time.Since(start)
	b.Logf("rolled out in %v", rollout)
	return create, rollout
}

// waitDaemonSet watches the DaemonSet "bench" in ns from resourceVersion until
// done reports true, for at most benchWait (testenv.WatchUntil).
func waitDaemonSet(b *testing.B, ctx context.Context, c *client.Client, ns, resourceVersion, what string, done func(*appsv1.DaemonSet) bool) (*appsv1.DaemonSet, string) {
	b.Helper()
	describe := func(o *appsv1.DaemonSet) string {
		s := o.Status
		return fmt.Sprintf("generation %d observed %d, desired %d current %d updated %d ready %d available %d",
			o.Generation, s.ObservedGeneration, s.DesiredNumberScheduled, s.CurrentNumberScheduled, s.UpdatedNumberScheduled, s.NumberReady, s.NumberAvailable)
	}
	return testenv.WatchUntil(b, ctx, c.DaemonSets(ns), "bench", resourceVersion, what, benchWait, describe, done)
}

// benchDaemonSet is a DaemonSet whose pods ask for 100m cpu and 128Mi of
// memory, rolled out with maxUnavailable 10%.
func benchDaemonSet(name, ns, image string) *appsv1.DaemonSet {
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("100m"),
		corev1.ResourceMemory: resource.MustParse("128Mi"),
	}
	labels := map[string]string{"app": name}
	tenPercent := intstr.FromString("10%")
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{
				Type:          appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &tenPercent},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "agent", Image: image,
					Resources: corev1.ResourceRequirements{Requests: res, Limits: res},
				}}},
			},
		},
	}
}
