package simnodes_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
	"github.com/skiffdev/skiff/simnodes"
)

// deadline bounds every wait in these tests.
const deadline = 20 * time.Second

// running is a Run in progress.
type running struct {
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// stop cancels Run and waits for it to return, failing the test when it
// does not within the deadline.
func (r *running) stop(t testing.TB) error {
	t.Helper()
	r.once.Do(func() {
		r.cancel()
		select {
		case r.err = <-r.done:
		case <-time.After(deadline):
			r.err = fmt.Errorf("Run did not return within %v of its context ending", deadline)
		}
	})
	return r.err
}

// testConfig returns a configuration for a few nodes with short
// intervals.
func testConfig(t testing.TB, c *client.Client) simnodes.Config {
	cfg := simnodes.DefaultConfig()
	cfg.Client = c
	cfg.Count = 3
	cfg.HeartbeatInterval = 200 * time.Millisecond
	return cfg
}

// start runs simnodes with cfg until the test ends, logging to the
// test's output.
func start(t testing.TB, cfg simnodes.Config) *running {
	t.Helper()
	return startLogging(t, cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
}

// startLogging is start logging through log.
func startLogging(t testing.TB, cfg simnodes.Config, log *slog.Logger) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(logging.Into(context.Background(), log))
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- simnodes.Run(ctx, cfg) }()
	t.Cleanup(func() {
		if err := r.stop(t); err != nil {
			t.Error(err)
		}
	})
	return r
}

func condition(node *corev1.Node, t corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == t {
			return &node.Status.Conditions[i]
		}
	}
	return nil
}

func internalIP(node *corev1.Node) string {
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}

func TestNodesRegisterAndHeartbeat(t *testing.T) {
	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	cfg := testConfig(t, c)
	cfg.CPU = resource.MustParse("4")
	cfg.Memory = resource.MustParse("16Gi")
	cfg.Pods = resource.MustParse("50")
	cfg.Labels = map[string]string{"zone": "a"}
	cfg.NodeStatusInterval = 500 * time.Millisecond
	start(t, cfg)

	names := []string{"sim-0", "sim-1", "sim-2"}
	for _, name := range names {
		wait.For(t, deadline, "node "+name+" registered", func() (bool, error) {
			_, err := c.Nodes().Get(ctx, name)
			return err == nil, err
		})
		node, err := c.Nodes().Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if ready := condition(node, corev1.NodeReady); ready == nil || ready.Status != corev1.ConditionTrue || ready.LastHeartbeatTime.IsZero() {
			t.Errorf("%s: Ready condition: got %+v, want True with a heartbeat time", name, ready)
		}
		for res, want := range map[corev1.ResourceName]string{corev1.ResourceCPU: "4", corev1.ResourceMemory: "16Gi", corev1.ResourcePods: "50"} {
			if got := node.Status.Capacity[res]; got.Cmp(resource.MustParse(want)) != 0 {
				t.Errorf("%s: capacity %s: got %s, want %s", name, res, got.String(), want)
			}
			if got := node.Status.Allocatable[res]; got.Cmp(resource.MustParse(want)) != 0 {
				t.Errorf("%s: allocatable %s: got %s, want %s", name, res, got.String(), want)
			}
		}
		for k, want := range map[string]string{simnodes.LabelInstanceType: simnodes.InstanceType, "zone": "a", corev1.LabelHostname: name} {
			if got := node.Labels[k]; got != want {
				t.Errorf("%s: label %s: got %q, want %q", name, k, got, want)
			}
		}
		if got := node.Status.NodeInfo.KubeletVersion; got != simnodes.KubeletVersion {
			t.Errorf("%s: kubelet version: got %q, want %q", name, got, simnodes.KubeletVersion)
		}
		ip, err := netip.ParseAddr(internalIP(node))
		if err != nil || !netip.MustParsePrefix(cfg.PodCIDR).Contains(ip) {
			t.Errorf("%s: InternalIP: got %q, want an address in %s", name, internalIP(node), cfg.PodCIDR)
		}
	}

	// The status is written again now and then; times in the API have
	// whole seconds, so this takes a second or two.
	node, err := c.Nodes().Get(ctx, "sim-0")
	if err != nil {
		t.Fatal(err)
	}
	ready := condition(node, corev1.NodeReady)
	wait.For(t, deadline, "sim-0 status rewritten", func() (bool, error) {
		node, err := c.Nodes().Get(ctx, "sim-0")
		if err != nil {
			return false, err
		}
		now := condition(node, corev1.NodeReady)
		if !now.LastTransitionTime.Equal(&ready.LastTransitionTime) {
			return false, fmt.Errorf("lastTransitionTime moved from %v to %v", ready.LastTransitionTime, now.LastTransitionTime)
		}
		return now.LastHeartbeatTime.After(ready.LastHeartbeatTime.Time), nil
	})

	leases := c.Leases(corev1.NamespaceNodeLease)
	first := map[string]time.Time{}
	for _, name := range names {
		wait.For(t, deadline, "lease of "+name, func() (bool, error) {
			l, err := leases.Get(ctx, name)
			if err != nil {
				return false, err
			}
			first[name] = l.Spec.RenewTime.Time
			return true, nil
		})
		l, err := leases.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if got := ptr.Deref(l.Spec.HolderIdentity, ""); got != name {
			t.Errorf("lease %s: holder: got %q, want %q", name, got, name)
		}
		if got := ptr.Deref(l.Spec.LeaseDurationSeconds, 0); got != simnodes.LeaseDurationSeconds {
			t.Errorf("lease %s: duration: got %d, want %d", name, got, simnodes.LeaseDurationSeconds)
		}
	}
	for _, name := range names {
		wait.For(t, deadline, "lease of "+name+" renewed", func() (bool, error) {
			l, err := leases.Get(ctx, name)
			if err != nil {
				return false, err
			}
			return l.Spec.RenewTime.After(first[name]), nil
		})
	}
}

