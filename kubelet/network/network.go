package network

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/nsutil"
)

// Config configures a Manager.
type Config struct {
	// Root is the directory that keeps the IP allocations
	// (ROOT/network on a node). Required.
	Root string
	// Bridge is the name of the node's pod bridge. Default "skiff0".
	Bridge string
	// MTU of the bridge and of both ends of every pod veth. Default 1500.
	MTU int
	// LocalAddrs are addresses of the node's own servers that pods reach
	// through the bridge, their gateway (the node-local DNS server's
	// 169.254.20.10): EnsureNode puts each on the bridge as a /32 beside
	// the gateway address. IPv4 only.
	LocalAddrs []netip.Addr
}

// DefaultBridge is the bridge name used when Config.Bridge is empty.
const DefaultBridge = "skiff0"

// podIfName is the name of the pod's end of its veth pair.
const podIfName = "eth0"

// Manager wires pods to the node's bridge. All of its link, address and
// route changes on the node side happen in the network namespace of the
// calling thread (the kubelet's, normally the machine's); the pod side is
// changed inside the pod's namespace only.
type Manager struct {
	cfg Config
	// log is the logger of the context New was given, set once: most
	// methods (EnsureNode, Detach, SyncRoutes) take no context, and the
	// lines about a pod name it by its ID under "pod", which would clash
	// with the "pod" a caller's per-pod context carries.
	log *slog.Logger

	// mu guards ips, cidr and gateway, and serializes EnsureNode, Attach
	// and Detach.
	mu      sync.Mutex
	ips     *ipStore
	cidr    netip.Prefix // zero until EnsureNode
	gateway netip.Addr
}

// New opens the allocation store under cfg.Root. It does not touch the
// network; call EnsureNode before attaching pods. The Manager logs through
// the logger ctx carries, with part=network.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.Root == "" {
		return nil, errors.New("network: Config.Root is required")
	}
	if cfg.Bridge == "" {
		cfg.Bridge = DefaultBridge
	}
	if len(cfg.Bridge) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("network: bridge name %q is longer than %d bytes", cfg.Bridge, unix.IFNAMSIZ-1)
	}
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	if cfg.MTU < 68 || cfg.MTU > 65535 {
		return nil, fmt.Errorf("network: invalid MTU %d", cfg.MTU)
	}
	ips, err := openIPStore(filepath.Join(cfg.Root, "ips"))
	if err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	return &Manager{cfg: cfg, log: logging.From(ctx).With("part", "network"), ips: ips}, nil
}

// Gateway is the bridge's address, the pods' default gateway: the first
// host address of the pod CIDR. It is the zero Addr before EnsureNode.
func (m *Manager) Gateway() netip.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gateway
}

// Allocated returns the pod ID → IP allocations on record, including those
// made before a restart; the kubelet compares them with its pods to find
// leaks.
func (m *Manager) Allocated() (map[string]netip.Addr, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]netip.Addr, len(m.ips.byPod))
	for pod, ip := range m.ips.byPod {
		out[pod] = ip
	}
	return out, nil
}

// HostVethName is the name of the node's end of a pod's veth pair: "veth"
// and the first 8 hex digits of the SHA-256 of podID (12 bytes, under the
// kernel's 15-byte limit, and stable across restarts).
func HostVethName(podID string) string {
	sum := sha256.Sum256([]byte(podID))
	return "veth" + hex.EncodeToString(sum[:4])
}

