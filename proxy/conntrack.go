package proxy

import (
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// flushConntrack deletes the conntrack entries of flows that the new rules
// would no longer send where they went:
//
//   - UDP flows. UDP has no connection to tear down: without this, a
//     client that keeps sending to a service address would keep reaching
//     a removed endpoint for as long as its flow stays in the table (the
//     nat rules only see a flow's first packet).
//   - TCP connections that never got an answer (SYN_SENT) or that were
//     reset (CLOSE). A SYN sent to an endpoint that has gone away leaves
//     an entry for two minutes (nf_conntrack_tcp_timeout_syn_sent); a
//     connection that an endpoint aborted as it went away (its RST) leaves
//     one for ten seconds (..._timeout_close). A client that connects
//     again from the same source port meanwhile (ports are reused) has its
//     new SYN follow that entry, translated as before, to the removed
//     endpoint instead of the rules (conntrack takes the SYN as a
//     retransmission, or ignores it, in these states), and it is lost.
//     Nothing is lost by deleting such an entry: its connection never
//     started, or is over. Other connections are left alone (they end as
//     their endpoint ends them).
//
// An entry is stale when it was translated (its reply comes from an
// address other than the one the client sent to) and
//   - it was sent to a service address (ClusterIP:port, or a NodePort)
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
	f := &staleFlows{prev: prev, want: want, serviceCIDR: want.serviceCIDR}
	return h.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, f)
}

// staleFlows is the netlink.CustomConntrackFilter of flushConntrack.
type staleFlows struct {
	prev, want  *Ruleset // prev may be nil
	serviceCIDR netip.Prefix
}

func (f *staleFlows) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	fw, rv := flow.Forward, flow.Reverse
	switch fw.Protocol {
	case protoUDP:
	case protoTCP:
		tcp, ok := flow.ProtoInfo.(*netlink.ProtoInfoTCP)
		if !ok || (tcp.State != nl.TCP_CONNTRACK_SYN_SENT && tcp.State != nl.TCP_CONNTRACK_CLOSE) {
			return false
		}
	default:
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

	key := MapKey{IP: dst, Proto: fw.Protocol, Port: fw.DstPort}
	eps, known := f.want.Targets[key]
	if !known {
		// A NodePort is keyed by protocol and port alone.
		npKey := MapKey{Proto: fw.Protocol, Port: fw.DstPort}
		if npEps, ok := f.want.Targets[npKey]; ok && translated {
			return !containsAddrPort(npEps, endpoint)
		}
		if f.prev != nil {
			if _, was := f.prev.Targets[npKey]; was && translated {
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
