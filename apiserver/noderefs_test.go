package apiserver_test

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiffdev/skiff/apiserver/auth"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
)

// TestNodeReadsOnlyWhatItsPodsUse plays node a, through a real API
// server, against the ConfigMaps and Secrets of its own pod and of node
// b's: it may get, list and watch its pod's by name, and nothing else —
// not b's, not a list of them all.
func TestNodeReadsOnlyWhatItsPodsUse(t *testing.T) {
	srv := testenv.StartServer(t)
	ctx := testenv.Context(t)
	admin := testenv.NewClient(t, srv)
	nodeA := testenv.NewClientAs(t, srv, "system:node:a", auth.NodesGroup)
	for _, name := range []string{"for-a", "for-b"} {
		if _, err := admin.ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"k": "v"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.Secrets("default").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string][]byte{"k": []byte("v")}}); err != nil {
			t.Fatal(err)
		}
	}
	pod := func(name, node, uses string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: corev1.PodSpec{
				NodeName: node,
				Containers: []corev1.Container{{Name: "c", Image: "busybox",
					EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: uses}}}}}},
				Volumes: []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: uses}}}},
			},
		}
	}
	for _, p := range []*corev1.Pod{pod("on-a", "a", "for-a"), pod("on-b", "b", "for-b")} {
		if _, err := admin.Pods("default").Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	byName := func(name string) metav1.ListOptions {
		return metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()}
	}

	// The authorizer answers from the pod watch cache, which may lag
	// the create by a moment.
	wait.For(t, 10*time.Second, "node a to read its pod's secret", func() (bool, error) {
		_, err := nodeA.Secrets("default").Get(ctx, "for-a")
		if apierrors.IsForbidden(err) {
			return false, err
		}
		return err == nil, err
	})

	t.Run("its pod's objects, by name", func(t *testing.T) {
		if _, err := nodeA.ConfigMaps("default").Get(ctx, "for-a"); err != nil {
			t.Errorf("get configmap: %v", err)
		}
		list, err := nodeA.Secrets("default").List(ctx, byName("for-a"))
		if err != nil || len(list.Items) != 1 || list.Items[0].Name != "for-a" {
			t.Errorf("list secrets by name: got %v, %v; want for-a alone", list, err)
		}
		w, err := nodeA.ConfigMaps("default").Watch(ctx, byName("for-a"))
		if err != nil {
			t.Fatalf("watch configmap by name: %v", err)
		}
		defer w.Stop()
		cm, err := admin.ConfigMaps("default").Get(ctx, "for-a")
		if err != nil {
			t.Fatal(err)
		}
		cm.Data["k"] = "changed"
		if _, err := admin.ConfigMaps("default").Update(ctx, cm); err != nil {
			t.Fatal(err)
		}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				t.Fatalf("watch: %v", apierrors.FromObject(ev.Object))
			}
			if got, ok := ev.Object.(*corev1.ConfigMap); ok && got.Data["k"] == "changed" {
				return
			}
		}
		t.Error("the watch ended before the change")
	})

	forbidden := func(t *testing.T, what string, err error, want string) {
		t.Helper()
		if !apierrors.IsForbidden(err) || err.Error() != want {
			t.Errorf("%s: got %v, want %s", what, err, want)
		}
	}
	t.Run("another node's pod's objects", func(t *testing.T) {
		_, err := nodeA.Secrets("default").Get(ctx, "for-b")
		forbidden(t, "get", err, `secrets "for-b" is forbidden: User "system:node:a" cannot get resource "secrets" in API group "" in the namespace "default": no relationship found between node 'a' and this object`)
		_, err = nodeA.ConfigMaps("default").List(ctx, byName("for-b"))
		forbidden(t, "list by name", err, `configmaps "for-b" is forbidden: User "system:node:a" cannot list resource "configmaps" in API group "" in the namespace "default": no relationship found between node 'a' and this object`)
		w, err := nodeA.Secrets("default").Watch(ctx, byName("for-b"))
		if err == nil {
			ev, ok := <-w.ResultChan()
			w.Stop()
			if ok && ev.Type == watch.Error {
				err = apierrors.FromObject(ev.Object)
			}
		}
		if !apierrors.IsForbidden(err) {
			t.Errorf("watch by name: got %v, want Forbidden", err)
		}
	})
	t.Run("a list of them all", func(t *testing.T) {
		_, err := nodeA.Secrets("default").List(ctx, metav1.ListOptions{})
		forbidden(t, "list secrets", err, `secrets is forbidden: User "system:node:a" cannot list resource "secrets" in API group "" in the namespace "default": No Object name found`)
		_, err = nodeA.Secrets("").List(ctx, metav1.ListOptions{})
		forbidden(t, "list all secrets", err, `secrets is forbidden: User "system:node:a" cannot list resource "secrets" in API group "" at the cluster scope: No Object name found`)
		// One name in every namespace would be that name's objects
		// everywhere, not only the one its pod uses.
		_, err = nodeA.Secrets("").List(ctx, byName("for-a"))
		forbidden(t, "list one name in every namespace", err, `secrets "for-a" is forbidden: User "system:node:a" cannot list resource "secrets" in API group "" at the cluster scope: can only read namespaced object by name`)
		_, err = nodeA.ConfigMaps("default").List(ctx, metav1.ListOptions{FieldSelector: "metadata.name!=for-b"})
		forbidden(t, "list by a selector that names no object", err, `configmaps is forbidden: User "system:node:a" cannot list resource "configmaps" in API group "" in the namespace "default": No Object name found`)
	})
	t.Run("once the pod is gone, its objects are not the node's", func(t *testing.T) {
		if err := admin.Pods("default").Delete(ctx, "on-a", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
			t.Fatal(err)
		}
		wait.For(t, 10*time.Second, "node a to lose the secret", func() (bool, error) {
			_, err := nodeA.Secrets("default").Get(ctx, "for-a")
			return apierrors.IsForbidden(err), nil
		})
	})
}
