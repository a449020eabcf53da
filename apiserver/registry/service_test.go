package registry_test

// Tests of service IP and node port allocation against a real API server
// (embedded etcd), through the gRPC client.

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffdev/skiff/apiserver"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/testenv"
)

func svc(name string, typ corev1.ServiceType, ports ...int32) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.ServiceSpec{Type: typ, Selector: map[string]string{"app": name}},
	}
	for i, p := range ports {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: fmt.Sprintf("p%d", i), Port: p, TargetPort: intstr.FromInt32(p)})
	}
	return s
}

func start(t *testing.T, opts ...func(*apiserver.Config)) *client.Client {
	t.Helper()
	s := testenv.StartServer(t, opts...)
	return testenv.NewClient(t, s)
}

func ipRange(cidr string) func(*apiserver.Config) {
	return func(c *apiserver.Config) { c.ServiceClusterIPRange = cidr }
}

func portRange(r string) func(*apiserver.Config) {
	return func(c *apiserver.Config) { c.ServiceNodePortRange = r }
}

func mustCreate(t *testing.T, c *client.Client, s *corev1.Service) *corev1.Service {
	t.Helper()
	out, err := c.Services("default").Create(testenv.Context(t), s)
	if err != nil {
		t.Fatalf("creating service %s: %v", s.Name, err)
	}
	return out
}

// wantInvalid checks that err is Invalid and mentions every part of want.
func wantInvalid(t *testing.T, err error, want ...string) {
	t.Helper()
	if !apierrors.IsInvalid(err) {
		t.Fatalf("got %v, want an Invalid error with %q", err, want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q does not contain %q", err, w)
		}
	}
}

func TestClusterIPAllocated(t *testing.T) {
	c := start(t)
	a := mustCreate(t, c, svc("a", "", 80))
	if a.Spec.ClusterIP != "10.96.0.2" {
		t.Errorf("first cluster IP is %q, want 10.96.0.2 (10.96.0.1 is the kubernetes service's)", a.Spec.ClusterIP)
	}
	if len(a.Spec.ClusterIPs) != 1 || a.Spec.ClusterIPs[0] != a.Spec.ClusterIP {
		t.Errorf("clusterIPs = %v, want [%s]", a.Spec.ClusterIPs, a.Spec.ClusterIP)
	}
	if len(a.Spec.IPFamilies) != 1 || a.Spec.IPFamilies[0] != corev1.IPv4Protocol {
		t.Errorf("ipFamilies = %v, want [IPv4]", a.Spec.IPFamilies)
	}
	if p := a.Spec.IPFamilyPolicy; p == nil || *p != corev1.IPFamilyPolicySingleStack {
		t.Errorf("ipFamilyPolicy = %v, want SingleStack", p)
	}
	b := mustCreate(t, c, svc("b", corev1.ServiceTypeNodePort, 80))
	lb := mustCreate(t, c, svc("lb", corev1.ServiceTypeLoadBalancer, 80))
	if b.Spec.ClusterIP != "10.96.0.3" || lb.Spec.ClusterIP != "10.96.0.4" {
		t.Errorf("cluster IPs %s, %s, want 10.96.0.3, 10.96.0.4", b.Spec.ClusterIP, lb.Spec.ClusterIP)
	}
	ext := svc("ext", corev1.ServiceTypeExternalName)
	ext.Spec.ExternalName = "db.example.com"
	ext.Spec.Selector = nil
	if e := mustCreate(t, c, ext); e.Spec.ClusterIP != "" || len(e.Spec.IPFamilies) != 0 {
		t.Errorf("ExternalName service got clusterIP %q, ipFamilies %v", e.Spec.ClusterIP, e.Spec.IPFamilies)
	}
	// What a client reads back is what was returned.
	got, err := c.Services("default").Get(testenv.Context(t), "a")
	if err != nil || got.Spec.ClusterIP != a.Spec.ClusterIP {
		t.Fatalf("get a: %v, clusterIP %q", err, got.Spec.ClusterIP)
	}
}

