package e2e

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/apiserver"
	"github.com/skiffdev/skiff/apiserver/auth"
	"github.com/skiffdev/skiff/controllers"
	"github.com/skiffdev/skiff/ctl"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/scheduler"
	"github.com/skiffdev/skiff/simnodes"
)

// The cluster's clock, short enough for a story to take seconds: nodes
// heartbeat every 200 ms, a node is lost after 2 s without one, and its
// pods tolerate that for 2 s more before they are evicted.
const (
	heartbeat         = 200 * time.Millisecond
	gracePeriod       = 2 * time.Second
	tolerationSeconds = 2
)

// ns is where the stories happen.
const ns = metav1.NamespaceDefault

// cluster is a test cluster with the stories' own ways to start
// components and to ask how things stand; the components are started one
// by one by the story.
type cluster struct {
	*testenv.Cluster
	// kubeconfig is the admin's, for skiffctl.
	kubeconfig string
}

// startCluster starts an API server whose pods tolerate an unreachable
// node for tolerationSeconds. It stops when the test ends, after every
// component started on it.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	cl := testenv.NewCluster(t,
		testenv.WithServer(func(cfg *apiserver.Config) { cfg.DefaultTolerationSeconds = tolerationSeconds }),
		testenv.WithLogger(slog.New(slog.DiscardHandler)))
	return &cluster{Cluster: cl, kubeconfig: testenv.AdminKubeconfig(t, cl.Server)}
}

// startScheduler runs the only scheduler, without leader election, as
// its own identity (system:kube-scheduler), as skiff server runs it.
func (cl *cluster) startScheduler() *testenv.Component {
	cfg := scheduler.DefaultConfig()
	cfg.Connection = cl.ConfigAs(auth.SchedulerUser)
	cfg.LeaderElection.LeaderElect = false
	return cl.Start("scheduler", func(ctx context.Context) error { return scheduler.Run(ctx, cfg) })
}

// startControllers runs a controller manager. With an identity it takes
// part in the election for the kube-system/skiff-controllers Lease, with
// timings short enough for a takeover within seconds; without one it is
// the only manager and acts at once. It runs as the controllers' own
// identity (system:kube-controller-manager), as skiff server runs it.
func (cl *cluster) startControllers(identity string) *testenv.Component {
	cfg := controllers.DefaultConfig()
	cfg.Connection = cl.ConfigAs(auth.ControllersUser)
	cfg.NodeMonitorGracePeriod = gracePeriod
	cfg.LeaderElection.LeaderElect = identity != ""
	cfg.LeaderElection.Identity = identity
	cfg.LeaderElection.LeaseDuration = 2 * time.Second
	cfg.LeaderElection.RenewDeadline = time.Second
	cfg.LeaderElection.RetryPeriod = 200 * time.Millisecond
	return cl.Start("controllers "+identity, func(ctx context.Context) error { return controllers.Run(ctx, cfg) })
}

// nodesConfig describes a group of one simulated node called prefix+"0",
// whose addresses come from cidr (one range per group).
func (cl *cluster) nodesConfig(prefix, cidr string) simnodes.Config {
	cfg := cl.SimNodes(1)
	cfg.NamePrefix, cfg.PodCIDR = prefix, cidr
	cfg.HeartbeatInterval = heartbeat
	return cfg
}

// deploymentAvailable reports whether the controller has seen the
// Deployment's latest spec and all of its n replicas are updated and
// available, with no old ones left.
func (cl *cluster) deploymentAvailable(name string, n int32) func() (bool, error) {
	return func() (bool, error) {
		d, err := cl.Client.Deployments(ns).Get(cl.Ctx, name)
		if err != nil {
			return false, err
		}
		s := d.Status
		return s.ObservedGeneration >= d.Generation && s.Replicas == n && s.UpdatedReplicas == n && s.AvailableReplicas == n,
			fmt.Errorf("deployment %q: %d replicas, %d updated, %d available", name, s.Replicas, s.UpdatedReplicas, s.AvailableReplicas)
	}
}

