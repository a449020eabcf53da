package dns

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	miekg "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// testCaches are Service and EndpointSlice caches as Run builds them,
// filled by hand.
func testCaches(t testing.TB, objs ...any) (services, slices cache.Indexer) {
	t.Helper()
	svcIdx := ServiceIndexers()
	svcIdx[cache.NamespaceIndex] = cache.MetaNamespaceIndexFunc
	services = cache.NewIndexer(cache.MetaNamespaceKeyFunc, svcIdx)
	slices = cache.NewIndexer(cache.MetaNamespaceKeyFunc, SliceIndexers())
	for _, o := range objs {
		var err error
		switch o.(type) {
		case *corev1.Service:
			err = services.Add(o)
		case *discoveryv1.EndpointSlice:
			err = slices.Add(o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return services, slices
}

func service(ns, name, clusterIP string, ports ...corev1.ServicePort) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: clusterIP, Ports: ports},
	}
	if clusterIP != corev1.ClusterIPNone {
		s.Spec.ClusterIPs = []string{clusterIP}
	}
	return s
}

func port(name string, proto corev1.Protocol, n int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Protocol: proto, Port: n}
}

// slice is an IPv4 EndpointSlice of service ns/svc with one port named
// portName (TCP); each endpoint is "address", "address hostname" or
// "address !" (not ready).
func slice(ns, svc, name, portName string, portNum int32, endpoints ...string) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(portName), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(portNum)}},
	}
	for _, e := range endpoints {
		f := strings.Fields(e)
		ep := discoveryv1.Endpoint{Addresses: []string{f[0]}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}
		if len(f) > 1 && f[1] == "!" {
			ep.Conditions.Ready = ptr.To(false)
		} else if len(f) > 1 {
			ep.Hostname = ptr.To(f[1])
		}
		s.Endpoints = append(s.Endpoints, ep)
	}
	return s
}

// The cluster of the record tests.
func testObjects() []any {
	ext := service("default", "search", "")
	ext.Spec.Type = corev1.ServiceTypeExternalName
	ext.Spec.ExternalName = "www.example.org"
	extInside := service("default", "alias", "")
	extInside.Spec.Type = corev1.ServiceTypeExternalName
	extInside.Spec.ExternalName = "web.default.svc.cluster.local"
	dual := service("default", "dual", "10.96.0.20", port("http", corev1.ProtocolTCP, 80))
	dual.Spec.ClusterIPs = []string{"10.96.0.20", "fd00:96::20"}
	return []any{
		service("default", "web", "10.96.0.10", port("http", corev1.ProtocolTCP, 80), port("", corev1.ProtocolTCP, 8443), port("dns", corev1.ProtocolUDP, 53)),
		slice("default", "web", "web-1", "http", 8080, "10.244.1.5", "10.244.2.7"),
		service("default", "db", corev1.ClusterIPNone, port("pg", corev1.ProtocolTCP, 5432)),
		slice("default", "db", "db-1", "pg", 5432, "10.244.1.8 db-0", "10.244.2.9 db-1", "10.244.2.10 !"),
		service("default", "empty", corev1.ClusterIPNone),
		service("other", "web", "10.96.1.10", port("http", corev1.ProtocolTCP, 80)),
		ext, extInside, dual,
	}
}

func testRecords(t testing.TB) *Records {
	services, slices := testCaches(t, testObjects()...)
	return &Records{
		Domain:       "cluster.local.",
		TTL:          5,
		ReverseZones: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16"), netip.MustParsePrefix("10.244.0.0/16")},
		Services:     services,
		Slices:       slices,
	}
}

// show prints records one per line, without the TTL and class, sorted:
// "web.default.svc.cluster.local. A 10.96.0.10".
func show(rrs []miekg.RR) []string {
	var out []string
	for _, rr := range rrs {
		f := strings.Fields(rr.String())
		out = append(out, f[0]+" "+strings.Join(f[3:], " "))
	}
	slices.Sort(out)
	return out
}