func TestAdoptsExistingNode(t *testing.T) {
	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	// A node left behind, NotReady, with a label of its own.
	old := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "sim-0", Labels: map[string]string{"keep": "me"}},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: corev1.ConditionUnknown},
		}},
	}
	if _, err := c.Nodes().Create(ctx, old); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, c)
	cfg.Count = 1
	start(t, cfg)
	wait.For(t, deadline, "sim-0 adopted", func() (bool, error) {
		node, err := c.Nodes().Get(ctx, "sim-0")
		if err != nil {
			return false, err
		}
		ready := condition(node, corev1.NodeReady)
		return ready != nil && ready.Status == corev1.ConditionTrue &&
			node.Labels["keep"] == "me" && node.Labels[simnodes.LabelInstanceType] == simnodes.InstanceType, nil
	})
}

// newPod returns a pod with an init container and two containers.
func newPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "init", Image: "busybox:1.36"}},
			Containers: []corev1.Container{
				{Name: "web", Image: "nginx:1.27"},
				{Name: "log", Image: "registry.example.com:5000/team/logger"},
			},
		},
	}
}

// createBound creates pod and binds it to node, as the scheduler would.
func createBound(t *testing.T, c *client.Client, pod *corev1.Pod, node string) {
	t.Helper()
	ctx := testenv.Context(t)
	if _, err := c.Pods(pod.Namespace).Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	err := c.Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name},
		Target:     corev1.ObjectReference{Kind: "Node", Name: node},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// awaitRunning waits until the pod is Running with an IP and returns it.
func awaitRunning(t *testing.T, c *client.Client, ns, name string) *corev1.Pod {
	t.Helper()
	ctx := testenv.Context(t)
	var pod *corev1.Pod
	wait.For(t, deadline, name+" running", func() (bool, error) {
		p, err := c.Pods(ns).Get(ctx, name)
		if err != nil {
			return false, err
		}
		pod = p
		return p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "", nil
	})
	return pod
}

