package dns

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	miekg "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"
)

// SpecVersion is the version of the Kubernetes DNS specification the
// records follow, served as the TXT record dns-version.<domain>.
const SpecVersion = "1.1.0"

// Index names of the informer caches Records reads.
const (
	// ServiceIPIndex indexes Services by each of their cluster IPs
	// (netip.Addr.String()), for PTR queries.
	ServiceIPIndex = "dns.clusterIP"
	// SliceServiceIndex indexes EndpointSlices by "namespace/service".
	SliceServiceIndex = "dns.service"
	// SliceAddressIndex indexes EndpointSlices by each endpoint address
	// (netip.Addr.String()), for PTR queries.
	SliceAddressIndex = "dns.address"
)

// ServiceIndexers are the indexes Records needs on the Service cache
// (besides cache.NamespaceIndex, which every Skiff informer has).
func ServiceIndexers() cache.Indexers {
	return cache.Indexers{ServiceIPIndex: func(obj any) ([]string, error) {
		s, ok := obj.(*corev1.Service)
		if !ok {
			return nil, nil
		}
		var out []string
		for _, ip := range clusterIPs(s) {
			out = append(out, ip.String())
		}
		return out, nil
	}}
}

// SliceIndexers are the indexes Records needs on the EndpointSlice cache.
func SliceIndexers() cache.Indexers {
	return cache.Indexers{
		SliceServiceIndex: func(obj any) ([]string, error) {
			s, ok := obj.(*discoveryv1.EndpointSlice)
			if !ok || s.Labels[discoveryv1.LabelServiceName] == "" {
				return nil, nil
			}
			return []string{s.Namespace + "/" + s.Labels[discoveryv1.LabelServiceName]}, nil
		},
		SliceAddressIndex: func(obj any) ([]string, error) {
			s, ok := obj.(*discoveryv1.EndpointSlice)
			if !ok {
				return nil, nil
			}
			var out []string
			for _, ep := range s.Endpoints {
				for _, a := range ep.Addresses {
					if ip, err := netip.ParseAddr(a); err == nil {
						out = append(out, ip.String())
					}
				}
			}
			return out, nil
		},
	}
}

// Records answers queries for names in the cluster domain and for the
// reverse (PTR) names of cluster addresses, from caches of Services and
// EndpointSlices. It is a pure function of the caches' contents: it never
// forwards and never blocks, and it is safe for concurrent use.
type Records struct {
	// Domain is the cluster domain as a lower-case FQDN ("cluster.local.").
	Domain string
	// TTL is the time to live of every record and of negative answers.
	TTL uint32
	// ReverseZones are the address ranges whose PTR names Records answers
	// with authority (NXDOMAIN for an address nothing has); PTR names of
	// other addresses are answered only when a Service or endpoint has
	// them, and forwarded otherwise.
	ReverseZones []netip.Prefix

	// Services and Slices are the caches, with ServiceIndexers and
	// SliceIndexers (and cache.NamespaceIndex on Services).
	Services cache.Indexer
	Slices   cache.Indexer
}

// Answer is what Records says about one question.
type Answer struct {
	// Rcode is RcodeSuccess or RcodeNameError (NXDOMAIN).
	Rcode int
	// Records answer the question; empty with RcodeSuccess is NODATA.
	Records []miekg.RR
	// Extra are the additional records (the addresses of SRV targets).
	Extra []miekg.RR
	// Zone is the apex of the zone the answer comes from, for the SOA of
	// a negative answer.
	Zone string
}

// InZone reports whether Records is the authority for name (a lower-case
// FQDN): names in the cluster domain and reverse names of ReverseZones.
func (r *Records) InZone(name string) bool {
	if miekg.IsSubDomain(r.Domain, name) {
		return true
	}
	_, ok := r.reverseZone(name)
	return ok
}

