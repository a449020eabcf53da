package nodelifecycle_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/skiffdev/skiff/apiserver/auth"
	"github.com/skiffdev/skiff/controllers/controller"
	"github.com/skiffdev/skiff/controllers/nodelifecycle"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/informers"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
)

// recorder collects event reasons.
type recorder struct {
	// mu guards events.
	mu     sync.Mutex
	events []string
}

func (r *recorder) Eventf(obj runtime.Object, _, reason, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, reason+": "+fmt.Sprintf(format, args...))
}

func (r *recorder) has(event string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.events, event)
}

// TestReconcile drives one node through a lost heartbeat and back with a
// fake clock, calling Reconcile by hand: no workers, no sleeps. The
// node's clock is an hour behind the controller's: staleness is measured
// from when the controller saw the heartbeat change, on its own clock.
func TestReconcile(t *testing.T) {
	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	start := time.Now().Truncate(time.Second) // the API keeps whole seconds
	clk := clocktesting.NewFakePassiveClock(start)
	const grace = 40 * time.Second
	nodeClock := start.Add(-time.Hour) // skewed

	if _, err := c.Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1"},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady"},
		}},
	}); err != nil {
		t.Fatal(err)
	}
	lease, err := c.Leases(corev1.NamespaceNodeLease).Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "n1", Namespace: corev1.NamespaceNodeLease},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: new("n1"), RenewTime: new(metav1.NewMicroTime(nodeClock))},
	})
	if err != nil {
		t.Fatal(err)
	}
	unreachable := func(seconds *int64) []corev1.Toleration {
		return []corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: seconds}}
	}
	for name, tolerations := range map[string][]corev1.Toleration{
		"default": nil, // admission: 300 s
		"ten":     unreachable(new(int64(10))),
		"zero":    unreachable(new(int64(0))),
		"forever": unreachable(nil),
	} {
		pod, err := c.Pods("default").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: corev1.PodSpec{
				NodeName:    "n1",
				Containers:  []corev1.Container{{Name: "app", Image: "nginx"}},
				Tolerations: tolerations,
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		pod.Status.Phase = corev1.PodRunning
		pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		if _, err := c.Pods("default").UpdateStatus(ctx, pod); err != nil {
			t.Fatal(err)
		}
	}

	// The controller runs as the controller manager, so that what it may
	// do is tested too; the test itself acts as the administrator.
	cc := testenv.NewClientAs(t, srv, auth.ControllersUser)
	factory := informers.NewFactory(cc, 0)
	rec := &recorder{}
	ctrl, err := nodelifecycle.New(controller.Deps{Client: cc, Informers: factory, Recorder: rec, Clock: clk}, nodelifecycle.Config{GracePeriod: grace, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithCancel(ctx)
	factory.Start(fctx)
	t.Cleanup(func() { cancel(); factory.Wait() })
	if !factory.WaitForCacheSync(ctx) {
		t.Fatal("caches did not sync")
	}

	// reconcile waits until the caches hold what the server holds, then
	// reconciles n1 once.
	reconcile := func(t *testing.T) controller.Result {
		t.Helper()
		waitCaught(t, ctx, c, factory)
		res, err := ctrl.Reconcile(ctx, "n1")
		if err != nil {
			t.Fatalf("reconcile: %v", err)
		}
		return res
	}

	t.Run("healthy", func(t *testing.T) {
		res := reconcile(t)
		if res.RequeueAfter <= grace-time.Second || res.RequeueAfter > grace+time.Second {
			t.Errorf("got requeue after %v, want about %v", res.RequeueAfter, grace)
		}
		node, _ := c.Nodes().Get(ctx, "n1")
		if len(node.Spec.Taints) != 0 {
			t.Errorf("got taints %v, want none", node.Spec.Taints)
		}
	})

	t.Run("lease stale", func(t *testing.T) {
		clk.SetTime(start.Add(grace + time.Second))
		res := reconcile(t)
		if want := 10 * time.Second; res.RequeueAfter != want {
			t.Errorf("got requeue after %v, want %v (pod ten's toleration)", res.RequeueAfter, want)
		}
		node, _ := c.Nodes().Get(ctx, "n1")
		ready := nodeCondition(node, corev1.NodeReady)
		if ready.Status != corev1.ConditionUnknown || ready.Reason != "NodeStatusUnknown" || ready.Message != "Kubelet stopped posting node status." {
			t.Errorf("got Ready %+v, want Unknown NodeStatusUnknown", ready)
		}
		wantTaints := []string{"node.kubernetes.io/unreachable:NoSchedule", "node.kubernetes.io/unreachable:NoExecute"}
		if got := taintStrings(node.Spec.Taints); !slices.Equal(got, wantTaints) {
			t.Errorf("got taints %v, want %v", got, wantTaints)
		}
		wantPods(t, ctx, c, map[string]string{"default": "not ready", "ten": "not ready", "zero": "evicted", "forever": "not ready"})
		for _, e := range []string{"NodeNotReady: Node n1 status is now: NodeNotReady", "NodeNotReady: Node is not ready", "TaintManagerEviction: Marking for deletion Pod default/zero"} {
			if !rec.has(e) {
				t.Errorf("no event %q; got %q", e, rec.events)
			}
		}
	})

	t.Run("toleration runs out", func(t *testing.T) {
		clk.SetTime(start.Add(grace + 11*time.Second))
		res := reconcile(t)
		if want := 290 * time.Second; res.RequeueAfter != want {
			t.Errorf("got requeue after %v, want %v (the default toleration)", res.RequeueAfter, want)
		}
		wantPods(t, ctx, c, map[string]string{"default": "not ready", "ten": "evicted", "zero": "evicted", "forever": "not ready"})
	})

	t.Run("lease renewed", func(t *testing.T) {
		clk.SetTime(start.Add(grace + 20*time.Second))
		lease, err = c.Leases(corev1.NamespaceNodeLease).Get(ctx, "n1")
		if err != nil {
			t.Fatal(err)
		}
		lease.Spec.RenewTime = new(metav1.NewMicroTime(nodeClock.Add(grace + 20*time.Second)))
		if _, err := c.Leases(corev1.NamespaceNodeLease).Update(ctx, lease); err != nil {
			t.Fatal(err)
		}
		res := reconcile(t)
		if res.RequeueAfter <= grace-time.Second || res.RequeueAfter > grace+time.Second {
			t.Errorf("got requeue after %v, want about %v", res.RequeueAfter, grace)
		}
		node, _ := c.Nodes().Get(ctx, "n1")
		if len(node.Spec.Taints) != 0 {
			t.Errorf("got taints %v, want none", node.Spec.Taints)
		}
		if ready := nodeCondition(node, corev1.NodeReady); ready.Status != corev1.ConditionUnknown {
			t.Errorf("got Ready %s, want it left Unknown for the kubelet to set", ready.Status)
		}
		wantPods(t, ctx, c, map[string]string{"default": "not ready", "ten": "evicted", "zero": "evicted", "forever": "not ready"})
	})
}

// waitCaught waits until the informers' caches hold the server's current
// nodes, leases and pods.
func waitCaught(t *testing.T, ctx context.Context, c *client.Client, f *informers.Factory) {
	t.Helper()
	wait.For(t, 10*time.Second, "caches to catch up", func() (bool, error) {
		nodes, err := c.Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		leases, err := c.Leases("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		pods, err := c.Pods("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		return caught(f.Nodes().GetIndexer().List(), nodes.Items) &&
			caught(f.Leases().GetIndexer().List(), leases.Items) &&
			caught(f.Pods().GetIndexer().List(), pods.Items), nil
	})
}

func caught[T any, PT interface {
	*T
	metav1.Object
}](cached []any, items []T) bool {
	rv := map[string]string{}
	for _, obj := range cached {
		m := obj.(metav1.Object)
		rv[m.GetNamespace()+"/"+m.GetName()] = m.GetResourceVersion()
	}
	if len(rv) != len(items) {
		return false
	}
	for i := range items {
		m := PT(&items[i])
		if rv[m.GetNamespace()+"/"+m.GetName()] != m.GetResourceVersion() {
			return false
		}
	}
	return true
}

// wantPods checks each named pod in default: "evicted" (being deleted) or
// "not ready" (Ready=False, not being deleted).
func wantPods(t *testing.T, ctx context.Context, c *client.Client, want map[string]string) {
	t.Helper()
	for name, state := range want {
		pod, err := c.Pods("default").Get(ctx, name)
		if err != nil {
			t.Errorf("pod %s: %v", name, err)
			continue
		}
		got := "not ready"
		switch {
		case pod.DeletionTimestamp != nil:
			got = "evicted"
		case podReady(pod) != corev1.ConditionFalse:
			got = "ready " + string(podReady(pod))
		}
		if got != state {
			t.Errorf("pod %s: got %s, want %s", name, got, state)
		}
	}
}

func podReady(pod *corev1.Pod) corev1.ConditionStatus {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status
		}
	}
	return ""
}

func nodeCondition(node *corev1.Node, t corev1.NodeConditionType) corev1.NodeCondition {
	for _, c := range node.Status.Conditions {
		if c.Type == t {
			return c
		}
	}
	return corev1.NodeCondition{}
}

func taintStrings(taints []corev1.Taint) []string {
	var out []string
	for _, t := range taints {
		out = append(out, t.ToString())
	}
	return out
}
