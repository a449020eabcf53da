package apiserver_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/skiffdev/skiff/apiserver"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
)

func labels(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func podSpec() corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27"}}}
}

func newPod(name string, l map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: l}, Spec: podSpec()}
}

func newDeployment(name string, replicas int32) *appsv1.Deployment {
	l := labels("app", name)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: l},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: l}, Spec: podSpec()},
		},
	}
}

// crudCase exercises create, get, list, update and delete of one resource.
type crudCase struct {
	name   string
	create func(c *client.Client) (runtime.Object, error)
	get    func(c *client.Client, name string) (runtime.Object, error)
	list   func(c *client.Client) (runtime.Object, error)
	update func(c *client.Client, obj runtime.Object) (runtime.Object, error)
	delete func(c *client.Client, name string) error
}

func TestCRUDEveryResource(t *testing.T) {
	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	touch := func(obj runtime.Object) runtime.Object {
		m, _ := meta.Accessor(obj)
		m.SetLabels(labels("touched", "yes"))
		return obj
	}
	cases := []crudCase{
		{
			name: "namespaces",
			create: func(c *client.Client) (runtime.Object, error) {
				return c.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}})
			},
			get:  func(c *client.Client, n string) (runtime.Object, error) { return c.Namespaces().Get(ctx, n) },
			list: func(c *client.Client) (runtime.Object, error) { return c.Namespaces().List(ctx, metav1.ListOptions{}) },
			update: func(c *client.Client, o runtime.Object) (runtime.Object, error) {
				return c.Namespaces().Update(ctx, touch(o).(*corev1.Namespace))
			},
			delete: nil, // namespaces wait for their finalizer; see TestNamespaceRules
		},
		{
			name: "nodes",
			create: func(c *client.Client) (runtime.Object, error) {
				return c.Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}})
			},
			get:  func(c *client.Client, n string) (runtime.Object, error) { return c.Nodes().Get(ctx, n) },
			list: func(c *client.Client) (runtime.Object, error) { return c.Nodes().List(ctx, metav1.ListOptions{}) },
			update: func(c *client.Client, o runtime.Object) (runtime.Object, error) {
				return c.Nodes().Update(ctx, touch(o).(*corev1.Node))
			},
			delete: func(c *client.Client, n string) error { return c.Nodes().Delete(ctx, n, metav1.DeleteOptions{}) },
		},
		{
			name: "pods",
			create: func(c *client.Client) (runtime.Object, error) {
				return c.Pods("default").Create(ctx, newPod("web-1", nil))
			},
			get: func(c *client.Client, n string) (runtime.Object, error) { return c.Pods("default").Get(ctx, n) },
			list: func(c *client.Client) (runtime.Object, error) {
				return c.Pods("default").List(ctx, metav1.ListOptions{})
			},
			update: func(c *client.Client, o runtime.Object) (runtime.Object, error) {
				return c.Pods("default").Update(ctx, touch(o).(*corev1.Pod))
			},
			delete: func(c *client.Client, n string) error {
				return c.Pods("default").Delete(ctx, n, metav1.DeleteOptions{})
			},
		},
		{
			name: "services",
			create: func(c *client.Client) (runtime.Object, error) {
				return c.Services("default").Create(ctx, &corev1.Service{
					ObjectMeta: metav1.ObjectMeta{Name: "web"},
					Spec:       corev1.ServiceSpec{Selector: labels("app", "web"), Ports: []corev1.ServicePort{{Port: 80}}},
				})
			},
			get: func(c *client.Client, n string) (runtime.Object, error) { return c.Services("default").Get(ctx, n) },
			list: func(c *client.Client) (runtime.Object, error) {
				return c.Services("default").List(ctx, metav1.ListOptions{})
			},
			update: func(c *client.Client, o runtime.Object) (runtime.Object, error) {
				return c.Services("default").Update(ctx, touch(o).(*corev1.Service))
			},
			delete: func(c *client.Client, n string) error {
				return c.Services("default").Delete(ctx, n, metav1.DeleteOptions{})
			},
		},
		{
			name: "deployments",
			create: func(c *client.Client) (runtime.Object, error) {
				return c.Deployments("default").Create(ctx, newDeployment("web", 2))
			},
			get: func(c *client.Client, n string) (runtime.Object, error) { return c.Deployments("default").Get(ctx, n) },
			list: func(c *client.Client) (runtime.Object, error) {
				return c.Deployments("default").List(ctx, metav1.ListOptions{})
			},
			update: func(c *client.Client, o runtime.Object) (runtime.Object, error) {
				return c.Deployments("default").Update(ctx, touch(o).(*appsv1.Deployment))
			},
			delete: func(c *client.Client, n string) error {
				return c.Deployments("default").Delete(ctx, n, metav1.DeleteOptions{})
			},
		},
		{
			name: "replicasets",
			create: func(c *client.Client) (runtime.Object, error) {
				d := newDeployment("web-rs", 1)
				return c.ReplicaSets("default").Create(ctx, &appsv1.ReplicaSet{ObjectMeta: d.ObjectMeta,
					Spec: appsv1.ReplicaSetSpec{Replicas: d.Spec.Replicas, Selector: d.Spec.Selector, Template: d.Spec.Template}})
			},
			get: func(c *client.Client, n string) (runtime.Object, error) { return c.ReplicaSets("default").Get(ctx, n) },
			list: func(c *client.Client) (runtime.Object, error) {
				return c.ReplicaSets("default").List(ctx, metav1.ListOptions{})
			},
			update: func(c *client.Client, o runtime.Object) (runtime.Object, error) {
				return c.ReplicaSets("default").Update(ctx, touch(o).(*appsv1.ReplicaSet))
			},
			delete: func(c *client.Client, n string) error {
				return c.ReplicaSets("default").Delete(ctx, n, metav1.DeleteOptions{})
			},
		},
		{
			name: "endpointslices",
			create: func(c *client.Client) (runtime.Object, error) {
				return c.EndpointSlices("default").Create(ctx, &discoveryv1.EndpointSlice{
					ObjectMeta:  metav1.ObjectMeta{Name: "web-abc"},
					AddressType: discoveryv1.AddressTypeIPv4,
					Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.1.5"}}},
					Ports:       []discoveryv1.EndpointPort{{Port: ptr.To[int32](80)}},
				})
			},
			get: func(c *client.Client, n string) (runtime.Object, error) {
				return c.EndpointSlices("default").Get(ctx, n)
			},
			list: func(c *client.Client) (runtime.Object, error) {
				return c.EndpointSlices("default").List(ctx, metav1.ListOptions{})
			},
			update: func(c *client.Client, o runtime.Object) (runtime.Object, error) {
				return c.EndpointSlices("default").Update(ctx, touch(o).(*discoveryv1.EndpointSlice))
			},
			delete: func(c *client.Client, n string) error {
				return c.EndpointSlices("default").Delete(ctx, n, metav1.DeleteOptions{})
			},
		},
		{
			name: "leases",
			create: func(c *client.Client) (runtime.Object, error) {
				return c.Leases("kube-node-lease").Create(ctx, &coordinationv1.Lease{
					ObjectMeta: metav1.ObjectMeta{Name: "node-1"},
					Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To("node-1"), LeaseDurationSeconds: ptr.To[int32](40)},
				})
			},
			get: func(c *client.Client, n string) (runtime.Object, error) {
				return c.Leases("kube-node-lease").Get(ctx, n)
			},
			list: func(c *client.Client) (runtime.Object, error) {
				return c.Leases("kube-node-lease").List(ctx, metav1.ListOptions{})
			},
			update: func(c *client.Client, o runtime.Object) (runtime.Object, error) {
				return c.Leases("kube-node-lease").Update(ctx, touch(o).(*coordinationv1.Lease))
			},
			delete: func(c *client.Client, n string) error {
				return c.Leases("kube-node-lease").Delete(ctx, n, metav1.DeleteOptions{})
			},
		},
		{
			name: "events",
			create: func(c *client.Client) (runtime.Object, error) {
				return c.Events("default").Create(ctx, &corev1.Event{
					ObjectMeta:     metav1.ObjectMeta{Name: "web-1.1"},
					InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-1"},
					Reason:         "Scheduled", Message: "Successfully assigned default/web-1 to node-1", Type: corev1.EventTypeNormal,
				})
			},
			get: func(c *client.Client, n string) (runtime.Object, error) { return c.Events("default").Get(ctx, n) },
			list: func(c *client.Client) (runtime.Object, error) {
				return c.Events("default").List(ctx, metav1.ListOptions{})
			},
			update: func(c *client.Client, o runtime.Object) (runtime.Object, error) {
				return c.Events("default").Update(ctx, touch(o).(*corev1.Event))
			},
			delete: func(c *client.Client, n string) error {
				return c.Events("default").Delete(ctx, n, metav1.DeleteOptions{})
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			created, err := tc.create(c)
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			m, _ := meta.Accessor(created)
			if m.GetUID() == "" || m.GetResourceVersion() == "" || m.GetCreationTimestamp().Time.IsZero() || m.GetGeneration() != 1 {
				t.Fatalf("created object lacks server metadata: uid=%q rv=%q created=%v generation=%d",
					m.GetUID(), m.GetResourceVersion(), m.GetCreationTimestamp(), m.GetGeneration())
			}
			if _, err := tc.create(c); !apierrors.IsAlreadyExists(err) {
				t.Fatalf("second create: got %v, want AlreadyExists", err)
			}
			got, err := tc.get(c, m.GetName())
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			gm, _ := meta.Accessor(got)
			if gm.GetUID() != m.GetUID() || gm.GetResourceVersion() != m.GetResourceVersion() {
				t.Fatalf("get: got uid %s rv %s, want %s %s", gm.GetUID(), gm.GetResourceVersion(), m.GetUID(), m.GetResourceVersion())
			}
			list, err := tc.list(c)
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			if n := meta.LenList(list); n < 1 {
				t.Fatalf("list: got %d items, want at least 1", n)
			}
			updated, err := tc.update(c, got)
			if err != nil {
				t.Fatalf("update: %v", err)
			}
			um, _ := meta.Accessor(updated)
			if um.GetLabels()["touched"] != "yes" || um.GetResourceVersion() == m.GetResourceVersion() {
				t.Fatalf("update: labels %v rv %s (was %s)", um.GetLabels(), um.GetResourceVersion(), m.GetResourceVersion())
			}
			if tc.delete == nil {
				return
			}
			if err := tc.delete(c, m.GetName()); err != nil {
				t.Fatalf("delete: %v", err)
			}
			if _, err := tc.get(c, m.GetName()); !apierrors.IsNotFound(err) {
				t.Fatalf("get after delete: got %v, want NotFound", err)
			}
		})
	}
}