// Lookup answers a question; name must be a lower-case FQDN. found is
// false when Records has nothing to say about a name outside its zones
// (a PTR name of an unknown address outside ReverseZones): the caller
// forwards the question.
func (r *Records) Lookup(name string, qtype uint16) (a Answer, found bool) {
	if miekg.IsSubDomain(r.Domain, name) {
		return r.lookupCluster(name, qtype), true
	}
	if qtype == miekg.TypePTR || strings.HasSuffix(name, ".arpa.") {
		return r.lookupReverse(name, qtype)
	}
	return Answer{}, false
}

// lookupCluster answers for a name in the cluster domain. The names that
// exist are:
//
//	<domain>                                    the apex (SOA, NS)
//	dns-version.<domain>                        TXT
//	svc.<domain>, <ns>.svc.<domain>             empty non-terminals
//	<svc>.<ns>.svc.<domain>                     A/AAAA, CNAME (ExternalName), SRV
//	<host>.<svc>.<ns>.svc.<domain>              A/AAAA of a headless endpoint
//	_<proto>.<svc>.<ns>.svc.<domain>            empty non-terminal
//	_<port>._<proto>.<svc>.<ns>.svc.<domain>    SRV
//
// Anything else is NXDOMAIN.
func (r *Records) lookupCluster(name string, qtype uint16) Answer {
	rel := strings.TrimSuffix(strings.TrimSuffix(name, r.Domain), ".")
	var labels []string // right to left: "svc", namespace, service, ...
	if rel != "" {
		labels = strings.Split(rel, ".")
		slices.Reverse(labels)
	}
	nodata := Answer{Rcode: miekg.RcodeSuccess, Zone: r.Domain}
	nx := Answer{Rcode: miekg.RcodeNameError, Zone: r.Domain}
	switch {
	case len(labels) == 0:
		if qtype == miekg.TypeSOA {
			nodata.Records = []miekg.RR{r.soa(r.Domain)}
		}
		return nodata
	case len(labels) == 1 && labels[0] == "dns-version":
		if qtype == miekg.TypeTXT {
			nodata.Records = []miekg.RR{&miekg.TXT{Hdr: r.hdr(name, miekg.TypeTXT), Txt: []string{SpecVersion}}}
		}
		return nodata
	case labels[0] != "svc":
		// Pod records (a-b-c-d.<ns>.pod.<domain>) are optional in the
		// specification and not served.
		return nx
	case len(labels) == 1:
		return nodata
	case len(labels) == 2:
		if r.namespaceHasServices(labels[1]) {
			return nodata
		}
		return nx
	}
	svc := r.service(labels[1], labels[2])
	if svc == nil {
		return nx
	}
	svcName := name
	for range len(labels) - 3 {
		_, svcName, _ = strings.Cut(svcName, ".")
	}
	switch len(labels) {
	case 3:
		return r.serviceRecords(svc, svcName, qtype)
	case 4:
		if strings.HasPrefix(labels[3], "_") { // _<proto>: exists when a port has it
			for _, p := range r.servicePorts(svc) {
				if "_"+strings.ToLower(string(p.Protocol)) == labels[3] && p.Name != "" {
					return nodata
				}
			}
			return nx
		}
		return r.endpointRecords(svc, svcName, labels[3], name, qtype)
	case 5:
		proto, port := labels[3], labels[4]
		if !strings.HasPrefix(proto, "_") || !strings.HasPrefix(port, "_") {
			return nx
		}
		a := r.srvRecords(svc, svcName, name, port[1:], proto[1:])
		if len(a.Records) == 0 {
			return nx
		}
		if qtype != miekg.TypeSRV && qtype != miekg.TypeANY {
			return nodata
		}
		return a
	}
	return nx
}

// serviceRecords answers for <svc>.<ns>.svc.<domain>.
func (r *Records) serviceRecords(svc *corev1.Service, name string, qtype uint16) Answer {
	a := Answer{Rcode: miekg.RcodeSuccess, Zone: r.Domain}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		// A CNAME stands for every type of the name.
		target := miekg.Fqdn(strings.ToLower(svc.Spec.ExternalName))
		a.Records = []miekg.RR{&miekg.CNAME{Hdr: r.hdr(name, miekg.TypeCNAME), Target: target}}
		return a
	}
	switch qtype {
	case miekg.TypeA, miekg.TypeAAAA, miekg.TypeANY:
		a.Records = r.addresses(svc, name, qtype)
	case miekg.TypeSRV:
		// Every port of the service, named or not: a client that asks the
		// service name for SRV gets all of them.
		a = r.srvRecords(svc, name, name, "", "")
	}
	return a
}

