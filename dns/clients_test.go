package dns

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	miekg "github.com/miekg/dns"
)

// recorder is a ResponseWriter that keeps what is written, for a
// question from any address without sending a packet.
type recorder struct {
	remote net.Addr
	msg    *miekg.Msg
}

func (r *recorder) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(169, 254, 20, 10), Port: 53}
}
func (r *recorder) RemoteAddr() net.Addr        { return r.remote }
func (r *recorder) WriteMsg(m *miekg.Msg) error { r.msg = m; return nil }
func (r *recorder) Write([]byte) (int, error)   { return 0, errors.New("not supported") }
func (r *recorder) Close() error                { return nil }
func (r *recorder) TsigStatus() error           { return nil }
func (r *recorder) TsigTimersOnly(bool)         {}
func (r *recorder) Hijack()                     {}

// Only the node itself and the pods of the cluster CIDR are answered: a
// LAN neighbour that routes the server's address through the node gets
// REFUSED, for cluster names and outside names alike, and nothing is
// forwarded for it.
func TestClients(t *testing.T) {
	u := &upstream{answers: map[string]string{"www.example.org.": "192.0.2.1"}, asked: make(chan string, 10)}
	_, h := testServer(t, u)
	h.Clients.local = func() ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("198.51.100.4"), netip.MustParseAddr("169.254.20.10")}, nil
	}
	ask := func(from net.Addr, name string) *miekg.Msg {
		t.Helper()
		w := &recorder{remote: from}
		h.ServeDNS(w, new(miekg.Msg).SetQuestion(name, miekg.TypeA))
		if w.msg == nil {
			t.Fatalf("%s from %s: no answer", name, from)
		}
		return w.msg
	}
	for _, from := range []net.Addr{
		&net.UDPAddr{IP: net.ParseIP("198.51.100.9"), Port: 4000}, // a LAN neighbour
		&net.TCPAddr{IP: net.ParseIP("198.51.100.9"), Port: 4000},
		&net.UDPAddr{IP: net.ParseIP("10.96.0.10"), Port: 4000},     // the service range is no pod's
		&net.UDPAddr{IP: net.ParseIP("::ffff:192.0.2.1"), Port: 53}, // mapped, still outside
		&net.UDPAddr{IP: net.ParseIP("2001:db8::1"), Port: 4000},
	} {
		for _, name := range []string{"web.default.svc.cluster.local.", "www.example.org."} {
			if resp := ask(from, name); resp.Rcode != miekg.RcodeRefused || len(resp.Answer) != 0 || resp.RecursionAvailable {
				t.Errorf("%s from %s: %s with %d answers, want REFUSED", name, from, miekg.RcodeToString[resp.Rcode], len(resp.Answer))
			}
		}
	}
	select {
	case q := <-u.asked:
		t.Fatalf("the upstream was asked %s for a client outside", q)
	default:
	}
	for _, from := range []net.Addr{
		&net.UDPAddr{IP: net.ParseIP("10.244.1.5"), Port: 4000}, // a pod
		&net.TCPAddr{IP: net.ParseIP("10.244.200.3"), Port: 4000},
		&net.UDPAddr{IP: net.ParseIP("::ffff:10.244.1.5"), Port: 4000},
		&net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: 4000},    // the node itself
		&net.UDPAddr{IP: net.ParseIP("::1"), Port: 4000},          // ″
		&net.UDPAddr{IP: net.ParseIP("198.51.100.4"), Port: 4000}, // the node's LAN address
		&net.UDPAddr{IP: net.ParseIP("169.254.20.10"), Port: 4000},
	} {
		if resp := ask(from, "web.default.svc.cluster.local."); resp.Rcode != miekg.RcodeSuccess || len(resp.Answer) != 1 {
			t.Errorf("web from %s: %v, want its address", from, resp)
		}
		if resp := ask(from, "www.example.org."); resp.Rcode != miekg.RcodeSuccess || len(resp.Answer) != 1 {
			t.Errorf("www.example.org from %s: %v, want the upstream's answer", from, resp)
		}
	}
}
