package dns_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	miekg "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/dns"
	"github.com/skiffdev/skiff/internal/testenv"
)

// Run against a real API server, as a node's identity: a Service created
// after the start resolves once the informer sees it, a deleted one stops
// resolving, and names keep resolving from the caches while the API
// server is gone.
func TestRun(t *testing.T) {
	cl := testenv.NewCluster(t)
	c := cl.ClientAs("system:node:n1", "system:nodes")
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(conf, nil, 0o644); err != nil { // no upstreams: nothing leaves loopback
		t.Fatal(err)
	}
	cfg := dns.DefaultConfig()
	cfg.NodeName, cfg.Address, cfg.Port, cfg.ResolvConf = "n1", "127.0.0.1", 0, conf
	addrs := make(chan net.Addr, 1)
	cfg.Listening = func(udp, _ net.Addr) { addrs <- udp }
	cl.Start("dns", func(ctx context.Context) error { return dns.Run(ctx, c, cfg) })
	addr := (<-addrs).String()

	ask := func(name string) (*miekg.Msg, error) {
		m := new(miekg.Msg).SetQuestion(name, miekg.TypeA)
		resp, _, err := (&miekg.Client{Timeout: 2 * time.Second}).Exchange(m, addr)
		return resp, err
	}
	resolves := func(name, ip string) func() (bool, error) {
		return func() (bool, error) {
			resp, err := ask(name)
			if err != nil {
				return false, err
			}
			return len(resp.Answer) == 1 && resp.Answer[0].(*miekg.A).A.String() == ip, nil
		}
	}
	svc, err := cl.Client.Services("default").Create(cl.Ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cl.Await(10*time.Second, "web to resolve", resolves("web.default.svc.cluster.local.", svc.Spec.ClusterIP))
	gone, err := cl.Client.Services("default").Create(cl.Ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "gone", Namespace: "default"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cl.Await(10*time.Second, "gone to resolve", resolves("gone.default.svc.cluster.local.", gone.Spec.ClusterIP))
	if err := cl.Client.Services("default").Delete(cl.Ctx, "gone", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	cl.Await(10*time.Second, "a deleted service to be NXDOMAIN", func() (bool, error) {
		resp, err := ask("gone.default.svc.cluster.local.")
		return err == nil && resp.Rcode == miekg.RcodeNameError, err
	})

	// The control plane goes away; the node keeps answering.
	cl.Server.Stop()
	if ok, err := resolves("web.default.svc.cluster.local.", svc.Spec.ClusterIP)(); !ok {
		t.Errorf("with the API server stopped: web does not resolve (%v)", err)
	}
}