// addresses are the A/AAAA records of a service's name: its cluster IPs,
// or for a headless service the addresses of its ready endpoints.
func (r *Records) addresses(svc *corev1.Service, name string, qtype uint16) []miekg.RR {
	var ips []netip.Addr
	if isHeadless(svc) {
		for _, ep := range r.endpoints(svc) {
			ips = append(ips, ep.addr)
		}
	} else {
		ips = clusterIPs(svc)
	}
	var out []miekg.RR
	seen := map[netip.Addr]bool{}
	for _, ip := range ips {
		if seen[ip] {
			continue
		}
		seen[ip] = true
		if rr := r.addressRR(name, ip, qtype); rr != nil {
			out = append(out, rr)
		}
	}
	return out
}

// endpointRecords answers for <host>.<svc>.<ns>.svc.<domain>: a headless
// service's endpoint by its hostname (a pod's spec.hostname when the
// service is named by its spec.subdomain) or by its dashed address
// (10-244-1-5).
func (r *Records) endpointRecords(svc *corev1.Service, svcName, host, name string, qtype uint16) Answer {
	if !isHeadless(svc) {
		return Answer{Rcode: miekg.RcodeNameError, Zone: r.Domain}
	}
	a := Answer{Rcode: miekg.RcodeNameError, Zone: r.Domain}
	seen := map[netip.Addr]bool{}
	for _, ep := range r.endpoints(svc) {
		if ep.host != host {
			continue
		}
		a.Rcode = miekg.RcodeSuccess
		if seen[ep.addr] {
			continue
		}
		seen[ep.addr] = true
		if rr := r.addressRR(name, ep.addr, qtype); rr != nil {
			a.Records = append(a.Records, rr)
		}
	}
	return a
}

// srvRecords are the SRV records of a service's ports whose name and
// protocol match (lower case, without the underscore; "" matches any):
// one per port pointing at the service name, or for a headless service
// one per ready endpoint and port pointing at the endpoint's name. The
// targets' addresses are in Extra.
func (r *Records) srvRecords(svc *corev1.Service, svcName, name, port, proto string) Answer {
	a := Answer{Rcode: miekg.RcodeSuccess, Zone: r.Domain}
	match := func(p corev1.ServicePort) bool {
		if port == "" && proto == "" {
			return true
		}
		return p.Name != "" && strings.ToLower(p.Name) == port && strings.ToLower(string(p.Protocol)) == proto
	}
	if !isHeadless(svc) {
		if svc.Spec.Type == corev1.ServiceTypeExternalName {
			return a
		}
		for _, p := range svc.Spec.Ports {
			if match(p) {
				a.Records = append(a.Records, &miekg.SRV{Hdr: r.hdr(name, miekg.TypeSRV), Priority: 0, Weight: 100, Port: uint16(p.Port), Target: svcName})
			}
		}
		if len(a.Records) > 0 {
			a.Extra = r.addresses(svc, svcName, miekg.TypeANY)
		}
		return a
	}
	eps := r.endpoints(svc)
	type target struct {
		host string
		port int32
	}
	seen := map[target]bool{}
	var srvs []*miekg.SRV
	for _, ep := range eps {
		for _, p := range ep.ports {
			sp := corev1.ServicePort{Protocol: corev1.ProtocolTCP}
			if p.Name != nil {
				sp.Name = *p.Name
			}
			if p.Protocol != nil {
				sp.Protocol = *p.Protocol
			}
			if p.Port == nil || !match(sp) || seen[target{ep.host, *p.Port}] {
				continue
			}
			seen[target{ep.host, *p.Port}] = true
			host := ep.host + "." + svcName
			srvs = append(srvs, &miekg.SRV{Hdr: r.hdr(name, miekg.TypeSRV), Priority: 0, Port: uint16(*p.Port), Target: host})
			if rr := r.addressRR(host, ep.addr, miekg.TypeANY); rr != nil {
				a.Extra = append(a.Extra, rr)
			}
		}
	}
	// Equal shares of 100, as the records are equally good.
	for _, s := range srvs {
		s.Weight = uint16(max(1, 100/len(srvs)))
		a.Records = append(a.Records, s)
	}
	return a
}

