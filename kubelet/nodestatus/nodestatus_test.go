package nodestatus

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/version"
	"github.com/skiffdev/skiff/internal/wait"
)

const waitFor = 20 * time.Second

// run starts Run with cfg and stops it when the test ends. It returns a
// recorder of the onNode calls.
func run(t *testing.T, c *client.Client, cfg Config) *nodeRecorder {
	t.Helper()
	rec := &nodeRecorder{}
	ctx, cancel := context.WithCancel(logging.Into(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil))))
	done := make(chan error, 1)
	go func() { done <- Run(ctx, c, cfg, rec.record) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return rec
}

// nodeRecorder counts the onNode calls and keeps the last Node.
type nodeRecorder struct {
	calls atomic.Int64
	// mu guards last.
	mu   sync.Mutex
	last *corev1.Node
}

func (r *nodeRecorder) record(n *corev1.Node) {
	r.mu.Lock()
	r.last = n
	r.mu.Unlock()
	r.calls.Add(1)
}

func (r *nodeRecorder) node() *corev1.Node {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// fastConfig is a Config whose loops run every few milliseconds.
func fastConfig(name string) Config {
	return Config{
		NodeName:             name,
		NodeIP:               "10.0.0.5",
		RuntimeVersion:       "libcontainer 1.5.2",
		RenewInterval:        20 * time.Millisecond,
		StatusInterval:       20 * time.Millisecond,
		StatusReportInterval: time.Hour,
	}
}

func startServer(t *testing.T) *client.Client {
	s := testenv.StartServer(t)
	return testenv.NewClient(t, s)
}

// waitNode waits until the Node exists and cond holds, and returns it.
func waitNode(t *testing.T, c *client.Client, name string, cond func(*corev1.Node) bool) *corev1.Node {
	t.Helper()
	var node *corev1.Node
	wait.For(t, waitFor, "node "+name, func() (bool, error) {
		n, err := c.Nodes().Get(testenv.Context(t), name)
		if err != nil {
			return false, err
		}
		node = n
		return cond(n), nil
	})
	return node
}

func isReady(n *corev1.Node) bool {
	c := readyCondition(&n.Status)
	return c != nil && c.Status == corev1.ConditionTrue
}

func TestRegistration(t *testing.T) {
	c := startServer(t)
	cfg := fastConfig("node-a")
	cfg.PodCIDR = "10.244.1.0/24"
	cfg.Labels = map[string]string{"role": "worker"}
	cfg.Reserved = corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("100m"),
		corev1.ResourceMemory: resource.MustParse("64Mi"),
	}
	cfg.RootDir = t.TempDir()
	rec := run(t, c, cfg)

	node := waitNode(t, c, "node-a", isReady)

	wantLabels := map[string]string{
		"kubernetes.io/hostname": "node-a", "kubernetes.io/os": "linux",
		"kubernetes.io/arch": runtime.GOARCH, "role": "worker",
	}
	for k, v := range wantLabels {
		if got := node.Labels[k]; got != v {
			t.Errorf("label %s = %q, want %q", k, got, v)
		}
	}
	if node.Spec.PodCIDR != "10.244.1.0/24" || len(node.Spec.PodCIDRs) != 1 {
		t.Errorf("podCIDR = %q, podCIDRs = %v, want 10.244.1.0/24", node.Spec.PodCIDR, node.Spec.PodCIDRs)
	}

	st := node.Status
	if got := st.Capacity.Cpu().Value(); got != int64(runtime.NumCPU()) {
		t.Errorf("cpu capacity = %d, want %d", got, runtime.NumCPU())
	}
	if st.Capacity.Memory().Value() <= 64<<20 {
		t.Errorf("memory capacity = %v, want more than the 64Mi reserved", st.Capacity.Memory())
	}
	if got := st.Capacity.Pods().Value(); got != 110 {
		t.Errorf("pods capacity = %d, want 110", got)
	}
	if st.Capacity.StorageEphemeral().IsZero() {
		t.Errorf("ephemeral-storage capacity is missing: %v", st.Capacity)
	}
	wantCPU := st.Capacity.Cpu().MilliValue() - 100
	if got := st.Allocatable.Cpu().MilliValue(); got != wantCPU {
		t.Errorf("allocatable cpu = %dm, want %dm", got, wantCPU)
	}
	wantMem := st.Capacity.Memory().Value() - 64<<20
	if got := st.Allocatable.Memory().Value(); got != wantMem {
		t.Errorf("allocatable memory = %d, want %d", got, wantMem)
	}
	if got := st.Allocatable.Pods().Value(); got != 110 {
		t.Errorf("allocatable pods = %d, want 110", got)
	}

	info := st.NodeInfo
	if info.KernelVersion == "" || info.OSImage == "" {
		t.Errorf("nodeInfo lacks kernel or OS image: %+v", info)
	}
	if info.ContainerRuntimeVersion != "skiff://libcontainer-1.5.2" {
		t.Errorf("containerRuntimeVersion = %q, want skiff://libcontainer-1.5.2", info.ContainerRuntimeVersion)
	}
	if info.KubeletVersion != version.Get().GitVersion || info.OperatingSystem != "linux" || info.Architecture != runtime.GOARCH {
		t.Errorf("nodeInfo = %+v, want kubelet %s on linux/%s", info, version.Get().GitVersion, runtime.GOARCH)
	}
	if info.BootID == "" {
		t.Errorf("bootID is empty")
	}

	wantAddrs := []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.5"}, {Type: corev1.NodeHostName, Address: "node-a"}}
	if len(st.Addresses) != 2 || st.Addresses[0] != wantAddrs[0] || st.Addresses[1] != wantAddrs[1] {
		t.Errorf("addresses = %v, want %v", st.Addresses, wantAddrs)
	}
	if st.DaemonEndpoints.KubeletEndpoint.Port != 10250 {
		t.Errorf("kubelet port = %d, want 10250", st.DaemonEndpoints.KubeletEndpoint.Port)
	}
	for _, typ := range []corev1.NodeConditionType{corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure} {
		found := false
		for _, cond := range st.Conditions {
			if cond.Type == typ {
				found = true
				if cond.Status != corev1.ConditionFalse {
					t.Errorf("condition %s = %s, want False", typ, cond.Status)
				}
			}
		}
		if !found {
			t.Errorf("condition %s is missing", typ)
		}
	}
	ready := readyCondition(&st)
	if ready.Reason != ReasonReady || ready.Message != MessageReady {
		t.Errorf("Ready condition = %s/%q, want %s/%q", ready.Reason, ready.Message, ReasonReady, MessageReady)
	}

	wait.For(t, waitFor, "onNode with the node", func() (bool, error) {
		n := rec.node()
		return n != nil && n.Spec.PodCIDR == "10.244.1.0/24", nil
	})
}

