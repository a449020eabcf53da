package scheduler

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/apiserver/auth"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
	"github.com/skiffdev/skiff/scheduler/algorithm"
)

// waitTimeout bounds every wait of these tests.
const waitTimeout = 30 * time.Second

// cluster is a test cluster with a scheduler running against it.
type cluster struct {
	*testenv.Cluster
	// schedClient is the scheduler's, as system:kube-scheduler, so that
	// what it may do is tested too; the test and the simulated nodes act
	// as the administrator.
	schedClient *client.Client
	sched       *Scheduler
}

// startCluster starts an API server and a scheduler, both stopped when
// the test ends.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	cl := &cluster{Cluster: testenv.NewCluster(t)}
	cl.schedClient = cl.ClientAs(auth.SchedulerUser)
	cl.startScheduler(DefaultConfig())
	return cl
}

// startScheduler runs a scheduler with cfg (connected to the cluster)
// until the test ends.
func (cl *cluster) startScheduler(cfg Config) {
	cl.T.Helper()
	cfg.Client = cl.schedClient
	s, err := New(cfg)
	if err != nil {
		cl.T.Fatal(err)
	}
	cl.sched = s
	cl.Start("scheduler", s.Run)
}

// startSimNodes runs count simulated nodes until the test ends and waits
// until they are all registered.
func (cl *cluster) startSimNodes(count int, cpu, memory, pods string) {
	cl.T.Helper()
	cfg := cl.SimNodes(count)
	cfg.CPU = resource.MustParse(cpu)
	cfg.Memory = resource.MustParse(memory)
	cfg.Pods = resource.MustParse(pods)
	cl.StartSimNodes(cfg)
	// Once the scheduler sees them all, so have the API server and
	// simnodes.
	cl.Await(waitTimeout, fmt.Sprintf("the scheduler to see %d simulated nodes", count), func() (bool, error) {
		n := cl.sched.cache.NodeCount()
		return n == count, fmt.Errorf("%d nodes", n)
	})
}

// node is a Ready node with cpu, 32Gi of memory and room for 110 pods.
func node(name, cpu string, labels map[string]string, taints ...corev1.Taint) *corev1.Node {
	n := readyNode(name, cpu)
	for k, v := range labels {
		n.Labels[k] = v
	}
	n.Spec.Taints = taints
	return n
}

func (cl *cluster) createNode(n *corev1.Node) {
	cl.T.Helper()
	if _, err := cl.Client.Nodes().Create(cl.Ctx, n); err != nil {
		cl.T.Fatal(err)
	}
}

// pod is a pending pod in "default" asking for cpu and 64Mi of memory.
func pod(name, cpu string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "nginx",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse(cpu),
				corev1.ResourceMemory: resource.MustParse("64Mi"),
			}},
		}}},
	}
}

func (cl *cluster) createPod(p *corev1.Pod) *corev1.Pod {
	cl.T.Helper()
	created, err := cl.Client.Pods(p.Namespace).Create(cl.Ctx, p)
	if err != nil {
		cl.T.Fatal(err)
	}
	return created
}

// waitBound waits until the pod is bound and returns its node.
func (cl *cluster) waitBound(name string) string {
	cl.T.Helper()
	var nodeName string
	cl.Await(waitTimeout, "pod "+name+" bound", func() (bool, error) {
		p, err := cl.Client.Pods("default").Get(cl.Ctx, name)
		if err != nil {
			return false, err
		}
		nodeName = p.Spec.NodeName
		return nodeName != "", nil
	})
	return nodeName
}