// servicePorts are the ports a service's SRV names come from: its own,
// or for a headless service (whose ports may be absent) its endpoints'.
func (r *Records) servicePorts(svc *corev1.Service) []corev1.ServicePort {
	if !isHeadless(svc) {
		return svc.Spec.Ports
	}
	var out []corev1.ServicePort
	for _, ep := range r.endpoints(svc) {
		for _, p := range ep.ports {
			sp := corev1.ServicePort{Protocol: corev1.ProtocolTCP}
			if p.Name != nil {
				sp.Name = *p.Name
			}
			if p.Protocol != nil {
				sp.Protocol = *p.Protocol
			}
			out = append(out, sp)
		}
	}
	return out
}

// lookupReverse answers a PTR name: a Service's cluster IP names the
// service, a headless service's endpoint address names the endpoint.
func (r *Records) lookupReverse(name string, qtype uint16) (Answer, bool) {
	zone, authoritative := r.reverseZone(name)
	ip, ok := parseReverse(name)
	if !ok {
		if authoritative {
			return Answer{Rcode: miekg.RcodeNameError, Zone: zone}, true
		}
		return Answer{}, false
	}
	var targets []string
	for _, obj := range byIndex(r.Services, ServiceIPIndex, ip.String()) {
		svc := obj.(*corev1.Service)
		targets = append(targets, r.serviceName(svc.Namespace, svc.Name))
	}
	for _, obj := range byIndex(r.Slices, SliceAddressIndex, ip.String()) {
		slice := obj.(*discoveryv1.EndpointSlice)
		svc := r.service(slice.Namespace, slice.Labels[discoveryv1.LabelServiceName])
		if svc == nil || !isHeadless(svc) {
			continue
		}
		for _, ep := range r.endpoints(svc) {
			if ep.addr == ip {
				targets = append(targets, ep.host+"."+r.serviceName(svc.Namespace, svc.Name))
			}
		}
	}
	if len(targets) == 0 {
		if authoritative {
			return Answer{Rcode: miekg.RcodeNameError, Zone: zone}, true
		}
		return Answer{}, false
	}
	if zone == "" {
		zone = name
	}
	a := Answer{Rcode: miekg.RcodeSuccess, Zone: zone}
	if qtype != miekg.TypePTR && qtype != miekg.TypeANY {
		return a, true
	}
	slices.Sort(targets)
	for _, t := range slices.Compact(targets) {
		a.Records = append(a.Records, &miekg.PTR{Hdr: r.hdr(name, miekg.TypePTR), Ptr: t})
	}
	return a, true
}

// reverseZone decides whether Records is the authority for a reverse
// name: when the addresses it stands for (one address, or the range a
// shorter name covers) lie inside one of ReverseZones. It returns the
// apex of the zone for the SOA: the whole-label name of the smallest
// range that holds the name and lies inside the prefix (for 10.96.0.0/12,
// the /16 of the address: 96.10.in-addr.arpa.). Addresses outside the
// prefixes, and names covering more than a prefix (10.in-addr.arpa.),
// are not the server's: they go upstream.
func (r *Records) reverseZone(name string) (string, bool) {
	q, _, ok := reversePrefix(name)
	if !ok {
		return "", false
	}
	for _, p := range r.ReverseZones {
		if q.Bits() < p.Bits() || !p.Contains(q.Addr()) {
			continue
		}
		step := 8
		if p.Addr().Is6() {
			step = 4
		}
		bits := (p.Bits() + step - 1) / step * step
		return reverseZoneName(netip.PrefixFrom(q.Addr(), bits).Masked()), true
	}
	return "", false
}

