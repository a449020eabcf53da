// Package nodetest runs real kubelets for tests: each as its own
// process (this test binary started again) inside a network namespace the
// test creates, so the node's bridge, veths and routes never touch the
// machine's own network. The test's API server is reached through a
// forwarded loopback port inside that namespace, and a registry serving
// the busybox test image listens there too.
//
// Everything a node leaves — containers, mounts, cgroups, the namespace —
// is removed when the test ends, also when it fails.
package nodetest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sys/unix"

	"github.com/skiffdev/skiff/apiserver"
	"github.com/skiffdev/skiff/dns"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/join"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/nsutil"
	"github.com/skiffdev/skiff/internal/nsutil/nstest"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/testimage"
	"github.com/skiffdev/skiff/internal/wait"
	"github.com/skiffdev/skiff/kubelet"
	"github.com/skiffdev/skiff/kubelet/runtime"
	"github.com/skiffdev/skiff/proxy"
)

// envNode carries a node's settings to the kubelet process.
const envNode = "SKIFF_TEST_KUBELET"

// Main is the TestMain of packages that use this one: it runs the
// container runtime's re-executions and the kubelet processes that Start
// makes, and the tests otherwise.
func Main(m *testing.M) {
	if runtime.Reexec() {
		return
	}
	if s := os.Getenv(envNode); s != "" {
		os.Exit(runKubelet(s))
	}
	os.Exit(m.Run())
}

// settings is what a kubelet process gets from its test.
type settings struct {
	// Server is the API server as the node reaches it, https://...
	Server string
	// Token is the join token; the node joins with it at its first start
	// and keeps its credentials in Config.RootDir, as skiff agent does.
	Token  string
	Config kubelet.Config
	// Proxy, when set, runs a service proxy beside the kubelet, as
	// "skiff agent" does.
	Proxy *proxy.Config
	// DNS, when set, runs the node-local DNS server too.
	DNS *dns.Config
}