func TestLeaseRenewed(t *testing.T) {
	c := startServer(t)
	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clk := clocktesting.NewFakeClock(start)
	cfg := Config{NodeName: "node-b", Clock: clk}
	run(t, c, cfg)

	node := waitNode(t, c, "node-b", isReady)
	getLease := func() (*coordinationv1.Lease, error) {
		return c.Leases(corev1.NamespaceNodeLease).Get(testenv.Context(t), "node-b")
	}
	var lease *coordinationv1.Lease
	wait.For(t, waitFor, "the lease", func() (bool, error) {
		l, err := getLease()
		lease = l
		return err == nil, err
	})
	if got := *lease.Spec.HolderIdentity; got != "node-b" {
		t.Errorf("holder = %q, want node-b", got)
	}
	if got := *lease.Spec.LeaseDurationSeconds; got != 40 {
		t.Errorf("leaseDurationSeconds = %d, want 40", got)
	}
	if !lease.Spec.RenewTime.Time.Equal(start) {
		t.Errorf("renewTime = %v, want the clock's %v", lease.Spec.RenewTime.Time, start)
	}
	if refs := lease.OwnerReferences; len(refs) != 1 || refs[0].Kind != "Node" || refs[0].UID != node.UID {
		t.Errorf("ownerReferences = %v, want the Node %s", refs, node.UID)
	}

	// Each step of the fake clock by the renew interval lets the renewal
	// timer fire; the Lease must follow the clock.
	wait.For(t, waitFor, "a renewal", func() (bool, error) {
		clk.Step(DefaultRenewInterval)
		l, err := getLease()
		if err != nil {
			return false, err
		}
		return l.Spec.RenewTime.Time.After(start), nil
	})
}