// SOA is the start of authority record of zone, which a negative answer
// carries so that resolvers know how long to remember it.
func (r *Records) SOA(zone string) miekg.RR { return r.soa(zone) }

func (r *Records) soa(zone string) *miekg.SOA {
	return &miekg.SOA{
		Hdr:     r.hdr(zone, miekg.TypeSOA),
		Ns:      "ns.dns." + r.Domain,
		Mbox:    "hostmaster." + r.Domain,
		Serial:  1,
		Refresh: 7200,
		Retry:   1800,
		Expire:  86400,
		Minttl:  r.TTL,
	}
}

func (r *Records) hdr(name string, t uint16) miekg.RR_Header {
	return miekg.RR_Header{Name: name, Rrtype: t, Class: miekg.ClassINET, Ttl: r.TTL}
}

// addressRR is the A (IPv4) or AAAA (IPv6) record of ip, or nil when the
// question's type wants the other family.
func (r *Records) addressRR(name string, ip netip.Addr, qtype uint16) miekg.RR {
	switch {
	case ip.Is4() && (qtype == miekg.TypeA || qtype == miekg.TypeANY):
		return &miekg.A{Hdr: r.hdr(name, miekg.TypeA), A: ip.AsSlice()}
	case ip.Is6() && (qtype == miekg.TypeAAAA || qtype == miekg.TypeANY):
		return &miekg.AAAA{Hdr: r.hdr(name, miekg.TypeAAAA), AAAA: ip.AsSlice()}
	}
	return nil
}

func (r *Records) serviceName(namespace, name string) string {
	return name + "." + namespace + ".svc." + r.Domain
}

func (r *Records) service(namespace, name string) *corev1.Service {
	obj, ok, err := r.Services.GetByKey(namespace + "/" + name)
	if err != nil || !ok {
		return nil
	}
	return obj.(*corev1.Service)
}

func (r *Records) namespaceHasServices(namespace string) bool {
	keys, err := r.Services.IndexKeys(cache.NamespaceIndex, namespace)
	return err == nil && len(keys) > 0
}

// endpoint is one address of a service's EndpointSlices as DNS sees it.
type endpoint struct {
	addr  netip.Addr
	host  string // the endpoint's hostname, or its address with dashes
	ports []discoveryv1.EndpointPort
}

// endpoints lists the service's ready endpoints (every endpoint with
// publishNotReadyAddresses), in a stable order.
func (r *Records) endpoints(svc *corev1.Service) []endpoint {
	var out []endpoint
	for _, obj := range byIndex(r.Slices, SliceServiceIndex, svc.Namespace+"/"+svc.Name) {
		slice := obj.(*discoveryv1.EndpointSlice)
		if slice.AddressType == discoveryv1.AddressTypeFQDN {
			continue
		}
		for _, ep := range slice.Endpoints {
			if !svc.Spec.PublishNotReadyAddresses && ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			for _, s := range ep.Addresses {
				ip, err := netip.ParseAddr(s)
				if err != nil {
					continue
				}
				e := endpoint{addr: ip, host: dashed(ip), ports: slice.Ports}
				if ep.Hostname != nil && *ep.Hostname != "" {
					e.host = strings.ToLower(*ep.Hostname)
				}
				out = append(out, e)
			}
		}
	}
	slices.SortFunc(out, func(a, b endpoint) int {
		if c := strings.Compare(a.host, b.host); c != 0 {
			return c
		}
		return a.addr.Compare(b.addr)
	})
	return out
}

func byIndex(idx cache.Indexer, name, value string) []any {
	objs, err := idx.ByIndex(name, value)
	if err != nil {
		return nil
	}
	return objs
}

// isHeadless reports whether a service has no cluster IP of its own.
func isHeadless(svc *corev1.Service) bool {
	return svc.Spec.ClusterIP == corev1.ClusterIPNone && svc.Spec.Type != corev1.ServiceTypeExternalName
}