// pods lists the pods labelled app=app: the live ones, and the ones being
// deleted.
func (cl *cluster) pods(app string) (live, terminating []corev1.Pod, err error) {
	list, err := cl.Client.Pods(ns).List(cl.Ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		return nil, nil, err
	}
	for _, p := range list.Items {
		if p.DeletionTimestamp != nil {
			terminating = append(terminating, p)
		} else {
			live = append(live, p)
		}
	}
	return live, terminating, nil
}

// ready reports whether a pod's Ready condition is true.
func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// nodeReady is the status of a node's Ready condition.
func nodeReady(n *corev1.Node) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return corev1.ConditionUnknown
}

// hasTaint reports whether a node carries the taint key:effect.
func hasTaint(n *corev1.Node, key string, effect corev1.TaintEffect) bool {
	return slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == key && t.Effect == effect })
}

// deployment is a Deployment of n replicas of image, labelled app=name.
func deployment(name, image string, n int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &n,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
}

// TestNodeLostPodsReplaced: a node of a two-node cluster stops
// heartbeating; it is tainted unreachable, its pods are evicted, and the
// Deployment is whole again on the other node. The node comes back and is
// Ready and untainted.
func TestNodeLostPodsReplaced(t *testing.T) {
	cl := startCluster(t)
	groups := map[string]simnodes.Config{
		"a-0": cl.nodesConfig("a-", "10.128.0.0/16"),
		"b-0": cl.nodesConfig("b-", "10.129.0.0/16"),
	}
	running := map[string]*testenv.Component{}
	for node, cfg := range groups {
		running[node] = cl.StartSimNodes(cfg)
	}
	cl.startScheduler()
	cl.startControllers("")

	// A Deployment of 4 becomes available, spread over both nodes.
	if _, err := cl.Client.Deployments(ns).Create(cl.Ctx, deployment("web", "nginx:1.25", 4)); err != nil {
		t.Fatalf("create deployment web: %v", err)
	}
	cl.Await(15*time.Second, "deployment web has 4 available replicas", cl.deploymentAvailable("web", 4))
	live, _, err := cl.pods("web")
	if err != nil {
		t.Fatal(err)
	}
	lost := live[0].Spec.NodeName
	survivor := "a-0"
	if lost == survivor {
		survivor = "b-0"
	}
	onLost := map[string]bool{}
	for _, p := range live {
		if p.Spec.NodeName == lost {
			onLost[p.Name] = true
		}
	}
	t.Logf("killing node %s, which runs %d of the 4 pods", lost, len(onLost))
	cl.Await(5*time.Second, "node "+lost+" renewing its Lease", func() (bool, error) {
		l, err := cl.Client.Leases(corev1.NamespaceNodeLease).Get(cl.Ctx, lost)
		return err == nil && l.Spec.RenewTime != nil, err
	})

	// The node's group dies: no more heartbeats, nobody runs its pods.
	running[lost].Stop()

	cl.Await(gracePeriod+5*time.Second, "node "+lost+" tainted unreachable", func() (bool, error) {
		n, err := cl.Client.Nodes().Get(cl.Ctx, lost)
		return err == nil && hasTaint(n, corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute), err
	})
	cl.Await(tolerationSeconds*time.Second+5*time.Second, "the pods on "+lost+" evicted", func() (bool, error) {
		live, _, err := cl.pods("web")
		if err != nil {
			return false, err
		}
		for _, p := range live {
			if onLost[p.Name] {
				return false, fmt.Errorf("pod %s not evicted", p.Name)
			}
		}
		return true, nil
	})
	cl.Await(10*time.Second, "4 ready pods of web, all on "+survivor, func() (bool, error) {
		if ok, err := cl.deploymentAvailable("web", 4)(); !ok {
			return false, err
		}
		live, _, err := cl.pods("web")
		if err != nil {
			return false, err
		}
		if len(live) != 4 {
			return false, fmt.Errorf("%d live pods, want 4", len(live))
		}
		for _, p := range live {
			if p.Spec.NodeName != survivor || !ready(&p) {
				return false, fmt.Errorf("pod %s on node %q, ready %v", p.Name, p.Spec.NodeName, ready(&p))
			}
		}
		return true, nil
	})

	// The node comes back: it heartbeats again, is Ready and untainted,
	// and finishes deleting the pods evicted from it.
	running[lost] = cl.StartSimNodes(groups[lost])
	cl.Await(gracePeriod+5*time.Second, "node "+lost+" ready and untainted", func() (bool, error) {
		n, err := cl.Client.Nodes().Get(cl.Ctx, lost)
		if err != nil {
			return false, err
		}
		return nodeReady(n) == corev1.ConditionTrue && len(n.Spec.Taints) == 0,
			fmt.Errorf("ready %s, taints %v", nodeReady(n), n.Spec.Taints)
	})
	cl.Await(5*time.Second, "the evicted pods gone", func() (bool, error) {
		_, terminating, err := cl.pods("web")
		return err == nil && len(terminating) == 0, err
	})
	if ok, err := cl.deploymentAvailable("web", 4)(); !ok {
		t.Errorf("after the node came back: %v", err)
	}
}