func TestPodsRun(t *testing.T) {
	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	cfg := testConfig(t, c)
	cfg.StartDelay = 100 * time.Millisecond
	start(t, cfg)
	wait.For(t, deadline, "sim-2 registered", func() (bool, error) {
		_, err := c.Nodes().Get(ctx, "sim-2")
		return err == nil, err
	})

	createBound(t, c, newPod("a"), "sim-0")
	createBound(t, c, newPod("b"), "sim-0")
	createBound(t, c, newPod("c"), "sim-1")
	hostNet := newPod("host")
	hostNet.Spec.HostNetwork = true
	createBound(t, c, hostNet, "sim-2")
	// A pod bound to a node that is not simulated is left alone.
	createBound(t, c, newPod("elsewhere"), "real-node")

	seen := map[string]string{}
	for _, tc := range []struct{ pod, node string }{{"a", "sim-0"}, {"b", "sim-0"}, {"c", "sim-1"}} {
		pod := awaitRunning(t, c, "default", tc.pod)
		node, err := c.Nodes().Get(ctx, tc.node)
		if err != nil {
			t.Fatal(err)
		}
		st := pod.Status
		if other, dup := seen[st.PodIP]; dup {
			t.Errorf("pods %s and %s both have IP %s", other, tc.pod, st.PodIP)
		}
		seen[st.PodIP] = tc.pod
		if ip, err := netip.ParseAddr(st.PodIP); err != nil || !netip.MustParsePrefix(cfg.PodCIDR).Contains(ip) {
			t.Errorf("%s: podIP: got %q, want an address in %s", tc.pod, st.PodIP, cfg.PodCIDR)
		}
		if st.PodIP == internalIP(node) {
			t.Errorf("%s: podIP %s is the node's address", tc.pod, st.PodIP)
		}
		if len(st.PodIPs) != 1 || st.PodIPs[0].IP != st.PodIP {
			t.Errorf("%s: podIPs: got %v, want [%s]", tc.pod, st.PodIPs, st.PodIP)
		}
		if st.HostIP != internalIP(node) {
			t.Errorf("%s: hostIP: got %q, want the node's %q", tc.pod, st.HostIP, internalIP(node))
		}
		if st.StartTime == nil {
			t.Errorf("%s: no startTime", tc.pod)
		}
		for _, ct := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
			found := false
			for _, c := range st.Conditions {
				if c.Type == ct {
					found = c.Status == corev1.ConditionTrue
				}
			}
			if !found {
				t.Errorf("%s: condition %s is not True: %+v", tc.pod, ct, st.Conditions)
			}
		}
		if len(st.ContainerStatuses) != 2 {
			t.Fatalf("%s: got %d container statuses, want 2", tc.pod, len(st.ContainerStatuses))
		}
		for _, cs := range st.ContainerStatuses {
			if !cs.Ready || !ptr.Deref(cs.Started, false) || cs.State.Running == nil || cs.RestartCount != 0 ||
				cs.Image == "" || !strings.Contains(cs.ImageID, "@sha256:") || cs.ContainerID == "" {
				t.Errorf("%s: container %s: got %+v, want running, ready and started with image ids", tc.pod, cs.Name, cs)
			}
		}
		if len(st.InitContainerStatuses) != 1 || st.InitContainerStatuses[0].State.Terminated == nil ||
			st.InitContainerStatuses[0].State.Terminated.ExitCode != 0 {
			t.Errorf("%s: init container statuses: got %+v, want one completed", tc.pod, st.InitContainerStatuses)
		}
	}

	host := awaitRunning(t, c, "default", "host")
	node, err := c.Nodes().Get(ctx, "sim-2")
	if err != nil {
		t.Fatal(err)
	}
	if host.Status.PodIP != internalIP(node) {
		t.Errorf("host-network pod: podIP: got %q, want the node's %q", host.Status.PodIP, internalIP(node))
	}

	// By now the workers have seen every pod, the foreign one too.
	other, err := c.Pods("default").Get(ctx, "elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	if other.Status.Phase != corev1.PodPending {
		t.Errorf("pod on a real node: phase: got %s, want Pending", other.Status.Phase)
	}
}

func TestDeletedPodsGo(t *testing.T) {
	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	cfg := testConfig(t, c)
	cfg.Count = 1
	start(t, cfg)

	createBound(t, c, newPod("web"), "sim-0")
	first := awaitRunning(t, c, "default", "web")
	if err := c.Pods("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, deadline, "web deleted", func() (bool, error) {
		_, err := c.Pods("default").Get(ctx, "web")
		return apierrors.IsNotFound(err), err
	})

	// A new pod of the same name runs again; the address of the old one
	// is free again, but handed out last.
	createBound(t, c, newPod("web"), "sim-0")
	second := awaitRunning(t, c, "default", "web")
	if second.UID == first.UID {
		t.Fatalf("got the old pod back")
	}
	if second.Status.PodIP == first.Status.PodIP {
		t.Errorf("the new pod got the address just released, %s", first.Status.PodIP)
	}
}