func TestHeadless(t *testing.T) {
	c := start(t)
	h := svc("h", "", 80)
	h.Spec.ClusterIP = corev1.ClusterIPNone
	out := mustCreate(t, c, h)
	if out.Spec.ClusterIP != "None" || len(out.Spec.ClusterIPs) != 1 || out.Spec.ClusterIPs[0] != "None" {
		t.Errorf("headless service: clusterIP %q, clusterIPs %v", out.Spec.ClusterIP, out.Spec.ClusterIPs)
	}
	// It took no address.
	if a := mustCreate(t, c, svc("a", "", 80)); a.Spec.ClusterIP != "10.96.0.2" {
		t.Errorf("after a headless service the next IP is %s, want 10.96.0.2", a.Spec.ClusterIP)
	}
	np := svc("np", corev1.ServiceTypeNodePort, 80)
	np.Spec.ClusterIP = corev1.ClusterIPNone
	_, err := c.Services("default").Create(testenv.Context(t), np)
	wantInvalid(t, err, "spec.clusterIPs[0]", "may not be set to 'None' for NodePort services")

	// Headless stays headless on update; it may not get an IP.
	out.Spec.Ports[0].Port = 81
	out.Spec.Ports[0].TargetPort = intstr.FromInt32(81)
	if _, err := c.Services("default").Update(testenv.Context(t), out); err != nil {
		t.Fatalf("updating a headless service: %v", err)
	}
	_, err = c.Services("default").Patch(testenv.Context(t), "h", types.MergePatchType, []byte(`{"spec":{"clusterIP":"10.96.0.50","clusterIPs":null}}`))
	wantInvalid(t, err, `spec.clusterIP: Invalid value: "10.96.0.50": field is immutable`)
}

func TestRequestedClusterIP(t *testing.T) {
	c := start(t)
	ctx := testenv.Context(t)
	r := svc("r", "", 80)
	r.Spec.ClusterIP = "10.96.7.7"
	if out := mustCreate(t, c, r); out.Spec.ClusterIP != "10.96.7.7" {
		t.Fatalf("requested 10.96.7.7, got %s", out.Spec.ClusterIP)
	}
	// The kubernetes service's address is given when asked for.
	k := svc("kubernetes", "", 443)
	k.Spec.ClusterIP = "10.96.0.1"
	if out := mustCreate(t, c, k); out.Spec.ClusterIP != "10.96.0.1" {
		t.Fatalf("requested 10.96.0.1, got %s", out.Spec.ClusterIP)
	}

	taken := svc("taken", "", 80)
	taken.Spec.ClusterIP = "10.96.7.7"
	_, err := c.Services("default").Create(ctx, taken)
	wantInvalid(t, err, `spec.clusterIP: Invalid value: "10.96.7.7"`, "provided IP is already allocated")

	for _, ip := range []string{"10.0.0.1", "10.96.0.0", "10.96.255.255"} {
		out := svc("out", "", 80)
		out.Spec.ClusterIP = ip
		_, err = c.Services("default").Create(ctx, out)
		wantInvalid(t, err, "spec.clusterIP", "provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/16")
	}
	// A refused create leaks nothing: the next automatic IP is the
	// lowest free one.
	if a := mustCreate(t, c, svc("a", "", 80)); a.Spec.ClusterIP != "10.96.0.2" {
		t.Errorf("next IP %s, want 10.96.0.2", a.Spec.ClusterIP)
	}

	v6 := svc("v6", "", 80)
	v6.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol}
	_, err = c.Services("default").Create(ctx, v6)
	wantInvalid(t, err, `spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster`)
}