// TestLeaderFailover: two controller managers run, one holds the Lease
// and acts. Its process dies; the other takes the Lease over and acts in
// its place, without making extra pods.
func TestLeaderFailover(t *testing.T) {
	cl := startCluster(t)
	cl.StartSimNodes(cl.nodesConfig("node-", "10.128.0.0/16"))
	cl.startScheduler()
	managers := map[string]*testenv.Component{
		"a": cl.startControllers("a"),
		"b": cl.startControllers("b"),
	}

	holder := func() (string, error) {
		l, err := cl.Client.Leases(metav1.NamespaceSystem).Get(cl.Ctx, "skiff-controllers")
		if err != nil || l.Spec.HolderIdentity == nil {
			return "", err
		}
		return *l.Spec.HolderIdentity, nil
	}
	var leader string
	cl.Await(10*time.Second, "one manager holds the Lease", func() (bool, error) {
		h, err := holder()
		leader = h
		return managers[h] != nil, err
	})
	other := map[string]string{"a": "b", "b": "a"}[leader]
	t.Logf("manager %s leads", leader)

	// A ReplicaSet of 3 gets exactly 3 pods.
	labels := map[string]string{"app": "web"}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: new(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.25"}}},
			},
		},
	}
	if _, err := cl.Client.ReplicaSets(ns).Create(cl.Ctx, rs); err != nil {
		t.Fatalf("create replica set web: %v", err)
	}
	cl.Await(10*time.Second, "replica set web has 3 ready pods", cl.replicaSetReady("web", 3))
	if h, err := holder(); h != leader {
		t.Fatalf("Lease holder %q while the pods were made, want %q (err %v)", h, leader, err)
	}

	// The leader dies; the other manager takes the Lease over.
	managers[leader].Stop()
	cl.Await(10*time.Second, "manager "+other+" holds the Lease", func() (bool, error) {
		h, err := holder()
		return h == other, fmt.Errorf("holder %q, err %v", h, err)
	})

	// It acts: scaled to 5, the ReplicaSet gets 2 more pods, no more.
	cl.Await(5*time.Second, "replica set web scaled to 5", func() (bool, error) {
		rs, err := cl.Client.ReplicaSets(ns).Get(cl.Ctx, "web")
		if err != nil {
			return false, err
		}
		rs.Spec.Replicas = new(int32(5))
		_, err = cl.Client.ReplicaSets(ns).Update(cl.Ctx, rs)
		return err == nil, err // a conflict is tried again
	})
	cl.Await(10*time.Second, "replica set web has 5 ready pods", cl.replicaSetReady("web", 5))
	live, terminating, err := cl.pods("web")
	if err != nil {
		t.Fatal(err)
	}
	if len(live)+len(terminating) != 5 {
		t.Errorf("got %d pods (%d being deleted), want 5", len(live)+len(terminating), len(terminating))
	}
}

