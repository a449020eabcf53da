package deployment_test

// BenchmarkDeployment1000 measures the whole control plane running a
// Deployment of 1,000 replicas, in one process: the API server on its
// embedded etcd, the controller manager (leader election on), the
// scheduler, and 100 simulated nodes (simnodes, reporting each bound pod
// Running at once). It reports
//
//   - create-s: seconds from the Deployment's create call to the watch
//     showing status.availableReplicas == 1000;
//   - pods/s: 1000 divided by create-s (the target is ≥ 500);
//   - rollout-s: seconds from the update changing the image (default
//     25%/25% rolling update) to the rollout being complete: updated,
//     available and total replicas all 1000, observedGeneration caught
//     up, and no pod of the old template left.
//
// Run it with
//
//	go test ./controllers/deployment/ -run '^$' -bench BenchmarkDeployment1000 -benchtime 1x
//
// The target is read off the output by a person, never asserted.
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

	"github.com/skiffdev/skiff/apiserver/auth"
	"github.com/skiffdev/skiff/controllers"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
	"github.com/skiffdev/skiff/scheduler"
)

const (
	benchReplicas = 1000
	benchNodes    = 100
	// benchWait bounds every wait of the benchmark.
	benchWait = 3 * time.Minute
)

// benchLogger logs warnings and errors only.
var benchLogger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

func BenchmarkDeployment1000(b *testing.B) {
	cl := testenv.NewCluster(b, testenv.WithLogger(benchLogger),
		testenv.WithTimeout(time.Duration(b.N)*4*benchWait+2*benchWait), testenv.WithStopTimeout(30*time.Second))
	ctx, admin := cl.Ctx, cl.Client

	// Simulated nodes: 16 cpu, 64Gi, 110 pods each, pods Running at once,
	// on a connection of their own, as in their own process.
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
	// Warm up: a one-replica Deployment that becomes available shows the
	// controllers hold the Lease with synced caches and the scheduler runs.
	warm := benchDeployment("warmup", "default", 1, "nginx:1.27")
	if _, err := admin.Deployments("default").Create(ctx, warm); err != nil {
		b.Fatal(err)
	}
	wait.For(b, benchWait, "the warm-up Deployment to be available", func() (bool, error) {
		d, err := admin.Deployments("default").Get(ctx, "warmup")
		if err != nil {
			return false, err
		}
		return d.Status.AvailableReplicas == 1, fmt.Errorf("%d available", d.Status.AvailableReplicas)
	})

	var createSum, rolloutSum time.Duration
	b.ResetTimer()
	for iter := range b.N {
		ns := "bench-" + strconv.Itoa(iter)
		if _, err := admin.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			b.Fatal(err)
		}
		c, r := runDeployment(b, ctx, admin, ns)
		createSum += c
		rolloutSum += r
	}
	b.StopTimer()
	createS := createSum.Seconds() / float64(b.N)
	b.ReportMetric(createS, "create-s")
	b.ReportMetric(benchReplicas/createS, "pods/s")
	b.ReportMetric(rolloutSum.Seconds()/float64(b.N), "rollout-s")
}

// runDeployment creates the Deployment in ns, waits until all of it is
// available, then changes its image and waits until the rollout is done.
func runDeployment(b *testing.B, ctx context.Context, admin *client.Client, ns string) (create, rollout time.Duration) {
	deploys := admin.Deployments(ns)
	list, err := deploys.List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	rv := list.ResourceVersion

	start := time.Now()
	d, err := deploys.Create(ctx, benchDeployment("bench", ns, benchReplicas, "nginx:1.27"))
	if err != nil {
		b.Fatalf("creating the Deployment: %v", err)
	}
	d, rv = waitDeployment(b, ctx, admin, ns, rv, "all replicas available", func(d *appsv1.Deployment) bool {
		return d.Status.AvailableReplicas == benchReplicas
	})
	create = time.Since(start)
	b.Logf("created: %d available in %v (%.0f pods/s)", d.Status.AvailableReplicas, create, benchReplicas/create.Seconds())

	// Rolling update to a new image.
	start = time.Now()
	for {
		d.Spec.Template.Spec.Containers[0].Image = "nginx:1.28"
		updated, err := deploys.Update(ctx, d)
		if err == nil {
			d = updated
			break
		}
		if time.Since(start) > benchWait {
			b.Fatalf("updating the Deployment: %v", err)
		}
		if d, err = deploys.Get(ctx, "bench"); err != nil {
			b.Fatal(err)
		}
	}
	gen := d.Generation
	waitDeployment(b, ctx, admin, ns, rv, "the rollout to complete", func(d *appsv1.Deployment) bool {
		s := d.Status
		return d.Generation >= gen && s.ObservedGeneration >= d.Generation &&
			s.UpdatedReplicas == benchReplicas && s.AvailableReplicas == benchReplicas && s.Replicas == benchReplicas
	})
	// No pod of the old template left (deleted pods gone from the API).
	wait.For(b, benchWait-time.Since(start), "old pods to be gone", func() (bool, error) {
		pods, err := admin.Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		old := 0
		for _, p := range pods.Items {
			if p.Spec.Containers[0].Image != "nginx:1.28" {
				old++
			}
		}
		return old == 0 && len(pods.Items) == benchReplicas, fmt.Errorf("%d pods, %d of the old template", len(pods.Items), old)
	})
	rollout = time.Since(start)
	b.Logf("rolled out in %v", rollout)
	return create, rollout
}

// waitDeployment watches the Deployment "bench" in ns from resourceVersion until
// done reports true, for at most benchWait (testenv.WatchUntil).
func waitDeployment(b *testing.B, ctx context.Context, c *client.Client, ns, resourceVersion, what string, done func(*appsv1.Deployment) bool) (*appsv1.Deployment, string) {
	b.Helper()
	describe := func(o *appsv1.Deployment) string {
		s := o.Status
		return fmt.Sprintf("generation %d observed %d, replicas %d updated %d ready %d available %d unavailable %d",
			o.Generation, s.ObservedGeneration, s.Replicas, s.UpdatedReplicas, s.ReadyReplicas, s.AvailableReplicas, s.UnavailableReplicas)
	}
	return testenv.WatchUntil(b, ctx, c.Deployments(ns), "bench", resourceVersion, what, benchWait, describe, done)
}

// benchDeployment is a Deployment of replicas pods, each one container
// asking for 100m cpu and 128Mi of memory.
func benchDeployment(name, ns string, replicas int32, image string) *appsv1.Deployment {
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("100m"),
		corev1.ResourceMemory: resource.MustParse("128Mi"),
	}
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: image,
					Resources: corev1.ResourceRequirements{Requests: res, Limits: res},
				}}},
			},
		},
	}
}