func TestConflictAndGeneration(t *testing.T) {
	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	deps := c.Deployments("default")

	d, err := deps.Create(ctx, newDeployment("web", 1))
	if err != nil {
		t.Fatal(err)
	}
	stale := d.DeepCopy()

	// A spec change bumps generation.
	d.Spec.Replicas = ptr.To[int32](3)
	d, err = deps.Update(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if d.Generation != 2 {
		t.Fatalf("generation after spec change: got %d, want 2", d.Generation)
	}

	// A write based on an old resourceVersion is a Conflict.
	stale.Spec.Replicas = ptr.To[int32](5)
	if _, err := deps.Update(ctx, stale); !apierrors.IsConflict(err) {
		t.Fatalf("stale update: got %v, want Conflict", err)
	}

	// A status change does not bump generation, and the main resource
	// cannot change status.
	d.Status.ObservedGeneration = 2
	d.Status.Replicas = 3
	d, err = deps.UpdateStatus(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if d.Generation != 2 || d.Status.Replicas != 3 {
		t.Fatalf("after status update: generation %d status.replicas %d, want 2 and 3", d.Generation, d.Status.Replicas)
	}
	d.Status.Replicas = 99
	d.Labels = labels("tier", "front")
	d, err = deps.Update(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status.Replicas != 3 || d.Generation != 2 || d.Labels["tier"] != "front" {
		t.Fatalf("main update: status.replicas %d generation %d labels %v; want status kept at 3, generation 2, label set", d.Status.Replicas, d.Generation, d.Labels)
	}
	// The status subresource ignores spec changes.
	d.Spec.Replicas = ptr.To[int32](7)
	d, err = deps.UpdateStatus(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if *d.Spec.Replicas != 3 {
		t.Fatalf("status update changed spec.replicas to %d", *d.Spec.Replicas)
	}
}

func TestPatchTypes(t *testing.T) {
	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	deps := c.Deployments("default")
	if _, err := deps.Create(ctx, newDeployment("web", 1)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		pt    types.PatchType
		patch string
		check func(*appsv1.Deployment) error
	}{
		{"merge", types.MergePatchType, `{"spec":{"replicas":4},"metadata":{"labels":{"a":"1"}}}`, func(d *appsv1.Deployment) error {
			if *d.Spec.Replicas != 4 || d.Labels["a"] != "1" {
				return fmt.Errorf("replicas %d labels %v", *d.Spec.Replicas, d.Labels)
			}
			return nil
		}},
		{"strategic merges containers by name", types.StrategicMergePatchType,
			`{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox:1.36"}]}}}}`, func(d *appsv1.Deployment) error {
				if n := len(d.Spec.Template.Spec.Containers); n != 2 {
					return fmt.Errorf("got %d containers, want 2 (strategic merge keeps app and adds sidecar)", n)
				}
				return nil
			}},
		{"json patch", types.JSONPatchType, `[{"op":"replace","path":"/spec/replicas","value":6}]`, func(d *appsv1.Deployment) error {
			if *d.Spec.Replicas != 6 {
				return fmt.Errorf("replicas %d", *d.Spec.Replicas)
			}
			return nil
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := deps.Patch(ctx, "web", tc.pt, []byte(tc.patch))
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.check(d); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("status subresource", func(t *testing.T) {
		d, err := deps.Patch(ctx, "web", types.MergePatchType, []byte(`{"status":{"replicas":6}}`), "status")
		if err != nil {
			t.Fatal(err)
		}
		if d.Status.Replicas != 6 {
			t.Fatalf("status.replicas %d, want 6", d.Status.Replicas)
		}
	})
	t.Run("unknown field in patch", func(t *testing.T) {
		_, err := deps.Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"replica":4}}`))
		if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), `unknown field "spec.replica"`) {
			t.Fatalf("got %v, want BadRequest naming spec.replica", err)
		}
	})
	t.Run("invalid result", func(t *testing.T) {
		_, err := deps.Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"replicas":-1}}`))
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.replicas") {
			t.Fatalf("got %v, want Invalid on spec.replicas", err)
		}
	})
}

func TestScaleAndBinding(t *testing.T) {
	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	if _, err := c.Deployments("default").Create(ctx, newDeployment("web", 1)); err != nil {
		t.Fatal(err)
	}
	sc, err := c.Deployments("default").GetScale(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if sc.Spec.Replicas != 1 || sc.Status.Selector != "app=web" {
		t.Fatalf("scale: replicas %d selector %q", sc.Spec.Replicas, sc.Status.Selector)
	}
	sc.Spec.Replicas = 5
	if _, err := c.Deployments("default").UpdateScale(ctx, "web", sc); err != nil {
		t.Fatal(err)
	}
	d, _ := c.Deployments("default").Get(ctx, "web")
	if *d.Spec.Replicas != 5 || d.Generation != 2 {
		t.Fatalf("after scale: replicas %d generation %d, want 5 and 2", *d.Spec.Replicas, d.Generation)
	}
	sc.Spec.Replicas = 6 // sc carries the old resourceVersion
	if _, err := c.Deployments("default").UpdateScale(ctx, "web", sc); !apierrors.IsConflict(err) {
		t.Fatalf("stale scale: got %v, want Conflict", err)
	}

	pods := c.Pods("default")
	if _, err := pods.Create(ctx, newPod("p", nil)); err != nil {
		t.Fatal(err)
	}
	bind := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Target: corev1.ObjectReference{Kind: "Node", Name: "node-1"}}
	if err := pods.Bind(ctx, bind); err != nil {
		t.Fatal(err)
	}
	p, _ := pods.Get(ctx, "p")
	if p.Spec.NodeName != "node-1" {
		t.Fatalf("nodeName %q after binding", p.Spec.NodeName)
	}
	bind.Target.Name = "node-2"
	if err := pods.Bind(ctx, bind); !apierrors.IsConflict(err) || !strings.Contains(err.Error(), `already assigned to node "node-1"`) {
		t.Fatalf("second binding: got %v, want Conflict", err)
	}
	// Update may not move a bound pod.
	p.Spec.NodeName = "node-2"
	if _, err := pods.Update(ctx, p); !apierrors.IsInvalid(err) {
		t.Fatalf("update of spec.nodeName: got %v, want Invalid", err)
	}
}

func TestSelectorsAndPagination(t *testing.T) {
	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	pods := c.Pods("default")
	for i := range 25 {
		tier := "front"
		if i%5 == 0 {
			tier = "back"
		}
		if _, err := pods.Create(ctx, newPod(fmt.Sprintf("p-%02d", i), labels("tier", tier))); err != nil {
			t.Fatal(err)
		}
	}
	if err := pods.Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "p-03"}, Target: corev1.ObjectReference{Name: "node-a"}}); err != nil {
		t.Fatal(err)
	}
	for _, rv := range []string{"", "0"} { // from etcd, and from the watch cache
		if rv == "0" {
			// "0" is any version: the cache may not have the last writes
			// yet. It applies them in order, so once it shows the
			// binding, the last of them, it holds every pod.
			wait.For(t, 10*time.Second, "the watch cache to show the binding", func() (bool, error) {
				l, err := pods.List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=node-a", ResourceVersion: "0"})
				return err == nil && len(l.Items) == 1, err
			})
		}
		for _, tc := range []struct {
			label, field string
			want         int
		}{
			{"tier=back", "", 5},
			{"tier!=back", "", 20},
			{"tier in (front,back)", "", 25},
			{"", "metadata.name=p-07", 1},
			{"", "spec.nodeName=node-a", 1},
			{"", "spec.nodeName=", 24},
			{"", "status.phase=Pending", 25},
			{"tier=front", "metadata.name!=p-01", 19},
		} {
			t.Run(fmt.Sprintf("rv=%q/%s/%s", rv, tc.label, tc.field), func(t *testing.T) {
				l, err := pods.List(ctx, metav1.ListOptions{LabelSelector: tc.label, FieldSelector: tc.field, ResourceVersion: rv})
				if err != nil {
					t.Fatal(err)
				}
				if len(l.Items) != tc.want {
					t.Fatalf("got %d pods, want %d", len(l.Items), tc.want)
				}
			})
		}
	}
	if _, err := pods.List(ctx, metav1.ListOptions{FieldSelector: "spec.color=red"}); !apierrors.IsBadRequest(err) {
		t.Fatalf("unsupported field selector: got %v, want BadRequest", err)
	}

	// Pages of 7 with a selector add up to the whole list, in key order, at
	// one resourceVersion, even while pods are created between pages.
	var names []string
	opts := metav1.ListOptions{Limit: 7, LabelSelector: "tier=front"}
	pages := 0
	for {
		l, err := pods.List(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(l.Items) > 7 {
			t.Fatalf("page of %d items, limit 7", len(l.Items))
		}
		for _, p := range l.Items {
			names = append(names, p.Name)
		}
		if _, err := pods.Create(ctx, newPod(fmt.Sprintf("late-%d", pages), labels("tier", "front"))); err != nil {
			t.Fatal(err)
		}
		if l.Continue == "" {
			break
		}
		opts.Continue = l.Continue
	}
	if len(names) != 20 || pages != 3 {
		t.Fatalf("paginated list: %d names in %d pages, want 20 in 3: %v", len(names), pages, names)
	}
	for i := 1; i < len(names); i++ {
		if names[i-1] >= names[i] {
			t.Fatalf("names out of order: %v", names)
		}
	}
}

