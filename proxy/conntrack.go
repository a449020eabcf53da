package proxy

import (
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// flushConntrack deletes the conntrack entries of UDP flows that the new
// rules would no longer send where they went. UDP has no connection to
// tear down: without this, a client that keeps sending to a service
// address would keep reaching a removed endpoint for as long as its flow
// stays in the table (the nat rules only see a flow's first packet).
//
// An entry is stale when it was translated (its reply comes from an
// address other than the one the client sent to) and
//   - it was sent to a UDP service address (ClusterIP:port, or a NodePort)
//     whose endpoints no longer include the one it was sent to, or
//   - it was sent to an address in the service range that no service
//     port has any more.
//
// An untranslated entry to a service address that now has endpoints is
// stale too: it records packets that found no endpoint.
func (s *Syncer) flushConntrack(prev, want *Ruleset) (uint, error) {
	h, err := s.netlinkHandle(unix.NETLINK_NETFILTER)
	if err != nil {
		return 0, err
	}
	defer h.Close()
	f := &staleUDP{prev: prev, want: want, serviceCIDR: want.serviceCIDR}
	return h.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, f)
}

// staleUDP is the netlink.CustomConntrackFilter of flushConntrack.
type staleUDP struct {
	prev, want  *Ruleset // prev may be nil
	serviceCIDR netip.Prefix
}

func (f *staleUDP) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	fw, rv := flow.Forward, flow.Reverse
	if fw.Protocol != protoUDP {
		return false
	}
	dst, ok1 := netip.AddrFromSlice(fw.DstIP)
	replySrc, ok2 := netip.AddrFromSlice(rv.SrcIP)
	if !ok1 || !ok2 {
		return false
	}
	dst, replySrc = dst.Unmap(), replySrc.Unmap()
	translated := dst != replySrc || fw.DstPort != rv.SrcPort
	endpoint := netip.AddrPortFrom(replySrc, rv.SrcPort)

	key := MapKey{IP: dst, Proto: protoUDP, Port: fw.DstPort}
	eps, known := f.want.UDP[key]
	if !known {
		// A NodePort is keyed by protocol and port alone.
		npKey := MapKey{Proto: protoUDP, Port: fw.DstPort}
		if npEps, ok := f.want.UDP[npKey]; ok && translated {
			return !containsAddrPort(npEps, endpoint)
		}
		if f.prev != nil {
			if _, was := f.prev.UDP[npKey]; was && translated {
				return true // the NodePort is gone
			}
		}
		return translated && f.serviceCIDR.IsValid() && f.serviceCIDR.Contains(dst)
	}
	if !translated {
		return len(eps) > 0
	}
	return !containsAddrPort(eps, endpoint)
}

func containsAddrPort(list []netip.AddrPort, ap netip.AddrPort) bool {
	for _, x := range list {
		if x == ap {
			return true
		}
	}
	return false
}
