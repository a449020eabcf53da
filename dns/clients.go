package dns

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// localAddrCheck is how often, at most, the node's own addresses are
// listed again when a question comes from an address that is not known
// to be one of them.
const localAddrCheck = time.Second

// Clients decides whose questions the server answers: the node itself
// (a loopback address, or one of the node's own addresses) and the pods
// of the cluster network. Linux delivers a packet for any of its
// addresses whatever the interface it came in on, so a LAN neighbour
// that routes 169.254.20.10 through the node reaches the server too; it
// is refused, so that the node is no open resolver and does not tell the
// LAN the cluster's Services and pod addresses. A packet from the LAN
// cannot pass for the node's own: Linux drops packets arriving with one
// of its local addresses as the source (net.ipv4.conf.*.accept_local 0).
type Clients struct {
	// Networks are the pod networks whose addresses are answered (the
	// cluster CIDR).
	Networks []netip.Prefix
	// local lists the node's own addresses; nil is net.InterfaceAddrs.
	// Tests set it.
	local func() ([]netip.Addr, error)

	// mu guards own and checked.
	mu      sync.Mutex
	own     map[netip.Addr]bool
	checked time.Time
}

// Allowed reports whether a question from a is answered.
func (c *Clients) Allowed(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	if !a.IsValid() {
		return false
	}
	if a.IsLoopback() {
		return true
	}
	for _, p := range c.Networks {
		if p.Contains(a) {
			return true
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.own[a] {
		return true
	}
	// An address not seen before: the node may have a new one. Listed
	// again at most every localAddrCheck, so that a flood from outside
	// costs one listing a second.
	now := time.Now()
	if c.own != nil && now.Sub(c.checked) < localAddrCheck {
		return false
	}
	c.checked = now
	list := c.local
	if list == nil {
		list = interfaceAddrs
	}
	addrs, err := list()
	if err != nil {
		return false
	}
	c.own = make(map[netip.Addr]bool, len(addrs))
	for _, o := range addrs {
		c.own[o.Unmap().WithZone("")] = true
	}
	return c.own[a]
}

// interfaceAddrs are the addresses of the node's interfaces.
func interfaceAddrs() ([]netip.Addr, error) {
	ifAddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, ia := range ifAddrs {
		if n, ok := ia.(*net.IPNet); ok {
			if a, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, a)
			}
		}
	}
	return out, nil
}

// remoteAddr is the address a message came from.
func remoteAddr(a net.Addr) netip.Addr {
	var ip net.IP
	switch a := a.(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.TCPAddr:
		ip = a.IP
	default:
		return netip.Addr{}
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr
}
