package serviceaccount

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/apiserver"
	"github.com/skiffdev/skiff/apiserver/auth"
	"github.com/skiffdev/skiff/controllers/controller"
	"github.com/skiffdev/skiff/internal/events"
	"github.com/skiffdev/skiff/internal/informers"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/testenv"
)

const waitTimeout = 20 * time.Second

// startController runs the controller against cl as the controller
// manager, so that what it may do is tested too; the test acts as the
// administrator.
func startController(cl *testenv.Cluster) *Controller {
	cl.T.Helper()
	cc := cl.ClientAs(auth.ControllersUser)
	f := informers.NewFactory(cc, time.Minute)
	rec := events.NewRecorder(logging.Into(cl.Ctx, cl.Log), cc, "controllers")
	sc, err := New(controller.Deps{Client: cc, Informers: f, Recorder: rec}, DefaultConfig())
	if err != nil {
		cl.T.Fatal(err)
	}
	cl.Start("serviceaccount controller", func(ctx context.Context) error {
		f.Start(ctx)
		sc.Run(ctx)
		f.Wait()
		rec.Stop()
		return nil
	})
	return sc
}

func getDefault(cl *testenv.Cluster, ns string) (*corev1.ServiceAccount, bool, error) {
	sa, err := cl.Client.ServiceAccounts(ns).Get(cl.Ctx, DefaultName)
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	return sa, err == nil, err
}

func awaitDefault(cl *testenv.Cluster, ns string) *corev1.ServiceAccount {
	cl.T.Helper()
	var sa *corev1.ServiceAccount
	cl.Await(waitTimeout, "service account default in namespace "+ns, func() (bool, error) {
		var ok bool
		var err error
		sa, ok, err = getDefault(cl, ns)
		return ok, err
	})
	return sa
}

// TestDefaultServiceAccount: every namespace, the system ones and new
// ones, gets "default"; a deleted one is made again; a namespace being
// deleted gets none.
func TestDefaultServiceAccount(t *testing.T) {
	cl := testenv.NewCluster(t)
	sc := startController(cl)

	for _, ns := range apiserver.SystemNamespaces {
		awaitDefault(cl, ns)
	}

	if _, err := cl.Client.Namespaces().Create(cl.Ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}); err != nil {
		t.Fatal(err)
	}
	first := awaitDefault(cl, "team")

	// Deleted, it is made again: a new object.
	if err := cl.Client.ServiceAccounts("team").Delete(cl.Ctx, DefaultName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	cl.Await(waitTimeout, "service account default made again", func() (bool, error) {
		sa, ok, err := getDefault(cl, "team")
		return ok && sa.UID != first.UID, err
	})

	// A pod of the namespace runs as it.
	pod, err := cl.Client.Pods("team").Create(cl.Ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "team"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if pod.Spec.ServiceAccountName != DefaultName {
		t.Errorf("pod runs as %q, want %q", pod.Spec.ServiceAccountName, DefaultName)
	}

	// A namespace being deleted (no namespace controller runs here, so it
	// stays Terminating) gets none: its service account, deleted, stays
	// deleted.
	if err := cl.Client.Namespaces().Delete(cl.Ctx, "team", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cl.Client.ServiceAccounts("team").Delete(cl.Ctx, DefaultName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	cl.Await(waitTimeout, "the controller's caches showing namespace team terminating, without its service account", func() (bool, error) {
		item, exists, err := sc.namespaces.GetIndexer().GetByKey("team")
		if err != nil || !exists {
			return false, err
		}
		_, saCached, err := sc.serviceAccounts.GetIndexer().GetByKey("team/" + DefaultName)
		return item.(*corev1.Namespace).DeletionTimestamp != nil && !saCached, err
	})
	if _, err := sc.Reconcile(cl.Ctx, "team"); err != nil {
		t.Errorf("Reconcile of a terminating namespace: %v", err)
	}
	// A namespace made afterwards is a marker: once it has its service
	// account, the controller has been through its queue.
	if _, err := cl.Client.Namespaces().Create(cl.Ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "marker"}}); err != nil {
		t.Fatal(err)
	}
	awaitDefault(cl, "marker")
	if _, ok, err := getDefault(cl, "team"); ok || err != nil {
		t.Errorf("a namespace being deleted got a service account (found %v, %v)", ok, err)
	}
}

// TestTerminatingRefusalIsNotAnError: the create that races a namespace's
// deletion is refused with Kubernetes' NamespaceTerminating cause, which
// the controller takes as the namespace going away.
func TestTerminatingRefusalIsNotAnError(t *testing.T) {
	cl := testenv.NewCluster(t)
	if _, err := cl.Client.Namespaces().Create(cl.Ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "going"}}); err != nil {
		t.Fatal(err)
	}
	if err := cl.Client.Namespaces().Delete(cl.Ctx, "going", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := cl.Client.ServiceAccounts("going").Create(cl.Ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: DefaultName, Namespace: "going"}})
	if !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
		t.Fatalf("create in a terminating namespace: %v, want Forbidden with cause %s", err, corev1.NamespaceTerminatingCause)
	}

	// Reconcile with a cache that still shows the namespace Active.
	cc := cl.ClientAs(auth.ControllersUser)
	f := informers.NewFactory(cc, time.Minute)
	rec := events.NewRecorder(cl.Ctx, cc, "controllers")
	t.Cleanup(rec.Stop)
	sc, err := New(controller.Deps{Client: cc, Informers: f, Recorder: rec}, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	stale := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "going"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
	if err := sc.namespaces.GetIndexer().Add(stale); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.Reconcile(cl.Ctx, "going"); err != nil {
		t.Errorf("Reconcile racing the namespace's deletion: %v, want nil", err)
	}
}
