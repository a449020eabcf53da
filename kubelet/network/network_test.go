package network_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/nsutil"
	"github.com/skiffdev/skiff/internal/nsutil/nstest"
	"github.com/skiffdev/skiff/kubelet/network"
)

// node is a scratch network namespace playing the node, with a Manager
// whose calls all run inside it.
type node struct {
	tb   testing.TB
	ns   string
	root string
	m    *network.Manager
}

// quietCtx carries a logger that discards what the Manager logs.
func quietCtx() context.Context {
	return logging.Into(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// newNode makes a node namespace and a Manager for it, set up for cidr.
func newNode(tb testing.TB, cidr string) *node {
	tb.Helper()
	n := &node{tb: tb, ns: nstest.NewNetns(tb), root: tb.TempDir()}
	n.m = n.newManager()
	if err := n.do(func() error { return n.m.EnsureNode(netip.MustParsePrefix(cidr)) }); err != nil {
		tb.Fatalf("EnsureNode: %v", err)
	}
	return n
}

func (n *node) newManager() *network.Manager {
	n.tb.Helper()
	m, err := network.New(quietCtx(), network.Config{Root: n.root, MTU: 1400})
	if err != nil {
		n.tb.Fatal(err)
	}
	return m
}

// do runs fn inside the node's namespace.
func (n *node) do(fn func() error) error { return nsutil.Do(n.ns, fn) }

func (n *node) attach(podID, netnsPath string) netip.Addr {
	n.tb.Helper()
	var ip netip.Addr
	err := n.do(func() error {
		var err error
		ip, err = n.m.Attach(context.Background(), podID, netnsPath)
		return err
	})
	if err != nil {
		n.tb.Fatalf("Attach(%q): %v", podID, err)
	}
	return ip
}

func (n *node) detach(podID, netnsPath string) {
	n.tb.Helper()
	if err := n.do(func() error { return n.m.Detach(podID, netnsPath) }); err != nil {
		n.tb.Fatalf("Detach(%q): %v", podID, err)
	}
}

// links names the links of the namespace at path.
func links(tb testing.TB, path string) []string {
	tb.Helper()
	var names []string
	err := nsutil.Do(path, func() error {
		ls, err := netlink.LinkList()
		for _, l := range ls {
			names = append(names, l.Attrs().Name)
		}
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	slices.Sort(names)
	return names
}

// ipFiles lists the files of the address book, temporary ones included.
func ipFiles(tb testing.TB, root string) []string {
	tb.Helper()
	entries, err := os.ReadDir(filepath.Join(root, "ips"))
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// talk opens a listener in pod a's namespace on ipA and connects to it from
// pod b's namespace, checking that data flows and that a sees ipB.
func talk(t *testing.T, nsA string, ipA netip.Addr, nsB string, ipB netip.Addr) {
	t.Helper()
	l, err := nsutil.Listen(nsA, "tcp", netip.AddrPortFrom(ipA, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type accepted struct {
		remote string
		err    error
	}
	got := make(chan accepted, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- accepted{err: err}
			return
		}
		defer c.Close()
		_, err = io.WriteString(c, "hi")
		got <- accepted{remote: c.RemoteAddr().String(), err: err}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := nsutil.Dial(ctx, nsB, "tcp", l.Addr().String())
	if err != nil {
		t.Fatalf("dial %s from %s: %v", l.Addr(), ipB, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "hi" {
		t.Fatalf("read %q, %v; want %q", b, err, "hi")
	}
	a := <-got
	if a.err != nil {
		t.Fatal(a.err)
	}
	if host, _, _ := net.SplitHostPort(a.remote); host != ipB.String() {
		t.Errorf("listener saw %s, want %s", host, ipB)
	}
}

func TestEnsureNode(t *testing.T) {
	n := newNode(t, "10.244.0.0/24")
	if got, want := n.m.Gateway(), netip.MustParseAddr("10.244.0.1"); got != want {
		t.Errorf("Gateway() = %s, want %s", got, want)
	}
	// Twice more: idempotent.
	for i := 0; i < 2; i++ {
		if err := n.do(func() error { return n.m.EnsureNode(netip.MustParsePrefix("10.244.0.0/24")) }); err != nil {
			t.Fatal(err)
		}
	}
	checkBridge := func(want string) {
		t.Helper()
		err := n.do(func() error {
			br, err := netlink.LinkByName(network.DefaultBridge)
			if err != nil {
				return err
			}
			if br.Type() != "bridge" || br.Attrs().Flags&net.FlagUp == 0 {
				return fmt.Errorf("%s: type %s, flags %v; want an up bridge", network.DefaultBridge, br.Type(), br.Attrs().Flags)
			}
			addrs, err := netlink.AddrList(br, netlink.FAMILY_V4)
			if err != nil {
				return err
			}
			if len(addrs) != 1 || addrs[0].IPNet.String() != want {
				return fmt.Errorf("bridge addresses %v, want only %s", addrs, want)
			}
			fwd, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
			if err != nil {
				return err
			}
			if strings.TrimSpace(string(fwd)) != "1" {
				return fmt.Errorf("ip_forward = %q, want 1", fwd)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	checkBridge("10.244.0.1/24")

	// Another CIDR, no pods: the address is replaced.
	if err := n.do(func() error { return n.m.EnsureNode(netip.MustParsePrefix("10.245.0.0/16")) }); err != nil {
		t.Fatal(err)
	}
	checkBridge("10.245.0.1/16")

	// With a pod attached, a change of CIDR is refused.
	pod := nstest.NewNetns(t)
	n.attach("p1", pod)
	err := n.do(func() error { return n.m.EnsureNode(netip.MustParsePrefix("10.246.0.0/24")) })
	if err == nil || !strings.Contains(err.Error(), "attached") {
		t.Fatalf("CIDR change with a pod attached: got %v, want an error saying pods are attached", err)
	}
	checkBridge("10.245.0.1/16")
	n.detach("p1", pod)

	for _, bad := range []string{"fd00::/64", "10.0.0.0/31"} {
		if err := n.do(func() error { return n.m.EnsureNode(netip.MustParsePrefix(bad)) }); err == nil {
			t.Errorf("EnsureNode(%s): want an error", bad)
		}
	}
}

func TestAttachBeforeEnsureNode(t *testing.T) {
	m, err := network.New(quietCtx(), network.Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Attach(context.Background(), "p", "/nonexistent"); err == nil || !strings.Contains(err.Error(), "EnsureNode") {
		t.Errorf("got %v, want an error naming EnsureNode", err)
	}
}

func TestPodsTalk(t *testing.T) {
	n := newNode(t, "10.244.0.0/24")
	nsA, nsB := nstest.NewNetns(t), nstest.NewNetns(t)
	ipA := n.attach("pod-a", nsA)
	ipB := n.attach("pod-b", nsB)
	if ipA == ipB {
		t.Fatalf("both pods got %s", ipA)
	}
	cidr := netip.MustParsePrefix("10.244.0.0/24")
	for _, ip := range []netip.Addr{ipA, ipB} {
		if !cidr.Contains(ip) || ip == n.m.Gateway() || ip == cidr.Addr() {
			t.Errorf("bad pod IP %s", ip)
		}
	}

	// The pod side: eth0 with the address and MTU, a default route.
	err := nsutil.Do(nsA, func() error {
		eth0, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if eth0.Attrs().MTU != 1400 || eth0.Attrs().Flags&net.FlagUp == 0 {
			return fmt.Errorf("eth0: mtu %d flags %v, want 1400 and up", eth0.Attrs().MTU, eth0.Attrs().Flags)
		}
		b := ipA.As4()
		if got, want := eth0.Attrs().HardwareAddr.String(), fmt.Sprintf("0a:58:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3]); got != want {
			return fmt.Errorf("eth0 MAC %s, want %s (derived from the IP)", got, want)
		}
		addrs, err := netlink.AddrList(eth0, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		if len(addrs) != 1 || addrs[0].IPNet.String() != netip.PrefixFrom(ipA, 24).String() {
			return fmt.Errorf("eth0 addresses %v, want %s/24", addrs, ipA)
		}
		routes, err := netlink.RouteList(eth0, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, r := range routes {
			if (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.String() == "10.244.0.1" {
				return nil
			}
		}
		return fmt.Errorf("no default route via 10.244.0.1 in %v", routes)
	})
	if err != nil {
		t.Fatal(err)
	}

	// The node side: the host end is a port of the bridge.
	err = n.do(func() error {
		br, err := netlink.LinkByName(network.DefaultBridge)
		if err != nil {
			return err
		}
		l, err := netlink.LinkByName(network.HostVethName("pod-a"))
		if err != nil {
			return err
		}
		if got := br.Attrs().HardwareAddr.String(); got != "0a:58:0a:f4:00:01" {
			return fmt.Errorf("bridge MAC %s, want 0a:58:0a:f4:00:01 (fixed, from the gateway IP)", got)
		}
		if l.Attrs().MasterIndex != br.Attrs().Index || l.Attrs().Flags&net.FlagUp == 0 {
			return fmt.Errorf("%s: master %d flags %v; want bridge %d and up", l.Attrs().Name, l.Attrs().MasterIndex, l.Attrs().Flags, br.Attrs().Index)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	talk(t, nsA, ipA, nsB, ipB)
	talk(t, nsB, ipB, nsA, ipA)
	// The pod reaches its gateway, the node's bridge address.
	talk(t, n.ns, n.m.Gateway(), nsA, ipA)

	// The machine's own namespace got none of this.
	for _, name := range []string{network.HostVethName("pod-a"), network.HostVethName("pod-b")} {
		if _, err := net.InterfaceByName(name); err == nil {
			t.Errorf("%s appeared in the machine's network namespace", name)
		}
	}
}

func TestAttachIdempotentAndRepairs(t *testing.T) {
	n := newNode(t, "10.244.0.0/24")
	ns := nstest.NewNetns(t)
	ip := n.attach("pod", ns)
	if again := n.attach("pod", ns); again != ip {
		t.Fatalf("second Attach gave %s, want %s", again, ip)
	}
	peer := nstest.NewNetns(t)
	peerIP := n.attach("peer", peer)

	// Break things one by one; Attach must put them back.
	breakers := map[string]func() error{
		"host veth deleted": func() error {
			return n.do(func() error {
				l, err := netlink.LinkByName(network.HostVethName("pod"))
				if err != nil {
					return err
				}
				return netlink.LinkDel(l)
			})
		},
		"default route and address deleted, eth0 down": func() error {
			return nsutil.Do(ns, func() error {
				l, err := netlink.LinkByName("eth0")
				if err != nil {
					return err
				}
				addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
				if err != nil {
					return err
				}
				for _, a := range addrs {
					if err := netlink.AddrDel(l, &a); err != nil {
						return err
					}
				}
				return netlink.LinkSetDown(l)
			})
		},
		"host veth unplugged from the bridge": func() error {
			return n.do(func() error {
				l, err := netlink.LinkByName(network.HostVethName("pod"))
				if err != nil {
					return err
				}
				return netlink.LinkSetNoMaster(l)
			})
		},
	}
	for name, breakIt := range breakers {
		if err := breakIt(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := n.attach("pod", ns); got != ip {
			t.Fatalf("after %s: Attach gave %s, want %s", name, got, ip)
		}
		talk(t, ns, ip, peer, peerIP)
	}
}

func TestDetach(t *testing.T) {
	n := newNode(t, "10.244.0.0/24")
	ns := nstest.NewNetns(t)
	n.attach("pod", ns)
	n.detach("pod", ns)
	n.detach("pod", ns) // again: nothing to do
	if got := links(t, ns); !slices.Equal(got, []string{"lo"}) {
		t.Errorf("pod links after Detach: %v, want [lo]", got)
	}
	if got := links(t, n.ns); !slices.Equal(got, []string{"lo", network.DefaultBridge}) {
		t.Errorf("node links after Detach: %v, want [lo %s]", got, network.DefaultBridge)
	}
	if alloc, _ := n.m.Allocated(); len(alloc) != 0 {
		t.Errorf("Allocated() after Detach = %v, want none", alloc)
	}

	// Detach after the pod's namespace is gone.
	dir := t.TempDir()
	gone := filepath.Join(dir, "net")
	if err := nsutil.NewPinned(map[nsutil.Kind]string{nsutil.Net: gone}, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nsutil.Unpin(gone) })
	n.attach("gone", gone)
	if err := nsutil.Unpin(gone); err != nil {
		t.Fatal(err)
	}
	n.detach("gone", gone)
	if alloc, _ := n.m.Allocated(); len(alloc) != 0 {
		t.Errorf("Allocated() = %v, want none", alloc)
	}
	if got := links(t, n.ns); !slices.Equal(got, []string{"lo", network.DefaultBridge}) {
		t.Errorf("node links: %v, want [lo %s]", got, network.DefaultBridge)
	}
	if files := ipFiles(t, n.root); len(files) != 0 {
		t.Errorf("address book not empty: %v", files)
	}
}

func TestExhaustionAndReuse(t *testing.T) {
	n := newNode(t, "10.9.0.0/29") // .1 gateway, .2–.6 pods, .7 broadcast
	nets := map[string]string{}
	got := map[netip.Addr]string{}
	for i := 0; i < 5; i++ {
		pod := fmt.Sprintf("pod-%d", i)
		nets[pod] = nstest.NewNetns(t)
		ip := n.attach(pod, nets[pod])
		if other, dup := got[ip]; dup {
			t.Fatalf("%s and %s both got %s", other, pod, ip)
		}
		got[ip] = pod
	}
	for _, s := range []string{"10.9.0.0", "10.9.0.1", "10.9.0.7"} {
		if pod, ok := got[netip.MustParseAddr(s)]; ok {
			t.Errorf("%s was given %s", pod, s)
		}
	}

	extra := nstest.NewNetns(t)
	err := n.do(func() error {
		_, err := n.m.Attach(context.Background(), "one-too-many", extra)
		return err
	})
	if !errors.Is(err, network.ErrNoAddresses) || !strings.Contains(err.Error(), "10.9.0.0/29") {
		t.Fatalf("got %v, want ErrNoAddresses naming 10.9.0.0/29", err)
	}
	if l := links(t, extra); !slices.Equal(l, []string{"lo"}) {
		t.Errorf("failed Attach left links %v in the pod", l)
	}

	// Free one address; the next pod gets exactly that one.
	n.detach("pod-2", nets["pod-2"])
	freed := netip.Addr{}
	for ip, pod := range got {
		if pod == "pod-2" {
			freed = ip
		}
	}
	if ip := n.attach("one-too-many", extra); ip != freed {
		t.Errorf("after Detach got %s, want the freed %s", ip, freed)
	}
}

func TestRestartKeepsAllocations(t *testing.T) {
	n := newNode(t, "10.244.0.0/24")
	nsA, nsB := nstest.NewNetns(t), nstest.NewNetns(t)
	ipA := n.attach("pod-a", nsA)
	ipB := n.attach("pod-b", nsB)
	before, _ := n.m.Allocated()

	// A new Manager on the same Root, as after a kubelet restart.
	n.m = n.newManager()
	after, err := n.m.Allocated()
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 2 || after["pod-a"] != before["pod-a"] || after["pod-b"] != before["pod-b"] {
		t.Fatalf("Allocated() after restart = %v, want %v", after, before)
	}
	if err := n.do(func() error { return n.m.EnsureNode(netip.MustParsePrefix("10.244.0.0/24")) }); err != nil {
		t.Fatal(err)
	}
	if got := n.attach("pod-a", nsA); got != ipA {
		t.Errorf("pod-a after restart: %s, want %s", got, ipA)
	}
	nsC := nstest.NewNetns(t)
	if ipC := n.attach("pod-c", nsC); ipC == ipA || ipC == ipB {
		t.Errorf("pod-c got %s, already taken", ipC)
	}
	talk(t, nsA, ipA, nsB, ipB)
}

func TestConcurrentAttach(t *testing.T) {
	n := newNode(t, "10.244.0.0/24")
	const pods = 12
	nets := make([]string, pods)
	for i := range nets {
		nets[i] = nstest.NewNetns(t)
	}
	ips := make([]netip.Addr, pods)
	var wg sync.WaitGroup
	for i := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := n.do(func() error {
				var err error
				ips[i], err = n.m.Attach(context.Background(), fmt.Sprint("pod-", i), nets[i])
				return err
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	seen := map[netip.Addr]bool{}
	for _, ip := range ips {
		if seen[ip] {
			t.Fatalf("address %s given twice: %v", ip, ips)
		}
		seen[ip] = true
	}

	// Detach them all, also concurrently; nothing may be left.
	for i := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.do(func() error { return n.m.Detach(fmt.Sprint("pod-", i), nets[i]) }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := links(t, n.ns); !slices.Equal(got, []string{"lo", network.DefaultBridge}) {
		t.Errorf("node links: %v, want [lo %s]", got, network.DefaultBridge)
	}
	for i, ns := range nets {
		if got := links(t, ns); !slices.Equal(got, []string{"lo"}) {
			t.Errorf("pod %d links: %v, want [lo]", i, got)
		}
	}
	if files := ipFiles(t, n.root); len(files) != 0 {
		t.Errorf("address book not empty: %v", files)
	}
}

func TestHostVethName(t *testing.T) {
	a, b := network.HostVethName("x"), network.HostVethName("y")
	if a == b || len(a) != 12 || !strings.HasPrefix(a, "veth") || a != network.HostVethName("x") {
		t.Errorf("HostVethName: %q, %q", a, b)
	}
}

// BenchmarkAttach measures Attach of a new pod (veth pair, address, route);
// Detach runs untimed between iterations.
func BenchmarkAttach(b *testing.B) {
	n := newNode(b, "10.244.0.0/16")
	ns := nstest.NewNetns(b)
	ctx := context.Background()
	err := n.do(func() error {
		for i := 0; b.Loop(); i++ {
			id := fmt.Sprint("bench-", i)
			if _, err := n.m.Attach(ctx, id, ns); err != nil {
				return err
			}
			b.StopTimer()
			if err := n.m.Detach(id, ns); err != nil {
				return err
			}
			b.StartTimer()
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAttachAgain measures the idempotent Attach of a pod that is
// already wired (what a kubelet resync costs).
func BenchmarkAttachAgain(b *testing.B) {
	n := newNode(b, "10.244.0.0/16")
	ns := nstest.NewNetns(b)
	n.attach("pod", ns)
	ctx := context.Background()
	err := n.do(func() error {
		for b.Loop() {
			if _, err := n.m.Attach(ctx, "pod", ns); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

func TestAttachMissingNetns(t *testing.T) {
	n := newNode(t, "10.244.0.0/24")
	missing := filepath.Join(t.TempDir(), "no-such-netns")
	err := n.do(func() error {
		_, err := n.m.Attach(context.Background(), "pod", missing)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("got %v, want an error naming %s", err, missing)
	}
	if alloc, _ := n.m.Allocated(); len(alloc) != 0 {
		t.Errorf("failed Attach kept an address: %v", alloc)
	}
	if got := links(t, n.ns); !slices.Equal(got, []string{"lo", network.DefaultBridge}) {
		t.Errorf("node links: %v, want [lo %s]", got, network.DefaultBridge)
	}
	if files := ipFiles(t, n.root); len(files) != 0 {
		t.Errorf("address book not empty: %v", files)
	}
}

// A node-local server's address stays on the bridge beside the gateway,
// also when the pod CIDR changes, and a pod reaches it.
func TestEnsureNodeLocalAddrs(t *testing.T) {
	n := &node{tb: t, ns: nstest.NewNetns(t), root: t.TempDir()}
	m, err := network.New(quietCtx(), network.Config{Root: n.root, LocalAddrs: []netip.Addr{netip.MustParseAddr("169.254.20.10")}})
	if err != nil {
		t.Fatal(err)
	}
	n.m = m
	addrs := func() []string {
		t.Helper()
		var out []string
		if err := n.do(func() error {
			br, err := netlink.LinkByName(network.DefaultBridge)
			if err != nil {
				return err
			}
			list, err := netlink.AddrList(br, netlink.FAMILY_V4)
			for _, a := range list {
				out = append(out, a.IPNet.String())
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		slices.Sort(out)
		return out
	}
	for _, cidr := range []string{"10.244.0.0/24", "10.244.0.0/24", "10.245.0.0/24"} {
		if err := n.do(func() error { return n.m.EnsureNode(netip.MustParsePrefix(cidr)) }); err != nil {
			t.Fatal(err)
		}
		gw := strings.Replace(cidr, ".0/24", ".1/24", 1)
		if got, want := addrs(), []string{gw, "169.254.20.10/32"}; !slices.Equal(got, want) {
			t.Errorf("after EnsureNode(%s): bridge addresses %v, want %v", cidr, got, want)
		}
	}
	// A pod connects to a server on the address, through its gateway.
	ln, err := nsutil.Listen(n.ns, "tcp", "169.254.20.10:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	pod := nstest.NewNetns(t)
	n.attach("p1", pod)
	defer n.detach("p1", pod)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := nsutil.Dial(ctx, pod, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("a pod connecting to the node-local address: %v", err)
	}
	c.Close()
}
