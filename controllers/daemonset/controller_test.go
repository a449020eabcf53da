package daemonset

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiffdev/skiff/apiserver/auth"
	"github.com/skiffdev/skiff/controllers/controller"
	"github.com/skiffdev/skiff/controllers/podgc"
	"github.com/skiffdev/skiff/internal/events"
	"github.com/skiffdev/skiff/internal/informers"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/scheduler"
)

const waitTimeout = 45 * time.Second

type cluster struct{ *testenv.Cluster }

// startCluster runs a scheduler, the DaemonSet and pod GC controllers
// (as the controllers' identity, so that their rights are tested too)
// and count simulated nodes "sim-N" labelled disk=ssd.
func startCluster(t testing.TB, count int) *cluster {
	t.Helper()
	cl := &cluster{testenv.NewCluster(t, testenv.WithTimeout(2*time.Minute))}
	schedCfg := scheduler.DefaultConfig()
	schedCfg.Client = cl.ClientAs(auth.SchedulerUser)
	cl.Start("scheduler", func(ctx context.Context) error { return scheduler.Run(ctx, schedCfg) })
	sim := cl.SimNodes(count)
	sim.Labels = map[string]string{"disk": "ssd"}
	cl.StartSimNodes(sim)

	cc := cl.ClientAs(auth.ControllersUser)
	f := informers.NewFactory(cc, time.Minute)
	rec := events.NewRecorder(logging.Into(cl.Ctx, cl.Log), cc, "controllers")
	deps := controller.Deps{Client: cc, Informers: f, Recorder: rec}
	dsCtrl, err := New(deps, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	gc, err := podgc.New(deps, podgc.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	cl.Start("controllers", func(ctx context.Context) error {
		f.Start(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { dsCtrl.Run(ctx) })
		wg.Go(func() { gc.Run(ctx) })
		wg.Wait()
		f.Wait()
		rec.Stop()
		return nil
	})
	return cl
}

func newDaemonSet(name string, mutate ...func(*appsv1.DaemonSet)) *appsv1.DaemonSet {
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: "busybox:1"}}},
			},
		},
	}
	for _, m := range mutate {
		m(ds)
	}
	return ds
}

func (cl *cluster) create(ds *appsv1.DaemonSet) {
	cl.T.Helper()
	if _, err := cl.Client.DaemonSets("default").Create(cl.Ctx, ds); err != nil {
		cl.T.Fatal(err)
	}
}

// podsByNode returns the live pods of DaemonSet name per target node.
func (cl *cluster) podsByNode(name string) (map[string][]*corev1.Pod, error) {
	list, err := cl.Client.Pods("default").List(cl.Ctx, metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		return nil, err
	}
	out := map[string][]*corev1.Pod{}
	for i := range list.Items {
		p := &list.Items[i]
		if p.DeletionTimestamp == nil {
			out[targetNode(p)] = append(out[targetNode(p)], p)
		}
	}
	return out, nil
}

// awaitRolledOut waits until DaemonSet name has one running, ready,
// updated pod on each of nodes and nowhere else, and its status says so.
func (cl *cluster) awaitRolledOut(name string, nodes ...string) *appsv1.DaemonSet {
	cl.T.Helper()
	var ds *appsv1.DaemonSet
	cl.Await(waitTimeout, fmt.Sprintf("daemonset %s on %v", name, nodes), func() (bool, error) {
		var err error
		if ds, err = cl.Client.DaemonSets("default").Get(cl.Ctx, name); err != nil {
			return false, err
		}
		s, n := ds.Status, int32(len(nodes))
		if s.ObservedGeneration != ds.Generation || s.DesiredNumberScheduled != n || s.CurrentNumberScheduled != n ||
			s.NumberReady != n || s.NumberAvailable != n || s.UpdatedNumberScheduled != n || s.NumberMisscheduled != 0 || s.NumberUnavailable != 0 {
			return false, nil
		}
		byNode, err := cl.podsByNode(name)
		if err != nil || len(byNode) != len(nodes) {
			return false, err
		}
		for _, node := range nodes {
			pods := byNode[node]
			if len(pods) != 1 || pods[0].Spec.NodeName != node || !isReady(pods[0]) {
				return false, nil
			}
		}
		return true, nil
	})
	return ds
}

