package proxy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// TableName is the name of the proxy's nftables table (family ip).
const TableName = "skiff"

// MasqueradeMark is the packet mark bit that asks the postrouting chain to
// masquerade a packet. Only this bit of the mark is set, tested and
// cleared; other bits belong to other software.
const MasqueradeMark uint32 = 0x4000

// RejectMark is the packet mark bit that the nat hook sets on the first
// packet of a connection to a service port without endpoints, for the
// filter hooks to refuse it. The decision is taken by the same map lookup
// that would have translated the packet, so that a sync committed between
// a packet's nat and filter hooks cannot leave it neither translated nor
// refused (and dropped as going to the service range). Only this bit of
// the mark is set and tested.
const RejectMark uint32 = 0x8000

// Names of the table's maps and fixed chains.
const (
	// MapServiceIPs: ClusterIP . protocol . port → goto svc-… chain, or
	// goto no-endpoints for a service port without endpoints.
	MapServiceIPs = "service-ips"
	// MapServiceNodePorts: protocol . nodePort → goto ext-… chain, or
	// goto no-endpoints.
	MapServiceNodePorts = "service-nodeports"
	// SetHairpin: endpoint address . the same address, to recognize in
	// postrouting a pod that its Service sent back to itself.
	SetHairpin = "hairpin"

	chainServices       = "services"
	chainServiceChecks  = "service-checks"
	chainMasquerading   = "masquerading"
	chainReject         = "reject-chain"
	chainNoEndpoints    = "no-endpoints"
	chainNATPrerouting  = "nat-prerouting"
	chainNATOutput      = "nat-output"
	chainNATPostrouting = "nat-postrouting"
	chainFilterInput    = "filter-input"
	chainFilterForward  = "filter-forward"
	chainFilterOutput   = "filter-output"
)

// Protocol numbers as they appear in "meta l4proto".
const (
	protoTCP  uint8 = unix.IPPROTO_TCP
	protoUDP  uint8 = unix.IPPROTO_UDP
	protoSCTP uint8 = unix.IPPROTO_SCTP
)

func protoName(p uint8) string {
	switch p {
	case protoTCP:
		return "tcp"
	case protoUDP:
		return "udp"
	case protoSCTP:
		return "sctp"
	}
	return fmt.Sprint(p)
}

// Ruleset is the whole content of the proxy's table, as data. Render
// computes it; a Syncer writes it to the kernel. Two Rulesets can be
// compared chain by chain and map element by map element, which is how a
// Syncer finds the few changes to make.
type Ruleset struct {
	// Chains by name, the fixed ones (with a hook) and one or more per
	// service port.
	Chains map[string]*Chain
	// Maps holds the elements of the two verdict maps (MapServiceIPs,
	// MapServiceNodePorts): key → the chain the verdict goes to.
	Maps map[string]map[MapKey]string
	// Endpoints holds the endpoint maps, by name: one per service port
	// with more than one endpoint, from 0..N-1 to the endpoints.
	Endpoints map[string][]netip.AddrPort
	// Hairpin holds the endpoint addresses of SetHairpin.
	Hairpin map[netip.Addr]bool
	// Targets lists, for every UDP and TCP service address (ClusterIP or
	// NodePort key), the endpoints traffic to it is sent to; empty for a
	// service without endpoints. The Syncer compares it with the
	// previous Ruleset to flush conntrack entries of removed endpoints
	// (UDP flows, TCP connections that never got an answer).
	Targets map[MapKey][]netip.AddrPort

	// serviceCIDR is RenderConfig.ServiceCIDR, for the conntrack flush.
	serviceCIDR netip.Prefix
}

// MapKey is a key of the verdict maps: IP . protocol . port for the
// service-IP maps, protocol . port (IP left zero) for the NodePort maps.
type MapKey struct {
	IP    netip.Addr
	Proto uint8
	Port  uint16
}