func runKubelet(s string) int {
	var st settings
	if err := json.Unmarshal([]byte(s), &st); err != nil {
		fmt.Fprintln(os.Stderr, "kubelet settings:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx = logging.Into(ctx, log)
	creds, err := join.Join(ctx, join.Config{
		Server:   st.Server,
		Token:    st.Token,
		RootDir:  st.Config.RootDir,
		NodeName: st.Config.NodeName,
		IPs:      []net.IP{net.ParseIP(st.Config.NodeIP)},
		DNSNames: []string{st.Config.NodeName},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "join:", err)
		return 1
	}
	st.Config.ServingTLS = creds.ServingTLS()
	c, err := client.New(creds.ClientConfig("kubelet-test"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go creds.Run(ctx, nil)
	errs := make(chan error, 2)
	go func() {
		if err := kubelet.Run(ctx, c, st.Config); err != nil {
			errs <- fmt.Errorf("kubelet: %w", err)
			return
		}
		errs <- nil
	}()
	n := 1
	if st.DNS != nil {
		n++
		go func() {
			if err := dns.Run(ctx, c, *st.DNS); err != nil {
				errs <- fmt.Errorf("dns: %w", err)
				return
			}
			errs <- nil
		}()
	}
	if st.Proxy != nil {
		n++
		go func() {
			if err := proxy.Run(ctx, c, *st.Proxy); err != nil {
				errs <- fmt.Errorf("proxy: %w", err)
				return
			}
			errs <- nil
		}()
	}
	code := 0
	for range n {
		if err := <-errs; err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
			cancel()
		}
	}
	return code
}

// Node is a kubelet under test, with a service proxy and a node-local
// DNS server in the same process when Proxy and DNS are set.
type Node struct {
	Name string
	// NetNS is the node's network namespace.
	NetNS string
	// Image is the busybox test image as the node pulls it.
	Image  string
	Config kubelet.Config
	Proxy  *proxy.Config
	DNS    *dns.Config

	t      testing.TB
	server string // the API server as the kubelet reaches it
	token  string // the join token

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	output *testenv.Output
	// started is when the kubelet process last started.
	started time.Time
}

// Option changes a node's kubelet configuration.
type Option func(*kubelet.Config)

// Start starts a node whose kubelet joins the API server srv (on the
// test's loopback) with a join token, as skiff agent does; WaitReady
// waits for its Node. The node has a registry of its own, serving the
// busybox test image. It skips the test as SkipIfUnavailable does, and
// when the busybox image cannot be built.
func Start(t testing.TB, srv *apiserver.Server, opts ...Option) *Node {
	t.Helper()
	SkipIfUnavailable(t)
	img := testimage.Busybox(t)
	ns := nstest.NewNetns(t)
	host, ref := serveImage(t, ns, "127.0.0.1:0", img)
	return startNode(t, ns, srv, host, ref, nil, nil, func(cfg *kubelet.Config) {
		cfg.NodeIP = "127.0.0.1"
		cfg.Listen = "127.0.0.1:10250"
		cfg.PodCIDR = "10.244.0.0/24"
	}, opts...)
}

// SkipIfUnavailable skips the test when it may not run real nodes: when
// not root, and in -short mode (make test-unit), which runs no container.
// Start and StartCluster call it; a test calls it first to skip before
// it starts anything else.
func SkipIfUnavailable(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs real nodes and their containers: not in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs a kubelet, which creates namespaces, cgroups and mounts")
	}
}

// serveImage serves a registry on addr inside the network namespace ns,
// pushes img to it as busybox, and returns the registry's host and the
// image reference.
func serveImage(t testing.TB, ns, addr string, img v1.Image) (host, ref string) {
	t.Helper()
	regLn, err := nsutil.Listen(ns, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	host = testimage.Serve(t, regLn)
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return nsutil.Dial(ctx, ns, network, addr)
	}
	return host, testimage.Push(t, host, "busybox", img, remote.WithTransport(transport))
}

// startNode starts a kubelet process (with a proxy when px is not nil,
// and a DNS server when dx is not nil) in the network namespace ns. The API server srv is forwarded into the
// namespace, and the node joins it with a token of its own; base and then
// opts adjust the kubelet's configuration.
func startNode(t testing.TB, ns string, srv *apiserver.Server, registry, image string, px *proxy.Config, dx *dns.Config, base Option, opts ...Option) *Node {
	t.Helper()
	apiLn, err := nsutil.Listen(ns, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	forward(t, apiLn, srv.Addr())
	token, err := testenv.NewClient(t, srv).CreateToken(testenv.Context(t), time.Hour, "nodetest")
	if err != nil {
		t.Fatalf("a join token: %v", err)
	}

	root := testenv.ShortTempDir(t)
	// The state that lasts until a reboot goes where a real node keeps
	// it: a tmpfs, as /run is (/dev/shm here, which is a tmpfs on
	// Debian).
	stateDir, err := os.MkdirTemp(tmpfsDir(), "skiff-state-")
	if err != nil {
		t.Fatal(err)
	}
	cfg := kubelet.DefaultConfig()
	cfg.NodeName = fmt.Sprintf("node-%04x", rand.IntN(1<<16))
	cfg.RootDir = filepath.Join(root, "node")
	cfg.StateDir = stateDir
	cfg.CgroupRoot = fmt.Sprintf("/skiff-test-%08x", rand.Uint32())
	cfg.InsecureRegistries = []string{registry}
	cfg.SyncInterval = 2 * time.Second
	base(&cfg)
	for _, o := range opts {
		o(&cfg)
	}
	if dx != nil {
		dx.NodeName, dx.ResolvConf, dx.ClusterDomain = cfg.NodeName, cfg.ResolvConf, cfg.ClusterDomain
		cfg.LocalDNS = dx.Address
	}
	n := &Node{Name: cfg.NodeName, NetNS: ns, Image: image, Config: cfg, Proxy: px, DNS: dx, t: t, server: "https://" + apiLn.Addr().String(), token: token.GetToken()}
	t.Cleanup(n.cleanup)
	n.startProcess()
	return n
}

// WaitReady waits until the node's Node object reports Ready.
func (n *Node) WaitReady(c *client.Client) {
	n.t.Helper()
	ctx := testenv.Context(n.t)
	wait.For(n.t, time.Minute, "node "+n.Name+" to be Ready", func() (bool, error) {
		if n.Exited() {
			return false, fmt.Errorf("the kubelet exited:\n%s", tail(n.Output(), 40))
		}
		node, err := c.Nodes().Get(ctx, n.Name)
		if err != nil {
			return false, nil
		}
		for _, cond := range node.Status.Conditions {
			if cond.Type == "Ready" && cond.Status == "True" {
				return true, nil
			}
		}
		return false, nil
	})
}

// Dial connects to addr from inside the node's network namespace: the
// API server's KubeletDialer in tests.
func (n *Node) Dial(ctx context.Context, addr string) (net.Conn, error) {
	return nsutil.Dial(ctx, n.NetNS, "tcp", addr)
}

// startProcess starts the kubelet process in the node's namespace.
func (n *Node) startProcess() {
	t := n.t
	t.Helper()
	s, err := json.Marshal(settings{Server: n.server, Token: n.token, Config: n.Config, Proxy: n.Proxy, DNS: n.DNS})
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envNode+"="+string(s))
	out := &testenv.Output{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := nsutil.StartIn(n.NetNS, cmd); err != nil {
		t.Fatalf("starting the kubelet: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	n.mu.Lock()
	n.cmd, n.exited, n.output, n.started = cmd, exited, out, time.Now()
	n.mu.Unlock()
}

// Started is when the kubelet process last started: what a benchmark of
// joining measures from.
func (n *Node) Started() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.started
}

// Restart stops the kubelet process abruptly (SIGKILL, as a crash) and
// starts it again on the same state. The containers keep running.
func (n *Node) Restart() {
	n.t.Helper()
	n.Kill()
	n.startProcess()
}

// Kill ends the kubelet process with SIGKILL and waits for it.
func (n *Node) Kill() {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// Pid is the kubelet process's PID.
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd.Process.Pid
}

// Output is what the kubelet process printed so far.
func (n *Node) Output() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.output == nil {
		return ""
	}
	return n.output.String()
}

// Exited reports whether the kubelet process has ended.
func (n *Node) Exited() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	select {
	case <-n.exited:
		return true
	default:
		return false
	}
}

// cleanup ends the kubelet, removes every container it left and checks
// nothing stays behind.
func (n *Node) cleanup() {
	t := n.t
	n.Kill()
	// The node runs this test binary, so under -race its data races are
	// reported in its output, where the test would not see them.
	if strings.Contains(n.Output(), "WARNING: DATA RACE") {
		t.Errorf("kubelet %s reported a data race", n.Name)
	}
	if t.Failed() {
		t.Logf("kubelet %s output:\n%s", n.Name, tail(n.Output(), 200))
	}
	rt, err := runtime.New(context.Background(), n.Config.RuntimeOptions())
	if err != nil {
		t.Errorf("opening the node's runtime for cleanup: %v", err)
	} else {
		list, _ := rt.List()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		for _, c := range list {
			if c.State != runtime.StateExited {
				if err := rt.Stop(ctx, c.ID, 0); err != nil {
					t.Errorf("cleanup: stopping container %s: %v", c.ID, err)
				}
			}
			if err := rt.Remove(c.ID); err != nil {
				t.Errorf("cleanup: removing container %s: %v", c.ID, err)
			}
		}
		cancel()
		sbs, _ := rt.ListSandboxes()
		for _, sb := range sbs {
			if err := rt.RemoveSandbox(sb.ID); err != nil {
				t.Errorf("cleanup: removing sandbox %s: %v", sb.ID, err)
			}
		}
	}
	// Safety net: whatever is still mounted under the node's directories.
	for _, dir := range []string{n.Config.StateDir, n.Config.RootDir} {
		for _, m := range MountsUnder(dir) {
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
				t.Errorf("cleanup: unmounting %s: %v", m, err)
			}
		}
	}
	for _, dir := range CgroupDirs(n.Config.CgroupRoot) {
		if err := os.Remove(dir); err != nil {
			t.Errorf("cleanup: removing cgroup %s: %v", dir, err)
		}
	}
	for _, dir := range []string{n.Config.StateDir, n.Config.RootDir} {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
}

// tmpfsDir is a tmpfs directory for node state: /dev/shm when it is a
// tmpfs, else the temporary directory.
func tmpfsDir() string {
	var st unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &st); err == nil && st.Type == unix.TMPFS_MAGIC {
		return "/dev/shm"
	}
	return os.TempDir()
}

// MountsUnder lists the mount points under dir, deepest first.
func MountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			out = append(out, fields[4])
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// CgroupDirs lists the cgroup directories of root in every hierarchy,
// deepest first, root's own included.
func CgroupDirs(root string) []string {
	var out []string
	bases := []string{"/sys/fs/cgroup"}
	if entries, err := os.ReadDir("/sys/fs/cgroup"); err == nil {
		for _, e := range entries {
			bases = append(bases, filepath.Join("/sys/fs/cgroup", e.Name()))
		}
	}
	for _, base := range bases {
		top := filepath.Join(base, root)
		if fi, err := os.Stat(top); err != nil || !fi.IsDir() {
			continue
		}
		_ = filepath.WalkDir(top, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				out = append(out, path)
			}
			return nil
		})
	}
	slices.SortFunc(out, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	return out
}

// forward copies every connection accepted on ln to addr on the test's
// loopback, until the test ends.
func forward(t testing.TB, ln net.Listener, addr string) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	track := func(c net.Conn, on bool) {
		mu.Lock()
		defer mu.Unlock()
		if on {
			conns[c] = true
		} else {
			delete(conns, c)
		}
	}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", addr)
			if err != nil {
				in.Close()
				continue
			}
			track(in, true)
			track(out, true)
			wg.Add(2)
			pipe := func(dst, src net.Conn) {
				defer wg.Done()
				_, _ = io.Copy(dst, src)
				dst.Close()
				src.Close()
				track(dst, false)
				track(src, false)
			}
			go pipe(in, out)
			go pipe(out, in)
		}
	}()
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}