func TestLeaseRenewedRepeatedly(t *testing.T) {
	c := startServer(t)
	run(t, c, fastConfig("node-c"))
	var seen []string
	wait.For(t, waitFor, "three renewals", func() (bool, error) {
		l, err := c.Leases(corev1.NamespaceNodeLease).Get(testenv.Context(t), "node-c")
		if err != nil {
			return false, err
		}
		if len(seen) == 0 || seen[len(seen)-1] != l.ResourceVersion {
			seen = append(seen, l.ResourceVersion)
		}
		return len(seen) >= 3, nil
	})
}

func TestHealthDrivesReady(t *testing.T) {
	c := startServer(t)
	var healthErr atomic.Pointer[error]
	cfg := fastConfig("node-d")
	cfg.Health = func() error {
		if e := healthErr.Load(); e != nil {
			return *e
		}
		return nil
	}
	run(t, c, cfg)
	waitNode(t, c, "node-d", isReady)

	broken := errors.New("container runtime is down: no such file")
	healthErr.Store(&broken)
	node := waitNode(t, c, "node-d", func(n *corev1.Node) bool { return !isReady(n) })
	ready := readyCondition(&node.Status)
	if ready.Status != corev1.ConditionFalse || ready.Reason != ReasonNotReady || ready.Message != broken.Error() {
		t.Errorf("Ready = %s/%s/%q, want False/%s/%q", ready.Status, ready.Reason, ready.Message, ReasonNotReady, broken.Error())
	}
	notReadySince := ready.LastTransitionTime

	healthErr.Store(nil)
	node = waitNode(t, c, "node-d", isReady)
	ready = readyCondition(&node.Status)
	if ready.Reason != ReasonReady || ready.Message != MessageReady {
		t.Errorf("Ready = %s/%q, want %s/%q", ready.Reason, ready.Message, ReasonReady, MessageReady)
	}
	if ready.LastTransitionTime.Before(&notReadySince) {
		t.Errorf("lastTransitionTime %v did not move on from %v", ready.LastTransitionTime, notReadySince)
	}
}

func TestStatusNotRewrittenWhenUnchanged(t *testing.T) {
	c := startServer(t)
	rec := run(t, c, fastConfig("node-e"))
	node := waitNode(t, c, "node-e", isReady)

	// Ten more status checks, none of which may write.
	calls := rec.calls.Load()
	wait.For(t, waitFor, "ten status checks", func() (bool, error) {
		return rec.calls.Load() >= calls+10, nil
	})
	again, err := c.Nodes().Get(testenv.Context(t), "node-e")
	if err != nil {
		t.Fatal(err)
	}
	if again.ResourceVersion != node.ResourceVersion {
		t.Errorf("resourceVersion moved from %s to %s with nothing changed", node.ResourceVersion, again.ResourceVersion)
	}
}

func TestStatusReportedWhenDue(t *testing.T) {
	c := startServer(t)
	cfg := fastConfig("node-f")
	cfg.StatusReportInterval = 50 * time.Millisecond
	run(t, c, cfg)
	node := waitNode(t, c, "node-f", isReady)
	first := readyCondition(&node.Status).LastHeartbeatTime
	since := readyCondition(&node.Status).LastTransitionTime
	// With nothing changed, only the heartbeat time moves.
	node = waitNode(t, c, "node-f", func(n *corev1.Node) bool {
		r := readyCondition(&n.Status)
		return r != nil && first.Before(&r.LastHeartbeatTime)
	})
	if r := readyCondition(&node.Status); r.Status != corev1.ConditionTrue || !r.LastTransitionTime.Equal(&since) {
		t.Errorf("Ready = %s since %v, want True since %v", r.Status, r.LastTransitionTime, since)
	}
}

