package client_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/client/clienttest"
)

// newClient starts a fake server and a client for it. Warnings are
// collected in the returned recorder.
func newClient(t *testing.T) (*client.Client, *clienttest.Server, *warnings) {
	t.Helper()
	srv := clienttest.Start(t)
	w := &warnings{}
	c, err := client.New(client.Config{Server: srv.Addr, Plaintext: true, WarningHandler: w.add, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, srv, w
}

type warnings struct {
	// mu guards msgs.
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) add(msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msg)
}

func (w *warnings) get() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.msgs...)
}

func pod(ns, name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}},
	}
}

func TestCRUD(t *testing.T) {
	c, srv, _ := newClient(t)
	ctx := context.Background()
	pods := c.Pods("default")

	in := pod("", "web-1", map[string]string{"app": "web"})
	created, err := pods.Create(ctx, in)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if created.ResourceVersion == "" || created.UID == "" || created.Namespace != "default" {
		t.Errorf("Create: got rv %q uid %q ns %q, want all set", created.ResourceVersion, created.UID, created.Namespace)
	}
	if !in.GetObjectKind().GroupVersionKind().Empty() || in.ResourceVersion != "" {
		t.Errorf("Create modified its argument: %+v", in.TypeMeta)
	}
	if _, err := pods.Create(ctx, pod("", "db-1", map[string]string{"app": "db"})); err != nil {
		t.Fatalf("Create: %v", err)
	}

	t.Run("create twice", func(t *testing.T) {
		_, err := pods.Create(ctx, in)
		if !apierrors.IsAlreadyExists(err) {
			t.Errorf("got %v, want AlreadyExists", err)
		}
	})

	t.Run("get", func(t *testing.T) {
		got, err := pods.Get(ctx, "web-1")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if got.UID != created.UID || got.Spec.Containers[0].Image != "busybox" {
			t.Errorf("got %+v, want %+v", got, created)
		}
		if _, err := pods.Get(ctx, "nope"); !apierrors.IsNotFound(err) {
			t.Errorf("Get missing: got %v, want NotFound", err)
		}
	})

	t.Run("list", func(t *testing.T) {
		tests := []struct {
			selector string
			want     []string
		}{
			{"", []string{"db-1", "web-1"}},
			{"app=web", []string{"web-1"}},
			{"app=none", nil},
		}
		for _, tt := range tests {
			t.Run(tt.selector, func(t *testing.T) {
				list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: tt.selector})
				if err != nil {
					t.Fatalf("List: %v", err)
				}
				var names []string
				for _, p := range list.Items {
					names = append(names, p.Name)
				}
				if !reflect.DeepEqual(names, tt.want) {
					t.Errorf("got %v, want %v", names, tt.want)
				}
				if list.ResourceVersion == "" {
					t.Errorf("list has no resourceVersion")
				}
			})
		}
	})

	t.Run("update is compare-and-swap", func(t *testing.T) {
		cur, err := pods.Get(ctx, "web-1")
		if err != nil {
			t.Fatal(err)
		}
		changed := cur.DeepCopy()
		changed.Labels["tier"] = "front"
		updated, err := pods.Update(ctx, changed)
		if err != nil {
			t.Fatalf("Update: %v", err)
		}
		if updated.ResourceVersion == cur.ResourceVersion {
			t.Errorf("resourceVersion did not change")
		}
		stale := cur.DeepCopy()
		stale.Labels["tier"] = "back"
		if _, err := pods.Update(ctx, stale); !apierrors.IsConflict(err) {
			t.Errorf("stale Update: got %v, want Conflict", err)
		}
	})

	t.Run("update status", func(t *testing.T) {
		cur, err := pods.Get(ctx, "web-1")
		if err != nil {
			t.Fatal(err)
		}
		cur.Status.Phase = corev1.PodRunning
		got, err := pods.UpdateStatus(ctx, cur)
		if err != nil {
			t.Fatalf("UpdateStatus: %v", err)
		}
		if got.Status.Phase != corev1.PodRunning {
			t.Errorf("phase: got %q, want Running", got.Status.Phase)
		}
		if reqs := srv.Requests(); reqs[len(reqs)-1] != "Update pods default/web-1/status" {
			t.Errorf("request: got %q, want the status subresource", reqs[len(reqs)-1])
		}
		if _, err := c.Events("default").UpdateStatus(ctx, &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "x"}}); err == nil ||
			!strings.Contains(err.Error(), `no "status" subresource`) {
			t.Errorf("events UpdateStatus: got %v, want a missing subresource error", err)
		}
	})

	t.Run("patch", func(t *testing.T) {
		got, err := pods.Patch(ctx, "web-1", types.MergePatchType, []byte(`{"metadata":{"labels":{"patched":"yes"}}}`))
		if err != nil {
			t.Fatalf("Patch: %v", err)
		}
		if got.Labels["patched"] != "yes" || got.Labels["app"] != "web" {
			t.Errorf("labels: got %v", got.Labels)
		}
	})

	t.Run("delete", func(t *testing.T) {
		opts := metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationForeground)}
		if err := pods.Delete(ctx, "db-1", opts); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if got := srv.LastDeleteOptions().PropagationPolicy; got == nil || *got != metav1.DeletePropagationForeground {
			t.Errorf("propagation policy: got %v, want Foreground", got)
		}
		if _, err := pods.Get(ctx, "db-1"); !apierrors.IsNotFound(err) {
			t.Errorf("Get after Delete: got %v, want NotFound", err)
		}
		if err := pods.Delete(ctx, "db-1", metav1.DeleteOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("Delete twice: got %v, want NotFound", err)
		}
	})
}

