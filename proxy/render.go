package proxy

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// RenderConfig is what Render needs to know about the node and cluster.
type RenderConfig struct {
	// ServiceCIDR is the range ClusterIPs come from. New connections to
	// an address in it that no service port claims are dropped.
	ServiceCIDR netip.Prefix
	// ClusterCIDR is the pod range. A connection to a ClusterIP from a
	// source outside it (the node itself, another machine) is
	// masqueraded, so that the endpoint's reply comes back through this
	// node to be un-NATed. Invalid (zero) means: masquerade none of them.
	ClusterCIDR netip.Prefix
}

// Render computes the proxy's whole table from the Services and
// EndpointSlices in the cache. It is a pure function: same input, same
// Ruleset. Objects it cannot use (headless services, ExternalName, IPv6,
// slices without a service-name label) are skipped.
func Render(cfg RenderConfig, services []*corev1.Service, slicesIn []*discoveryv1.EndpointSlice) *Ruleset {
	rs := &Ruleset{
		Chains: baseChains(cfg),
		Maps: map[string]map[MapKey]string{
			MapServiceIPs:       {},
			MapServiceNodePorts: {},
		},
		Endpoints:   map[string][]netip.AddrPort{},
		Hairpin:     map[netip.Addr]bool{},
		Targets:     map[MapKey][]netip.AddrPort{},
		serviceCIDR: cfg.ServiceCIDR,
	}

	// Slices of each service, by "namespace/name".
	byService := map[string][]*discoveryv1.EndpointSlice{}
	for _, s := range slicesIn {
		name := s.Labels[discoveryv1.LabelServiceName]
		if name == "" || s.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		key := s.Namespace + "/" + name
		byService[key] = append(byService[key], s)
	}

	svcs := slices.Clone(services)
	slices.SortFunc(svcs, func(a, b *corev1.Service) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	for _, svc := range svcs {
		if svc.Spec.Type == corev1.ServiceTypeExternalName {
			continue
		}
		clusterIP, err := netip.ParseAddr(svc.Spec.ClusterIP)
		if err != nil || !clusterIP.Is4() {
			continue // headless ("None"), not allocated yet, or IPv6
		}
		for _, port := range svc.Spec.Ports {
			proto, ok := protoNumber(port.Protocol)
			if !ok || port.Port <= 0 || port.Port > 65535 {
				continue
			}
			eps := endpointsFor(byService[svc.Namespace+"/"+svc.Name], port)
			renderPort(rs, cfg, svc, port, proto, clusterIP, eps)
		}
	}
	return rs
}

// renderPort adds the map elements and chains of one service port.
func renderPort(rs *Ruleset, cfg RenderConfig, svc *corev1.Service, port corev1.ServicePort,
	proto uint8, clusterIP netip.Addr, eps []netip.AddrPort) {
	target := MapKey{IP: clusterIP, Proto: proto, Port: uint16(port.Port)}
	var nodePort MapKey
	if port.NodePort > 0 && port.NodePort <= 65535 &&
		(svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer) {
		nodePort = MapKey{Proto: proto, Port: uint16(port.NodePort)}
	}
	if proto == protoUDP || proto == protoTCP {
		rs.Targets[target] = eps
		if nodePort.Port != 0 {
			rs.Targets[nodePort] = eps
		}
	}

	if len(eps) == 0 {
		// In the same map as the translation it replaces: one lookup
		// decides between translating and refusing (see RejectMark).
		rs.Maps[MapServiceIPs][target] = chainNoEndpoints
		if nodePort.Port != 0 {
			rs.Maps[MapServiceNodePorts][nodePort] = chainNoEndpoints
		}
		return
	}

	// "namespace/name/proto/port": readable, unique per service port.
	portName := port.Name
	if portName == "" {
		portName = strconv.Itoa(int(port.Port))
	}
	id := fmt.Sprintf("%s/%s/%s/%s", svc.Namespace, svc.Name, protoName(proto), portName)

	svcChain := chainName("svc", id)
	var rules []Rule
	if cfg.ClusterCIDR.IsValid() && !cfg.ServiceCIDR.IsValid() {
		// Without a service range the services chain cannot mark
		// outsiders for all service ports at once; each does it.
		rules = append(rules, Rule{srcNotIn{cfg.ClusterCIDR}, markMasq{}})
	}
	for _, ep := range eps {
		// Hairpin: a pod reaching itself through the service must see
		// another source, or it would answer itself directly.
		rs.Hairpin[ep.Addr()] = true
	}
	if len(eps) == 1 {
		rules = append(rules, Rule{l4proto{proto}, dnat{eps[0]}})
	} else {
		m := chainName("endpoints", id)
		rs.Endpoints[m] = eps
		rules = append(rules, Rule{l4proto{proto}, dnatRandom{Map: m, N: len(eps)}})
	}
	rs.Chains[svcChain] = &Chain{Rules: rules}
	rs.Maps[MapServiceIPs][target] = svcChain

	if nodePort.Port != 0 {
		// Traffic from outside the node is always masqueraded, so
		// that an endpoint on another node replies through this one.
		ext := chainName("ext", id)
		rs.Chains[ext] = &Chain{Rules: []Rule{{markMasq{}}, {goTo{svcChain}}}}
		rs.Maps[MapServiceNodePorts][nodePort] = ext
	}
}

// endpointsFor returns the endpoints a service port sends traffic to, in a
// stable order: the ready ones, or when there are none, the ones still
// serving while terminating (so that a rolling update of a service's only
// pod drops no connection it could have served).
func endpointsFor(slices_ []*discoveryv1.EndpointSlice, port corev1.ServicePort) []netip.AddrPort {
	var ready, terminating []netip.AddrPort
	seen := map[netip.AddrPort]bool{}
	for _, s := range slices_ {
		var target int32
		for _, p := range s.Ports {
			name := ""
			if p.Name != nil {
				name = *p.Name
			}
			proto := corev1.ProtocolTCP
			if p.Protocol != nil {
				proto = *p.Protocol
			}
			if name == port.Name && proto == port.Protocol && p.Port != nil {
				target = *p.Port
				break
			}
		}
		if target <= 0 || target > 65535 {
			continue
		}
		for _, ep := range s.Endpoints {
			if len(ep.Addresses) == 0 {
				continue
			}
			ip, err := netip.ParseAddr(ep.Addresses[0])
			if err != nil || !ip.Is4() {
				continue
			}
			ap := netip.AddrPortFrom(ip, uint16(target))
			if seen[ap] {
				continue
			}
			c := ep.Conditions
			// Unset conditions: ready means ready, serving follows ready,
			// terminating means not terminating (the API's rules).
			isReady := c.Ready == nil || *c.Ready
			serving := isReady
			if c.Serving != nil {
				serving = *c.Serving
			}
			isTerminating := c.Terminating != nil && *c.Terminating
			switch {
			case isReady:
				ready = append(ready, ap)
				seen[ap] = true
			case serving && isTerminating:
				terminating = append(terminating, ap)
				seen[ap] = true
			}
		}
	}
	out := ready
	if len(out) == 0 {
		out = terminating
	}
	slices.SortFunc(out, func(a, b netip.AddrPort) int { return a.Compare(b) })
	return out
}

// protoNumber maps a Kubernetes protocol to its IP protocol number; an
// empty protocol is TCP, as the API defaults it.
func protoNumber(p corev1.Protocol) (uint8, bool) {
	switch p {
	case corev1.ProtocolTCP, "":
		return protoTCP, true
	case corev1.ProtocolUDP:
		return protoUDP, true
	case corev1.ProtocolSCTP:
		return protoSCTP, true
	}
	return 0, false
}

// chainName is prefix-HASH-id: the hash keeps names distinct whatever id
// holds, the id keeps them readable in "nft list table ip skiff".
func chainName(prefix, id string) string {
	sum := sha256.Sum256([]byte(prefix + ":" + id))
	h := base32.StdEncoding.EncodeToString(sum[:5]) // 8 characters
	return prefix + "-" + h + "-" + id
}

// baseChains are the chains that do not depend on services: the hooks and
// the dispatch through the verdict maps.
func baseChains(cfg RenderConfig) map[string]*Chain {
	loopback := netip.MustParsePrefix("127.0.0.0/8")
	// New connections to a service port without endpoints are refused:
	// the nat hook marked them (no-endpoints), in the lookup that
	// translates the connections of a service port with endpoints. The
	// filter hooks do not look the service port up again: a sync between
	// the two hooks would otherwise leave a connection to a service port
	// that just got its first endpoint untranslated (old rules) and not
	// refused (new rules), and the rule below would drop it.
	// Every packet (not only a connection's first) still going to the
	// service range is dropped: after translation none should, and one
	// that conntrack found invalid, which skips the nat hooks, would
	// otherwise follow the default route out of the node.
	checks := []Rule{{ctNew{}, markedReject{}, goTo{chainReject}}}
	if cfg.ServiceCIDR.IsValid() {
		checks = append(checks, Rule{dstIn{cfg.ServiceCIDR}, drop{}})
	}
	var services []Rule
	if cfg.ClusterCIDR.IsValid() && cfg.ServiceCIDR.IsValid() {
		// A connection to the service range from outside the cluster
		// CIDR is masqueraded, so that the endpoint's reply comes back
		// through this node. Marking addresses that no service port
		// has does no harm: the filter hooks drop or reject those.
		services = append(services, Rule{dstIn{cfg.ServiceCIDR}, srcNotIn{cfg.ClusterCIDR}, markMasq{}})
	}
	services = append(services,
		Rule{vmapLookup{Map: MapServiceIPs}},
		Rule{dstLocal{}, dstNotIn{loopback}, vmapLookup{Map: MapServiceNodePorts, NodePorts: true}})
	return map[string]*Chain{
		// Destination NAT for packets arriving (prerouting) and leaving
		// this host's own sockets (output).
		chainNATPrerouting: {Hook: &Hook{"nat", "prerouting", -100}, Rules: []Rule{{jump{chainServices}}}},
		chainNATOutput:     {Hook: &Hook{"nat", "output", -100}, Rules: []Rule{{jump{chainServices}}}},
		chainServices:      {Rules: services},
		// Masquerade what a service chain marked, and hairpin traffic.
		chainNATPostrouting: {Hook: &Hook{"nat", "postrouting", 100}, Rules: []Rule{{jump{chainMasquerading}}}},
		chainMasquerading: {Rules: []Rule{
			{hairpin{}, markMasq{}},
			{returnIfNotMarked{}},
			{clearMarkMasq{}, masquerade{}},
		}},
		// Filtering runs after destination NAT: what still goes to a
		// service address found no endpoint.
		chainFilterInput: {Hook: &Hook{"filter", "input", 0}, Rules: []Rule{
			{ctNew{}, markedReject{}, goTo{chainReject}},
		}},
		chainFilterForward: {Hook: &Hook{"filter", "forward", 0}, Rules: []Rule{{jump{chainServiceChecks}}}},
		chainFilterOutput:  {Hook: &Hook{"filter", "output", 0}, Rules: []Rule{{jump{chainServiceChecks}}}},
		chainServiceChecks: {Rules: checks},
		// A service port without endpoints: refused in the filter hooks.
		chainNoEndpoints: {Rules: []Rule{{markReject{}}}},
		chainReject: {Rules: []Rule{
			{l4proto{protoTCP}, tcpReset{}},
			{icmpPortUnreachable{}},
		}},
	}
}