// waitUnschedulable waits until the pod has the condition
// PodScheduled=False, reason Unschedulable, with message, and a
// FailedScheduling event with the same message.
func (cl *cluster) waitUnschedulable(name, message string) {
	cl.T.Helper()
	cl.Await(waitTimeout, "pod "+name+" unschedulable", func() (bool, error) {
		p, err := cl.Client.Pods("default").Get(cl.Ctx, name)
		if err != nil {
			return false, err
		}
		if p.Spec.NodeName != "" {
			cl.T.Fatalf("pod %s was bound to %s, want it pending", name, p.Spec.NodeName)
		}
		c := podCondition(p, corev1.PodScheduled)
		if c == nil || c.Status != corev1.ConditionFalse || c.Reason != corev1.PodReasonUnschedulable || c.Message != message {
			return false, fmt.Errorf("condition %+v", c)
		}
		return true, nil
	})
	cl.waitEvent(name, corev1.EventTypeWarning, "FailedScheduling", message)
}

// waitEvent waits for an event about the pod.
func (cl *cluster) waitEvent(podName, eventType, reason, message string) {
	cl.T.Helper()
	cl.Await(waitTimeout, reason+" event for "+podName, func() (bool, error) {
		list, err := cl.Client.Events("default").List(cl.Ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		var seen []string
		for _, ev := range list.Items {
			if ev.InvolvedObject.Kind != "Pod" || ev.InvolvedObject.Name != podName || ev.Reason != reason {
				continue
			}
			if ev.Type == eventType && ev.Message == message && ev.Source.Component == corev1.DefaultSchedulerName {
				return true, nil
			}
			seen = append(seen, fmt.Sprintf("%s %q from %s", ev.Type, ev.Message, ev.Source.Component))
		}
		return false, fmt.Errorf("events seen: %v", seen)
	})
}

func TestPodsSpreadAcrossEqualNodes(t *testing.T) {
	cl := startCluster(t)
	cl.startSimNodes(3, "4", "16Gi", "110")

	const n = 9
	for i := range n {
		cl.createPod(pod(fmt.Sprintf("web-%d", i), "100m"))
	}
	perNode := map[string]int{}
	for i := range n {
		perNode[cl.waitBound(fmt.Sprintf("web-%d", i))]++
	}
	if len(perNode) != 3 {
		t.Fatalf("got pods on %d nodes (%v), want all 3", len(perNode), perNode)
	}
	for name, count := range perNode {
		if count != n/3 {
			t.Errorf("node %s got %d pods, want %d (%v)", name, count, n/3, perNode)
		}
	}
	p, err := cl.Client.Pods("default").Get(cl.Ctx, "web-0")
	if err != nil {
		t.Fatal(err)
	}
	cl.waitEvent("web-0", corev1.EventTypeNormal, "Scheduled", "Successfully assigned default/web-0 to "+p.Spec.NodeName)
}

func TestResourceExhaustionThenNodeAdded(t *testing.T) {
	cl := startCluster(t)
	cl.createNode(node("node-1", "1", nil))
	cl.createNode(node("node-2", "1", nil))

	cl.createPod(pod("big-1", "600m"))
	cl.createPod(pod("big-2", "600m"))
	if a, b := cl.waitBound("big-1"), cl.waitBound("big-2"); a == b {
		t.Fatalf("both pods went to %s, which has room for one", a)
	}

	cl.createPod(pod("big-3", "600m"))
	cl.waitUnschedulable("big-3", "0/2 nodes are available: 2 Insufficient cpu.")

	cl.createNode(node("node-3", "1", nil))
	if got := cl.waitBound("big-3"); got != "node-3" {
		t.Fatalf("got big-3 on %s, want node-3", got)
	}
}

func TestPodDeletedFreesRoom(t *testing.T) {
	cl := startCluster(t)
	cl.createNode(node("node-1", "1", nil))
	cl.createPod(pod("first", "600m"))
	cl.waitBound("first")
	cl.createPod(pod("second", "600m"))
	cl.waitUnschedulable("second", "0/1 nodes are available: 1 Insufficient cpu.")

	if err := cl.Client.Pods("default").Delete(cl.Ctx, "first", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	if got := cl.waitBound("second"); got != "node-1" {
		t.Fatalf("got second on %s, want node-1", got)
	}
}

func TestTaintsAndTolerations(t *testing.T) {
	cl := startCluster(t)
	taint := corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}
	cl.createNode(node("db-1", "4", nil, taint))

	cl.createPod(pod("web", "100m"))
	cl.waitUnschedulable("web", "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: db}.")

	db := pod("db", "100m")
	db.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "db", Effect: corev1.TaintEffectNoSchedule}}
	cl.createPod(db)
	if got := cl.waitBound("db"); got != "db-1" {
		t.Fatalf("got db on %s, want db-1", got)
	}

	// With the taint gone, the parked pod fits.
	n, err := cl.Client.Nodes().Get(cl.Ctx, "db-1")
	if err != nil {
		t.Fatal(err)
	}
	n.Spec.Taints = nil
	if _, err := cl.Client.Nodes().Update(cl.Ctx, n); err != nil {
		t.Fatal(err)
	}
	if got := cl.waitBound("web"); got != "db-1" {
		t.Fatalf("got web on %s, want db-1", got)
	}
}

