package garbagecollector_test

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffdev/skiff/apiserver/auth"
	"github.com/skiffdev/skiff/controllers/controller"
	"github.com/skiffdev/skiff/controllers/garbagecollector"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/events"
	"github.com/skiffdev/skiff/internal/informers"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
)

const (
	ns          = "default"
	waitTimeout = 20 * time.Second
)

// startGC starts an API server and the garbage collector alone against it.
func startGC(t *testing.T) (context.Context, *client.Client) {
	t.Helper()
	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	// The controller runs as the controller manager, so that what it may
	// do is tested too; the test itself acts as the administrator.
	cc := testenv.NewClientAs(t, srv, auth.ControllersUser)
	ctx, cancel := context.WithCancel(context.Background())
	f := informers.NewFactory(cc, time.Minute)
	rec := events.NewRecorder(ctx, cc, "controllers")
	gc, err := garbagecollector.New(controller.Deps{Client: cc, Informers: f, Recorder: rec}, garbagecollector.Config{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx)
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done; f.Wait(); rec.Stop() })
	if !f.WaitForCacheSync(ctx) {
		t.Fatal("caches did not sync")
	}
	go func() { defer close(done); gc.Run(ctx) }()
	return testenv.Context(t), c
}

func ref(kind, apiVersion, name string, uid types.UID, block bool) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: uid,
		Controller: &block, BlockOwnerDeletion: &block}
}

var labels = map[string]string{"app": "web"}

func podSpec() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
	}
}

// tree is a deployment with one replica set and two pods, all linked by
// controller owner references that block their owner's deletion.
type tree struct {
	deploy *appsv1.Deployment
	rs     *appsv1.ReplicaSet
	pods   []*corev1.Pod
}

func createTree(t *testing.T, ctx context.Context, c *client.Client) tree {
	t.Helper()
	one := int32(2)
	d, err := c.Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: podSpec()},
	})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := c.ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: ns,
			OwnerReferences: []metav1.OwnerReference{ref("Deployment", "apps/v1", d.Name, d.UID, true)}},
		Spec: appsv1.ReplicaSetSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: podSpec()},
	})
	if err != nil {
		t.Fatal(err)
	}
	tr := tree{deploy: d, rs: rs}
	for _, name := range []string{"web-1-a", "web-1-b"} {
		tmpl := podSpec()
		p, err := c.Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels,
				OwnerReferences: []metav1.OwnerReference{ref("ReplicaSet", "apps/v1", rs.Name, rs.UID, true)}},
			Spec: tmpl.Spec,
		})
		if err != nil {
			t.Fatal(err)
		}
		tr.pods = append(tr.pods, p)
	}
	return tr
}

func gone(err error) (bool, error) {
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	return false, err
}

func awaitGone(t *testing.T, ctx context.Context, c *client.Client, tr tree) {
	t.Helper()
	wait.For(t, waitTimeout, "replica set and pods deleted", func() (bool, error) {
		if _, err := c.ReplicaSets(ns).Get(ctx, tr.rs.Name); !apierrors.IsNotFound(err) {
			return false, err
		}
		for _, p := range tr.pods {
			if _, err := c.Pods(ns).Get(ctx, p.Name); !apierrors.IsNotFound(err) {
				return false, err
			}
		}
		return true, nil
	})
}

func deleteWith(t *testing.T, ctx context.Context, c *client.Client, name string, policy metav1.DeletionPropagation) {
	t.Helper()
	if err := c.Deployments(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &policy}); err != nil {
		t.Fatal(err)
	}
}

func TestBackgroundDeletion(t *testing.T) {
	ctx, c := startGC(t)
	tr := createTree(t, ctx, c)
	deleteWith(t, ctx, c, tr.deploy.Name, metav1.DeletePropagationBackground)
	if _, err := c.Deployments(ns).Get(ctx, tr.deploy.Name); !apierrors.IsNotFound(err) {
		t.Fatalf("deployment after a background delete: got %v, want NotFound", err)
	}
	awaitGone(t, ctx, c, tr)
}

func TestForegroundDeletion(t *testing.T) {
	ctx, c := startGC(t)
	tr := createTree(t, ctx, c)
	deleteWith(t, ctx, c, tr.deploy.Name, metav1.DeletePropagationForeground)
	wait.For(t, waitTimeout, "deployment deleted", func() (bool, error) {
		_, err := c.Deployments(ns).Get(ctx, tr.deploy.Name)
		return gone(err)
	})
	// The deployment waited for every dependent that blocks its deletion:
	// by the time it is gone, so are they.
	if _, err := c.ReplicaSets(ns).Get(ctx, tr.rs.Name); !apierrors.IsNotFound(err) {
		t.Errorf("replica set when its deployment is gone: got %v, want NotFound", err)
	}
	for _, p := range tr.pods {
		if _, err := c.Pods(ns).Get(ctx, p.Name); !apierrors.IsNotFound(err) {
			t.Errorf("pod %s when its deployment is gone: got %v, want NotFound", p.Name, err)
		}
	}
}