func (k MapKey) String() string {
	if !k.IP.IsValid() {
		return fmt.Sprintf("%s . %d", protoName(k.Proto), k.Port)
	}
	return fmt.Sprintf("%s . %s . %d", k.IP, protoName(k.Proto), k.Port)
}

// Hook attaches a base chain to a netfilter hook.
type Hook struct {
	Type     string // "nat" or "filter"
	Hook     string // prerouting, input, forward, output, postrouting
	Priority int32
}

// Chain is a list of rules, attached to a hook or reached by jump/goto.
type Chain struct {
	Hook  *Hook // nil for a regular chain
	Rules []Rule
}

// Rule is a sequence of statements: matches first, then at most one
// terminal statement (a verdict, dnat, reject, masquerade).
type Rule []Stmt

func (r Rule) String() string {
	parts := make([]string, len(r))
	for i, s := range r {
		parts[i] = s.String()
	}
	return strings.Join(parts, " ")
}

// Stmt is one statement of a rule. Its String form is the nft syntax; the
// Syncer turns it into kernel expressions.
type Stmt interface {
	String() string
}

// The statements the proxy uses.
type (
	// ctNew matches the first packet of a connection.
	ctNew struct{}
	// srcNotIn matches a source outside a prefix.
	srcNotIn struct{ Prefix netip.Prefix }
	// dstIn and dstNotIn match the destination against a prefix.
	dstIn    struct{ Prefix netip.Prefix }
	dstNotIn struct{ Prefix netip.Prefix }
	// dstLocal matches a destination address of this host.
	dstLocal struct{}
	// l4proto matches the transport protocol.
	l4proto struct{ Proto uint8 }
	// markMasq sets MasqueradeMark.
	markMasq struct{}
	// returnIfNotMarked returns unless MasqueradeMark is set.
	returnIfNotMarked struct{}
	// clearMarkMasq clears MasqueradeMark.
	clearMarkMasq struct{}
	// markReject sets RejectMark.
	markReject struct{}
	// markedReject matches a packet with RejectMark set.
	markedReject struct{}
	// masquerade rewrites the source to the outgoing interface's address.
	masquerade struct{}
	// dnat rewrites the destination.
	dnat struct{ To netip.AddrPort }
	// vmapLookup looks the packet up in a named verdict map; NodePorts
	// says whether the key is protocol . port (else IP . protocol . port).
	vmapLookup struct {
		Map       string
		NodePorts bool
	}
	// dnatRandom rewrites the destination to one of the N endpoints in
	// the named map Map (0..N-1 → address . port), chosen uniformly at
	// random.
	dnatRandom struct {
		Map string
		N   int
	}
	// hairpin matches a packet whose source and destination are the same
	// endpoint (after DNAT), by a lookup in SetHairpin.
	hairpin struct{}
	// jump and goTo are verdicts naming a chain.
	jump struct{ Chain string }
	goTo struct{ Chain string }
	// drop, tcpReset and icmpPortUnreachable end the packet.
	drop                struct{}
	tcpReset            struct{}
	icmpPortUnreachable struct{}
)

