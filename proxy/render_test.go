package proxy

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name, or rewrites it with -rewrite.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *rewrite {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -rewrite to create it)", err)
	}
	if got != string(want) {
		t.Errorf("ruleset differs from %s (run with -rewrite to accept):\n%s", path, got)
	}
}

// TestRender covers every kind of service port in one ruleset: several
// ready endpoints with a NodePort, one endpoint, none ready, not-ready
// ones ignored, terminating-but-serving as a fallback, UDP, headless and
// ExternalName skipped, endpoints in two slices merged.
func TestRender(t *testing.T) {
	svcs := []*corev1.Service{
		service("web", "10.96.0.10", tcpPort("http", 80, 30080)),
		service("one", "10.96.0.11", tcpPort("", 8443, 0)),
		service("empty", "10.96.0.12", tcpPort("http", 80, 30081)),
		service("dns", "10.96.0.53", udpPort("dns", 53), tcpPort("dns-tcp", 53, 0)),
		service("draining", "10.96.0.13", tcpPort("http", 80, 0)),
		service("headless", "None", tcpPort("http", 80, 0)),
		{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com"}},
	}
	terminating := slice("draining", "http", corev1.ProtocolTCP, 8080, ready("10.244.2.9"))
	terminating.Endpoints[0].Conditions = discoveryv1.EndpointConditions{
		Ready: ptr.To(false), Serving: ptr.To(true), Terminating: ptr.To(true)}
	slices := []*discoveryv1.EndpointSlice{
		slice("web", "http", corev1.ProtocolTCP, 8080, []endpoint{{"10.244.1.2", true}, {"10.244.2.3", false}}),
		slice("web", "http", corev1.ProtocolTCP, 8080, ready("10.244.2.2", "10.244.1.2")),
		slice("one", "", corev1.ProtocolTCP, 443, ready("10.244.1.5")),
		slice("empty", "http", corev1.ProtocolTCP, 8080, []endpoint{{"10.244.1.9", false}}),
		slice("dns", "dns", corev1.ProtocolUDP, 5353, ready("10.244.1.7", "10.244.2.7")),
		slice("dns", "dns-tcp", corev1.ProtocolTCP, 5353, ready("10.244.1.7")),
		terminating,
	}
	rs := Render(RenderConfig{
		ServiceCIDR: netip.MustParsePrefix("10.96.0.0/16"),
		ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16"),
	}, svcs, slices)
	golden(t, "render.golden", rs.String())

	udp := MapKey{IP: netip.MustParseAddr("10.96.0.53"), Proto: protoUDP, Port: 53}
	if got := rs.Targets[udp]; len(got) != 2 {
		t.Errorf("UDP endpoints of %s: got %v, want 2", udp, got)
	}
}

// TestRenderIsStable: the same objects in another order give the same
// ruleset, so that a resync changes nothing.
func TestRenderIsStable(t *testing.T) {
	a := service("a", "10.96.0.1", tcpPort("p", 80, 0))
	b := service("b", "10.96.0.2", tcpPort("p", 80, 0))
	sa := slice("a", "p", corev1.ProtocolTCP, 80, ready("10.244.1.3", "10.244.1.2"))
	sb := slice("b", "p", corev1.ProtocolTCP, 80, ready("10.244.1.4"))
	cfg := RenderConfig{ServiceCIDR: netip.MustParsePrefix("10.96.0.0/16")}
	x := Render(cfg, []*corev1.Service{a, b}, []*discoveryv1.EndpointSlice{sa, sb}).String()
	y := Render(cfg, []*corev1.Service{b, a}, []*discoveryv1.EndpointSlice{sb, sa}).String()
	if x != y {
		t.Errorf("order of input changed the ruleset:\n%s\nvs\n%s", x, y)
	}
	if strings.Contains(x, "ip saddr != ") {
		t.Errorf("no cluster CIDR given, yet a masquerade rule for outside sources:\n%s", x)
	}
}

func TestChainNames(t *testing.T) {
	n := chainName("svc", "default/web/tcp/http")
	if !strings.HasPrefix(n, "svc-") || !strings.HasSuffix(n, "-default/web/tcp/http") || len(n) != len("svc-12345678-default/web/tcp/http") {
		t.Errorf("chainName: got %q", n)
	}
	if chainName("svc", "x") == chainName("ext", "x") {
		t.Errorf("chain names of different kinds collide")
	}
}
