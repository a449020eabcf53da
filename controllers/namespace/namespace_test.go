package namespace_test

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffdev/skiff/apiserver/auth"
	"github.com/skiffdev/skiff/controllers/controller"
	"github.com/skiffdev/skiff/controllers/namespace"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/events"
	"github.com/skiffdev/skiff/internal/informers"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
)

const waitTimeout = 20 * time.Second

// startController starts an API server and the namespace controller alone
// against it.
func startController(t *testing.T) (context.Context, *client.Client) {
	t.Helper()
	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	// The controller runs as the controller manager, so that what it may
	// do is tested too; the test itself acts as the administrator.
	cc := testenv.NewClientAs(t, srv, auth.ControllersUser)
	ctx, cancel := context.WithCancel(context.Background())
	f := informers.NewFactory(cc, time.Minute)
	cfg := namespace.DefaultConfig()
	cfg.RecheckInterval = 50 * time.Millisecond
	rec := events.NewRecorder(ctx, cc, "controllers")
	nc, err := namespace.New(controller.Deps{Client: cc, Informers: f, Recorder: rec}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx)
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done; f.Wait(); rec.Stop() })
	if !f.WaitForCacheSync(ctx) {
		t.Fatal("caches did not sync")
	}
	go func() { defer close(done); nc.Run(ctx) }()
	return testenv.Context(t), c
}

func pod(ns, name, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
	}
}

func TestNamespaceDeletion(t *testing.T) {
	ctx, c := startController(t)
	const ns = "team"
	if _, err := c.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	// Another namespace's objects must survive.
	if _, err := c.Pods("default").Create(ctx, pod("default", "bystander", "")); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "web"}
	replicas := int32(1)
	if _, err := c.Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: pod(ns, "", "").Spec}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Leases(ns).Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "lock", Namespace: ns}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Pods(ns).Create(ctx, pod(ns, "pending", "")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Pods(ns).Create(ctx, pod(ns, "running", "node-1")); err != nil {
		t.Fatal(err)
	}

	if err := c.Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, waitTimeout, "everything but the bound pod deleted", func() (bool, error) {
		for _, get := range []func() error{
			func() error { _, err := c.Deployments(ns).Get(ctx, "web"); return err },
			func() error { _, err := c.Services(ns).Get(ctx, "web"); return err },
			func() error { _, err := c.Leases(ns).Get(ctx, "lock"); return err },
			func() error { _, err := c.Pods(ns).Get(ctx, "pending"); return err },
		} {
			if err := get(); !apierrors.IsNotFound(err) {
				return false, err
			}
		}
		p, err := c.Pods(ns).Get(ctx, "running")
		return err == nil && p.DeletionTimestamp != nil, err
	})

	// The bound pod waits for its kubelet, and the namespace for the pod.
	got, err := c.Namespaces().Get(ctx, ns)
	if err != nil {
		t.Fatalf("namespace with a pod still terminating: got %v, want it kept", err)
	}
	if got.Status.Phase != corev1.NamespaceTerminating || len(got.Spec.Finalizers) == 0 {
		t.Errorf("namespace with a pod still terminating: got phase %q, finalizers %v; want Terminating with finalizers", got.Status.Phase, got.Spec.Finalizers)
	}

	// Play the kubelet: confirm the pod stopped.
	zero := int64(0)
	if err := c.Pods(ns).Delete(ctx, "running", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, waitTimeout, "namespace deleted", func() (bool, error) {
		_, err := c.Namespaces().Get(ctx, ns)
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	if _, err := c.Pods("default").Get(ctx, "bystander"); err != nil {
		t.Errorf("pod in another namespace: got %v, want it kept", err)
	}
}

// TestNamespaceNotDeletedIsLeftAlone: a live namespace's objects stay.
func TestNamespaceNotDeletedIsLeftAlone(t *testing.T) {
	ctx, c := startController(t)
	const ns = "live"
	if _, err := c.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Pods(ns).Create(ctx, pod(ns, "p", "")); err != nil {
		t.Fatal(err)
	}
	// A second namespace deleted afterwards is a marker: once it is gone
	// the controller has seen both.
	if _, err := c.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "marker"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Namespaces().Delete(ctx, "marker", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, waitTimeout, "marker namespace deleted", func() (bool, error) {
		_, err := c.Namespaces().Get(ctx, "marker")
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	if _, err := c.Pods(ns).Get(ctx, "p"); err != nil {
		t.Errorf("pod in a live namespace: got %v, want it kept", err)
	}
}

// TestNamespaceWaitsForFinalizers: an object held by a finalizer keeps
// the namespace until whoever owns the finalizer removes it.
func TestNamespaceWaitsForFinalizers(t *testing.T) {
	ctx, c := startController(t)
	const ns = "held"
	if _, err := c.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Leases(ns).Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{
		Name: "lock", Namespace: ns, Finalizers: []string{"example.com/hold"}}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, waitTimeout, "the held lease being deleted", func() (bool, error) {
		l, err := c.Leases(ns).Get(ctx, "lock")
		return err == nil && l.DeletionTimestamp != nil, err
	})
	if _, err := c.Namespaces().Get(ctx, ns); err != nil {
		t.Fatalf("namespace with a held object: got %v, want it kept", err)
	}
	wait.For(t, waitTimeout, "finalizer removed", func() (bool, error) {
		l, err := c.Leases(ns).Get(ctx, "lock")
		if err != nil {
			return false, err
		}
		l.Finalizers = nil
		_, err = c.Leases(ns).Update(ctx, l)
		return err == nil, err
	})
	wait.For(t, waitTimeout, "namespace deleted", func() (bool, error) {
		_, err := c.Namespaces().Get(ctx, ns)
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}