func TestRequiredNodeAffinity(t *testing.T) {
	cl := startCluster(t)
	for _, zone := range []string{"a", "b", "c"} {
		cl.createNode(node("node-"+zone, "4", map[string]string{"zone": zone}))
	}
	affinity := func(op corev1.NodeSelectorOperator, values ...string) *corev1.Affinity {
		return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
					{Key: "zone", Operator: op, Values: values},
				}}},
			},
		}}
	}
	for i := range 3 {
		in := pod(fmt.Sprintf("in-b-%d", i), "100m")
		in.Spec.Affinity = affinity(corev1.NodeSelectorOpIn, "b")
		cl.createPod(in)
		notIn := pod(fmt.Sprintf("not-in-a-b-%d", i), "100m")
		notIn.Spec.Affinity = affinity(corev1.NodeSelectorOpNotIn, "a", "b")
		cl.createPod(notIn)
	}
	for i := range 3 {
		if got := cl.waitBound(fmt.Sprintf("in-b-%d", i)); got != "node-b" {
			t.Errorf("got in-b-%d on %s, want node-b", i, got)
		}
		if got := cl.waitBound(fmt.Sprintf("not-in-a-b-%d", i)); got != "node-c" {
			t.Errorf("got not-in-a-b-%d on %s, want node-c", i, got)
		}
	}

	gpu := pod("gpu", "100m")
	gpu.Spec.NodeSelector = map[string]string{"accelerator": "gpu"}
	cl.createPod(gpu)
	cl.waitUnschedulable("gpu", "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.")

	// Labelling a node is a change that can make the pod fit.
	n, err := cl.Client.Nodes().Get(cl.Ctx, "node-a")
	if err != nil {
		t.Fatal(err)
	}
	n.Labels["accelerator"] = "gpu"
	if _, err := cl.Client.Nodes().Update(cl.Ctx, n); err != nil {
		t.Fatal(err)
	}
	if got := cl.waitBound("gpu"); got != "node-a" {
		t.Fatalf("got gpu on %s, want node-a", got)
	}
}