// replicaSetReady reports whether the ReplicaSet's controller has seen its
// latest spec and it has exactly n pods, all of them ready.
func (cl *cluster) replicaSetReady(name string, n int32) func() (bool, error) {
	return func() (bool, error) {
		rs, err := cl.Client.ReplicaSets(ns).Get(cl.Ctx, name)
		if err != nil {
			return false, err
		}
		s := rs.Status
		if s.ObservedGeneration < rs.Generation || s.Replicas != n || s.ReadyReplicas != n {
			return false, fmt.Errorf("replica set %q: %d replicas, %d ready", name, s.Replicas, s.ReadyReplicas)
		}
		live, terminating, err := cl.pods(rs.Spec.Selector.MatchLabels["app"])
		if err != nil {
			return false, err
		}
		return len(live) == int(n) && len(terminating) == 0,
			fmt.Errorf("%d live pods, %d being deleted, want %d", len(live), len(terminating), n)
	}
}

// skiffctl runs one skiffctl command against the cluster, as a user
// would in a shell, and returns what it printed. A failed command fails
// the test.
func (cl *cluster) skiffctl(args ...string) string {
	cl.T.Helper()
	var out, errOut bytes.Buffer
	o := ctl.DefaultOptions()
	o.Streams = ctl.Streams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	o.Kubeconfig = cl.kubeconfig
	o.ConfigPaths = nil
	cmd := ctl.NewCommand(o)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(cl.Ctx)
	o.Close()
	if err != nil {
		cl.T.Fatalf("skiffctl %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

// webManifest is a Deployment of 3 replicas of image, as a user writes it.
func webManifest(image string) string {
	return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: app
        image: ` + image + "\n"
}

// TestRolloutWithSkiffctl: a user deploys with skiffctl, rolls a new
// image out, looks at the history, undoes the rollout and scales.
func TestRolloutWithSkiffctl(t *testing.T) {
	cl := startCluster(t)
	cl.StartSimNodes(cl.nodesConfig("node-", "10.128.0.0/16"))
	cl.startScheduler()
	cl.startControllers("")
	manifest := filepath.Join(t.TempDir(), "web.yaml")
	write := func(image string) {
		if err := os.WriteFile(manifest, []byte(webManifest(image)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rolledOut := func() {
		t.Helper()
		out := cl.skiffctl("rollout", "status", "deployment/web", "--timeout=15s")
		if want := `deployment "web" successfully rolled out`; !strings.Contains(out, want) {
			t.Fatalf("rollout status printed %q, want a line %q", out, want)
		}
	}

	// Apply, and wait for the rollout.
	write("nginx:1.25")
	cl.skiffctl("apply", "-f", manifest)
	rolledOut()

	// A new image, applied, rolls out.
	write("nginx:1.26")
	cl.skiffctl("apply", "-f", manifest)
	rolledOut()
	cl.Await(5*time.Second, "deployment web has 3 available replicas", cl.deploymentAvailable("web", 3))
	if got := cl.revisions(); !slices.Equal(got, []string{"1", "2"}) {
		t.Errorf("rollout history revisions: got %v, want [1 2]", got)
	}

	// Undo brings the old image back as revision 3.
	cl.skiffctl("rollout", "undo", "deployment/web")
	d, err := cl.Client.Deployments(ns).Get(cl.Ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Spec.Template.Spec.Containers[0].Image; got != "nginx:1.25" {
		t.Errorf("image after undo: got %q, want %q", got, "nginx:1.25")
	}
	rolledOut()
	cl.Await(5*time.Second, "revision 3 in the history", func() (bool, error) {
		got := cl.revisions()
		return slices.Equal(got, []string{"2", "3"}), fmt.Errorf("revisions %v, want [2 3]", got)
	})

	// Scale.
	cl.skiffctl("scale", "deployment/web", "--replicas=5")
	cl.Await(10*time.Second, "deployment web has 5 available replicas", cl.deploymentAvailable("web", 5))
}

// revisions are the REVISION column of `skiffctl rollout history
// deployment/web`.
func (cl *cluster) revisions() []string {
	cl.T.Helper()
	out := cl.skiffctl("rollout", "history", "deployment/web")
	var revs []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.Trim(f[0], "0123456789") == "" {
			revs = append(revs, f[0])
		}
	}
	return revs
}
