package nodetest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/skiffdev/skiff/apiserver"
	"github.com/skiffdev/skiff/dns"
	"github.com/skiffdev/skiff/internal/nsutil"
	"github.com/skiffdev/skiff/internal/nsutil/nstest"
	"github.com/skiffdev/skiff/internal/testimage"
	"github.com/skiffdev/skiff/kubelet"
	"github.com/skiffdev/skiff/proxy"
)

// lanPrefix is the machines' network of a test cluster: the "LAN" bridge
// has the first address, node i the address 10+i. It exists only inside
// the test's namespaces.
var lanPrefix = netip.MustParsePrefix("192.168.77.0/24")

// LANResolver is the address of the nodes' upstream DNS resolver: the
// nameserver of the resolv.conf every node of a Cluster is given (as
// --resolv-conf), the LAN bridge's own address. Nothing answers there
// unless the test serves a resolver on it, in the LAN namespace.
var LANResolver = lanPrefix.Addr().Next()

// Cluster is a set of nodes on one private network, as separate machines
// would be: each node is a network namespace with an address on a bridge
// that lives in another namespace of the test (the "LAN"), where the test
// registry serves the busybox image too. No packet leaves these
// namespaces.
type Cluster struct {
	// LAN is the network namespace holding the bridge between the nodes.
	LAN string
	// Image is the busybox test image, as the nodes pull it.
	Image string
	Nodes []*Node
}

// StartCluster starts n nodes, each running a kubelet, a service proxy
// and a node-local DNS server (as "skiff agent" does) that join the API
// server srv (on the test's loopback, forwarded into each node) with a
// token. Node i has the address 192.168.77.(10+i) and the pod CIDR
// 10.244.(i+1).0/24; its resolv.conf names LANResolver, search domain
// lan.test. It skips the test as Start does.
func StartCluster(t testing.TB, srv *apiserver.Server, n int, opts ...Option) *Cluster {
	t.Helper()
	SkipIfUnavailable(t)
	img := testimage.Busybox(t)
	lan := nstest.NewNetns(t)
	gw := lanPrefix.Addr().Next()
	if err := nsutil.Do(lan, func() error {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "lan"}}
		if err := netlink.LinkAdd(br); err != nil {
			return err
		}
		return addrUp(br, netip.PrefixFrom(gw, lanPrefix.Bits()))
	}); err != nil {
		t.Fatalf("making the LAN bridge: %v", err)
	}
	host, ref := serveImage(t, lan, net.JoinHostPort(gw.String(), "5000"), img)
	c := &Cluster{LAN: lan, Image: ref}
	resolvConf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolvConf, []byte("# The test LAN's resolver.\nnameserver "+LANResolver.String()+"\nsearch lan.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := lanPrefix.Addr().Next()
	for range 10 {
		addr = addr.Next()
	}
	for i := range n {
		ns := nstest.NewNetns(t)
		nodeIP := addr
		addr = addr.Next()
		if err := plug(lan, ns, fmt.Sprintf("n%d", i), netip.PrefixFrom(nodeIP, lanPrefix.Bits())); err != nil {
			t.Fatalf("plugging node %d into the LAN: %v", i, err)
		}
		podCIDR := fmt.Sprintf("10.244.%d.0/24", i+1)
		pcfg := proxy.DefaultConfig()
		pcfg.NodeName = fmt.Sprintf("node-%d", i)
		dcfg := dns.DefaultConfig()
		c.Nodes = append(c.Nodes, startNode(t, ns, srv, host, ref, &pcfg, &dcfg, func(cfg *kubelet.Config) {
			cfg.NodeName = pcfg.NodeName
			cfg.ResolvConf = resolvConf
			cfg.NodeIP = nodeIP.String()
			cfg.Listen = net.JoinHostPort(nodeIP.String(), "10250")
			cfg.PodCIDR = podCIDR
		}, opts...))
	}
	return c
}

// Dial connects to addr from the LAN: the API server's KubeletDialer for
// a test cluster.
func (c *Cluster) Dial(ctx context.Context, addr string) (net.Conn, error) {
	return nsutil.Dial(ctx, c.LAN, "tcp", addr)
}

// plug joins node namespace ns to the LAN bridge with a veth named
// port on the bridge side and eth0 in the node, which gets addr.
func plug(lan, ns, port string, addr netip.Prefix) error {
	nodeFd, err := unix.Open(ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(nodeFd)
	err = nsutil.Do(lan, func() error {
		br, err := netlink.LinkByName("lan")
		if err != nil {
			return err
		}
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: port, MasterIndex: br.Attrs().Index},
			PeerName:      "eth0",
			PeerNamespace: netlink.NsFd(nodeFd),
		}
		if err := netlink.LinkAdd(veth); err != nil {
			return err
		}
		return netlink.LinkSetUp(veth)
	})
	if err != nil {
		return err
	}
	return nsutil.Do(ns, func() error {
		eth0, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if err := addrUp(eth0, addr); err != nil {
			return err
		}
		// The LAN's bridge is every node's default gateway, as a router
		// would be; it lives in a namespace of the test and forwards
		// nothing further.
		return netlink.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: lanPrefix.Addr().Next().AsSlice()})
	})
}

func addrUp(l netlink.Link, p netip.Prefix) error {
	if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}}); err != nil {
		return err
	}
	return netlink.LinkSetUp(l)
}