func TestPodsBoundBySomeoneElseAreLeftAlone(t *testing.T) {
	cl := startCluster(t)
	cl.createNode(node("node-a", "1", nil))
	cl.createNode(node("node-b", "1", nil))

	// Bound at creation: counted on node-a, never scheduled.
	pinned := pod("pinned", "800m")
	pinned.Spec.NodeName = "node-a"
	cl.createPod(pinned)
	// Another scheduler's pod: not ours to place.
	other := pod("other", "800m")
	other.Spec.SchedulerName = "other-scheduler"
	cl.createPod(other)

	// Only node-b has room for this one.
	cl.createPod(pod("fits-b", "500m"))
	if got := cl.waitBound("fits-b"); got != "node-b" {
		t.Fatalf("got fits-b on %s, want node-b: node-a is taken by the pinned pod", got)
	}
	p, err := cl.Client.Pods("default").Get(cl.Ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	if p.Spec.NodeName != "" || podCondition(p, corev1.PodScheduled) != nil {
		t.Fatalf("the other scheduler's pod got nodeName %q and conditions %v, want it untouched", p.Spec.NodeName, p.Status.Conditions)
	}
	p, err = cl.Client.Pods("default").Get(cl.Ctx, "pinned")
	if err != nil {
		t.Fatal(err)
	}
	if p.Spec.NodeName != "node-a" {
		t.Fatalf("got pinned on %q, want node-a", p.Spec.NodeName)
	}
}

// TestBindConflictIsDropped binds a pod behind the scheduler's back
// between its decision and its binding: the binding's Conflict ends the
// pod's scheduling and gives back the capacity it assumed, which wakes
// the parked pods.
func TestBindConflictIsDropped(t *testing.T) {
	s, c := newTestScheduler(t)
	ctx := testenv.Context(t)
	for _, name := range []string{"node-a", "node-b"} {
		n, err := c.Nodes().Create(ctx, node(name, "1", nil))
		if err != nil {
			t.Fatal(err)
		}
		s.cache.SetNode(n)
	}
	p, err := c.Pods("default").Create(ctx, pod("web", "600m"))
	if err != nil {
		t.Fatal(err)
	}
	s.queue.Add(p)
	qp, err := s.queue.Pop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cache.Assume(p, "node-b"); err != nil {
		t.Fatal(err)
	}
	// A pod that did not fit while web was assumed on node-b.
	s.queue.Add(pod("parked", "600m"))
	parked, err := s.queue.Pop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.queue.Requeue(parked, true)
	if got := s.queue.Stats(); got.Unschedulable != 1 {
		t.Fatalf("got queue %+v, want the pod parked", got)
	}
	// Someone else binds it first.
	if err := c.Pods("default").Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Target:     corev1.ObjectReference{Kind: "Node", Name: "node-a"},
	}); err != nil {
		t.Fatal(err)
	}
	s.bind(ctx, qp, p, "node-b")
	// web is gone from the queue; parked waits out its backoff.
	if got, want := s.queue.Stats(), (QueueStats{Backoff: 1}); got != want {
		t.Errorf("got queue %+v, want %+v: web gone, the parked pod moved", got, want)
	}
	if s.cache.Counted(p) {
		t.Error("the pod is still assumed on node-b")
	}
	got, err := c.Pods("default").Get(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.NodeName != "node-a" {
		t.Errorf("got the pod on %q, want node-a", got.Spec.NodeName)
	}
}

// TestBurstNeverOvercommits schedules 2,000 pods onto 20 nodes that have
// room for exactly 2,000 of them: every pod must be bound, and no node may
// end up with more requested than it has.
func TestBurstNeverOvercommits(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 pods: not in -short mode")
	}
	cl := startCluster(t)
	const nodes, pods = 20, 2000
	// 10 cpu / 100m = 100 pods per node; memory and pod count have room.
	cl.startSimNodes(nodes, "10", "16Gi", "110")

	createPods(t, cl.Ctx, cl.Client, pods, 16, func(i int) *corev1.Pod {
		p := pod(fmt.Sprintf("burst-%04d", i), "100m")
		p.Spec.Containers[0].Resources.Requests[corev1.ResourceMemory] = resource.MustParse("128Mi")
		return p
	})
	cl.Await(2*time.Minute, "every pod bound", func() (bool, error) {
		list, err := cl.Client.Pods("default").List(cl.Ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		bound := 0
		for _, p := range list.Items {
			if p.Spec.NodeName != "" {
				bound++
			}
		}
		return bound == pods, fmt.Errorf("%d of %d bound", bound, pods)
	})
	checkNotOvercommitted(t, cl.Ctx, cl.Client)
}