// EnsureNode prepares the node for pods of podCIDR (IPv4, at most /30):
// the bridge exists, is up and carries the gateway address; IP forwarding
// is on; bridged IPv4 traffic goes through netfilter
// (bridge-nf-call-iptables = 1, when br_netfilter is there), so that the
// reply of a pod to another pod on this bridge that reached it through a
// Service address is translated back. It is idempotent. An address of another CIDR on
// the bridge is replaced, but only while no pod is attached to it.
func (m *Manager) EnsureNode(podCIDR netip.Prefix) error {
	if !podCIDR.IsValid() || !podCIDR.Addr().Is4() || podCIDR.Bits() > 30 {
		return fmt.Errorf("network: pod CIDR %s: want an IPv4 prefix of /30 or larger", podCIDR)
	}
	podCIDR = podCIDR.Masked()
	gw := podCIDR.Addr().Next()

	m.mu.Lock()
	defer m.mu.Unlock()

	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("network: open netlink: %w", err)
	}
	defer h.Close()

	br, err := m.ensureBridge(h)
	if err != nil {
		return err
	}
	if err := m.ensureGatewayAddr(h, br, netip.PrefixFrom(gw, podCIDR.Bits())); err != nil {
		return err
	}
	// A fixed MAC: otherwise the bridge takes the lowest MAC of its ports,
	// which changes as pods come and go and leaves stale gateway entries
	// in the pods' ARP caches.
	if mac := macFor(gw); !slices.Equal(br.Attrs().HardwareAddr, mac) {
		if err := h.LinkSetHardwareAddr(br, mac); err != nil {
			return fmt.Errorf("network: set MAC of bridge %q: %w", m.cfg.Bridge, err)
		}
	}
	if br.Attrs().Flags&net.FlagUp == 0 {
		if err := h.LinkSetUp(br); err != nil {
			return fmt.Errorf("network: bring bridge %q up: %w", m.cfg.Bridge, err)
		}
	}
	if err := writeSysctl("net/ipv4/ip_forward", "1"); err != nil {
		return fmt.Errorf("network: %w", err)
	}
	err = writeSysctl("net/bridge/bridge-nf-call-iptables", "1")
	if err != nil && !errors.Is(err, fs.ErrNotExist) { // absent without br_netfilter
		return fmt.Errorf("network: %w", err)
	}
	m.cidr, m.gateway = podCIDR, gw
	m.log.Debug("node network ready", "bridge", m.cfg.Bridge, "podCIDR", podCIDR, "gateway", gw)
	return nil
}

// ensureBridge finds or creates the bridge.
func (m *Manager) ensureBridge(h *netlink.Handle) (netlink.Link, error) {
	br, err := h.LinkByName(m.cfg.Bridge)
	if err == nil {
		if br.Type() != "bridge" {
			return nil, fmt.Errorf("network: link %q exists and is a %s, not a bridge", m.cfg.Bridge, br.Type())
		}
		return br, nil
	}
	if !isNotFound(err) {
		return nil, fmt.Errorf("network: look up bridge %q: %w", m.cfg.Bridge, err)
	}
	la := netlink.NewLinkAttrs()
	la.Name = m.cfg.Bridge
	la.MTU = m.cfg.MTU
	la.Flags = net.FlagUp
	if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("network: create bridge %q: %w", m.cfg.Bridge, err)
	}
	br, err = h.LinkByName(m.cfg.Bridge)
	if err != nil {
		return nil, fmt.Errorf("network: look up bridge %q: %w", m.cfg.Bridge, err)
	}
	return br, nil
}

// ensureGatewayAddr leaves want and the LocalAddrs (as /32s) as the
// bridge's only IPv4 addresses.
func (m *Manager) ensureGatewayAddr(h *netlink.Handle, br netlink.Link, want netip.Prefix) error {
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return h.AddrList(br, netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("network: list addresses of %q: %w", m.cfg.Bridge, err)
	}
	have := false
	local := map[netip.Prefix]bool{}
	for _, a := range m.cfg.LocalAddrs {
		local[netip.PrefixFrom(a, 32)] = false
	}
	var stale []netlink.Addr
	for _, a := range addrs {
		p, ok := prefixOf(a.IPNet)
		_, isLocal := local[p]
		switch {
		case ok && p == want:
			have = true
		case ok && isLocal:
			local[p] = true
		default:
			stale = append(stale, a)
		}
	}
	for p, present := range local {
		if present {
			continue
		}
		if err := h.AddrAdd(br, &netlink.Addr{IPNet: ipNet(p)}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("network: add address %s to %q: %w", p, m.cfg.Bridge, err)
		}
	}
	if len(stale) > 0 {
		ports, err := bridgePorts(h, br)
		if err != nil {
			return err
		}
		if len(ports) > 0 {
			return fmt.Errorf("network: bridge %q has address %s, not %s, and %d pod interfaces attached (%v); detach the pods before changing the pod CIDR",
				m.cfg.Bridge, stale[0].IPNet, want, len(ports), ports)
		}
		for _, a := range stale {
			if err := h.AddrDel(br, &a); err != nil {
				return fmt.Errorf("network: remove old address %s from %q: %w", a.IPNet, m.cfg.Bridge, err)
			}
			m.log.Info("removed old bridge address", "bridge", m.cfg.Bridge, "address", a.IPNet.String())
		}
	}
	if !have {
		if err := h.AddrAdd(br, &netlink.Addr{IPNet: ipNet(want)}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("network: add address %s to %q: %w", want, m.cfg.Bridge, err)
		}
	}
	return nil
}