// clusterIPs are a service's cluster IPs (none when headless).
func clusterIPs(svc *corev1.Service) []netip.Addr {
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 && svc.Spec.ClusterIP != "" {
		ips = []string{svc.Spec.ClusterIP}
	}
	var out []netip.Addr
	for _, s := range ips {
		if ip, err := netip.ParseAddr(s); err == nil {
			out = append(out, ip.Unmap())
		}
	}
	return out
}

// dashed is the DNS label of an address: 10.244.1.5 → 10-244-1-5,
// fd00::1 → fd00--1.
func dashed(ip netip.Addr) string {
	if ip.Is4() {
		return strings.ReplaceAll(ip.String(), ".", "-")
	}
	return strings.ReplaceAll(ip.String(), ":", "-")
}

// parseReverse turns a PTR name (5.1.244.10.in-addr.arpa. or the nibbles
// of ip6.arpa.) into the address it names.
func parseReverse(name string) (netip.Addr, bool) {
	p, full, ok := reversePrefix(name)
	if !ok || !full {
		return netip.Addr{}, false
	}
	return p.Addr(), true
}

// reversePrefix is the address range a reverse name lies in: its longest
// suffix below in-addr.arpa. (ip6.arpa.) whose labels are octets
// (nibbles), as a prefix — 96.10.in-addr.arpa. is 10.96.0.0/16, and so is
// x.96.10.in-addr.arpa. full says the whole name is one address.
func reversePrefix(name string) (p netip.Prefix, full, ok bool) {
	var rest string
	var v6 bool
	switch {
	case name == "in-addr.arpa." || strings.HasSuffix(name, ".in-addr.arpa."):
		rest = strings.TrimSuffix(name, "in-addr.arpa.")
	case name == "ip6.arpa." || strings.HasSuffix(name, ".ip6.arpa."):
		rest, v6 = strings.TrimSuffix(name, "ip6.arpa."), true
	default:
		return netip.Prefix{}, false, false
	}
	var labels []string
	if rest != "" {
		labels = strings.Split(strings.TrimSuffix(rest, "."), ".")
		slices.Reverse(labels) // most significant first
	}
	var b [16]byte
	n := 0 // labels taken
	for _, l := range labels {
		if v6 {
			v, err := strconv.ParseUint(l, 16, 4)
			if n == 32 || err != nil || len(l) != 1 {
				break
			}
			if n%2 == 0 {
				b[n/2] |= byte(v) << 4
			} else {
				b[n/2] |= byte(v)
			}
		} else {
			v, err := strconv.ParseUint(l, 10, 8)
			if n == 4 || err != nil || (len(l) > 1 && l[0] == '0') {
				break
			}
			b[n] = byte(v)
		}
		n++
	}
	full = n == len(labels)
	if v6 {
		return netip.PrefixFrom(netip.AddrFrom16(b), n*4), full && n == 32, true
	}
	return netip.PrefixFrom(netip.AddrFrom4([4]byte(b[:4])), n*8), full && n == 4, true
}

// reverseZoneName is the reverse name of p's whole labels (octets, or
// nibbles for IPv6): 10.96.0.0/16 → 96.10.in-addr.arpa.; a prefix that
// ends inside a label is cut to the labels before it (10.96.0.0/12 →
// 10.in-addr.arpa.), so reverseZone calls it with whole-label prefixes.
func reverseZoneName(p netip.Prefix) string {
	p = p.Masked()
	b := p.Addr().AsSlice()
	var labels []string
	if p.Addr().Is4() {
		for i := range p.Bits() / 8 {
			labels = append(labels, strconv.Itoa(int(b[i])))
		}
		slices.Reverse(labels)
		return strings.Join(append(labels, "in-addr.arpa."), ".")
	}
	for i := range p.Bits() / 4 {
		nib := b[i/2] >> 4
		if i%2 == 1 {
			nib = b[i/2] & 0xf
		}
		labels = append(labels, fmt.Sprintf("%x", nib))
	}
	slices.Reverse(labels)
	return strings.Join(append(labels, "ip6.arpa."), ".")
}
