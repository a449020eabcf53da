package proxy

import (
	"net"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// TestStaleFlows: which conntrack entries the flush deletes once an
// endpoint is replaced: UDP flows and TCP connections that never started
// (SYN_SENT) or are over (CLOSE, after a reset) that were translated to the
// removed endpoint; never a connection to an endpoint still there, nor an
// established or closing one.
func TestStaleFlows(t *testing.T) {
	svc := service("web", "10.96.0.10", tcpPort("http", 80, 0), udpPort("dns", 53))
	want := Render(renderConfig(), []*corev1.Service{svc}, []*discoveryv1.EndpointSlice{
		slice("web", "http", corev1.ProtocolTCP, 8080, ready("10.244.1.3")),
		slice("web", "dns", corev1.ProtocolUDP, 5353, ready("10.244.1.3")),
	})
	f := &staleFlows{want: want, serviceCIDR: want.serviceCIDR}
	flow := func(proto uint8, port uint16, to string, toPort uint16, state uint8) *netlink.ConntrackFlow {
		fl := &netlink.ConntrackFlow{
			Forward: netlink.IPTuple{Protocol: proto, SrcIP: net.ParseIP("10.244.2.9"), DstIP: net.ParseIP("10.96.0.10"), SrcPort: 40000, DstPort: port},
			Reverse: netlink.IPTuple{Protocol: proto, SrcIP: net.ParseIP(to), DstIP: net.ParseIP("10.244.2.9"), SrcPort: toPort, DstPort: 40000},
		}
		if proto == protoTCP {
			fl.ProtoInfo = &netlink.ProtoInfoTCP{State: state}
		}
		return fl
	}
	for _, c := range []struct {
		name  string
		flow  *netlink.ConntrackFlow
		stale bool
	}{
		{"UDP to a removed endpoint", flow(protoUDP, 53, "10.244.1.2", 5353, 0), true},
		{"UDP to the endpoint", flow(protoUDP, 53, "10.244.1.3", 5353, 0), false},
		{"SYN_SENT to a removed endpoint", flow(protoTCP, 80, "10.244.1.2", 8080, nl.TCP_CONNTRACK_SYN_SENT), true},
		{"CLOSE to a removed endpoint", flow(protoTCP, 80, "10.244.1.2", 8080, nl.TCP_CONNTRACK_CLOSE), true},
		{"SYN_SENT to the endpoint", flow(protoTCP, 80, "10.244.1.3", 8080, nl.TCP_CONNTRACK_SYN_SENT), false},
		{"ESTABLISHED to a removed endpoint", flow(protoTCP, 80, "10.244.1.2", 8080, nl.TCP_CONNTRACK_ESTABLISHED), false},
		{"FIN_WAIT to a removed endpoint", flow(protoTCP, 80, "10.244.1.2", 8080, nl.TCP_CONNTRACK_FIN_WAIT), false},
		{"TIME_WAIT to a removed endpoint", flow(protoTCP, 80, "10.244.1.2", 8080, nl.TCP_CONNTRACK_TIME_WAIT), false},
	} {
		if got := f.MatchConntrackFlow(c.flow); got != c.stale {
			t.Errorf("%s: stale = %v, want %v", c.name, got, c.stale)
		}
	}
}