func TestRestartKeepsAddresses(t *testing.T) {
	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	cfg := testConfig(t, c)
	cfg.Count = 1
	first := start(t, cfg)
	createBound(t, c, newPod("before"), "sim-0")
	before := awaitRunning(t, c, "default", "before")
	if err := first.stop(t); err != nil {
		t.Fatal(err)
	}

	// The new run adopts sim-0 and must not hand out the address that
	// "before" still has.
	start(t, cfg)
	createBound(t, c, newPod("after"), "sim-0")
	after := awaitRunning(t, c, "default", "after")
	if after.Status.PodIP == before.Status.PodIP {
		t.Errorf("both pods have %s", after.Status.PodIP)
	}
}

// simGoroutines lists the goroutines running code of simnodes or of the
// client-go machinery it starts (the API server uses neither).
func simGoroutines() []string {
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
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		s := string(g)
		for _, marker := range []string{"skiffdev/skiff/simnodes.", "skiffdev/skiff/internal/informers.",
			"k8s.io/client-go/tools/cache.", "k8s.io/client-go/util/workqueue."} {
			if strings.Contains(s, marker) {
				found = append(found, s)
				break
			}
		}
	}
	return found
}

func TestStopsCleanly(t *testing.T) {
	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	cfg := testConfig(t, nil)
	cfg.Connection = testenv.AdminConfig(t, srv) // Run makes and closes its own client
	cfg.StartDelay = time.Hour
	r := start(t, cfg)

	// Get everything going: nodes, leases, a pod waiting to start.
	wait.For(t, deadline, "leases", func() (bool, error) {
		l, err := c.Leases(corev1.NamespaceNodeLease).List(ctx, metav1.ListOptions{})
		return err == nil && len(l.Items) == cfg.Count, err
	})
	createBound(t, c, newPod("waiting"), "sim-0")

	if err := r.stop(t); err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}
	if gs := simGoroutines(); len(gs) > 0 {
		t.Errorf("%d goroutines still running after Run returned:\n\n%s", len(gs), strings.Join(gs, "\n\n"))
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	cfg := simnodes.DefaultConfig()
	cfg.Count = 0
	if err := simnodes.Run(context.Background(), cfg); err == nil {
		t.Errorf("Run with count 0 and no server: got nil, want an error")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*simnodes.Config)
		want   string // part of the error; "" for none
	}{
		{"defaults", func(*simnodes.Config) {}, ""},
		{"no server", func(c *simnodes.Config) { c.Connection.Server = "" }, "no API server given (--kubeconfig or --server)"},
		{"no nodes", func(c *simnodes.Config) { c.Count = 0 }, "--count 0"},
		{"bad prefix", func(c *simnodes.Config) { c.NamePrefix = "Sim_" }, "--name-prefix"},
		{"no cpu", func(c *simnodes.Config) { c.CPU = resource.MustParse("0") }, "--cpu 0: must be positive"},
		{"bad label", func(c *simnodes.Config) { c.Labels = map[string]string{"a b": "c"} }, `key "a b"`},
		{"negative delay", func(c *simnodes.Config) { c.StartDelay = -time.Second }, "--start-delay"},
		{"no heartbeat", func(c *simnodes.Config) { c.HeartbeatInterval = 0 }, "--heartbeat-interval"},
		{"bad cidr", func(c *simnodes.Config) { c.PodCIDR = "10.0.0.0" }, "--pod-cidr"},
		{"ipv6", func(c *simnodes.Config) { c.PodCIDR = "fd00::/64" }, "only IPv4"},
		{"5000 nodes fit a /10", func(c *simnodes.Config) { c.Count = 5000 }, ""},
		{"too many nodes", func(c *simnodes.Config) { c.PodCIDR = "10.0.0.0/16"; c.Count = 257 }, "holds 256 blocks of /24"},
		{"big nodes take big blocks", func(c *simnodes.Config) {
			c.PodCIDR = "10.0.0.0/16"
			c.Pods = resource.MustParse("300")
			c.Count = 129
		}, "holds 128 blocks of /23"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := simnodes.DefaultConfig()
			cfg.Connection.Server = "https://127.0.0.1:6443"
			tt.change(&cfg)
			err := cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestFlags(t *testing.T) {
	cfg := simnodes.DefaultConfig()
	fs := pflag.NewFlagSet("simnodes", pflag.ContinueOnError)
	cfg.AddFlags(fs)
	// The binary registers the connection flags, shared by every
	// component, and fills Connection from them.
	if fs.Lookup("server") != nil {
		t.Errorf("got a --server flag, want none: the binary registers the connection flags")
	}
	cfg.Connection = client.Config{Server: "https://10.0.0.1:6443"}
	if usage := fs.FlagUsages(); !strings.Contains(usage, "--memory quantity") || !strings.Contains(usage, `(default 32Gi)`) {
		t.Errorf("usage does not show --memory with its default:\n%s", usage)
	}
	err := fs.Parse([]string{"--count=5000", "--name-prefix=kw-", "--cpu=2", "--memory=4Gi",
		"--pods=20", "--start-delay=1s", "--heartbeat-interval=2s", "--node-labels=zone=a,rack=7"})
	if err != nil {
		t.Fatal(err)
	}
	want := simnodes.DefaultConfig()
	want.Connection, want.Count, want.NamePrefix = client.Config{Server: "https://10.0.0.1:6443"}, 5000, "kw-"
	want.CPU, want.Memory, want.Pods = resource.MustParse("2"), resource.MustParse("4Gi"), resource.MustParse("20")
	want.StartDelay, want.HeartbeatInterval = time.Second, 2*time.Second
	want.Labels = map[string]string{"zone": "a", "rack": "7"}
	if !equality.Semantic.DeepEqual(cfg, want) {
		t.Errorf("got %+v, want %+v", cfg, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if err := fs.Parse([]string{"--cpu=lots"}); err == nil {
		t.Errorf("--cpu=lots: got no error")
	}
}

// registeredHook is a slog.Handler that closes done when Run logs that
// every node is registered.
type registeredHook struct {
	slog.Handler
	once *sync.Once
	done chan struct{}
}

func (h registeredHook) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "nodes registered" {
		h.once.Do(func() { close(h.done) })
	}
	return h.Handler.Handle(ctx, r)
}

func (h registeredHook) WithAttrs(as []slog.Attr) slog.Handler {
	return registeredHook{h.Handler.WithAttrs(as), h.once, h.done}
}

func (h registeredHook) WithGroup(name string) slog.Handler {
	return registeredHook{h.Handler.WithGroup(name), h.once, h.done}
}

// cpuTime is the CPU time the process has used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procStatusMiB reads a memory figure (VmRSS, VmHWM) of this process.
func procStatusMiB(b *testing.B, field string) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb / 1024
		}
	}
	b.Fatalf("no %s in /proc/self/status", field)
	return 0
}