func TestWatchResumeAndGone(t *testing.T) {
	srv := testenv.StartServer(t, func(cfg *apiserver.Config) { cfg.WatchWindow = 100 })
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	pods := c.Pods("default")

	first, err := pods.Create(ctx, newPod("w-0", labels("app", "w")))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if _, err := pods.Create(ctx, newPod(fmt.Sprintf("w-%d", i), labels("app", "w"))); err != nil {
			t.Fatal(err)
		}
	}
	// Resume after the first create: exactly the three later ones follow.
	w, err := pods.Watch(ctx, metav1.ListOptions{ResourceVersion: first.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for i := 1; i <= 3; i++ {
		ev := next(t, w)
		if ev.Type != watch.Added || ev.Object.(*corev1.Pod).Name != fmt.Sprintf("w-%d", i) {
			t.Fatalf("event %d: %s %s", i, ev.Type, ev.Object.(*corev1.Pod).Name)
		}
	}
	// Live events: a label change that leaves the selection is a DELETED
	// for a filtered watcher.
	fw, err := pods.Watch(ctx, metav1.ListOptions{LabelSelector: "app=w", ResourceVersion: first.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Stop()
	for range 3 {
		next(t, fw)
	}
	p, _ := pods.Get(ctx, "w-2")
	p.Labels = labels("app", "other")
	if _, err := pods.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, w); ev.Type != watch.Modified {
		t.Fatalf("unfiltered watcher: got %s, want MODIFIED", ev.Type)
	}
	if ev := next(t, fw); ev.Type != watch.Deleted || ev.Object.(*corev1.Pod).Name != "w-2" {
		t.Fatalf("filtered watcher: got %s, want DELETED of w-2", ev.Type)
	}

	// Push the first event out of the 100-event window: resuming from it
	// is Gone.
	for i := range 120 {
		if _, err := pods.Create(ctx, newPod(fmt.Sprintf("fill-%d", i), nil)); err != nil {
			t.Fatal(err)
		}
	}
	_, err = pods.Watch(ctx, metav1.ListOptions{ResourceVersion: first.ResourceVersion})
	if err == nil {
		// The error may arrive as the first event instead of at once.
		w2, _ := pods.Watch(ctx, metav1.ListOptions{ResourceVersion: first.ResourceVersion})
		ev := next(t, w2)
		st, ok := ev.Object.(*metav1.Status)
		if ev.Type != watch.Error || !ok || st.Code != 410 {
			t.Fatalf("watch from a compacted resourceVersion: got %s %v, want ERROR 410", ev.Type, ev.Object)
		}
	} else if !apierrors.IsGone(err) && !apierrors.IsResourceExpired(err) {
		t.Fatalf("watch from an old resourceVersion: got %v, want Gone", err)
	}
}

func TestWatchBookmarks(t *testing.T) {
	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	l, err := c.Pods("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.Pods("default").Watch(ctx, metav1.ListOptions{ResourceVersion: l.ResourceVersion, AllowWatchBookmarks: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	// Other resources change; the pod watcher's bookmarks move on anyway.
	if _, err := c.Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
	for {
		select {
		case ev := <-w.ResultChan():
			if ev.Type != watch.Bookmark {
				t.Fatalf("got %s, want only bookmarks", ev.Type)
			}
			m, _ := meta.Accessor(ev.Object)
			if m.GetResourceVersion() > l.ResourceVersion || len(m.GetResourceVersion()) > len(l.ResourceVersion) {
				return
			}
		case <-deadline:
			t.Fatal("no bookmark past the list's resourceVersion within 30s")
		}
	}
}

// next returns the watch's next event, failing after 10 seconds.
func next(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("watch closed")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event within 10s")
	}
	return watch.Event{}
}
