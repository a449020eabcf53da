package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	miekg "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BenchmarkDNSServiceToName measures, on two real nodes, the time from a
// Service's creation (the Create call returning) to its name resolving
// at the DNS server of the other node, asked from that node's network
// namespace as its pods ask it: p50 and p99 over 50 services, created one
// after the other.
//
//	sudo go test -run '^$' -bench BenchmarkDNSServiceToName -benchtime 1x ./test/e2e/
func BenchmarkDNSServiceToName(b *testing.B) {
	cl, lan := startRealNodes(b, 2)
	node := lan.Nodes[1]
	const services = 50
	for b.Loop() {
		var lat []time.Duration
		for i := range services {
			name := fmt.Sprintf("name-%d-%d", i, time.Now().UnixNano()%1e6)
			fqdn := name + "." + ns + ".svc.cluster.local."
			start := time.Now()
			svc, err := cl.Client.Services(ns).Create(cl.Ctx, &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
				Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
			})
			if err != nil {
				b.Fatal(err)
			}
			// Ask back to back (a question takes a fraction of a
			// millisecond, finer than a polling interval), bounded in
			// time and count.
			deadline := start.Add(30 * time.Second)
			resolved := false
			for try := 0; try < 1_000_000 && !resolved && time.Now().Before(deadline); try++ {
				resp, err := askFromPod(context.Background(), node.NetNS, fqdn, miekg.TypeA)
				resolved = err == nil && len(resp.Answer) == 1 && resp.Answer[0].(*miekg.A).A.String() == svc.Spec.ClusterIP
			}
			if !resolved {
				b.Fatalf("%s did not resolve on %s within 30s", fqdn, node.Name)
			}
			lat = append(lat, time.Since(start))
			if err := cl.Client.Services(ns).Delete(cl.Ctx, name, metav1.DeleteOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		slices.Sort(lat)
		b.ReportMetric(ms(lat[len(lat)/2]), "create-to-resolve-p50-ms")
		b.ReportMetric(ms(lat[len(lat)*99/100]), "create-to-resolve-p99-ms")
	}
}