// createPods creates n pods made by mk with workers concurrent clients'
// worth of goroutines.
func createPods(t testing.TB, ctx context.Context, c *client.Client, n, workers int, mk func(i int) *corev1.Pod) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				p := mk(i)
				if _, err := c.Pods(p.Namespace).Create(ctx, p); err != nil && !apierrors.IsAlreadyExists(err) {
					errs <- fmt.Errorf("create %s: %w", p.Name, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// checkNotOvercommitted fails the test when the pods bound to a node
// (and not finished) request more cpu, memory or pods than it has.
func checkNotOvercommitted(t testing.TB, ctx context.Context, c *client.Client) {
	t.Helper()
	nodes, err := c.Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods, err := c.Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	requested := map[string]algorithm.Resources{}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Spec.NodeName == "" || podFinished(p) {
			continue
		}
		r, add := requested[p.Spec.NodeName], algorithm.PodRequests(p)
		requested[p.Spec.NodeName] = algorithm.Resources{
			MilliCPU: r.MilliCPU + add.MilliCPU, Memory: r.Memory + add.Memory, Pods: r.Pods + add.Pods,
		}
	}
	for i := range nodes.Items {
		n := &nodes.Items[i]
		have := algorithm.NewNodeInfo(n).Allocatable
		got := requested[n.Name]
		if got.MilliCPU > have.MilliCPU || got.Memory > have.Memory || got.Pods > have.Pods {
			t.Errorf("node %s is over-committed: requested %v, allocatable %v", n.Name, got, have)
		}
	}
}

// newTestScheduler builds a scheduler against a fresh API server without
// running it: tests drive its handlers and workers by hand. The scheduler
// connects as system:kube-scheduler; the client returned is the
// administrator's, for the test's own requests.
func newTestScheduler(t *testing.T) (*Scheduler, *client.Client) {
	t.Helper()
	cl := testenv.NewCluster(t)
	cfg := DefaultConfig()
	cfg.Client = cl.ClientAs(auth.SchedulerUser)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.log = cl.Log // as Run would
	return s, cl.Client
}

// TestPodRecreatedDuringRelist: a pod deleted and created again under
// the same name while the watch was down reaches the handlers as one
// update from the old pod to the new one. The old pod's assumed capacity
// must be given back, and the new pod scheduled.
func TestPodRecreatedDuringRelist(t *testing.T) {
	s, _ := newTestScheduler(t)
	ctx := testenv.Context(t)
	s.cache.SetNode(readyNode("node-a", "1"))

	old := cpuPod("web", "600m")
	s.onPod(old)
	qp, err := s.queue.Pop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cache.Assume(old, "node-a"); err != nil {
		t.Fatal(err)
	}

	recreated := old.DeepCopy()
	recreated.UID = "uid-web-again"
	s.onPodUpdated(old, recreated)

	expectRequested(t, s.cache, "node-a", 0, 0)
	if s.cache.Counted(recreated) {
		t.Error("the new pod counts as counted because the old one was assumed")
	}
	// The old pod's binding ends; the new pod is still to be scheduled.
	s.queue.Done(qp)
	if got, want := s.queue.Stats(), (QueueStats{Active: 1}); got != want {
		t.Fatalf("got queue %+v, want %+v", got, want)
	}
	next, err := s.queue.Pop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if next.Pod.UID != recreated.UID {
		t.Errorf("got uid %q from the queue, want %q", next.Pod.UID, recreated.UID)
	}
}

// TestUnschedulableWriteIsCompareAndSwap: the PodScheduled=False write
// of a decision is made against the pod the decision saw. A pod bound
// meanwhile keeps its condition.
func TestUnschedulableWriteIsCompareAndSwap(t *testing.T) {
	s, c := newTestScheduler(t)
	ctx := testenv.Context(t)
	const message = "0/1 nodes are available: 1 Insufficient cpu."

	stale, err := c.Pods("default").Create(ctx, pod("bound-meanwhile", "1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Nodes().Create(ctx, node("node-a", "2", nil)); err != nil {
		t.Fatal(err)
	}
	if err := c.Pods("default").Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: stale.Name, Namespace: "default"},
		Target:     corev1.ObjectReference{Kind: "Node", Name: "node-a"},
	}); err != nil {
		t.Fatal(err)
	}
	s.writeUnschedulable(ctx, stale, message)
	got, err := c.Pods("default").Get(ctx, stale.Name)
	if err != nil {
		t.Fatal(err)
	}
	if cond := podCondition(got, corev1.PodScheduled); cond != nil && cond.Status == corev1.ConditionFalse {
		t.Errorf("got condition %+v on a pod bound to %q, want no PodScheduled=False", *cond, got.Spec.NodeName)
	}

	// A pod unchanged since the decision gets the condition.
	pending, err := c.Pods("default").Create(ctx, pod("pending", "4"))
	if err != nil {
		t.Fatal(err)
	}
	s.writeUnschedulable(ctx, pending, message)
	got, err = c.Pods("default").Get(ctx, pending.Name)
	if err != nil {
		t.Fatal(err)
	}
	if conditionNeedsUpdate(got, message) {
		t.Errorf("got conditions %+v, want PodScheduled=False with %q", got.Status.Conditions, message)
	}
}

