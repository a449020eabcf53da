package proxy

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// A sync is one nftables transaction, but a packet does not go through
// the table at one instant: its nat hook (prerouting or output) and its
// filter hook (forward, input or output) run one after the other, and a
// sync can be committed in between. The first packet of a connection can
// therefore meet the nat chains of one Ruleset and the filter chains of
// the next. What happens to it must still be what one of the two would
// have done: a connection to a service port that gains its first endpoint
// must be refused (old) or translated (new), never dropped, or the client
// waits for its SYN to be sent again (a second) for nothing.
//
// TestSyncBetweenHooks evaluates the first packet of a connection with
// the nat chains of one Ruleset and the filter chains of another, for every
// pair of states a service port goes through, and wants the outcome of the
// nat hook's Ruleset alone: the decision is taken once, where the
// destination is translated.
func TestSyncBetweenHooks(t *testing.T) {
	cfg := renderConfig()
	states := map[string]*Ruleset{}
	for name, objs := range map[string][]any{
		"no service":       nil,
		"no endpoints":     {service("web", "10.96.0.10", tcpPort("http", 80, 30080))},
		"one endpoint":     {service("web", "10.96.0.10", tcpPort("http", 80, 30080)), slice("web", "http", corev1.ProtocolTCP, 8080, ready("10.244.1.2"))},
		"two endpoints":    {service("web", "10.96.0.10", tcpPort("http", 80, 30080)), slice("web", "http", corev1.ProtocolTCP, 8080, ready("10.244.1.2", "10.244.2.2"))},
		"other port":       {service("web", "10.96.0.10", tcpPort("other", 81, 30081)), slice("web", "other", corev1.ProtocolTCP, 8080, ready("10.244.1.2"))},
		"other port empty": {service("web", "10.96.0.10", tcpPort("other", 81, 30081))},
	} {
		var svcs []*corev1.Service
		var slices []*discoveryv1.EndpointSlice
		for _, o := range objs {
			switch o := o.(type) {
			case *corev1.Service:
				svcs = append(svcs, o)
			case *discoveryv1.EndpointSlice:
				slices = append(slices, o)
			}
		}
		states[name] = Render(cfg, svcs, slices)
	}
	nodeIP := netip.MustParseAddr("192.168.1.10")
	packets := map[string]packet{
		"pod to ClusterIP":          {path: forwarded, src: netip.MustParseAddr("10.244.1.9"), dst: netip.MustParseAddrPort("10.96.0.10:80")},
		"outsider to ClusterIP":     {path: forwarded, src: netip.MustParseAddr("192.168.1.99"), dst: netip.MustParseAddrPort("10.96.0.10:80")},
		"node to ClusterIP":         {path: local, src: nodeIP, dst: netip.MustParseAddrPort("10.96.0.10:80")},
		"outsider to NodePort":      {path: delivered, src: netip.MustParseAddr("192.168.1.99"), dst: netip.AddrPortFrom(nodeIP, 30080), dstLocal: true},
		"node to its NodePort":      {path: local, src: nodeIP, dst: netip.AddrPortFrom(nodeIP, 30080), dstLocal: true},
		"pod to ClusterIP, port 81": {path: forwarded, src: netip.MustParseAddr("10.244.1.9"), dst: netip.MustParseAddrPort("10.96.0.10:81")},
	}
	for from, nat := range states {
		for to, filter := range states {
			for name, p := range packets {
				want := evalPacket(t, nat, nat, p)
				if got := evalPacket(t, nat, filter, p); got != want {
					t.Errorf("%s, synced from %q to %q between its nat and filter hooks: %s; want %s (the nat hook's ruleset alone)",
						name, from, to, got, want)
				}
			}
		}
	}
	// The outcomes themselves, for one ruleset at a time.
	for _, c := range []struct{ state, packet, want string }{
		{"no endpoints", "pod to ClusterIP", "reject"},
		{"no endpoints", "node to ClusterIP", "reject"},
		{"no endpoints", "outsider to NodePort", "reject"},
		{"no endpoints", "node to its NodePort", "reject"},
		{"one endpoint", "pod to ClusterIP", "accept to 10.244.1.2:8080"},
		{"one endpoint", "outsider to NodePort", "accept to 10.244.1.2:8080"},
		{"no service", "pod to ClusterIP", "drop"},
		{"other port", "pod to ClusterIP", "drop"},
		{"other port empty", "pod to ClusterIP", "drop"},
	} {
		rs := states[c.state]
		if got := evalPacket(t, rs, rs, packets[c.packet]); got != c.want {
			t.Errorf("%s, %s: %s, want %s", c.state, c.packet, got, c.want)
		}
	}
}

// packetPath is the way a packet goes through the hooks.
type packetPath int

const (
	forwarded packetPath = iota // prerouting, forward
	delivered                   // prerouting, input
	local                       // output (the node's own socket)
)

