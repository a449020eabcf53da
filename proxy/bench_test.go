package proxy

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/skiffdev/skiff/internal/nsutil/nstest"
)

// bigCluster is services × endpoints TCP services with a NodePort each.
func bigCluster(services, endpoints int) ([]*corev1.Service, []*discoveryv1.EndpointSlice) {
	var svcs []*corev1.Service
	var slices []*discoveryv1.EndpointSlice
	for i := range services {
		name := fmt.Sprintf("svc-%d", i)
		svcs = append(svcs, service(name, fmt.Sprintf("10.96.%d.%d", i/250, i%250+1),
			tcpPort("http", 80, int32(30000+i))))
		var ips []string
		for j := range endpoints {
			ips = append(ips, fmt.Sprintf("10.244.%d.%d", j, i%250+2))
		}
		slices = append(slices, slice(name, "http", corev1.ProtocolTCP, 8080, ready(ips...)))
	}
	return svcs, slices
}

// BenchmarkFullSync writes the table of 1,000 Services × 10 endpoints as
// a whole (one transaction), as at start and on every resync.
func BenchmarkFullSync(b *testing.B) {
	ns := nstest.NewNetns(b)
	s, err := NewSyncer(ns)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	svcs, slices := bigCluster(1000, 10)
	cfg := RenderConfig{ServiceCIDR: testServiceCIDR, ClusterCIDR: testClusterCIDR}
	var render, write time.Duration
	msgs := 0
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		rs := Render(cfg, svcs, slices)
		t1 := time.Now()
		st, err := s.Sync(rs, true)
		if err != nil {
			b.Fatal(err)
		}
		msgs = st.Messages
		render += t1.Sub(t0)
		write += time.Since(t1)
	}
	b.ReportMetric(float64(render.Milliseconds())/float64(b.N), "render-ms/op")
	b.ReportMetric(float64((render+write).Microseconds())/1000/float64(b.N), "ms/op")
	b.ReportMetric(float64(msgs), "messages/op")
}

// BenchmarkIncrementalSync changes one endpoint of one Service in a table
// of 1,000 Services × 10 endpoints: the common case of a pod turning
// ready or unready.
func BenchmarkIncrementalSync(b *testing.B) {
	ns := nstest.NewNetns(b)
	s, err := NewSyncer(ns)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	svcs, slices := bigCluster(1000, 10)
	cfg := RenderConfig{ServiceCIDR: testServiceCIDR, ClusterCIDR: testClusterCIDR}
	if _, err := s.Sync(Render(cfg, svcs, slices), true); err != nil {
		b.Fatal(err)
	}
	full := slices[500]
	fewer := full.DeepCopy()
	fewer.Endpoints = fewer.Endpoints[1:]
	i, msgs := 0, 0
	var write time.Duration
	b.ResetTimer()
	for b.Loop() {
		if i%2 == 0 {
			slices[500] = fewer
		} else {
			slices[500] = full
		}
		i++
		rs := Render(cfg, svcs, slices)
		t0 := time.Now()
		st, err := s.Sync(rs, false)
		write += time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		if st.Full || st.ChainsChanged == 0 {
			b.Fatalf("got %+v, want an incremental sync", st)
		}
		msgs += st.Messages
	}
	b.ReportMetric(float64(write.Microseconds())/1000/float64(b.N), "sync-ms/op")
	b.ReportMetric(float64(msgs)/float64(b.N), "messages/op")
}