// bridgePorts names the links enslaved to br.
func bridgePorts(h *netlink.Handle, br netlink.Link) ([]string, error) {
	links, err := retryDump(h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("network: list links: %w", err)
	}
	var ports []string
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			ports = append(ports, l.Attrs().Name)
		}
	}
	slices.Sort(ports)
	return ports, nil
}

// Attach connects the pod whose network namespace is at netnsPath to the
// bridge and returns its IP address. It is idempotent per podID: another
// call returns the same address and repairs whatever is missing (the veth
// pair, the address, the link state, the default route).
//
// The pod gets: an address from the pod CIDR, kept on disk under
// Root/ips; a veth pair whose node end, HostVethName(podID), is a port of
// the bridge and whose other end is the pod's eth0 with ip/prefix; a
// default route via the gateway. The loopback device of the pod namespace
// is left as it is (nsutil.NewPinned brings it up).
func (m *Manager) Attach(ctx context.Context, podID, netnsPath string) (netip.Addr, error) {
	if podID == "" {
		return netip.Addr{}, errors.New("network: attach: empty pod ID")
	}
	if err := ctx.Err(); err != nil {
		return netip.Addr{}, fmt.Errorf("network: attach pod %q: %w", podID, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.cidr.IsValid() {
		return netip.Addr{}, fmt.Errorf("network: attach pod %q: node network not set up (EnsureNode was not called)", podID)
	}

	ip, fresh, err := m.ips.reserve(podID, m.cidr, m.gateway)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("network: attach pod %q: %w", podID, err)
	}
	if err := m.plumb(podID, netnsPath, netip.PrefixFrom(ip, m.cidr.Bits())); err != nil {
		if fresh {
			// Give the address back; a veth half made is removed too.
			_ = netlink.LinkDel(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: HostVethName(podID)}})
			_ = m.ips.release(podID)
		}
		return netip.Addr{}, fmt.Errorf("network: attach pod %q (netns %q): %w", podID, netnsPath, err)
	}
	m.log.Debug("pod attached", "pod", podID, "ip", ip, "veth", HostVethName(podID))
	return ip, nil
}