func TestExhaustionAndReuse(t *testing.T) {
	// A /29 has 6 usable addresses; the first is kept for the
	// kubernetes service, so 5 services get one.
	c := start(t, ipRange("10.100.0.0/29"))
	ctx := testenv.Context(t)
	var ips []string
	for i := range 5 {
		ips = append(ips, mustCreate(t, c, svc(fmt.Sprintf("s%d", i), "", 80)).Spec.ClusterIP)
	}
	if want := "10.100.0.2 10.100.0.3 10.100.0.4 10.100.0.5 10.100.0.6"; strings.Join(ips, " ") != want {
		t.Errorf("allocated %v, want %s", ips, want)
	}
	_, err := c.Services("default").Create(ctx, svc("full", "", 80))
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "every address of the service range 10.100.0.0/29 is allocated") {
		t.Fatalf("creating a service in a full range: %v", err)
	}
	// A headless service still fits.
	h := svc("h", "", 80)
	h.Spec.ClusterIP = corev1.ClusterIPNone
	mustCreate(t, c, h)

	if err := c.Services("default").Delete(ctx, "s2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := mustCreate(t, c, svc("again", "", 80)).Spec.ClusterIP; got != ips[2] {
		t.Errorf("after deleting the service with %s the new one got %s", ips[2], got)
	}
}

