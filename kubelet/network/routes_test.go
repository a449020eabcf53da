package network_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/skiffdev/skiff/internal/nsutil"
	"github.com/skiffdev/skiff/internal/nsutil/nstest"
)

// link joins two node namespaces with a veth pair, addressed a and b on
// one /24: the machines' own network in a multi-node cluster.
func link(t *testing.T, x, y *node, a, b string) {
	t.Helper()
	err := x.do(func() error {
		peerNS, err := netnsFd(y.ns)
		if err != nil {
			return err
		}
		defer unix.Close(peerNS)
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "lan0"}, PeerName: "lan0", PeerNamespace: netlink.NsFd(peerNS)}
		if err := netlink.LinkAdd(veth); err != nil {
			return err
		}
		return upWithAddr("lan0", a)
	})
	if err != nil {
		t.Fatalf("linking the nodes: %v", err)
	}
	if err := y.do(func() error { return upWithAddr("lan0", b) }); err != nil {
		t.Fatalf("linking the nodes: %v", err)
	}
}

func netnsFd(path string) (int, error) { return unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0) }

func upWithAddr(name, cidr string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	addr, err := netlink.ParseAddr(cidr)
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(l, addr); err != nil {
		return err
	}
	return netlink.LinkSetUp(l)
}

// Pods on two nodes reach each other through host-gw routes, the rest of
// the cluster CIDR is unreachable, and routes to nodes that left go away.
func TestSyncRoutesAcrossNodes(t *testing.T) {
	a, b := newNode(t, "10.244.1.0/24"), newNode(t, "10.244.2.0/24")
	link(t, a, b, "192.168.50.1/24", "192.168.50.2/24")
	cluster := netip.MustParsePrefix("10.244.0.0/16")
	sync := func(n *node, routes map[netip.Prefix]netip.Addr) {
		t.Helper()
		if err := n.do(func() error { return n.m.SyncRoutes(cluster, routes) }); err != nil {
			t.Fatalf("SyncRoutes: %v", err)
		}
	}
	sync(a, map[netip.Prefix]netip.Addr{netip.MustParsePrefix("10.244.2.0/24"): netip.MustParseAddr("192.168.50.2")})
	sync(b, map[netip.Prefix]netip.Addr{netip.MustParsePrefix("10.244.1.0/24"): netip.MustParseAddr("192.168.50.1")})

	podA, podB := nstest.NewNetns(t), nstest.NewNetns(t)
	ipA, ipB := a.attach("pod-a", podA), b.attach("pod-b", podB)
	ln, err := nsutil.Listen(podB, "tcp", net.JoinHostPort(ipB.String(), "8080"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, c.RemoteAddr().String())
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := nsutil.Dial(ctx, podA, "tcp", net.JoinHostPort(ipB.String(), "8080"))
	if err != nil {
		t.Fatalf("pod on node a to pod on node b: %v", err)
	}
	seen, _ := io.ReadAll(c)
	c.Close()
	if host, _, _ := net.SplitHostPort(string(seen)); host != ipA.String() {
		t.Errorf("node b's pod saw the connection from %s, want the pod address %s (no masquerade inside the cluster)", seen, ipA)
	}

	// An address of the cluster CIDR on no node is unreachable at once.
	_, err = nsutil.Dial(ctx, podA, "tcp", "10.244.3.7:80")
	if err == nil || !isUnreachable(err) {
		t.Errorf("dial to a pod CIDR of no node: got %v, want host or network unreachable", err)
	}

	// Entries that would replace a's own routes are refused, the good one
	// is still made, and the error names the bad one.
	err = a.do(func() error {
		return a.m.SyncRoutes(cluster, map[netip.Prefix]netip.Addr{
			netip.MustParsePrefix("10.244.1.0/24"): netip.MustParseAddr("192.168.50.2"), // a's own
			netip.MustParsePrefix("10.244.0.0/16"): netip.MustParseAddr("192.168.50.2"), // the whole range
			netip.MustParsePrefix("10.244.9.0/24"): netip.MustParseAddr("172.16.0.1"),   // not on a's network
			netip.MustParsePrefix("10.244.2.0/24"): netip.MustParseAddr("192.168.50.2"),
		})
	})
	if err == nil || !strings.Contains(err.Error(), "10.244.9.0/24") {
		t.Errorf("SyncRoutes with an unreachable node address: got %v, want an error naming 10.244.9.0/24", err)
	}
	c, err = nsutil.Dial(ctx, podA, "tcp", net.JoinHostPort(ipB.String(), "8080"))
	if err != nil {
		t.Fatalf("after bad entries, pod on node a to pod on node b: %v", err)
	}
	c.Close()
	if err := a.do(func() error {
		routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
		for _, r := range routes {
			if r.Dst != nil && r.Dst.String() == "10.244.1.0/24" && r.Gw != nil {
				t.Errorf("a's own pod CIDR is routed away: %v", r)
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}

	// Node b leaves: a's route to it goes, the unreachable route stays.
	sync(a, nil)
	err = a.do(func() error {
		routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		unreachable := false
		for _, r := range routes {
			if r.Dst != nil && r.Dst.String() == "10.244.2.0/24" {
				t.Errorf("route to the departed node's pods still there: %v", r)
			}
			if r.Dst != nil && r.Dst.String() == "10.244.0.0/16" && r.Type == unix.RTN_UNREACHABLE {
				unreachable = true
			}
		}
		if !unreachable {
			t.Error("no unreachable route for the cluster CIDR")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func isUnreachable(err error) bool {
	return errors.Is(err, unix.EHOSTUNREACH) || errors.Is(err, unix.ENETUNREACH)
}

// The masquerade table is made once however often it is ensured, and goes
// when removed.
func TestMasquerade(t *testing.T) {
	n := newNode(t, "10.244.1.0/24")
	for range 2 {
		if err := n.do(func() error {
			return n.m.EnsureMasquerade(netip.MustParsePrefix("10.244.1.0/24"), netip.MustParsePrefix("10.244.0.0/16"))
		}); err != nil {
			t.Fatal(err)
		}
	}
	rules := func() int {
		count := -1
		err := n.do(func() error {
			c, err := nftables.New()
			if err != nil {
				return err
			}
			tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
			if err != nil {
				return err
			}
			for _, tb := range tables {
				if tb.Name != "skiff-pods" {
					continue
				}
				rs, err := c.GetRules(tb, &nftables.Chain{Name: "postrouting", Table: tb})
				if err != nil {
					return err
				}
				count = len(rs)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return count
	}
	if got := rules(); got != 1 {
		t.Errorf("masquerade rules: got %d, want 1", got)
	}
	if err := n.do(n.m.RemoveMasquerade); err != nil {
		t.Fatal(err)
	}
	if got := rules(); got != -1 {
		t.Errorf("after RemoveMasquerade the table still has %d rules", got)
	}
}