func TestNamespaces(t *testing.T) {
	c, srv, _ := newClient(t)
	ctx := context.Background()
	all := c.Pods("")
	if _, err := all.Create(ctx, pod("team-a", "p", nil)); err != nil {
		t.Fatalf("Create with the object's namespace: %v", err)
	}
	if _, err := c.Pods("team-b").Create(ctx, pod("", "p", nil)); err != nil {
		t.Fatalf("Create with the client's namespace: %v", err)
	}
	list, err := all.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 2 {
		t.Errorf("list across namespaces: got %d pods, want 2", len(list.Items))
	}
	if _, err := c.Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Namespace: "ignored"}}); err != nil {
		t.Fatal(err)
	}
	// A Create names only the namespace; the name is in the object.
	want := []string{"Create pods team-a/", "Create pods team-b/", "List pods /", "Create nodes /"}
	if got := srv.Requests(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests: got %q, want %q", got, want)
	}
}

func TestBind(t *testing.T) {
	c, _, _ := newClient(t)
	ctx := context.Background()
	pods := c.Pods("default")
	if _, err := pods.Create(ctx, pod("", "web-1", nil)); err != nil {
		t.Fatal(err)
	}
	binding := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1"},
		Target:     corev1.ObjectReference{Kind: "Node", Name: "node-1"},
	}
	if err := pods.Bind(ctx, binding); err != nil {
		t.Fatalf("Bind: %v", err)
	}
	got, err := pods.Get(ctx, "web-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.NodeName != "node-1" {
		t.Errorf("nodeName: got %q, want node-1", got.Spec.NodeName)
	}
	if err := pods.Bind(ctx, binding); !apierrors.IsConflict(err) {
		t.Errorf("second Bind: got %v, want Conflict", err)
	}
}

func TestScale(t *testing.T) {
	c, srv, _ := newClient(t)
	ctx := context.Background()
	deploys := c.Deployments("default")
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1)}}
	if _, err := deploys.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	scale, err := deploys.GetScale(ctx, "web")
	if err != nil {
		t.Fatalf("GetScale: %v", err)
	}
	if scale.Spec.Replicas != 1 {
		t.Errorf("replicas: got %d, want 1", scale.Spec.Replicas)
	}
	scale.Spec.Replicas = 3
	got, err := deploys.UpdateScale(ctx, "web", scale)
	if err != nil {
		t.Fatalf("UpdateScale: %v", err)
	}
	if got.Spec.Replicas != 3 {
		t.Errorf("replicas after UpdateScale: got %d, want 3", got.Spec.Replicas)
	}
	if _, err := deploys.UpdateScale(ctx, "web", scale); !apierrors.IsConflict(err) {
		t.Errorf("stale UpdateScale: got %v, want Conflict", err)
	}

	before := len(srv.Requests())
	_, err = c.Pods("default").GetScale(ctx, "web")
	if err == nil || !strings.Contains(err.Error(), `"pods" has no "scale" subresource`) {
		t.Errorf("pods GetScale: got %v, want a missing subresource error", err)
	}
	if _, err := c.Services("default").UpdateScale(ctx, "web", &autoscalingv1.Scale{}); err == nil {
		t.Errorf("services UpdateScale: got nil error")
	}
	if after := len(srv.Requests()); after != before {
		t.Errorf("a request for a missing subresource reached the server")
	}
}