// packet is the first packet (TCP) of a new connection.
type packet struct {
	path     packetPath
	src      netip.Addr
	dst      netip.AddrPort
	dstLocal bool // the destination is an address of the node
	mark     uint32
}

// evalPacket runs p through the nat hook of nat and then the filter hook
// of filter, and says what became of it: "drop", "reject", or "accept to"
// its destination after translation. A service port with several
// endpoints sends it to the first.
func evalPacket(t *testing.T, nat, filter *Ruleset, p packet) string {
	t.Helper()
	natHook, filterHook := "prerouting", "forward"
	switch p.path {
	case delivered:
		filterHook = "input"
	case local:
		natHook, filterHook = "output", "output"
	}
	if v := (&evaluator{t: t, rs: nat, p: &p}).hook("nat", natHook); v != "accept" {
		return v
	}
	if v := (&evaluator{t: t, rs: filter, p: &p}).hook("filter", filterHook); v != "accept" {
		return v
	}
	return "accept to " + p.dst.String()
}

// evaluator interprets the statements of a Ruleset for one packet, the way
// nftables does: jump returns, goto does not, the first verdict ends the
// base chain.
type evaluator struct {
	t  *testing.T
	rs *Ruleset
	p  *packet
}

func (e *evaluator) hook(typ, hook string) string {
	for name, c := range e.rs.Chains {
		if c.Hook != nil && c.Hook.Type == typ && c.Hook.Hook == hook {
			if v := e.chain(name, 0); v != "" && v != "return" {
				return v
			}
		}
	}
	return "accept" // policy
}

// chain evaluates a chain; "" means its end was reached (or it returned).
func (e *evaluator) chain(name string, depth int) string {
	if depth > 16 {
		e.t.Fatalf("chain %s: too deep", name)
	}
	c := e.rs.Chains[name]
	if c == nil {
		e.t.Fatalf("no chain %s", name)
	}
rules:
	for _, r := range c.Rules {
		for _, s := range r {
			v, ok := e.stmt(s, depth)
			if !ok {
				continue rules // a match failed
			}
			switch v {
			case "":
			case "return":
				return ""
			default:
				return v
			}
		}
	}
	return ""
}

// stmt evaluates one statement: ok false when it is a match that fails;
// v a verdict that ends the chain ("accept", "drop", "reject", "return")
// or "" to go on.
func (e *evaluator) stmt(s Stmt, depth int) (v string, ok bool) {
	p := e.p
	switch s := s.(type) {
	case ctNew:
		return "", true // the first packet
	case srcNotIn:
		return "", !s.Prefix.Contains(p.src)
	case dstIn:
		return "", s.Prefix.Contains(p.dst.Addr())
	case dstNotIn:
		return "", !s.Prefix.Contains(p.dst.Addr())
	case dstLocal:
		return "", p.dstLocal
	case l4proto:
		return "", s.Proto == protoTCP
	case markMasq:
		p.mark |= MasqueradeMark
		return "", true
	case clearMarkMasq:
		p.mark ^= MasqueradeMark
		return "", true
	case returnIfNotMarked:
		if p.mark&MasqueradeMark == 0 {
			return "return", true
		}
		return "", true
	case markReject:
		p.mark |= RejectMark
		return "", true
	case markedReject:
		return "", p.mark&RejectMark != 0
	case masquerade:
		return "accept", true
	case dnat:
		p.dst = s.To
		return "accept", true
	case dnatRandom:
		eps := e.rs.Endpoints[s.Map]
		if len(eps) == 0 {
			e.t.Fatalf("no endpoint map %s", s.Map)
		}
		p.dst = eps[0]
		return "accept", true
	case vmapLookup:
		k := MapKey{IP: p.dst.Addr(), Proto: protoTCP, Port: p.dst.Port()}
		if s.NodePorts {
			k.IP = netip.Addr{}
		}
		m, known := e.rs.Maps[s.Map]
		if !known {
			e.t.Fatalf("no map %s", s.Map)
		}
		target, found := m[k]
		if !found {
			return "", true
		}
		return e.goTo(target, depth), true
	case hairpin:
		return "", p.src == p.dst.Addr() && e.rs.Hairpin[p.src]
	case jump:
		return e.chain(s.Chain, depth+1), true
	case goTo:
		return e.goTo(s.Chain, depth), true
	case drop:
		return "drop", true
	case tcpReset, icmpPortUnreachable:
		return "reject", true
	}
	e.t.Fatalf("the evaluator does not know %T (%s)", s, s)
	return "", false
}

// goTo evaluates the target of a goto: its end returns from the chain
// that went there.
func (e *evaluator) goTo(target string, depth int) string {
	v := e.chain(target, depth+1)
	if v == "" {
		return "return"
	}
	return v
}