func heapMiB() float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapInuse) / (1 << 20)
}

// BenchmarkSimNodes5000 registers 5,000 nodes against an API server in
// the same process, then lets them heartbeat every 10 s for 20 s, and
// reports:
//
//   - register-s: time to register all nodes;
//   - register-cores, heartbeat-cores: CPU used by the whole process
//     (API server, etcd and simnodes) during each phase, in cores;
//   - heap-MiB, rss-MiB, peak-rss-MiB: memory of the whole process at
//     the end, and the growth of the heap since before simnodes started
//     (heap-growth-MiB, the nodes and leases in etcd and the API
//     server's caches included);
//   - fresh-leases: leases renewed within the last heartbeat interval at
//     the end (5,000 when the heartbeats keep pace).
//
// Run it with
//
//	go test -run '^$' -bench SimNodes5000 -benchtime 1x ./simnodes/
func BenchmarkSimNodes5000(b *testing.B) {
	const (
		count     = 5000
		interval  = 10 * time.Second
		heartbeat = 2 * interval
	)
	srv := testenv.StartServer(b)
	c := testenv.NewClient(b, srv)
	for range b.N {
		heapBefore := heapMiB()
		registered := make(chan struct{})
		cfg := simnodes.DefaultConfig()
		cfg.Client = c
		cfg.Count = count
		cfg.NamePrefix = fmt.Sprintf("bench%d-", time.Now().UnixNano())
		cfg.HeartbeatInterval = interval
		log := slog.New(registeredHook{slog.NewTextHandler(b.Output(), nil), &sync.Once{}, registered})

		cpu0, t0 := cpuTime(b), time.Now()
		r := startLogging(b, cfg, log)
		select {
		case <-registered:
		case <-time.After(5 * time.Minute):
			b.Fatalf("%d nodes not registered within 5 minutes", count)
		}
		cpu1, t1 := cpuTime(b), time.Now()

		// The heartbeat phase lasts a fixed time: that is the measurement.
		select {
		case <-time.After(heartbeat):
		case err := <-r.done:
			b.Fatalf("Run returned early: %v", err)
		}
		cpu2, t2 := cpuTime(b), time.Now()

		leases, err := c.Leases(corev1.NamespaceNodeLease).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		fresh := 0
		for _, l := range leases.Items {
			if strings.HasPrefix(l.Name, cfg.NamePrefix) && l.Spec.RenewTime != nil && time.Since(l.Spec.RenewTime.Time) < interval+time.Second {
				fresh++
			}
		}
		b.ReportMetric(t1.Sub(t0).Seconds(), "register-s")
		b.ReportMetric(float64(cpu1-cpu0)/float64(t1.Sub(t0)), "register-cores")
		b.ReportMetric(float64(cpu2-cpu1)/float64(t2.Sub(t1)), "heartbeat-cores")
		b.ReportMetric(float64(fresh), "fresh-leases")
		b.ReportMetric(procStatusMiB(b, "VmRSS"), "rss-MiB")
		b.ReportMetric(procStatusMiB(b, "VmHWM"), "peak-rss-MiB")
		heap := heapMiB()
		b.ReportMetric(heap, "heap-MiB")
		b.ReportMetric(heap-heapBefore, "heap-growth-MiB")
		if err := r.stop(b); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSimNodesPods measures how fast simulated nodes report pods
// Running: 5,000 pods are created already bound (spec.nodeName set)
// across 1,000 simulated nodes, and the benchmark reports pods/s from the
// first create until the last pod is Running, as seen through a watch.
//
//	go test -run '^$' -bench SimNodesPods -benchtime 1x ./simnodes/
func BenchmarkSimNodesPods(b *testing.B) {
	const (
		nodes    = 1000
		pods     = 5000
		creators = 16
	)
	srv := testenv.StartServer(b)
	c := testenv.NewClient(b, srv)
	for n := range b.N {
		ns := fmt.Sprintf("bench-%d", n)
		if _, err := c.Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			b.Fatal(err)
		}
		registered := make(chan struct{})
		cfg := simnodes.DefaultConfig()
		cfg.Client = c
		cfg.Count = nodes
		r := startLogging(b, cfg, slog.New(registeredHook{slog.NewTextHandler(b.Output(), nil), &sync.Once{}, registered}))
		select {
		case <-registered:
		case <-time.After(5 * time.Minute):
			b.Fatalf("%d nodes not registered within 5 minutes", nodes)
		}

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		w, err := c.Pods(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "status.phase=Running"})
		if err != nil {
			b.Fatal(err)
		}
		allRunning := make(chan error, 1)
		go func() {
			running := 0
			for ev := range w.ResultChan() {
				if ev.Type == watch.Added {
					if running++; running == pods {
						allRunning <- nil
						return
					}
				}
			}
			allRunning <- fmt.Errorf("watch ended after %d running pods", running)
		}()

		t0 := time.Now()
		names := make(chan int)
		var wg sync.WaitGroup
		for range creators {
			wg.Go(func() {
				for i := range names {
					pod := newPod(fmt.Sprintf("p%d", i))
					pod.Namespace = ns
					pod.Spec.NodeName = fmt.Sprintf("sim-%d", i%nodes)
					if _, err := c.Pods(ns).Create(ctx, pod); err != nil {
						b.Error(err)
					}
				}
			})
		}
		for i := range pods {
			names <- i
		}
		close(names)
		wg.Wait()
		created := time.Since(t0)
		if err := <-allRunning; err != nil {
			b.Fatal(err)
		}
		elapsed := time.Since(t0)
		w.Stop()
		cancel()
		b.ReportMetric(float64(pods)/created.Seconds(), "created-pods/s")
		b.ReportMetric(float64(pods)/elapsed.Seconds(), "running-pods/s")
		b.ReportMetric(heapMiB(), "heap-MiB")
		if err := r.stop(b); err != nil {
			b.Fatal(err)
		}
	}
}