func TestTakeOverExistingNode(t *testing.T) {
	c := startServer(t)
	ctx := testenv.Context(t)
	taint := corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}
	_, err := c.Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-g", Labels: map[string]string{"keep": "me", "kubernetes.io/hostname": "old"}},
		Spec:       corev1.NodeSpec{Taints: []corev1.Taint{taint}},
		Status: corev1.NodeStatus{
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.1"}},
			Capacity:  corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("64")},
			Conditions: []corev1.NodeCondition{
				{Type: corev1.NodeReady, Status: corev1.ConditionUnknown, Reason: "NodeStatusUnknown"},
				{Type: "NetworkUnavailable", Status: corev1.ConditionFalse, Reason: "RouteCreated"},
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}

	cfg := fastConfig("node-g")
	cfg.PodCIDR = "10.244.7.0/24"
	run(t, c, cfg)
	node := waitNode(t, c, "node-g", isReady)

	if node.Labels["keep"] != "me" || node.Labels["kubernetes.io/hostname"] != "node-g" {
		t.Errorf("labels = %v, want keep=me and kubernetes.io/hostname=node-g", node.Labels)
	}
	if len(node.Spec.Taints) != 1 || node.Spec.Taints[0].Key != "dedicated" {
		t.Errorf("taints = %v, want the existing one kept", node.Spec.Taints)
	}
	if node.Spec.PodCIDR != "10.244.7.0/24" {
		t.Errorf("podCIDR = %q, want 10.244.7.0/24", node.Spec.PodCIDR)
	}
	if node.Status.Addresses[0].Address != "10.0.0.5" {
		t.Errorf("addresses = %v, want 10.0.0.5 first", node.Status.Addresses)
	}
	if got := node.Status.Capacity.Cpu().Value(); got != int64(runtime.NumCPU()) {
		t.Errorf("cpu capacity = %d, want %d", got, runtime.NumCPU())
	}
	found := false
	for _, cond := range node.Status.Conditions {
		found = found || cond.Type == "NetworkUnavailable"
	}
	if !found {
		t.Errorf("conditions = %v, want NetworkUnavailable kept", node.Status.Conditions)
	}
}