// TestForegroundWaitsForBlockingDependents holds a dependent back with a
// finalizer of its own: the owner must stay until the dependent is gone.
func TestForegroundWaitsForBlockingDependents(t *testing.T) {
	ctx, c := startGC(t)
	tr := createTree(t, ctx, c)
	const hold = "example.com/hold"
	setFinalizers(t, ctx, c, tr.pods[0].Name, []string{hold})
	deleteWith(t, ctx, c, tr.deploy.Name, metav1.DeletePropagationForeground)
	wait.For(t, waitTimeout, "the held pod being deleted", func() (bool, error) {
		p, err := c.Pods(ns).Get(ctx, tr.pods[0].Name)
		return err == nil && p.DeletionTimestamp != nil, err
	})
	wait.For(t, waitTimeout, "the other pod deleted", func() (bool, error) {
		_, err := c.Pods(ns).Get(ctx, tr.pods[1].Name)
		return gone(err)
	})
	for _, check := range []func() (metav1.Object, error){
		func() (metav1.Object, error) { return c.ReplicaSets(ns).Get(ctx, tr.rs.Name) },
		func() (metav1.Object, error) { return c.Deployments(ns).Get(ctx, tr.deploy.Name) },
	} {
		m, err := check()
		if err != nil {
			t.Fatalf("owner of a pod still being deleted: got %v, want it kept", err)
		}
		if m.GetDeletionTimestamp() == nil {
			t.Errorf("%s: got no deletionTimestamp, want one", m.GetName())
		}
	}
	setFinalizers(t, ctx, c, tr.pods[0].Name, nil)
	wait.For(t, waitTimeout, "deployment deleted", func() (bool, error) {
		_, err := c.Deployments(ns).Get(ctx, tr.deploy.Name)
		return gone(err)
	})
	awaitGone(t, ctx, c, tr)
}

// setFinalizers replaces a pod's finalizers, retrying on conflicts with
// the collector's own writes.
func setFinalizers(t *testing.T, ctx context.Context, c *client.Client, name string, finalizers []string) {
	t.Helper()
	wait.For(t, waitTimeout, "pod finalizers set", func() (bool, error) {
		p, err := c.Pods(ns).Get(ctx, name)
		if err != nil {
			return false, err
		}
		p.Finalizers = finalizers
		_, err = c.Pods(ns).Update(ctx, p)
		return err == nil, err
	})
}

func TestOrphanDeletion(t *testing.T) {
	ctx, c := startGC(t)
	tr := createTree(t, ctx, c)
	deleteWith(t, ctx, c, tr.deploy.Name, metav1.DeletePropagationOrphan)
	wait.For(t, waitTimeout, "deployment deleted", func() (bool, error) {
		_, err := c.Deployments(ns).Get(ctx, tr.deploy.Name)
		return gone(err)
	})
	rs, err := c.ReplicaSets(ns).Get(ctx, tr.rs.Name)
	if err != nil {
		t.Fatalf("orphaned replica set: %v", err)
	}
	if len(rs.OwnerReferences) != 0 {
		t.Errorf("orphaned replica set's owner references: got %v, want none", rs.OwnerReferences)
	}
	for _, p := range tr.pods {
		got, err := c.Pods(ns).Get(ctx, p.Name)
		if err != nil {
			t.Fatalf("pod of an orphaned replica set: %v", err)
		}
		if len(got.OwnerReferences) != 1 || got.OwnerReferences[0].UID != tr.rs.UID {
			t.Errorf("pod %s owner references: got %v, want the replica set's", p.Name, got.OwnerReferences)
		}
	}
	// Deleting the orphaned replica set in the background takes its pods.
	if err := c.ReplicaSets(ns).Delete(ctx, tr.rs.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	awaitGone(t, ctx, c, tr)
}

// TestOwnerReplacedByNameCountsAsGone: an owner reference names an owner
// by UID; an object of the same name with another UID is not the owner.
func TestOwnerReplacedByNameCountsAsGone(t *testing.T) {
	ctx, c := startGC(t)
	tr := createTree(t, ctx, c)
	tmpl := podSpec()
	p, err := c.Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "impostor", Namespace: ns,
			OwnerReferences: []metav1.OwnerReference{ref("ReplicaSet", "apps/v1", tr.rs.Name, "not-the-uid", false)}},
		Spec: tmpl.Spec,
	})
	if err != nil {
		t.Fatal(err)
	}
	wait.For(t, waitTimeout, "pod with a replaced owner deleted", func() (bool, error) {
		_, err := c.Pods(ns).Get(ctx, p.Name)
		return gone(err)
	})
	for _, p := range tr.pods {
		if _, err := c.Pods(ns).Get(ctx, p.Name); err != nil {
			t.Errorf("pod %s of a live owner: got %v, want it kept", p.Name, err)
		}
	}
}

// TestDanglingReferenceDroppedWhenAnotherOwnerLives: a dependent with a
// live owner is kept; only the reference to the missing owner goes.
func TestDanglingReferenceDroppedWhenAnotherOwnerLives(t *testing.T) {
	ctx, c := startGC(t)
	tr := createTree(t, ctx, c)
	tmpl := podSpec()
	p, err := c.Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: ns,
			OwnerReferences: []metav1.OwnerReference{
				ref("ReplicaSet", "apps/v1", tr.rs.Name, tr.rs.UID, false),
				ref("ReplicaSet", "apps/v1", "missing", "missing-uid", false),
			}},
		Spec: tmpl.Spec,
	})
	if err != nil {
		t.Fatal(err)
	}
	wait.For(t, waitTimeout, "dangling owner reference removed", func() (bool, error) {
		got, err := c.Pods(ns).Get(ctx, p.Name)
		if err != nil {
			return false, err
		}
		return len(got.OwnerReferences) == 1 && got.OwnerReferences[0].UID == tr.rs.UID, nil
	})
}
