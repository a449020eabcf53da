package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	miekg "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/skiffdev/skiff/dns"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/nodetest"
	"github.com/skiffdev/skiff/internal/nsutil"
)

// lanResolver is the test's own resolver for names outside the cluster,
// served on nodetest.LANResolver inside the LAN namespace, which every
// node's resolv.conf names. It knows one name and says NXDOMAIN to the
// rest; it records what it was asked.
type lanResolver struct {
	mu    sync.Mutex
	asked []string
}

// outsideName and outsideAddr are the one name the LAN resolver knows.
const (
	outsideName = "outside.example."
	outsideAddr = "192.0.2.77"
)

func (r *lanResolver) ServeDNS(w miekg.ResponseWriter, req *miekg.Msg) {
	q := req.Question[0]
	r.mu.Lock()
	r.asked = append(r.asked, q.Name)
	r.mu.Unlock()
	m := new(miekg.Msg).SetReply(req)
	switch {
	case strings.EqualFold(q.Name, outsideName) && q.Qtype == miekg.TypeA:
		m.Answer = []miekg.RR{&miekg.A{Hdr: miekg.RR_Header{Name: q.Name, Rrtype: miekg.TypeA, Class: miekg.ClassINET, Ttl: 60}, A: net.ParseIP(outsideAddr)}}
	case strings.EqualFold(q.Name, outsideName):
	default:
		m.Rcode = miekg.RcodeNameError
		m.Ns = []miekg.RR{&miekg.SOA{Hdr: miekg.RR_Header{Name: "example.", Rrtype: miekg.TypeSOA, Class: miekg.ClassINET, Ttl: 60}, Ns: "ns.example.", Mbox: "h.example.", Minttl: 60}}
	}
	_ = w.WriteMsg(m)
}

func (r *lanResolver) wasAsked(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.asked {
		if strings.EqualFold(a, name) {
			return true
		}
	}
	return false
}

// serveLANResolver serves r on nodetest.LANResolver:53 in the LAN
// namespace until the test ends.
func serveLANResolver(t *testing.T, lan *nodetest.Cluster, r miekg.Handler) {
	t.Helper()
	var srv *dns.Server
	err := nsutil.Do(lan.LAN, func() error {
		var err error
		srv, err = dns.Listen(net.JoinHostPort(nodetest.LANResolver.String(), "53"), r)
		return err
	})
	if err != nil {
		t.Fatalf("serving the LAN's resolver: %v", err)
	}
	t.Cleanup(srv.Shutdown)
}

// podNetNS is the network namespace of a running pod on node n.
func podNetNS(n *nodetest.Node, p *corev1.Pod) string {
	return n.Config.StateDir + "/runtime/sandboxes/" + string(p.UID) + "/net"
}

// askFromPod sends one DNS question from inside a pod's network
// namespace to the node-local server, as the pod's resolver would.
func askFromPod(ctx context.Context, netns, name string, qtype uint16) (*miekg.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := nsutil.Dial(ctx, netns, "udp", net.JoinHostPort(dns.DefaultAddress, "53"))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	c := &miekg.Client{Timeout: 3 * time.Second}
	m := new(miekg.Msg).SetQuestion(name, qtype)
	m.SetEdns0(1232, false)
	resp, _, err := c.ExchangeWithConnContext(ctx, m, &miekg.Conn{Conn: conn})
	return resp, err
}