func (cl *cluster) updateNode(name string, mutate func(*corev1.Node)) {
	cl.T.Helper()
	node, err := cl.Client.Nodes().Get(cl.Ctx, name)
	if err != nil {
		cl.T.Fatal(err)
	}
	mutate(node)
	if _, err := cl.Client.Nodes().Update(cl.Ctx, node); err != nil {
		cl.T.Fatal(err)
	}
}

// TestDaemonSetFollowsNodes is the story of a DaemonSet as nodes come,
// get tainted and go.
func TestDaemonSetFollowsNodes(t *testing.T) {
	cl := startCluster(t, 3)
	cl.create(newDaemonSet("agent"))
	cl.create(newDaemonSet("ssd", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.NodeSelector = map[string]string{"disk": "ssd"} }))
	cl.awaitRolledOut("agent", "sim-0", "sim-1", "sim-2")
	cl.awaitRolledOut("ssd", "sim-0", "sim-1", "sim-2")

	// A NoSchedule taint keeps the running pod; the controller has seen
	// the taint once it counts the node misscheduled.
	before, err := cl.podsByNode("agent")
	if err != nil {
		t.Fatal(err)
	}
	cl.updateNode("sim-2", func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule})
	})
	cl.Await(waitTimeout, "sim-2 counted misscheduled", func() (bool, error) {
		ds, err := cl.Client.DaemonSets("default").Get(cl.Ctx, "agent")
		return err == nil && ds.Status.NumberMisscheduled == 1 && ds.Status.DesiredNumberScheduled == 2, err
	})
	after, err := cl.podsByNode("agent")
	if err != nil {
		t.Fatal(err)
	}
	if len(after["sim-2"]) != 1 || after["sim-2"][0].UID != before["sim-2"][0].UID {
		t.Errorf("pod on sim-2 after a NoSchedule taint: got %v, want the same pod %s", after["sim-2"], before["sim-2"][0].Name)
	}

	// A NoExecute taint evicts it.
	cl.updateNode("sim-2", func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoExecute})
	})
	cl.Await(waitTimeout, "pod on sim-2 evicted", func() (bool, error) {
		byNode, err := cl.podsByNode("agent")
		return err == nil && len(byNode["sim-2"]) == 0 && len(byNode) == 2, err
	})

	// Two new nodes, registered by hand (no kubelet: their pods stay
	// pending): "tainted" first, then "plain". Once the controller made
	// plain's pod, its cache had tainted too, and made none for it. A
	// node without disk=ssd gets no pod of "ssd".
	for _, n := range []*corev1.Node{
		{ObjectMeta: metav1.ObjectMeta{Name: "tainted"}, Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "plain"}},
	} {
		if _, err := cl.Client.Nodes().Create(cl.Ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	cl.Await(waitTimeout, "a pod for plain", func() (bool, error) {
		byNode, err := cl.podsByNode("agent")
		return err == nil && len(byNode["plain"]) == 1, err
	})
	for _, name := range []string{"agent", "ssd"} {
		byNode, err := cl.podsByNode(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(byNode["tainted"]) != 0 {
			t.Errorf("daemonset %s has a pod for a node with an untolerated NoSchedule taint", name)
		}
		if name == "ssd" && len(byNode["plain"]) != 0 {
			t.Errorf("daemonset ssd has a pod for a node without disk=ssd")
		}
	}

	// A node removed: its pod goes.
	if err := cl.Client.Nodes().Delete(cl.Ctx, "plain", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	cl.Await(waitTimeout, "pod of the removed node gone", func() (bool, error) {
		byNode, err := cl.podsByNode("agent")
		return err == nil && len(byNode["plain"]) == 0, err
	})
}

// watchInvariant watches the pods of DaemonSet name until stop is
// closed and calls check with the live pods of each node after every
// event; it returns how many states it checked.
func (cl *cluster) watchInvariant(name string, stop <-chan struct{}, check func(byNode map[string][]*corev1.Pod)) <-chan int {
	cl.T.Helper()
	list, err := cl.Client.Pods("default").List(cl.Ctx, metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		cl.T.Fatal(err)
	}
	w, err := cl.Client.Pods("default").Watch(cl.Ctx, metav1.ListOptions{LabelSelector: "app=" + name, ResourceVersion: list.ResourceVersion})
	if err != nil {
		cl.T.Fatal(err)
	}
	pods := map[types.UID]*corev1.Pod{}
	for i := range list.Items {
		pods[list.Items[i].UID] = &list.Items[i]
	}
	done := make(chan int, 1)
	go func() {
		defer w.Stop()
		states := 0
		for {
			select {
			case <-stop:
				done <- states
				return
			case ev, ok := <-w.ResultChan():
				if !ok {
					cl.T.Error("pod watch ended early")
					done <- states
					return
				}
				pod, isPod := ev.Object.(*corev1.Pod)
				if !isPod {
					continue
				}
				if ev.Type == watch.Deleted {
					delete(pods, pod.UID)
				} else {
					pods[pod.UID] = pod
				}
				byNode := map[string][]*corev1.Pod{}
				for _, p := range pods {
					if p.DeletionTimestamp == nil {
						byNode[targetNode(p)] = append(byNode[targetNode(p)], p)
					}
				}
				check(byNode)
				states++
			}
		}
	}()
	return done
}

func setImage(cl *cluster, name, image string) {
	cl.T.Helper()
	patch := fmt.Sprintf(`{"spec":{"template":{"spec":{"containers":[{"name":"agent","image":%q}]}}}}`, image)
	if _, err := cl.Client.DaemonSets("default").Patch(cl.Ctx, name, types.StrategicMergePatchType, []byte(patch)); err != nil {
		cl.T.Fatal(err)
	}
}

// unavailableNodes counts the nodes without a live ready pod.
func unavailableNodes(nodes []string, byNode map[string][]*corev1.Pod) int {
	n := 0
	for _, node := range nodes {
		ready := false
		for _, p := range byNode[node] {
			ready = ready || isReady(p)
		}
		if !ready {
			n++
		}
	}
	return n
}

func TestRollingUpdateMaxUnavailable(t *testing.T) {
	cl := startCluster(t, 6)
	nodes := []string{"sim-0", "sim-1", "sim-2", "sim-3", "sim-4", "sim-5"}
	cl.create(newDaemonSet("agent", func(ds *appsv1.DaemonSet) {
		ds.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{MaxUnavailable: new(intstr.FromString("34%"))} // 3 of 6, rounded up
	}))
	cl.awaitRolledOut("agent", nodes...)

	stop := make(chan struct{})
	var mu sync.Mutex
	worst := 0
	done := cl.watchInvariant("agent", stop, func(byNode map[string][]*corev1.Pod) {
		u := unavailableNodes(nodes, byNode)
		mu.Lock()
		worst = max(worst, u)
		mu.Unlock()
		if u > 3 {
			t.Errorf("%d nodes without a ready pod, maxUnavailable is 3", u)
		}
		for node, pods := range byNode {
			if len(pods) > 1 {
				t.Errorf("node %s runs %d pods without maxSurge", node, len(pods))
			}
		}
	})
	setImage(cl, "agent", "busybox:2")
	ds := cl.awaitRolledOut("agent", nodes...)
	close(stop)
	if states := <-done; states == 0 {
		t.Error("no pod state observed during the update")
	}
	if worst == 0 {
		t.Error("the update never made a node unavailable: the invariant was not exercised")
	}
	revs, err := cl.Client.ControllerRevisions("default").List(cl.Ctx, metav1.ListOptions{LabelSelector: "app=agent"})
	if err != nil {
		t.Fatal(err)
	}
	if len(revs.Items) != 2 {
		t.Fatalf("%d controllerrevisions, want 2", len(revs.Items))
	}
	byNode, _ := cl.podsByNode("agent")
	for _, r := range revs.Items {
		if r.Revision == 2 && byNode["sim-0"][0].Labels[RevisionHashLabel] != r.Labels[RevisionHashLabel] {
			t.Errorf("pods have hash %q, revision 2 has %q", byNode["sim-0"][0].Labels[RevisionHashLabel], r.Labels[RevisionHashLabel])
		}
	}

	// Rollout undo, as skiffctl does it: revision 1's data, applied as
	// a strategic merge patch, brings busybox:1 back as revision 3.
	var rev1 appsv1.ControllerRevision
	for _, r := range revs.Items {
		if r.Revision == 1 {
			rev1 = r
		}
	}
	if _, err := cl.Client.DaemonSets("default").Patch(cl.Ctx, "agent", types.StrategicMergePatchType, rev1.Data.Raw); err != nil {
		t.Fatal(err)
	}
	cl.Await(waitTimeout, "undo to revision 1 rolled out", func() (bool, error) {
		got, err := cl.Client.DaemonSets("default").Get(cl.Ctx, "agent")
		if err != nil || got.Generation == ds.Generation || got.Status.ObservedGeneration != got.Generation || got.Status.UpdatedNumberScheduled != 6 || got.Status.NumberAvailable != 6 {
			return false, err
		}
		r, err := cl.Client.ControllerRevisions("default").Get(cl.Ctx, rev1.Name)
		return err == nil && r.Revision == 3 && got.Spec.Template.Spec.Containers[0].Image == "busybox:1", err
	})
}

func TestRollingUpdateMaxSurge(t *testing.T) {
	cl := startCluster(t, 4)
	nodes := []string{"sim-0", "sim-1", "sim-2", "sim-3"}
	cl.create(newDaemonSet("agent", func(ds *appsv1.DaemonSet) {
		ds.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{MaxUnavailable: new(intstr.FromInt32(0)), MaxSurge: new(intstr.FromInt32(2))}
	}))
	cl.awaitRolledOut("agent", nodes...)
	stop := make(chan struct{})
	var mu sync.Mutex
	worstSurge := 0
	done := cl.watchInvariant("agent", stop, func(byNode map[string][]*corev1.Pod) {
		surging := 0
		for _, pods := range byNode {
			if len(pods) > 1 {
				surging++
			}
		}
		mu.Lock()
		worstSurge = max(worstSurge, surging)
		mu.Unlock()
		if surging > 2 {
			t.Errorf("%d nodes run two pods, maxSurge is 2", surging)
		}
		if u := unavailableNodes(nodes, byNode); u > 0 {
			t.Errorf("%d nodes without a ready pod, maxUnavailable is 0", u)
		}
	})
	setImage(cl, "agent", "busybox:2")
	cl.awaitRolledOut("agent", nodes...)
	close(stop)
	<-done
	if worstSurge == 0 {
		t.Error("no node ever ran two pods: the update did not surge")
	}
}

func TestOnDelete(t *testing.T) {
	cl := startCluster(t, 2)
	cl.create(newDaemonSet("agent", func(ds *appsv1.DaemonSet) {
		ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
	}))
	cl.awaitRolledOut("agent", "sim-0", "sim-1")
	setImage(cl, "agent", "busybox:2")
	cl.Await(waitTimeout, "the new template observed, no pod replaced", func() (bool, error) {
		ds, err := cl.Client.DaemonSets("default").Get(cl.Ctx, "agent")
		return err == nil && ds.Status.ObservedGeneration == ds.Generation && ds.Generation == 2 &&
			ds.Status.UpdatedNumberScheduled == 0 && ds.Status.NumberAvailable == 2, err
	})
	byNode, err := cl.podsByNode("agent")
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Client.Pods("default").Delete(cl.Ctx, byNode["sim-0"][0].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	cl.Await(waitTimeout, "the deleted pod replaced by the new template", func() (bool, error) {
		ds, err := cl.Client.DaemonSets("default").Get(cl.Ctx, "agent")
		if err != nil || ds.Status.UpdatedNumberScheduled != 1 || ds.Status.NumberAvailable != 2 {
			return false, err
		}
		byNode, err := cl.podsByNode("agent")
		return err == nil && len(byNode["sim-0"]) == 1 && byNode["sim-0"][0].Spec.Containers[0].Image == "busybox:2" &&
			byNode["sim-1"][0].Spec.Containers[0].Image == "busybox:1", err
	})
}