// plumb makes the veth pair and configures the pod's end.
func (m *Manager) plumb(podID, netnsPath string, addr netip.Prefix) error {
	hostName := HostVethName(podID)

	// A netlink socket on the node side (this thread's namespace) and one
	// created inside the pod's namespace; each keeps its namespace, so
	// both can be used from here on without switching threads.
	nh, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("open netlink: %w", err)
	}
	defer nh.Close()
	var ph *netlink.Handle
	if err := nsutil.Do(netnsPath, func() error {
		var err error
		ph, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		return err
	}); err != nil {
		return fmt.Errorf("open netlink in pod netns: %w", err)
	}
	defer ph.Close()

	br, err := nh.LinkByName(m.cfg.Bridge)
	if err != nil {
		return fmt.Errorf("look up bridge %q: %w", m.cfg.Bridge, err)
	}

	hostLink, err := lookup(nh, hostName)
	if err != nil {
		return err
	}
	podLink, err := lookup(ph, podIfName)
	if err != nil {
		return err
	}
	if !isPair(hostLink, podLink) {
		// Start over: whatever is there is a leftover of a broken attempt.
		if hostLink != nil {
			if err := nh.LinkDel(hostLink); err != nil && !isNotFound(err) {
				return fmt.Errorf("remove stale %s: %w", hostName, err)
			}
		}
		if podLink != nil {
			if err := ph.LinkDel(podLink); err != nil && !isNotFound(err) {
				return fmt.Errorf("remove stale %s in pod: %w", podIfName, err)
			}
		}
		if hostLink, podLink, err = m.createPair(nh, ph, netnsPath, hostName, br, addr.Addr()); err != nil {
			return err
		}
	}
	if mac := macFor(addr.Addr()); !slices.Equal(podLink.Attrs().HardwareAddr, mac) {
		if err := ph.LinkSetHardwareAddr(podLink, mac); err != nil {
			return fmt.Errorf("set MAC of %s in pod: %w", podIfName, err)
		}
	}

	// Node end: a bridge port, up.
	if hostLink.Attrs().MasterIndex != br.Attrs().Index {
		if err := nh.LinkSetMasterByIndex(hostLink, br.Attrs().Index); err != nil {
			return fmt.Errorf("attach %s to bridge %q: %w", hostName, m.cfg.Bridge, err)
		}
	}
	// Hairpin: a pod that reaches itself through a Service address sends
	// the packet up its port and, once translated, gets it back down the
	// same port, which a bridge refuses unless the port allows it.
	if err := nh.LinkSetHairpin(hostLink, true); err != nil {
		return fmt.Errorf("hairpin mode on %s: %w", hostName, err)
	}
	if hostLink.Attrs().Flags&net.FlagUp == 0 {
		if err := nh.LinkSetUp(hostLink); err != nil {
			return fmt.Errorf("bring %s up: %w", hostName, err)
		}
	}

	// Pod end: the address (and no other), up, then the default route,
	// which needs the link up and the gateway's subnet on it.
	if err := ensureOnlyAddr(ph, podLink, addr); err != nil {
		return err
	}
	if podLink.Attrs().Flags&net.FlagUp == 0 {
		if err := ph.LinkSetUp(podLink); err != nil {
			return fmt.Errorf("bring %s up in pod: %w", podIfName, err)
		}
	}
	gw := net.IP(m.gateway.AsSlice())
	route := &netlink.Route{LinkIndex: podLink.Attrs().Index, Gw: gw, Family: netlink.FAMILY_V4}
	if err := ph.RouteReplace(route); err != nil {
		return fmt.Errorf("add default route via %s in pod: %w", m.gateway, err)
	}
	return nil
}

// createPair makes the veth pair in one request: the node end, up and
// named hostName, and the pod end created directly inside the pod's
// namespace as eth0. It returns both ends as seen from their namespaces.
func (m *Manager) createPair(nh, ph *netlink.Handle, netnsPath, hostName string, br netlink.Link, ip netip.Addr) (netlink.Link, netlink.Link, error) {
	ns, err := netns.GetFromPath(netnsPath)
	if err != nil {
		return nil, nil, fmt.Errorf("open pod netns: %w", err)
	}
	defer ns.Close()

	la := netlink.NewLinkAttrs()
	la.Name = hostName
	la.MTU = m.cfg.MTU
	la.Flags = net.FlagUp
	la.MasterIndex = br.Attrs().Index
	veth := &netlink.Veth{LinkAttrs: la, PeerName: podIfName, PeerNamespace: netlink.NsFd(ns), PeerHardwareAddr: macFor(ip)}
	if err := nh.LinkAdd(veth); err != nil {
		return nil, nil, fmt.Errorf("create veth pair %s/%s: %w", hostName, podIfName, err)
	}
	hostLink, err := nh.LinkByName(hostName)
	if err != nil {
		return nil, nil, fmt.Errorf("look up %s: %w", hostName, err)
	}
	podLink, err := ph.LinkByName(podIfName)
	if err != nil {
		return nil, nil, fmt.Errorf("look up %s in pod: %w", podIfName, err)
	}
	return hostLink, podLink, nil
}