func TestUntyped(t *testing.T) {
	c, srv, w := newClient(t)
	srv.Warnings = []string{"spec.foo is not implemented by Skiff yet"}
	ctx := context.Background()

	if _, err := c.Untyped(schema.GroupResource{Resource: "widgets"}, ""); err == nil {
		t.Errorf("unknown resource: got nil error")
	}
	deploys, err := c.Untyped(schema.GroupResource{Group: "apps", Resource: "deployments"}, "")
	if err != nil {
		t.Fatal(err)
	}

	manifest := `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: prod
spec:
  replicas: 2
`
	obj, warns, err := deploys.Create(ctx, []byte(manifest), client.YAML, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Create YAML: %v", err)
	}
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		t.Fatalf("Create returned %T, want *appsv1.Deployment", obj)
	}
	if d.Namespace != "prod" || *d.Spec.Replicas != 2 {
		t.Errorf("got namespace %q replicas %d, want prod 2", d.Namespace, *d.Spec.Replicas)
	}
	if want := srv.Warnings; !reflect.DeepEqual(warns, want) || !reflect.DeepEqual(w.get(), want) {
		t.Errorf("warnings: returned %q, handled %q, want %q", warns, w.get(), want)
	}

	update := fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"prod","resourceVersion":%q},"spec":{"replicas":5}}`, d.ResourceVersion)
	obj, _, err = deploys.Update(ctx, []byte(update), client.JSON, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("Update JSON: %v", err)
	}
	if got := *obj.(*appsv1.Deployment).Spec.Replicas; got != 5 {
		t.Errorf("replicas: got %d, want 5", got)
	}

	_, _, err = deploys.Create(ctx, []byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"x","namespace":"prod"},"spec":{"replicaz":1}}`), client.JSON, metav1.CreateOptions{})
	if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "replicaz") {
		t.Errorf("unknown field: got %v, want a BadRequest naming the field", err)
	}
	if _, _, err := deploys.Update(ctx, []byte(`{"metadata":{}}`), client.JSON, metav1.UpdateOptions{}); !apierrors.IsBadRequest(err) {
		t.Errorf("Update without a name: got %v, want BadRequest", err)
	}
}

func TestDefaultWarningHandler(t *testing.T) {
	var buf bytes.Buffer
	client.WarningsTo(&buf)("spec.foo is ignored")
	if got, want := buf.String(), "Warning: spec.foo is ignored\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestServerDown(t *testing.T) {
	// A port that was free a moment ago: nothing listens there.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()

	// No certificates are needed: there is no server to shake hands with.
	c, err := client.New(client.Config{Server: "https://" + addr, TLS: &tls.Config{}})
	if err != nil {
		t.Fatalf("New must not dial: %v", err)
	}
	defer c.Close()
	_, err = c.Nodes().Get(context.Background(), "n1")
	if !apierrors.IsServiceUnavailable(err) {
		t.Errorf("got %v, want ServiceUnavailable", err)
	}
}

func TestMessageSizeLimit(t *testing.T) {
	srv := clienttest.Start(t)
	c, err := client.New(client.Config{Server: srv.Addr, Plaintext: true, MaxMessageSize: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for i := range 20 {
		p := pod("default", fmt.Sprintf("pod-%d", i), map[string]string{"padding": strings.Repeat("x", 60)})
		if _, err := c.Pods("default").Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	_, err = c.Pods("").List(ctx, metav1.ListOptions{})
	if !apierrors.IsRequestEntityTooLargeError(err) {
		t.Errorf("got %v, want RequestEntityTooLarge", err)
	}
}

func TestDeadline(t *testing.T) {
	c, _, _ := newClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Nodes().Get(ctx, "n1")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: got %v, want context.Canceled", err)
	}
	ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	_, err = c.Nodes().Get(ctx, "n1")
	if !apierrors.IsTimeout(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("expired context: got %v, want a Timeout matching context.DeadlineExceeded", err)
	}
}

func TestVersion(t *testing.T) {
	c, _, _ := newClient(t)
	v, err := c.Version(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != "v0.0.0-test" || v.GoVersion == "" {
		t.Errorf("got %+v", v)
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		server  string
		wantErr string // part of the error; "" for none
	}{
		{"127.0.0.1:6443", ""},
		{"https://127.0.0.1:6443", ""},
		{"https://127.0.0.1:6443/", ""},
		{"unix:///run/skiff.sock", ""},
		{"", "server address is required"},
		{"http://127.0.0.1:6443/", "the API is served only over TLS, use https://"},
	}
	for _, tt := range tests {
		t.Run(tt.server, func(t *testing.T) {
			// The address alone decides: a TLS configuration is given.
			c, err := client.New(client.Config{Server: tt.server, TLS: &tls.Config{}})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
			}
			if c != nil {
				c.Close()
			}
		})
	}
}

func TestResourcePanicsOnWrongList(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Errorf("no panic for a mismatched list type")
		}
	}()
	client.Resource[*corev1.Pod, *corev1.NodeList](nil, "")
}