// Cluster DNS on two real nodes: a pod on node 1 finds a Service whose
// pod runs on node 0 by its short name (through the search path of the
// resolv.conf the kubelet wrote) and by its FQDN; SRV records; a headless
// Service's pod addresses and a pod's hostname.subdomain; NXDOMAIN for a
// name that does not exist; and a name outside the cluster answered by
// the node's own resolver (the test's, on the LAN).
func TestDNSAcrossNodes(t *testing.T) {
	cl, lan := startRealNodes(t, 2)
	c, ctx := cl.Client, cl.Ctx
	upstream := &lanResolver{}
	serveLANResolver(t, lan, upstream)

	pod := func(p *corev1.Pod, node int, cmd ...string) {
		t.Helper()
		p.Namespace = ns
		p.Spec.NodeName = lan.Nodes[node].Name
		p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](0)
		p.Spec.Containers = []corev1.Container{{Name: "c", Image: lan.Image, ImagePullPolicy: corev1.PullIfNotPresent, Command: cmd,
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}
		if _, err := c.Pods(ns).Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	serve := []string{"sh", "-c", "hostname > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"}
	pod(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}}}, 0, serve...)
	pod(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "db-0", Labels: map[string]string{"app": "db"}},
		Spec: corev1.PodSpec{Hostname: "db-0", Subdomain: "db"}}, 0, serve...)
	pod(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "client"}}, 1, "sleep", "3600")
	for _, s := range []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}},
		}},
		{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns}, Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			Selector:  map[string]string{"app": "db"},
			Ports:     []corev1.ServicePort{{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}},
		}},
	} {
		if _, err := c.Services(ns).Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	running := map[string]*corev1.Pod{}
	for _, name := range []string{"web", "db-0", "client"} {
		cl.Await(90*time.Second, name+" to run", func() (bool, error) {
			p, err := c.Pods(ns).Get(ctx, name)
			if err != nil {
				return false, err
			}
			running[name] = p
			return p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "", nil
		})
	}
	web, err := c.Services(ns).Get(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	clientNS := podNetNS(lan.Nodes[1], running["client"])
	sh := func(cmd string) (string, int) {
		var out bytes.Buffer
		try, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		code, err := c.PodExec(try, ns, "client", client.ExecOptions{Command: []string{"sh", "-c", cmd + " 2>&1"}, Stdout: &out})
		if err != nil {
			return err.Error(), -1
		}
		return strings.TrimSpace(out.String()), code
	}

	// The pod's resolv.conf is the ClusterFirst one.
	conf, _ := sh("cat /etc/resolv.conf")
	for _, want := range []string{"nameserver " + dns.DefaultAddress, "search default.svc.cluster.local svc.cluster.local cluster.local lan.test", "options ndots:5"} {
		if !strings.Contains(conf, want) {
			t.Errorf("the client's resolv.conf:\n%s\nwant a line %q", conf, want)
		}
	}

	// The short name, through the search path: wget reaches the pod on
	// the other node.
	cl.Await(60*time.Second, "the client to fetch http://web/ by name", func() (bool, error) {
		body, code := sh("wget -q -O - http://web/index.html")
		return code == 0 && body == "web", fmt.Errorf("%q (exit %d)", body, code)
	})
	// The FQDN, with nslookup.
	out, code := sh("busybox nslookup web.default.svc.cluster.local")
	if code != 0 || !strings.Contains(out, web.Spec.ClusterIP) {
		t.Errorf("nslookup of the FQDN: %q (exit %d), want %s", out, code, web.Spec.ClusterIP)
	}

	// SRV of the named port.
	resp, err := askFromPod(ctx, clientNS, "_http._tcp.web.default.svc.cluster.local.", miekg.TypeSRV)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Answer) != 1 || resp.Answer[0].(*miekg.SRV).Port != 80 || resp.Answer[0].(*miekg.SRV).Target != "web.default.svc.cluster.local." {
		t.Errorf("SRV of web's http port: %v", resp)
	}

	// The headless Service: its pod's address, by the service name and
	// by the pod's hostname.subdomain; its SRV names the pod.
	dbIP := running["db-0"].Status.PodIP
	cl.Await(30*time.Second, "db to resolve to its pod", func() (bool, error) {
		resp, err := askFromPod(ctx, clientNS, "db.default.svc.cluster.local.", miekg.TypeA)
		if err != nil {
			return false, err
		}
		return len(resp.Answer) == 1 && resp.Answer[0].(*miekg.A).A.String() == dbIP, fmt.Errorf("%v", resp.Answer)
	})
	out, code = sh("busybox nslookup db-0.db.default.svc.cluster.local")
	if code != 0 || !strings.Contains(out, dbIP) {
		t.Errorf("nslookup of hostname.subdomain: %q (exit %d), want %s", out, code, dbIP)
	}
	cl.Await(30*time.Second, "db-0.db to fetch by name", func() (bool, error) {
		body, code := sh("wget -q -O - http://db-0.db:8080/index.html")
		return code == 0 && body == "db-0", fmt.Errorf("%q (exit %d)", body, code)
	})
	resp, err = askFromPod(ctx, clientNS, "_http._tcp.db.default.svc.cluster.local.", miekg.TypeSRV)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Answer) != 1 || resp.Answer[0].(*miekg.SRV).Target != "db-0.db.default.svc.cluster.local." || len(resp.Extra) < 1 {
		t.Errorf("SRV of the headless service: %v", resp)
	}
	// PTR of the ClusterIP.
	rev, _ := miekg.ReverseAddr(web.Spec.ClusterIP)
	resp, err = askFromPod(ctx, clientNS, rev, miekg.TypePTR)
	if err != nil || len(resp.Answer) != 1 || resp.Answer[0].(*miekg.PTR).Ptr != "web.default.svc.cluster.local." {
		t.Errorf("PTR of web's ClusterIP: %v, %v", resp, err)
	}

	// A name that does not exist: NXDOMAIN from the node, never asked
	// upstream.
	resp, err = askFromPod(ctx, clientNS, "nothing.default.svc.cluster.local.", miekg.TypeA)
	if err != nil || resp.Rcode != miekg.RcodeNameError || !resp.Authoritative {
		t.Errorf("a missing service: %v, %v; want an authoritative NXDOMAIN", resp, err)
	}
	out, code = sh("busybox nslookup nothing.default.svc.cluster.local")
	if code == 0 || !strings.Contains(out, "NXDOMAIN") {
		t.Errorf("nslookup of a missing name: %q (exit %d), want NXDOMAIN", out, code)
	}

	// A name outside the cluster: forwarded to the node's resolver.
	out, code = sh("busybox nslookup " + strings.TrimSuffix(outsideName, "."))
	if code != 0 || !strings.Contains(out, outsideAddr) {
		t.Errorf("nslookup of an outside name: %q (exit %d), want %s", out, code, outsideAddr)
	}
	if !upstream.wasAsked(outsideName) {
		t.Errorf("the LAN resolver was not asked for %s", outsideName)
	}
	if upstream.wasAsked("nothing.default.svc.cluster.local.") {
		t.Errorf("the LAN resolver was asked for a cluster name")
	}
}