// ensureOnlyAddr leaves want as the only IPv4 address of link.
func ensureOnlyAddr(h *netlink.Handle, link netlink.Link, want netip.Prefix) error {
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return h.AddrList(link, netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("list addresses of %s in pod: %w", podIfName, err)
	}
	have := false
	for _, a := range addrs {
		if p, ok := prefixOf(a.IPNet); ok && p == want {
			have = true
			continue
		}
		if err := h.AddrDel(link, &a); err != nil {
			return fmt.Errorf("remove address %s of %s in pod: %w", a.IPNet, podIfName, err)
		}
	}
	if !have {
		if err := h.AddrAdd(link, &netlink.Addr{IPNet: ipNet(want)}); err != nil {
			return fmt.Errorf("add address %s to %s in pod: %w", want, podIfName, err)
		}
	}
	return nil
}

// Detach removes the pod's veth pair (deleting the node end deletes the
// pod end) and releases its IP address. It is idempotent, and works when
// the pod's namespace is already gone — then the kernel has usually
// removed the pair itself. netnsPath is not needed for that and may name
// a file that no longer exists.
func (m *Manager) Detach(podID, netnsPath string) error {
	m.mu.Lock()
	defer m.mu.Unlock()

	hostName := HostVethName(podID)
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("network: detach pod %q: open netlink: %w", podID, err)
	}
	defer h.Close()
	link, err := lookup(h, hostName)
	if err != nil {
		return fmt.Errorf("network: detach pod %q: %w", podID, err)
	}
	if link != nil {
		if err := h.LinkDel(link); err != nil && !isNotFound(err) {
			return fmt.Errorf("network: detach pod %q: remove %s: %w", podID, hostName, err)
		}
	}
	if err := m.ips.release(podID); err != nil {
		return fmt.Errorf("network: detach pod %q: %w", podID, err)
	}
	m.log.Debug("pod detached", "pod", podID, "veth", hostName, "netns", netnsPath)
	return nil
}

// lookup finds a link by name; a missing link is (nil, nil).
func lookup(h *netlink.Handle, name string) (netlink.Link, error) {
	l, err := h.LinkByName(name)
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("look up %s: %w", name, err)
	}
	return l, nil
}

// isPair reports whether host and pod are the two ends of one veth pair:
// each names the other's index as its peer (IFLA_LINK).
func isPair(host, pod netlink.Link) bool {
	if host == nil || pod == nil || host.Type() != "veth" || pod.Type() != "veth" {
		return false
	}
	return host.Attrs().ParentIndex == pod.Attrs().Index && pod.Attrs().ParentIndex == host.Attrs().Index
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT)
}

// retryDump repeats a netlink dump that the kernel marked as interrupted
// by a concurrent change.
func retryDump[T any](dump func() ([]T, error)) ([]T, error) {
	for i := 0; ; i++ {
		out, err := dump()
		if errors.Is(err, netlink.ErrDumpInterrupted) && i < 5 {
			continue
		}
		return out, err
	}
}

// writeSysctl writes a value under /proc/sys. Network settings there
// belong to the network namespace of the calling thread.
func writeSysctl(key, value string) error {
	path := "/proc/sys/" + key
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("sysctl %s: %w", key, err)
	}
	defer f.Close()
	if _, err := f.WriteString(value); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
	}
	return nil
}

// macFor derives a MAC address from an IPv4 address: 0a:58 and the four
// address bytes (0x0a marks a locally administered unicast address). The
// same IP always gets the same MAC, so when a pod's veth is rebuilt, or its
// address goes to a new pod, the neighbours' ARP caches stay right.
func macFor(ip netip.Addr) net.HardwareAddr {
	b := ip.As4()
	return net.HardwareAddr{0x0a, 0x58, b[0], b[1], b[2], b[3]}
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