func (ctNew) String() string      { return "ct state new" }
func (s srcNotIn) String() string { return "ip saddr != " + s.Prefix.String() }
func (s dstIn) String() string    { return "ip daddr " + s.Prefix.String() }
func (s dstNotIn) String() string { return "ip daddr != " + s.Prefix.String() }
func (dstLocal) String() string   { return "fib daddr type local" }
func (s l4proto) String() string  { return "meta l4proto " + protoName(s.Proto) }
func (markMasq) String() string   { return fmt.Sprintf("meta mark set meta mark | %#x", MasqueradeMark) }
func (returnIfNotMarked) String() string {
	return fmt.Sprintf("meta mark & %#x == 0 return", MasqueradeMark)
}
func (clearMarkMasq) String() string {
	return fmt.Sprintf("meta mark set meta mark ^ %#x", MasqueradeMark)
}
func (markReject) String() string { return fmt.Sprintf("meta mark set meta mark | %#x", RejectMark) }
func (markedReject) String() string {
	return fmt.Sprintf("meta mark & %#x == %#x", RejectMark, RejectMark)
}
func (masquerade) String() string { return "masquerade fully-random" }
func (s dnat) String() string     { return "dnat to " + s.To.String() }
func (s vmapLookup) String() string {
	if s.NodePorts {
		return "meta l4proto . th dport vmap @" + s.Map
	}
	return "ip daddr . meta l4proto . th dport vmap @" + s.Map
}
func (s dnatRandom) String() string {
	return fmt.Sprintf("dnat ip to numgen random mod %d map @%s", s.N, s.Map)
}
func (hairpin) String() string             { return "ip saddr . ip daddr @" + SetHairpin }
func (s jump) String() string              { return "jump " + s.Chain }
func (s goTo) String() string              { return "goto " + s.Chain }
func (drop) String() string                { return "drop" }
func (tcpReset) String() string            { return "reject with tcp reset" }
func (icmpPortUnreachable) String() string { return "reject with icmp port-unreachable" }

// equal reports whether two chains have the same hook and rules.
func (c *Chain) equal(o *Chain) bool {
	if (c.Hook == nil) != (o.Hook == nil) || (c.Hook != nil && *c.Hook != *o.Hook) {
		return false
	}
	return slices.EqualFunc(c.Rules, o.Rules, func(a, b Rule) bool { return a.String() == b.String() })
}

// String prints the ruleset in nft's own syntax, chains and map elements
// sorted by name, so that it can be read and compared in tests.
func (rs *Ruleset) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table ip %s {\n", TableName)
	for _, name := range sortedKeys(rs.Maps) {
		nodePorts := name == MapServiceNodePorts
		typ := "ipv4_addr . inet_proto . inet_service"
		if nodePorts {
			typ = "inet_proto . inet_service"
		}
		fmt.Fprintf(&b, "\tmap %s {\n\t\ttype %s : verdict\n", name, typ)
		m := rs.Maps[name]
		keys := make([]MapKey, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, compareMapKeys)
		for _, k := range keys {
			fmt.Fprintf(&b, "\t\telement %s : goto %s\n", k, m[k])
		}
		b.WriteString("\t}\n")
	}
	for _, name := range sortedKeys(rs.Endpoints) {
		fmt.Fprintf(&b, "\tmap %s {\n\t\ttype integer : ipv4_addr . inet_service\n", name)
		for i, ep := range rs.Endpoints[name] {
			fmt.Fprintf(&b, "\t\telement %d : %s . %d\n", i, ep.Addr(), ep.Port())
		}
		b.WriteString("\t}\n")
	}
	fmt.Fprintf(&b, "\tset %s {\n\t\ttype ipv4_addr . ipv4_addr\n", SetHairpin)
	ips := make([]netip.Addr, 0, len(rs.Hairpin))
	for ip := range rs.Hairpin {
		ips = append(ips, ip)
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	for _, ip := range ips {
		fmt.Fprintf(&b, "\t\telement %s . %s\n", ip, ip)
	}
	b.WriteString("\t}\n")
	for _, name := range sortedKeys(rs.Chains) {
		c := rs.Chains[name]
		fmt.Fprintf(&b, "\tchain %s {\n", name)
		if c.Hook != nil {
			fmt.Fprintf(&b, "\t\ttype %s hook %s priority %d\n", c.Hook.Type, c.Hook.Hook, c.Hook.Priority)
		}
		for _, r := range c.Rules {
			fmt.Fprintf(&b, "\t\t%s\n", r)
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

func compareMapKeys(a, b MapKey) int {
	if c := a.IP.Compare(b.IP); c != 0 {
		return c
	}
	if a.Proto != b.Proto {
		return int(a.Proto) - int(b.Proto)
	}
	return int(a.Port) - int(b.Port)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