// TestRunLogsWithComponentOnce: Run logs through the logger of its ctx,
// with component=scheduler once per line, also what it logs while
// campaigning for its Lease.
func TestRunLogsWithComponentOnce(t *testing.T) {
	srv := testenv.StartServer(t)
	cfg := DefaultConfig()
	cfg.Client = testenv.NewClientAs(t, srv, auth.SchedulerUser)
	var out syncBuffer
	ctx, cancel := context.WithCancel(logging.Into(context.Background(), slog.New(slog.NewTextHandler(&out, nil))))
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	wait.For(t, waitTimeout, "the scheduler to start", func() (bool, error) {
		return strings.Contains(out.String(), `msg="scheduler started"`), nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	for _, l := range lines {
		if n := strings.Count(l, "component=scheduler"); n != 1 {
			t.Errorf("line %q has component=scheduler %d times, want once", l, n)
		}
	}
	if !strings.Contains(lines[0], `msg="became leader"`) {
		t.Errorf("got first line %q, want the leader election's", lines[0])
	}
}

// syncBuffer is a bytes.Buffer that a logger writes while the test reads.
type syncBuffer struct {
	// mu guards b.
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunStopsCleanly: Run returns soon after its context ends, and
// leaves no goroutine of its own behind (informers, queue, workers,
// event recorder).
func TestRunStopsCleanly(t *testing.T) {
	cl := testenv.NewCluster(t)
	c, ctx := cl.Client, cl.Ctx
	cfg := DefaultConfig()
	cfg.Connection = cl.ConfigAs(auth.SchedulerUser) // Run dials and closes its own client
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(logging.Into(context.Background(), cl.Log))
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()

	// Get everything going: a binding, an event, a parked pod.
	if _, err := c.Nodes().Create(ctx, node("node-a", "1", nil)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*corev1.Pod{pod("fits", "500m"), pod("too-big", "2")} {
		if _, err := c.Pods("default").Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	wait.For(t, waitTimeout, "a pod bound and one parked", func() (bool, error) {
		st := s.queue.Stats()
		return st.Unschedulable == 1 && st.Active+st.Backoff+st.InFlight == 0, fmt.Errorf("queue %+v", st)
	})

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: got %v, want nil", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return after its context ended")
	}
	// Goroutines end asynchronously after the last Done; give them a
	// moment.
	wait.For(t, 5*time.Second, "the scheduler's goroutines to end", func() (bool, error) {
		gs := schedulerGoroutines()
		return len(gs) == 0, fmt.Errorf("%d still running:\n\n%s", len(gs), strings.Join(gs, "\n\n"))
	})
}

// schedulerGoroutines returns the stacks of the goroutines that belong to
// a scheduler: its own code, its informers, its event recorder.
func schedulerGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "testing.tRunner") || strings.Contains(g, "TestRunStopsCleanly") {
			continue // the test itself
		}
		for _, marker := range []string{"skiffdev/skiff/scheduler.", "skiffdev/skiff/internal/informers.",
			"skiffdev/skiff/internal/events.", "k8s.io/client-go/tools/cache."} {
			if strings.Contains(g, marker) {
				found = append(found, g)
				break
			}
		}
	}
	return found
}