func TestPodCIDRKeptWhenSet(t *testing.T) {
	c := startServer(t)
	_, err := c.Nodes().Create(testenv.Context(t), &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-h"},
		Spec:       corev1.NodeSpec{PodCIDR: "10.244.3.0/24"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := fastConfig("node-h")
	cfg.PodCIDR = "10.244.9.0/24"
	rec := run(t, c, cfg)
	node := waitNode(t, c, "node-h", isReady)
	if node.Spec.PodCIDR != "10.244.3.0/24" {
		t.Errorf("podCIDR = %q, want the assigned 10.244.3.0/24", node.Spec.PodCIDR)
	}
	wait.For(t, waitFor, "onNode with the assigned CIDR", func() (bool, error) {
		n := rec.node()
		return n != nil && n.Spec.PodCIDR == "10.244.3.0/24", nil
	})
}

func TestReadyRestoredAfterUnknown(t *testing.T) {
	c := startServer(t)
	run(t, c, fastConfig("node-i"))
	ctx := testenv.Context(t)
	waitNode(t, c, "node-i", isReady)

	// Play the node lifecycle controller: it marks a silent node Unknown.
	wait.For(t, waitFor, "marking the node Unknown", func() (bool, error) {
		n, err := c.Nodes().Get(ctx, "node-i")
		if err != nil {
			return false, err
		}
		r := readyCondition(&n.Status)
		r.Status, r.Reason, r.Message = corev1.ConditionUnknown, "NodeStatusUnknown", "Kubelet stopped posting node status."
		_, err = c.Nodes().UpdateStatus(ctx, n)
		if apierrors.IsConflict(err) {
			return false, err
		}
		return err == nil, err
	})
	waitNode(t, c, "node-i", isReady)
}

func TestReregistersDeletedNode(t *testing.T) {
	c := startServer(t)
	run(t, c, fastConfig("node-j"))
	ctx := testenv.Context(t)
	old := waitNode(t, c, "node-j", isReady)
	if err := c.Nodes().Delete(ctx, "node-j", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	node := waitNode(t, c, "node-j", func(n *corev1.Node) bool { return n.UID != old.UID && isReady(n) })
	wait.For(t, waitFor, "the lease owned by the new node", func() (bool, error) {
		l, err := c.Leases(corev1.NamespaceNodeLease).Get(ctx, "node-j")
		if err != nil {
			return false, err
		}
		return len(l.OwnerReferences) == 1 && l.OwnerReferences[0].UID == node.UID, nil
	})
}

func TestRunRejectsInvalidConfig(t *testing.T) {
	err := Run(context.Background(), nil, Config{NodeIP: "not-an-ip"}, nil)
	if err == nil {
		t.Fatal("Run with no node name and a bad IP: got nil error")
	}
}

func TestAllocatable(t *testing.T) {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("2"),
		corev1.ResourceMemory: resource.MustParse("4Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	tests := []struct {
		name     string
		reserved corev1.ResourceList
		want     map[corev1.ResourceName]string
	}{
		{"nothing reserved", nil, map[corev1.ResourceName]string{"cpu": "2", "memory": "4Gi", "pods": "110"}},
		{"cpu and memory", corev1.ResourceList{"cpu": resource.MustParse("250m"), "memory": resource.MustParse("1Gi")},
			map[corev1.ResourceName]string{"cpu": "1750m", "memory": "3Gi", "pods": "110"}},
		{"more than there is", corev1.ResourceList{"cpu": resource.MustParse("3")},
			map[corev1.ResourceName]string{"cpu": "0", "memory": "4Gi", "pods": "110"}},
		{"a resource the node lacks", corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")},
			map[corev1.ResourceName]string{"cpu": "2", "memory": "4Gi", "pods": "110"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Allocatable(capacity, tt.reserved)
			if len(got) != len(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			for name, w := range tt.want {
				q := got[name]
				if q.Cmp(resource.MustParse(w)) != 0 {
					t.Errorf("%s: got %s, want %s", name, q.String(), w)
				}
			}
		})
	}
}

func TestRuntimeVersionString(t *testing.T) {
	for in, want := range map[string]string{
		"libcontainer 1.5.2":  "skiff://libcontainer-1.5.2",
		"":                    "skiff://unknown",
		"containerd://1.7.2":  "containerd://1.7.2",
		" libcontainer  1.5 ": "skiff://libcontainer-1.5",
	} {
		if got := RuntimeVersionString(in); got != want {
			t.Errorf("RuntimeVersionString(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMachineFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mem := write("meminfo", "MemTotal:        2048 kB\nMemFree:          100 kB\n")
	if got, err := memTotal(mem); err != nil || got != 2048*1024 {
		t.Errorf("memTotal = %d, %v, want %d", got, err, 2048*1024)
	}
	if _, err := memTotal(write("empty", "MemFree: 1 kB\n")); err == nil {
		t.Errorf("memTotal without MemTotal: got nil error")
	}
	osr := write("os-release", "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\n")
	if got := osImage(filepath.Join(dir, "missing"), osr); got != "Debian GNU/Linux 13 (trixie)" {
		t.Errorf("osImage = %q, want Debian GNU/Linux 13 (trixie)", got)
	}
	if got := osImage(filepath.Join(dir, "missing")); got != "Linux" {
		t.Errorf("osImage with no file = %q, want Linux", got)
	}
	if got := firstLine(write("machine-id", "abc123\n")); got != "abc123" {
		t.Errorf("firstLine = %q, want abc123", got)
	}
}
