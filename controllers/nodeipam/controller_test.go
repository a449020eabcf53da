package nodeipam_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/apiserver/auth"
	"github.com/skiffdev/skiff/controllers/controller"
	"github.com/skiffdev/skiff/controllers/nodeipam"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/events"
	"github.com/skiffdev/skiff/internal/informers"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
)

const waitTimeout = 20 * time.Second

// startController runs a node IPAM controller, with its own informers
// and event recorder, against the API server c talks to. The returned
// function stops it (and waits for it); it also runs at cleanup.
func startController(t *testing.T, c *client.Client, cluster string, mask, workers int) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := informers.NewFactory(c, time.Minute)
	rec := events.NewRecorder(ctx, c, "controllers")
	ctrl, err := nodeipam.New(controller.Deps{Client: c, Informers: f, Recorder: rec}, nodeipam.Config{
		ClusterCIDR: netip.MustParsePrefix(cluster), NodeCIDRMaskSize: mask, Workers: workers,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx)
	done := make(chan struct{})
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
			f.Wait()
			rec.Stop()
		})
	}
	if !f.WaitForCacheSync(ctx) {
		cancel()
		f.Wait()
		rec.Stop()
		t.Fatal("caches did not sync")
	}
	go func() { defer close(done); ctrl.Run(ctx) }()
	t.Cleanup(stop)
	return stop
}

// startServer starts an API server and returns two clients of it: c, the
// test's, as the administrator, and cc, the controller's, as the
// controller manager, so that what the controller may do is tested too.
func startServer(t *testing.T) (ctx context.Context, c, cc *client.Client) {
	t.Helper()
	srv := testenv.StartServer(t)
	return testenv.Context(t), testenv.NewClient(t, srv), testenv.NewClientAs(t, srv, auth.ControllersUser)
}

func createNode(t *testing.T, ctx context.Context, c *client.Client, name, podCIDR string) {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDR: podCIDR}}
	if podCIDR != "" {
		n.Spec.PodCIDRs = []string{podCIDR}
	}
	if _, err := c.Nodes().Create(ctx, n); err != nil {
		t.Fatal(err)
	}
}