func TestDeleteWithFinalizerReleasesOnRemoval(t *testing.T) {
	c := start(t, ipRange("10.100.0.0/30")) // one automatic address: .2
	ctx := testenv.Context(t)
	s := svc("s", "", 80)
	s.Finalizers = []string{"example.com/hold"}
	s = mustCreate(t, c, s)
	if err := c.Services("default").Delete(ctx, "s", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// Still there (finalizer): its address is still taken.
	if _, err := c.Services("default").Create(ctx, svc("t", "", 80)); !apierrors.IsForbidden(err) {
		t.Fatalf("creating while the deleted service is held by its finalizer: %v", err)
	}
	_, err := c.Services("default").Patch(ctx, "s", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := mustCreate(t, c, svc("t", "", 80)).Spec.ClusterIP; got != s.Spec.ClusterIP {
		t.Errorf("got %s after the removal, want %s", got, s.Spec.ClusterIP)
	}
}

func TestConcurrentCreatesNeverShareAnIP(t *testing.T) {
	c := start(t)
	const n = 50
	ips := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s := svc(fmt.Sprintf("s%d", i), corev1.ServiceTypeNodePort, 80)
			out, err := c.Services("default").Create(testenv.Context(t), s)
			if err == nil {
				ips[i] = out.Spec.ClusterIP + "/" + fmt.Sprint(out.Spec.Ports[0].NodePort)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	checkDistinct(t, ips, errs)
}

// checkDistinct fails unless every create succeeded with its own cluster
// IP and node port.
func checkDistinct(t *testing.T, got []string, errs []error) {
	t.Helper()
	seenIP, seenPort := map[string]int{}, map[string]int{}
	for i, v := range got {
		if errs[i] != nil {
			t.Fatalf("create %d: %v", i, errs[i])
		}
		ip, port, _ := strings.Cut(v, "/")
		if j, ok := seenIP[ip]; ok {
			t.Fatalf("services %d and %d share cluster IP %s", j, i, ip)
		}
		if j, ok := seenPort[port]; ok {
			t.Fatalf("services %d and %d share node port %s", j, i, port)
		}
		seenIP[ip], seenPort[port] = i, i
	}
}

// Two API servers on one etcd allocate from the same bitmaps; the
// compare-and-swap keeps them from handing out an address twice.
func TestTwoServersNeverShareAnIP(t *testing.T) {
	cfgA := testenv.ServerConfig(t)
	a := testenv.StartServerWith(t, cfgA)
	cfgB := testenv.ServerConfig(t)
	cfgB.EtcdServers = []string{"unix://" + filepath.Join(cfgA.DataDir, "etcd", "client.sock")}
	b := testenv.StartServerWith(t, cfgB)
	clients := []*client.Client{testenv.NewClient(t, a), testenv.NewClient(t, b)}

	// In turn first: server A's cached bitmaps go stale when B allocates,
	// and its next try must notice (the compare-and-swap fails) rather
	// than hand out B's address again.
	var seq []string
	for i, c := range []*client.Client{clients[0], clients[1], clients[0], clients[1]} {
		out := mustCreate(t, c, svc(fmt.Sprintf("seq%d", i), corev1.ServiceTypeNodePort, 80))
		seq = append(seq, out.Spec.ClusterIP+"/"+fmt.Sprint(out.Spec.Ports[0].NodePort))
	}
	if want := "10.96.0.2/30000 10.96.0.3/30001 10.96.0.4/30002 10.96.0.5/30003"; strings.Join(seq, " ") != want {
		t.Errorf("allocated %v, want %s", seq, want)
	}

	const n = 40
	got := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			out, err := clients[i%2].Services("default").Create(testenv.Context(t), svc(fmt.Sprintf("s%d", i), corev1.ServiceTypeNodePort, 80))
			if err == nil {
				got[i] = out.Spec.ClusterIP + "/" + fmt.Sprint(out.Spec.Ports[0].NodePort)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	checkDistinct(t, got, errs)
}

func TestNodePorts(t *testing.T) {
	c := start(t, portRange("30000-30004"))
	ctx := testenv.Context(t)
	np := mustCreate(t, c, svc("np", corev1.ServiceTypeNodePort, 80, 443))
	if np.Spec.Ports[0].NodePort != 30000 || np.Spec.Ports[1].NodePort != 30001 {
		t.Errorf("node ports %d, %d, want 30000, 30001", np.Spec.Ports[0].NodePort, np.Spec.Ports[1].NodePort)
	}
	// One port number on two protocols shares its node port.
	dns := svc("dns", corev1.ServiceTypeNodePort, 53, 53)
	dns.Spec.Ports[1].Protocol = corev1.ProtocolUDP
	dns = mustCreate(t, c, dns)
	if dns.Spec.Ports[0].NodePort != 30002 || dns.Spec.Ports[1].NodePort != 30002 {
		t.Errorf("dns node ports %d, %d, want 30002 twice", dns.Spec.Ports[0].NodePort, dns.Spec.Ports[1].NodePort)
	}

	req := svc("req", corev1.ServiceTypeNodePort, 80)
	req.Spec.Ports[0].NodePort = 30004
	if out := mustCreate(t, c, req); out.Spec.Ports[0].NodePort != 30004 {
		t.Errorf("requested 30004, got %d", out.Spec.Ports[0].NodePort)
	}
	taken := svc("taken", corev1.ServiceTypeNodePort, 80)
	taken.Spec.Ports[0].NodePort = 30001
	_, err := c.Services("default").Create(ctx, taken)
	wantInvalid(t, err, "spec.ports[0].nodePort: Invalid value: 30001", "provided port is already allocated")
	taken.Spec.Ports[0].NodePort = 31000
	_, err = c.Services("default").Create(ctx, taken)
	wantInvalid(t, err, "spec.ports[0].nodePort: Invalid value: 31000", "provided port is not in the valid range. The range of valid ports is 30000-30004")

	// A port may not move to a taken node port.
	np.Spec.Ports[1].NodePort = 30004
	_, err = c.Services("default").Update(ctx, np)
	wantInvalid(t, err, "spec.ports[1].nodePort", "provided port is already allocated")
	// It may move to a free one, releasing its old one.
	np, _ = c.Services("default").Get(ctx, "np")
	np.Spec.Ports[1].NodePort = 30003
	if np, err = c.Services("default").Update(ctx, np); err != nil {
		t.Fatal(err)
	}
	// Replacing the service without node ports keeps them.
	np.Spec.Ports[0].NodePort, np.Spec.Ports[1].NodePort = 0, 0
	if np, err = c.Services("default").Update(ctx, np); err != nil || np.Spec.Ports[0].NodePort != 30000 || np.Spec.Ports[1].NodePort != 30003 {
		t.Fatalf("update without node ports: %v, ports %v", err, np.Spec.Ports)
	}

	// The range is full now (30000, 30002, 30003, 30004 and the freed
	// 30001 is free): one more fits, then no more.
	mustCreate(t, c, svc("one", corev1.ServiceTypeNodePort, 80))
	_, err = c.Services("default").Create(ctx, svc("two", corev1.ServiceTypeNodePort, 80))
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "every port of the node port range 30000-30004 is allocated") {
		t.Fatalf("creating in a full node port range: %v", err)
	}

	// NodePort → ClusterIP releases; ClusterIP → NodePort allocates.
	_, err = c.Services("default").Patch(ctx, "np", types.MergePatchType, []byte(`{"spec":{"type":"ClusterIP","externalTrafficPolicy":null}}`))
	if err != nil {
		t.Fatalf("NodePort to ClusterIP: %v", err)
	}
	two := mustCreate(t, c, svc("two", corev1.ServiceTypeNodePort, 80, 81))
	if two.Spec.Ports[0].NodePort != 30000 || two.Spec.Ports[1].NodePort != 30003 {
		t.Errorf("after the release got %v", two.Spec.Ports)
	}
	cip := mustCreate(t, c, svc("cip", "", 80))
	_, err = c.Services("default").Patch(ctx, "cip", types.MergePatchType, []byte(`{"spec":{"type":"NodePort"}}`))
	if !apierrors.IsForbidden(err) {
		t.Fatalf("ClusterIP to NodePort in a full range: %v", err)
	}
	if err := c.Services("default").Delete(ctx, "two", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	out, err := c.Services("default").Patch(ctx, "cip", types.MergePatchType, []byte(`{"spec":{"type":"NodePort"}}`))
	if err != nil || out.Spec.Ports[0].NodePort != 30000 || out.Spec.ClusterIP != cip.Spec.ClusterIP {
		t.Fatalf("ClusterIP to NodePort: %v %v", err, out)
	}
}

func TestClusterIPImmutable(t *testing.T) {
	c := start(t)
	ctx := testenv.Context(t)
	a := mustCreate(t, c, svc("a", "", 80))
	a.Spec.ClusterIP, a.Spec.ClusterIPs = "10.96.9.9", nil
	_, err := c.Services("default").Update(ctx, a)
	wantInvalid(t, err, `spec.clusterIP: Invalid value: "10.96.9.9": field is immutable`)
	// Leaving it out keeps it (kubectl replace of the original manifest).
	a, _ = c.Services("default").Get(ctx, "a")
	ip := a.Spec.ClusterIP
	a.Spec.ClusterIP, a.Spec.ClusterIPs = "", nil
	a.Spec.Ports[0].Port = 8080
	if a, err = c.Services("default").Update(ctx, a); err != nil || a.Spec.ClusterIP != ip {
		t.Fatalf("update without clusterIP: %v, clusterIP %q want %s", err, a.Spec.ClusterIP, ip)
	}
	// To ExternalName releases the IP; back to ClusterIP allocates one.
	out, err := c.Services("default").Patch(ctx, "a", types.MergePatchType,
		[]byte(`{"spec":{"type":"ExternalName","externalName":"db.example.com","internalTrafficPolicy":null}}`))
	if err != nil || out.Spec.ClusterIP != "" {
		t.Fatalf("to ExternalName: %v, clusterIP %q", err, out.Spec.ClusterIP)
	}
	if b := mustCreate(t, c, svc("b", "", 80)); b.Spec.ClusterIP != ip {
		t.Errorf("the released %s was not reused, got %s", ip, b.Spec.ClusterIP)
	}
	out, err = c.Services("default").Patch(ctx, "a", types.MergePatchType, []byte(`{"spec":{"type":"ClusterIP","externalName":null}}`))
	if err != nil || out.Spec.ClusterIP != "10.96.0.3" {
		t.Fatalf("back to ClusterIP: %v, clusterIP %q", err, out.Spec.ClusterIP)
	}
}

func TestAllocationsSurviveRestart(t *testing.T) {
	cfg := testenv.ServerConfig(t)
	ctx := testenv.Context(t)
	s1, err := apiserver.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			s1.Stop()
		}
	})
	conn := testenv.AdminConfig(t, s1)
	conn.WarningHandler = func(string) {}
	c1, err := client.New(conn)
	if err != nil {
		t.Fatal(err)
	}
	a := mustCreate(t, c1, svc("a", corev1.ServiceTypeNodePort, 80))
	c1.Close()
	s1.Stop()
	stopped = true

	c2 := testenv.NewClient(t, testenv.StartServerWith(t, cfg))
	b := mustCreate(t, c2, svc("b", corev1.ServiceTypeNodePort, 80))
	if b.Spec.ClusterIP == a.Spec.ClusterIP || b.Spec.Ports[0].NodePort == a.Spec.Ports[0].NodePort {
		t.Fatalf("after a restart b got %s/%d, as a holds %s/%d", b.Spec.ClusterIP, b.Spec.Ports[0].NodePort, a.Spec.ClusterIP, a.Spec.Ports[0].NodePort)
	}
	req := svc("req", "", 80)
	req.Spec.ClusterIP = a.Spec.ClusterIP
	_, err = c2.Services("default").Create(ctx, req)
	wantInvalid(t, err, "provided IP is already allocated")
}

// BenchmarkServiceCreate measures how many Services one API server
// creates per second from 8 concurrent clients (2×GOMAXPROCS at least):
// NodePort services (a cluster IP and a node port each, the allocating
// writes serialized per server) against ExternalName services (no
// allocation, the plain create path).
func BenchmarkServiceCreate(b *testing.B) {
	for _, typ := range []corev1.ServiceType{corev1.ServiceTypeNodePort, corev1.ServiceTypeExternalName} {
		b.Run(string(typ), func(b *testing.B) {
			s := testenv.StartServer(b, func(c *apiserver.Config) {
				c.ServiceNodePortRange = "1024-65535"
				c.ServiceClusterIPRange = "10.96.0.0/16" // the default
			})
			c := testenv.NewClient(b, s)
			ctx := context.Background()
			// mu guards next.
			var mu sync.Mutex
			next := 0
			b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					mu.Lock()
					i := next
					next++
					mu.Unlock()
					s := svc(fmt.Sprintf("s%d", i), typ, 80)
					if typ == corev1.ServiceTypeExternalName {
						s.Spec.Ports, s.Spec.Selector, s.Spec.ExternalName = nil, nil, "db.example.com"
					}
					if _, err := c.Services("default").Create(ctx, s); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "services/s")
		})
	}
}

// A changed --service-cluster-ip-range makes the server rebuild the
// bitmap from the stored services, so that their addresses stay taken.
func TestRangeChangeRebuildsFromServices(t *testing.T) {
	cfg := testenv.ServerConfig(t)
	ctx := testenv.Context(t)
	s1, err := apiserver.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	conn := testenv.AdminConfig(t, s1)
	conn.WarningHandler = func(string) {}
	c1, err := client.New(conn)
	if err != nil {
		s1.Stop()
		t.Fatal(err)
	}
	a := mustCreate(t, c1, svc("a", "", 80))
	c1.Close()
	s1.Stop()

	cfg.ServiceClusterIPRange = "10.96.0.0/20"
	c2 := testenv.NewClient(t, testenv.StartServerWith(t, cfg))
	if b := mustCreate(t, c2, svc("b", "", 80)); b.Spec.ClusterIP == a.Spec.ClusterIP {
		t.Fatalf("b got a's %s after the range changed", b.Spec.ClusterIP)
	}
	req := svc("req", "", 80)
	req.Spec.ClusterIP = a.Spec.ClusterIP
	_, err = c2.Services("default").Create(ctx, req)
	wantInvalid(t, err, "provided IP is already allocated")
}