func TestLookup(t *testing.T) {
	r := testRecords(t)
	const nx, ok = "NXDOMAIN", "NOERROR"
	tests := []struct {
		name  string
		qtype uint16
		rcode string
		want  []string
		extra []string
	}{
		// A ClusterIP service: its address, in its namespace only.
		{"web.default.svc.cluster.local.", miekg.TypeA, ok, []string{"web.default.svc.cluster.local. A 10.96.0.10"}, nil},
		{"web.other.svc.cluster.local.", miekg.TypeA, ok, []string{"web.other.svc.cluster.local. A 10.96.1.10"}, nil},
		{"web.default.svc.cluster.local.", miekg.TypeAAAA, ok, nil, nil}, // NODATA
		{"web.default.svc.cluster.local.", miekg.TypeMX, ok, nil, nil},
		{"dual.default.svc.cluster.local.", miekg.TypeAAAA, ok, []string{"dual.default.svc.cluster.local. AAAA fd00:96::20"}, nil},
		{"nothing.default.svc.cluster.local.", miekg.TypeA, nx, nil, nil},
		{"web.nowhere.svc.cluster.local.", miekg.TypeA, nx, nil, nil},
		// SRV of a named port, with the target's address.
		{"_http._tcp.web.default.svc.cluster.local.", miekg.TypeSRV, ok,
			[]string{"_http._tcp.web.default.svc.cluster.local. SRV 0 100 80 web.default.svc.cluster.local."},
			[]string{"web.default.svc.cluster.local. A 10.96.0.10"}},
		{"_dns._udp.web.default.svc.cluster.local.", miekg.TypeSRV, ok,
			[]string{"_dns._udp.web.default.svc.cluster.local. SRV 0 100 53 web.default.svc.cluster.local."},
			[]string{"web.default.svc.cluster.local. A 10.96.0.10"}},
		{"_http._tcp.web.default.svc.cluster.local.", miekg.TypeA, ok, nil, nil}, // the name exists
		{"_http._udp.web.default.svc.cluster.local.", miekg.TypeSRV, nx, nil, nil},
		{"_nope._tcp.web.default.svc.cluster.local.", miekg.TypeSRV, nx, nil, nil},
		{"_tcp.web.default.svc.cluster.local.", miekg.TypeSRV, ok, nil, nil}, // an empty non-terminal
		{"_sctp.web.default.svc.cluster.local.", miekg.TypeSRV, nx, nil, nil},
		// SRV at the service name: every port, the unnamed one too.
		{"web.default.svc.cluster.local.", miekg.TypeSRV, ok, []string{
			"web.default.svc.cluster.local. SRV 0 100 53 web.default.svc.cluster.local.",
			"web.default.svc.cluster.local. SRV 0 100 80 web.default.svc.cluster.local.",
			"web.default.svc.cluster.local. SRV 0 100 8443 web.default.svc.cluster.local.",
		}, []string{"web.default.svc.cluster.local. A 10.96.0.10"}},
		// A headless service: its ready endpoints.
		{"db.default.svc.cluster.local.", miekg.TypeA, ok, []string{
			"db.default.svc.cluster.local. A 10.244.1.8",
			"db.default.svc.cluster.local. A 10.244.2.9",
		}, nil},
		{"_pg._tcp.db.default.svc.cluster.local.", miekg.TypeSRV, ok, []string{
			"_pg._tcp.db.default.svc.cluster.local. SRV 0 50 5432 db-0.db.default.svc.cluster.local.",
			"_pg._tcp.db.default.svc.cluster.local. SRV 0 50 5432 db-1.db.default.svc.cluster.local.",
		}, []string{
			"db-0.db.default.svc.cluster.local. A 10.244.1.8",
			"db-1.db.default.svc.cluster.local. A 10.244.2.9",
		}},
		// hostname.subdomain of a pod, and an endpoint by its dashed address.
		{"db-1.db.default.svc.cluster.local.", miekg.TypeA, ok, []string{"db-1.db.default.svc.cluster.local. A 10.244.2.9"}, nil},
		{"db-1.db.default.svc.cluster.local.", miekg.TypeAAAA, ok, nil, nil},
		{"db-7.db.default.svc.cluster.local.", miekg.TypeA, nx, nil, nil},
		{"10-244-2-10.db.default.svc.cluster.local.", miekg.TypeA, nx, nil, nil}, // not ready
		{"10-244-1-5.web.default.svc.cluster.local.", miekg.TypeA, nx, nil, nil}, // not headless
		// A headless service without endpoints exists, with no address.
		{"empty.default.svc.cluster.local.", miekg.TypeA, ok, nil, nil},
		// ExternalName: a CNAME whatever the type.
		{"search.default.svc.cluster.local.", miekg.TypeA, ok, []string{"search.default.svc.cluster.local. CNAME www.example.org."}, nil},
		{"search.default.svc.cluster.local.", miekg.TypeCNAME, ok, []string{"search.default.svc.cluster.local. CNAME www.example.org."}, nil},
		// The zone's inner names.
		{"cluster.local.", miekg.TypeSOA, ok, []string{"cluster.local. SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5"}, nil},
		{"cluster.local.", miekg.TypeA, ok, nil, nil},
		{"svc.cluster.local.", miekg.TypeA, ok, nil, nil},
		{"default.svc.cluster.local.", miekg.TypeA, ok, nil, nil},
		{"nowhere.svc.cluster.local.", miekg.TypeA, nx, nil, nil},
		{"dns-version.cluster.local.", miekg.TypeTXT, ok, []string{`dns-version.cluster.local. TXT "1.1.0"`}, nil},
		{"1-2-3-4.default.pod.cluster.local.", miekg.TypeA, nx, nil, nil},
		{"a.b.c.d.e.f.svc.cluster.local.", miekg.TypeA, nx, nil, nil},
		// PTR: a service's cluster IP, a headless endpoint's address.
		{"10.0.96.10.in-addr.arpa.", miekg.TypePTR, ok, []string{"10.0.96.10.in-addr.arpa. PTR web.default.svc.cluster.local."}, nil},
		{"9.2.244.10.in-addr.arpa.", miekg.TypePTR, ok, []string{"9.2.244.10.in-addr.arpa. PTR db-1.db.default.svc.cluster.local."}, nil},
		{"0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.0.d.f.ip6.arpa.", miekg.TypePTR, ok,
			[]string{"0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.0.d.f.ip6.arpa. PTR dual.default.svc.cluster.local."}, nil},
		{"99.0.96.10.in-addr.arpa.", miekg.TypePTR, nx, nil, nil}, // in the service range, no service
		{"5.1.244.10.in-addr.arpa.", miekg.TypePTR, nx, nil, nil}, // an endpoint of a ClusterIP service
		{"96.10.in-addr.arpa.", miekg.TypePTR, nx, nil, nil},      // not an address
		{"10.0.96.10.in-addr.arpa.", miekg.TypeA, ok, nil, nil},   // NODATA
	}
	for _, tc := range tests {
		t.Run(tc.name+"/"+miekg.TypeToString[tc.qtype], func(t *testing.T) {
			a, found := r.Lookup(tc.name, tc.qtype)
			if !found {
				t.Fatalf("not found, want an answer")
			}
			if got := miekg.RcodeToString[a.Rcode]; got != tc.rcode {
				t.Errorf("rcode %s, want %s", got, tc.rcode)
			}
			if got := show(a.Records); !slices.Equal(got, tc.want) {
				t.Errorf("answer:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if got := show(a.Extra); !slices.Equal(got, tc.extra) {
				t.Errorf("extra:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.extra, "\n"))
			}
		})
	}

	// Names Records has nothing to say about go upstream.
	for _, name := range []string{"www.example.org.", "4.3.2.1.in-addr.arpa.", "local."} {
		if _, found := r.Lookup(name, miekg.TypeA); found {
			t.Errorf("Lookup(%s) found an answer, want none (forwarded)", name)
		}
	}
}

// A pod turning unready leaves the headless service's answer; publishing
// not-ready addresses keeps it.
func TestLookupFollowsCaches(t *testing.T) {
	r := testRecords(t)
	get := func() []string {
		a, _ := r.Lookup("db.default.svc.cluster.local.", miekg.TypeA)
		return show(a.Records)
	}
	if got := len(get()); got != 2 {
		t.Fatalf("%d addresses, want 2", got)
	}
	svc, _, _ := r.Services.GetByKey("default/db")
	published := svc.(*corev1.Service).DeepCopy()
	published.Spec.PublishNotReadyAddresses = true
	if err := r.Services.Update(published); err != nil {
		t.Fatal(err)
	}
	if got := len(get()); got != 3 {
		t.Errorf("with publishNotReadyAddresses: %d addresses, want 3", got)
	}
	if err := r.Slices.Delete(slice("default", "db", "db-1", "pg", 5432)); err != nil {
		t.Fatal(err)
	}
	if got := get(); len(got) != 0 {
		t.Errorf("without endpoints: %v, want none", got)
	}
}

// serveTest serves h on 127.0.0.1 (UDP and TCP) until the test ends.
func serveTest(t testing.TB, h miekg.Handler) *Server {
	t.Helper()
	s, err := Listen("127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// upstream is a test resolver: it answers A questions for names in
// answers, NXDOMAIN with an SOA otherwise, and counts the questions.
type upstream struct {
	answers map[string]string // name → address
	big     atomic.Bool       // answer every A question with 60 addresses
	asked   chan string
}

func (u *upstream) ServeDNS(w miekg.ResponseWriter, req *miekg.Msg) {
	q := req.Question[0]
	select {
	case u.asked <- q.Name:
	default:
	}
	m := new(miekg.Msg).SetReply(req)
	if ip, ok := u.answers[q.Name]; ok && q.Qtype == miekg.TypeA {
		n := 1
		if u.big.Load() {
			n = 60
		}
		for i := range n {
			a := netip.MustParseAddr(ip)
			for range i {
				a = a.Next()
			}
			m.Answer = append(m.Answer, &miekg.A{Hdr: miekg.RR_Header{Name: q.Name, Rrtype: miekg.TypeA, Class: miekg.ClassINET, Ttl: 300}, A: a.AsSlice()})
		}
	} else if !ok {
		m.Rcode = miekg.RcodeNameError
		m.Ns = []miekg.RR{&miekg.SOA{Hdr: miekg.RR_Header{Name: "org.", Rrtype: miekg.TypeSOA, Class: miekg.ClassINET, Ttl: 600}, Ns: "a.org.", Mbox: "b.org.", Minttl: 60}}
	}
	if _, tcp := w.RemoteAddr().(*net.TCPAddr); !tcp {
		m.Truncate(miekg.MinMsgSize)
		if opt := req.IsEdns0(); opt != nil {
			m.Truncate(int(opt.UDPSize()))
		}
	}
	_ = w.WriteMsg(m)
}

// testServer serves the record test cluster on loopback, forwarding to
// the upstream u, which is served on loopback too.
func testServer(t testing.TB, u *upstream) (*Server, *Handler) {
	t.Helper()
	up := serveTest(t, u)
	// resolv.conf has no port: the test upstream's is set below.
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	host, portStr, _ := net.SplitHostPort(up.UDPAddr.String())
	if err := os.WriteFile(conf, []byte("nameserver "+host+"\nsearch example.org\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Address, cfg.Port, cfg.ResolvConf = "127.0.0.1", 0, conf
	services, slices := testCaches(t, testObjects()...)
	h, err := NewHandler(cfg, services, slices)
	if err != nil {
		t.Fatal(err)
	}
	h.Forwarder.port = portStr
	h.Forwarder.reload(true)
	return serveTest(t, h), h
}

func exchange(t testing.TB, s *Server, network, name string, qtype uint16, edns uint16) *miekg.Msg {
	t.Helper()
	m := new(miekg.Msg).SetQuestion(name, qtype)
	if edns != 0 {
		m.SetEdns0(edns, false)
	}
	c := &miekg.Client{Net: network, Timeout: 5 * time.Second}
	addr := s.UDPAddr.String()
	if network == "tcp" {
		addr = s.TCPAddr.String()
	}
	resp, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", name, miekg.TypeToString[qtype], network, err)
	}
	return resp
}

// Over the wire: authority, SOA in negative answers, forwarding with its
// cache, CNAME chasing, truncation.
func TestServer(t *testing.T) {
	u := &upstream{answers: map[string]string{"www.example.org.": "192.0.2.1", "many.example.org.": "192.0.2.10"}, asked: make(chan string, 100)}
	s, _ := testServer(t, u)

	// A cluster name: authoritative, from the caches.
	resp := exchange(t, s, "udp", "Web.Default.svc.cluster.local.", miekg.TypeA, 0)
	if !resp.Authoritative || resp.Rcode != miekg.RcodeSuccess || len(resp.Answer) != 1 || resp.Answer[0].Header().Name != "Web.Default.svc.cluster.local." {
		t.Errorf("web: got %v", resp)
	}
	// NXDOMAIN and NODATA both carry the zone's SOA, with the TTL as its
	// minimum; neither asks upstream.
	for _, tc := range []struct {
		name  string
		qtype uint16
		rcode int
	}{
		{"nothing.default.svc.cluster.local.", miekg.TypeA, miekg.RcodeNameError},
		{"web.default.svc.cluster.local.", miekg.TypeAAAA, miekg.RcodeSuccess},
	} {
		resp := exchange(t, s, "udp", tc.name, tc.qtype, 0)
		if resp.Rcode != tc.rcode || len(resp.Answer) != 0 || len(resp.Ns) != 1 {
			t.Fatalf("%s: got %v, want %s with an SOA", tc.name, resp, miekg.RcodeToString[tc.rcode])
		}
		if soa, ok := resp.Ns[0].(*miekg.SOA); !ok || soa.Hdr.Name != "cluster.local." || soa.Minttl != 5 {
			t.Errorf("%s: authority %v, want the SOA of cluster.local. with minimum 5", tc.name, resp.Ns[0])
		}
	}
	select {
	case q := <-u.asked:
		t.Fatalf("the upstream was asked %s, a cluster name", q)
	default:
	}

	// An outside name goes upstream once; the second answer comes from the
	// cache, its TTL not above the upstream's.
	for i := range 2 {
		resp := exchange(t, s, "udp", "www.example.org.", miekg.TypeA, 0)
		if resp.Rcode != miekg.RcodeSuccess || len(resp.Answer) != 1 || resp.Answer[0].(*miekg.A).A.String() != "192.0.2.1" || resp.Answer[0].Header().Ttl > 300 {
			t.Fatalf("www.example.org (try %d): got %v", i, resp)
		}
		if resp.Authoritative {
			t.Errorf("a forwarded answer is authoritative")
		}
	}
	if n := len(u.asked); n != 1 {
		t.Errorf("the upstream was asked %d times, want 1 (then the cache)", n)
	}
	<-u.asked
	// Negative answers are cached too.
	for range 2 {
		if resp := exchange(t, s, "udp", "nope.example.org.", miekg.TypeA, 0); resp.Rcode != miekg.RcodeNameError {
			t.Fatalf("nope.example.org: got %v, want NXDOMAIN", resp)
		}
	}
	if n := len(u.asked); n != 1 {
		t.Errorf("the upstream was asked %d times for a name that does not exist, want 1", n)
	}
	<-u.asked

	// An ExternalName's CNAME is followed upstream.
	resp = exchange(t, s, "udp", "search.default.svc.cluster.local.", miekg.TypeA, 0)
	if got := show(resp.Answer); !slices.Equal(got, []string{"search.default.svc.cluster.local. CNAME www.example.org.", "www.example.org. A 192.0.2.1"}) {
		t.Errorf("ExternalName: got %v", got)
	}
	// ...and inside the cluster domain.
	resp = exchange(t, s, "udp", "alias.default.svc.cluster.local.", miekg.TypeA, 0)
	if got := show(resp.Answer); !slices.Equal(got, []string{"alias.default.svc.cluster.local. CNAME web.default.svc.cluster.local.", "web.default.svc.cluster.local. A 10.96.0.10"}) {
		t.Errorf("ExternalName to a cluster name: got %v", got)
	}

	// A large answer: truncated over plain UDP, whole with EDNS0 room and
	// over TCP (the forwarder itself retried over TCP).
	u.big.Store(true)
	resp = exchange(t, s, "udp", "many.example.org.", miekg.TypeA, 0)
	resp.Compress = true // as it was sent
	if !resp.Truncated || resp.Len() > miekg.MinMsgSize {
		t.Errorf("60 addresses over UDP without EDNS0: truncated %v, %d bytes; want TC within 512 bytes", resp.Truncated, resp.Len())
	}
	resp = exchange(t, s, "udp", "many.example.org.", miekg.TypeA, 4096)
	if resp.Truncated || len(resp.Answer) != 60 || resp.IsEdns0() == nil {
		t.Errorf("with a 4096-byte EDNS0 buffer: truncated %v, %d answers, OPT %v; want all 60 and an OPT", resp.Truncated, len(resp.Answer), resp.IsEdns0())
	}
	resp = exchange(t, s, "tcp", "many.example.org.", miekg.TypeA, 0)
	if resp.Truncated || len(resp.Answer) != 60 {
		t.Errorf("over TCP: truncated %v, %d answers; want all 60", resp.Truncated, len(resp.Answer))
	}
}

// With no upstream answering, an outside name gets SERVFAIL, and the
// server itself is never its own upstream.
func TestForwarderFailures(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(conf, []byte("nameserver 127.0.0.1\nnameserver 169.254.20.10\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := NewForwarder(conf, []netip.AddrPort{netip.MustParseAddrPort("169.254.20.10:53")}, time.Second, 10)
	if got := f.Upstreams(); !slices.Equal(got, []string{"127.0.0.1:53"}) {
		t.Errorf("upstreams %v, want [127.0.0.1:53] (not the server's own address)", got)
	}
	// The failures below: with loopback upstreams only (on the test's
	// port, 169.254.20.10 would be an upstream, off loopback).
	conf = filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(conf, []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f = NewForwarder(conf, nil, time.Second, 10)
	req := new(miekg.Msg).SetQuestion("www.example.org.", miekg.TypeA)
	// An upstream that refuses or fails: the question fails, saying so.
	for _, rcode := range []int{miekg.RcodeRefused, miekg.RcodeServerFailure} {
		up := serveTest(t, miekg.HandlerFunc(func(w miekg.ResponseWriter, r *miekg.Msg) {
			_ = w.WriteMsg(new(miekg.Msg).SetRcode(r, rcode))
		}))
		_, f.port, _ = net.SplitHostPort(up.UDPAddr.String())
		f.reload(true)
		if _, err := f.Forward(context.Background(), req, false); err == nil || !strings.Contains(err.Error(), miekg.RcodeToString[rcode]) {
			t.Errorf("Forward to an upstream answering %s: %v, want an error saying so", miekg.RcodeToString[rcode], err)
		}
	}
	// An upstream that never answers (a socket kept bound, never read,
	// so no other test can take its port): the question fails once the
	// timeout passes.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	silent := NewForwarder(conf, nil, 100*time.Millisecond, 10)
	_, silent.port, _ = net.SplitHostPort(pc.LocalAddr().String())
	silent.reload(true)
	if _, err := silent.Forward(context.Background(), req, false); err == nil {
		t.Errorf("Forward to an upstream that never answers: no error")
	}
	// A missing resolv.conf: no upstreams, and the error says why.
	g := NewForwarder(filepath.Join(t.TempDir(), "missing"), nil, time.Second, 10)
	if _, err := g.Forward(context.Background(), req, false); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("Forward without a resolv.conf: %v, want the reason", err)
	}
}

func TestCache(t *testing.T) {
	c := NewCache(2)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	q := func(name string) *miekg.Msg { return new(miekg.Msg).SetQuestion(name, miekg.TypeA) }
	answer := func(name string, ttl uint32) *miekg.Msg {
		m := new(miekg.Msg).SetReply(q(name))
		m.Answer = []miekg.RR{&miekg.A{Hdr: miekg.RR_Header{Name: name, Rrtype: miekg.TypeA, Class: miekg.ClassINET, Ttl: ttl}, A: net.IPv4(192, 0, 2, 1)}}
		return m
	}
	c.Put(q("a."), answer("a.", 30))
	now = now.Add(10 * time.Second)
	if m := c.Get(q("A.")); m == nil || m.Answer[0].Header().Ttl != 20 {
		t.Fatalf("after 10 s of 30: %v, want TTL 20", m)
	}
	now = now.Add(20 * time.Second)
	if m := c.Get(q("a.")); m != nil {
		t.Errorf("after the TTL: %v, want nothing", m)
	}
	// The least recently used goes first.
	c.Put(q("a."), answer("a.", 30))
	c.Put(q("b."), answer("b.", 30))
	c.Get(q("a."))
	c.Put(q("c."), answer("c.", 30))
	if c.Len() != 2 || c.Get(q("b.")) != nil || c.Get(q("a.")) == nil {
		t.Errorf("after a third answer in a cache of 2: b should be gone, a kept")
	}
	// Not cached: SERVFAIL, a truncated answer, NXDOMAIN without an SOA,
	// TTL 0.
	fail := new(miekg.Msg).SetRcode(q("f."), miekg.RcodeServerFailure)
	trunc := answer("t.", 30)
	trunc.Truncated = true
	nx := new(miekg.Msg).SetRcode(q("n."), miekg.RcodeNameError)
	for _, m := range []*miekg.Msg{fail, trunc, nx, answer("z.", 0)} {
		c2 := NewCache(10)
		c2.Put(q(m.Question[0].Name), m)
		if c2.Len() != 0 {
			t.Errorf("cached %v", m)
		}
	}
}

func TestReverseZoneName(t *testing.T) {
	for cidr, want := range map[string]string{
		"10.96.0.0/16":  "96.10.in-addr.arpa.",
		"10.96.0.0/12":  "10.in-addr.arpa.",
		"10.244.0.0/16": "244.10.in-addr.arpa.",
		"fd00:96::/64":  "0.0.0.0.0.0.0.0.6.9.0.0.0.0.d.f.ip6.arpa.",
	} {
		if got := reverseZoneName(netip.MustParsePrefix(cidr)); got != want {
			t.Errorf("reverseZoneName(%s) = %s, want %s", cidr, got, want)
		}
	}
}

// Messages that are not one plain question, and cluster names before the
// caches are filled.
func TestAnswerEdges(t *testing.T) {
	u := &upstream{answers: map[string]string{}, asked: make(chan string, 10)}
	_, h := testServer(t, u)
	notify := new(miekg.Msg).SetNotify("cluster.local.")
	if r := h.Answer(context.Background(), notify, false); r.Rcode != miekg.RcodeNotImplemented {
		t.Errorf("NOTIFY: %s, want NOTIMP", miekg.RcodeToString[r.Rcode])
	}
	two := new(miekg.Msg).SetQuestion("a.", miekg.TypeA)
	two.Question = append(two.Question, two.Question[0])
	if r := h.Answer(context.Background(), two, false); r.Rcode != miekg.RcodeFormatError {
		t.Errorf("two questions: %s, want FORMERR", miekg.RcodeToString[r.Rcode])
	}
	h.Ready = func() bool { return false }
	q := new(miekg.Msg).SetQuestion("web.default.svc.cluster.local.", miekg.TypeA)
	if r := h.Answer(context.Background(), q, false); r.Rcode != miekg.RcodeServerFailure {
		t.Errorf("before the caches are filled: %s, want SERVFAIL", miekg.RcodeToString[r.Rcode])
	}
	h.Ready = func() bool { return true }
	if r := h.Answer(context.Background(), q, false); r.Rcode != miekg.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("once filled: %v", r)
	}
}

// Authority over reverse names follows the prefixes themselves, not the
// whole labels around them: with the service range 10.96.0.0/12, a PTR
// question for a LAN host in 10/8 goes upstream; one in the range is
// answered, NXDOMAIN with the SOA of the address's /16 when nothing has
// it.
func TestLookupReverseAuthority(t *testing.T) {
	services, sliceCache := testCaches(t, testObjects()...)
	r := &Records{
		Domain:       "cluster.local.",
		TTL:          5,
		ReverseZones: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12"), netip.MustParsePrefix("10.244.0.0/22"), netip.MustParsePrefix("fd00:96::/62")},
		Services:     services,
		Slices:       sliceCache,
	}
	const fwd = "forwarded"
	for _, tc := range []struct {
		name  string
		rcode string // or fwd
		zone  string // the SOA owner of an authoritative answer
		want  []string
	}{
		{"3.2.1.10.in-addr.arpa.", fwd, "", nil},   // 10.1.2.3, a LAN host
		{"1.0.95.10.in-addr.arpa.", fwd, "", nil},  // just below the range
		{"1.0.112.10.in-addr.arpa.", fwd, "", nil}, // just above
		{"1.0.0.11.in-addr.arpa.", fwd, "", nil},
		{"10.in-addr.arpa.", fwd, "", nil}, // more than the range
		{"1.10.in-addr.arpa.", fwd, "", nil},
		{"10.0.96.10.in-addr.arpa.", "NOERROR", "96.10.in-addr.arpa.", []string{"10.0.96.10.in-addr.arpa. PTR web.default.svc.cluster.local."}},
		{"1.2.100.10.in-addr.arpa.", "NXDOMAIN", "100.10.in-addr.arpa.", nil}, // in the range, nothing has it
		{"1.2.111.10.in-addr.arpa.", "NXDOMAIN", "111.10.in-addr.arpa.", nil},
		{"100.10.in-addr.arpa.", "NXDOMAIN", "100.10.in-addr.arpa.", nil},
		{"x.2.100.10.in-addr.arpa.", "NXDOMAIN", "100.10.in-addr.arpa.", nil}, // not an address, inside the range
		// A /22: its four /24s are the server's, the /16 is not.
		{"9.2.244.10.in-addr.arpa.", "NOERROR", "2.244.10.in-addr.arpa.", []string{"9.2.244.10.in-addr.arpa. PTR db-1.db.default.svc.cluster.local."}},
		{"9.3.244.10.in-addr.arpa.", "NXDOMAIN", "3.244.10.in-addr.arpa.", nil},
		{"9.4.244.10.in-addr.arpa.", fwd, "", nil},
		{"244.10.in-addr.arpa.", fwd, "", nil},
		// IPv6: nibbles.
		{"0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.0.d.f.ip6.arpa.", "NOERROR", "0.0.0.0.0.0.0.0.6.9.0.0.0.0.d.f.ip6.arpa.",
			[]string{"0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.0.d.f.ip6.arpa. PTR dual.default.svc.cluster.local."}},
		{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.4.0.0.0.0.0.0.0.6.9.0.0.0.0.d.f.ip6.arpa.", fwd, "", nil}, // fd00:96:0:4::1
	} {
		a, found := r.Lookup(tc.name, miekg.TypePTR)
		switch {
		case tc.rcode == fwd && found:
			t.Errorf("%s: %s (SOA %s), want it forwarded", tc.name, miekg.RcodeToString[a.Rcode], a.Zone)
		case tc.rcode == fwd:
		case !found:
			t.Errorf("%s: forwarded, want %s", tc.name, tc.rcode)
		case miekg.RcodeToString[a.Rcode] != tc.rcode || a.Zone != tc.zone || !slices.Equal(show(a.Records), tc.want):
			t.Errorf("%s: %s, zone %s, %v; want %s, zone %s, %v", tc.name, miekg.RcodeToString[a.Rcode], a.Zone, show(a.Records), tc.rcode, tc.zone, tc.want)
		}
		if got := r.InZone(tc.name); got != (tc.rcode != fwd) {
			t.Errorf("InZone(%s) = %v", tc.name, got)
		}
	}
}