func deleteNode(t *testing.T, ctx context.Context, c *client.Client, name string) {
	t.Helper()
	if err := c.Nodes().Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

// podCIDR returns a node's spec.podCIDR, checking that spec.podCIDRs
// agrees.
func podCIDR(ctx context.Context, c *client.Client, name string) (string, error) {
	n, err := c.Nodes().Get(ctx, name)
	if err != nil {
		return "", err
	}
	if n.Spec.PodCIDR != "" && (len(n.Spec.PodCIDRs) != 1 || n.Spec.PodCIDRs[0] != n.Spec.PodCIDR) {
		return "", fmt.Errorf("node %q: podCIDR %s but podCIDRs %v", name, n.Spec.PodCIDR, n.Spec.PodCIDRs)
	}
	return n.Spec.PodCIDR, nil
}

// waitCIDRs waits until every named node has a pod CIDR, and returns
// them by node name.
func waitCIDRs(t *testing.T, ctx context.Context, c *client.Client, names ...string) map[string]string {
	t.Helper()
	got := map[string]string{}
	wait.For(t, waitTimeout, fmt.Sprintf("pod CIDRs on %d nodes", len(names)), func() (bool, error) {
		for _, name := range names {
			if got[name] != "" {
				continue
			}
			cidr, err := podCIDR(ctx, c, name)
			if err != nil || cidr == "" {
				return false, err
			}
			got[name] = cidr
		}
		return true, nil
	})
	return got
}

// checkDistinct fails the test unless all nodes' CIDRs differ and lie in
// cluster with the given mask size.
func checkDistinct(t *testing.T, cidrs map[string]string, cluster string, mask int) {
	t.Helper()
	owner := map[string]string{}
	cp := netip.MustParsePrefix(cluster)
	for node, cidr := range cidrs {
		if other, ok := owner[cidr]; ok {
			t.Errorf("nodes %s and %s: both got pod CIDR %s", other, node, cidr)
		}
		owner[cidr] = node
		p, err := netip.ParsePrefix(cidr)
		if err != nil || p.Bits() != mask || !cp.Contains(p.Addr()) {
			t.Errorf("node %s: got pod CIDR %s, want a /%d of %s", node, cidr, mask, cluster)
		}
	}
}

// hasEvent reports whether the node has an event of the reason whose
// message contains text.
func hasEvent(ctx context.Context, c *client.Client, node, reason, text string) (bool, error) {
	list, err := c.Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, err
	}
	for _, ev := range list.Items {
		if ev.InvolvedObject.Kind == "Node" && ev.InvolvedObject.Name == node && ev.Reason == reason && strings.Contains(ev.Message, text) {
			return true, nil
		}
	}
	return false, nil
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

func TestAllocatesDistinctCIDRs(t *testing.T) {
	ctx, c, cc := startServer(t)
	startController(t, cc, "10.244.0.0/16", 24, 5)
	nodes := names("node", 3)
	for _, n := range nodes {
		createNode(t, ctx, c, n, "")
	}
	cidrs := waitCIDRs(t, ctx, c, nodes...)
	checkDistinct(t, cidrs, "10.244.0.0/16", 24)
	if len(cidrs) != 3 {
		t.Errorf("got %d CIDRs, want 3", len(cidrs))
	}
}

func TestNodeCIDRMaskSize(t *testing.T) {
	ctx, c, cc := startServer(t)
	startController(t, cc, "10.100.0.0/20", 26, 2)
	nodes := names("node", 3)
	for _, n := range nodes {
		createNode(t, ctx, c, n, "")
	}
	checkDistinct(t, waitCIDRs(t, ctx, c, nodes...), "10.100.0.0/20", 26)
}

// TestPresetCIDRsRespected: a pod CIDR that a node has already (the
// kubelet's --pod-cidr, as `skiff server` sets 10.244.0.0/24) is never
// given to another node; collisions and CIDRs outside the cluster CIDR
// are reported on the node.
func TestPresetCIDRsRespected(t *testing.T) {
	ctx, c, cc := startServer(t)
	// There before the controller starts, like the server's own node.
	createNode(t, ctx, c, "server", "10.244.0.0/24")
	// One worker: nodes are handled in the order they were created, so
	// that "late" is recorded before the nodes without a CIDR are
	// handled. (With several workers a kubelet's CIDR that arrives at the
	// same moment as an allocation may collide with it; it is reported.)
	startController(t, cc, "10.244.0.0/16", 24, 1)
	createNode(t, ctx, c, "late", "10.244.1.0/24")
	createNode(t, ctx, c, "dup", "10.244.0.0/24")
	createNode(t, ctx, c, "away", "192.168.5.0/24")
	nodes := names("node", 3)
	for _, n := range nodes {
		createNode(t, ctx, c, n, "")
	}
	cidrs := waitCIDRs(t, ctx, c, nodes...)
	checkDistinct(t, cidrs, "10.244.0.0/16", 24)
	for n, cidr := range cidrs {
		if cidr == "10.244.0.0/24" || cidr == "10.244.1.0/24" {
			t.Errorf("node %s: got %s, which another node had already", n, cidr)
		}
	}
	for _, n := range []string{"server", "late", "dup", "away"} {
		got, err := podCIDR(ctx, c, n)
		want := map[string]string{"server": "10.244.0.0/24", "late": "10.244.1.0/24", "dup": "10.244.0.0/24", "away": "192.168.5.0/24"}[n]
		if err != nil || got != want {
			t.Errorf("node %s: got pod CIDR %q (%v), want %s unchanged", n, got, err, want)
		}
	}
	wait.For(t, waitTimeout, "a CIDRCollision event on node dup", func() (bool, error) {
		return hasEvent(ctx, c, "dup", nodeipam.EventCIDRCollision, "server")
	})
	wait.For(t, waitTimeout, "a CIDROutsideClusterCIDR event on node away", func() (bool, error) {
		return hasEvent(ctx, c, "away", nodeipam.EventCIDROutside, "10.244.0.0/16")
	})
}

func TestDeletionReleasesCIDR(t *testing.T) {
	ctx, c, cc := startServer(t)
	const cluster = "10.244.0.0/23" // two /24s
	startController(t, cc, cluster, 24, 5)
	createNode(t, ctx, c, "a", "")
	createNode(t, ctx, c, "b", "")
	first := waitCIDRs(t, ctx, c, "a", "b")
	checkDistinct(t, first, cluster, 24)

	deleteNode(t, ctx, c, "a")
	createNode(t, ctx, c, "c", "")
	got := waitCIDRs(t, ctx, c, "c")
	if got["c"] != first["a"] {
		t.Errorf("node c: got %s, want %s, released by the deleted node a", got["c"], first["a"])
	}

	// A node deleted and created again at once under the same name is a
	// new node: it gets the CIDR its predecessor released.
	deleteNode(t, ctx, c, "b")
	createNode(t, ctx, c, "b", "")
	got = waitCIDRs(t, ctx, c, "b")
	if got["b"] != first["b"] {
		t.Errorf("node b, created again: got %s, want %s", got["b"], first["b"])
	}
}

func TestRestartNeverDuplicates(t *testing.T) {
	ctx, c, cc := startServer(t)
	const cluster = "10.244.0.0/16"
	stop := startController(t, cc, cluster, 24, 5)
	// Names chosen so that a new controller's informer lists the nodes
	// that already have a CIDR after those that have none: only the
	// rebuild in Run keeps it from handing out 10.244.0.0/24 again.
	before := names("z-before", 3)
	for _, n := range before {
		createNode(t, ctx, c, n, "")
	}
	waitCIDRs(t, ctx, c, before...)
	stop()

	// Nodes that arrive while no controller runs, and while the next one
	// starts.
	between := names("a-between", 3)
	for _, n := range between {
		createNode(t, ctx, c, n, "")
	}
	startController(t, cc, cluster, 24, 5)
	after := names("after", 3)
	for _, n := range after {
		createNode(t, ctx, c, n, "")
	}
	all := append(append(before, between...), after...)
	cidrs := waitCIDRs(t, ctx, c, all...)
	checkDistinct(t, cidrs, cluster, 24)
	if len(cidrs) != len(all) {
		t.Errorf("got %d CIDRs, want %d", len(cidrs), len(all))
	}
}

func TestExhaustionWaitsForRelease(t *testing.T) {
	ctx, c, cc := startServer(t)
	const cluster = "10.244.0.0/22" // four /24s
	startController(t, cc, cluster, 24, 5)
	nodes := names("node", 4)
	for _, n := range nodes {
		createNode(t, ctx, c, n, "")
	}
	cidrs := waitCIDRs(t, ctx, c, nodes...)
	checkDistinct(t, cidrs, cluster, 24)

	createNode(t, ctx, c, "fifth", "")
	wait.For(t, waitTimeout, "a CIDRNotAvailable event on the fifth node", func() (bool, error) {
		return hasEvent(ctx, c, "fifth", nodeipam.EventCIDRNotAvailable, "no remaining CIDRs in cluster CIDR "+cluster)
	})
	if got, err := podCIDR(ctx, c, "fifth"); err != nil || got != "" {
		t.Fatalf("fifth node in a full range: got pod CIDR %q (%v), want none", got, err)
	}

	deleteNode(t, ctx, c, "node-2")
	got := waitCIDRs(t, ctx, c, "fifth")
	if got["fifth"] != cidrs["node-2"] {
		t.Errorf("fifth node: got %s, want %s, released by node-2", got["fifth"], cidrs["node-2"])
	}
}

func TestConcurrentNodes(t *testing.T) {
	ctx, c, cc := startServer(t)
	const cluster = "10.244.0.0/16"
	startController(t, cc, cluster, 24, 5)
	nodes := names("node", 50)
	var wg sync.WaitGroup
	errs := make(chan error, len(nodes))
	for _, n := range nodes {
		wg.Go(func() {
			_, err := c.Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	cidrs := waitCIDRs(t, ctx, c, nodes...)
	checkDistinct(t, cidrs, cluster, 24)
	if len(cidrs) != 50 {
		t.Errorf("got %d CIDRs, want 50", len(cidrs))
	}
}

// TestPatchIsConditional: a node whose kubelet sets a pod CIDR of
// its own between the controller's read and its write keeps the
// kubelet's; the controller's patch is conditional on resourceVersion.
func TestPatchIsConditional(t *testing.T) {
	ctx, c, _ := startServer(t)
	createNode(t, ctx, c, "n", "")
	n, err := c.Nodes().Get(ctx, "n")
	if err != nil {
		t.Fatal(err)
	}
	stale := n.ResourceVersion
	n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.244.7.0/24", []string{"10.244.7.0/24"}
	if _, err := c.Nodes().Update(ctx, n); err != nil {
		t.Fatal(err)
	}
	// What the controller sends, with the resourceVersion it read.
	patch := fmt.Sprintf(`{"metadata":{"resourceVersion":%q},"spec":{"podCIDR":"10.244.0.0/24","podCIDRs":["10.244.0.0/24"]}}`, stale)
	_, err = c.Nodes().Patch(ctx, "n", "application/merge-patch+json", []byte(patch))
	if !apierrors.IsConflict(err) {
		t.Fatalf("patch with a stale resourceVersion: got %v, want a conflict", err)
	}
}
