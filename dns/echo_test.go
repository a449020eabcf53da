package dns

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	miekg "github.com/miekg/dns"
)

// lowerUpstream answers every A question with 192.0.2.1 for the name in
// lower case, question and owner alike, as some resolvers do.
type lowerUpstream struct{ asked chan string }

func (u lowerUpstream) ServeDNS(w miekg.ResponseWriter, req *miekg.Msg) {
	u.asked <- req.Question[0].Name
	m := new(miekg.Msg).SetReply(req)
	m.Question[0].Name = strings.ToLower(m.Question[0].Name)
	m.Answer = []miekg.RR{&miekg.A{Hdr: miekg.RR_Header{Name: m.Question[0].Name, Rrtype: miekg.TypeA, Class: miekg.ClassINET, Ttl: 300}, A: net.IPv4(192, 0, 2, 1)}}
	_ = w.WriteMsg(m)
}

// A forwarded answer repeats the question as its asker spelled it, from
// the upstream and from the cache, so that clients that randomize the
// case of their questions (DNS 0x20) accept it.
func TestForwardEchoesQuestion(t *testing.T) {
	u := lowerUpstream{asked: make(chan string, 10)}
	up := serveTest(t, u)
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	host, portStr, _ := net.SplitHostPort(up.UDPAddr.String())
	if err := os.WriteFile(conf, []byte("nameserver "+host+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := NewForwarder(conf, nil, 5*time.Second, 10)
	f.port = portStr
	f.reload(true)
	for i, name := range []string{"wWw.ExAmple.oRG.", "WWW.eXAMPLE.Org.", "www.example.org."} {
		req := new(miekg.Msg).SetQuestion(name, miekg.TypeA)
		resp, err := f.Forward(context.Background(), req, false)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(resp.Question) != 1 || resp.Question[0] != req.Question[0] {
			t.Errorf("ask %d, %s: question %v, want the asker's %v", i, name, resp.Question, req.Question)
		}
		if len(resp.Answer) != 1 || resp.Answer[0].Header().Name != name || resp.Id != req.Id {
			t.Errorf("ask %d, %s: answer %v, id %d; want one record owned by %s, id %d", i, name, resp.Answer, resp.Id, name, req.Id)
		}
	}
	if n := len(u.asked); n != 1 {
		t.Errorf("the upstream was asked %d times, want 1 (then the cache)", n)
	}
}
