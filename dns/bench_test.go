package dns

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	miekg "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"
)

// benchCluster is n ClusterIP services of one port, each with a slice of
// three endpoints, spread over 10 namespaces, as objects shaped like the
// API server's.
func benchCluster(n int) []any {
	var objs []any
	for i := range n {
		ns := fmt.Sprintf("ns-%d", i%10)
		name := fmt.Sprintf("svc-%d", i)
		s := service(ns, name, fmt.Sprintf("10.96.%d.%d", i/250, i%250+1), port("http", corev1.ProtocolTCP, 80))
		s.UID = "00000000-0000-0000-0000-000000000000"
		s.Labels = map[string]string{"app": name}
		s.Spec.Selector = map[string]string{"app": name}
		slice := slice(ns, name, name+"-abcde", "http", 8080,
			fmt.Sprintf("10.244.%d.%d", i/80, i%80*3+1), fmt.Sprintf("10.244.%d.%d", i/80, i%80*3+2), fmt.Sprintf("10.244.%d.%d", i/80, i%80*3+3))
		slice.AddressType = discoveryv1.AddressTypeIPv4
		objs = append(objs, s, slice)
	}
	return objs
}

func benchHandler(b *testing.B, objs []any) *Handler {
	b.Helper()
	conf := filepath.Join(b.TempDir(), "resolv.conf")
	if err := os.WriteFile(conf, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	services, slices := testCaches(b, objs...)
	cfg := DefaultConfig()
	cfg.Address, cfg.Port, cfg.ResolvConf = "127.0.0.1", 0, conf
	h, err := NewHandler(cfg, services, slices)
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// BenchmarkQueries measures the node-local server answering cluster names
// over UDP on loopback: queries per second (A questions for 1,000
// services, by 16 concurrent clients each with its own socket, and by one
// client asking one question after the other) and the latency a client
// sees (p50, p99): loaded with 16, unloaded with 1. The clients run in this process, on the same
// cores as the server, so per core is total / GOMAXPROCS, a lower bound
// of what the server alone does (CoreDNS: about 16k per core). Each
// iteration is at least 200,000 queries, so that make bench's -benchtime
// 1x measures something.
//
//	go test -run '^$' -bench BenchmarkQueries -benchtime 1x ./dns/
func BenchmarkQueries(b *testing.B) {
	const services = 1000
	s := serveTest(b, benchHandler(b, benchCluster(services)))
	var names []string
	for i := range services {
		names = append(names, fmt.Sprintf("svc-%d.ns-%d.svc.cluster.local.", i, i%10))
	}
	for _, clients := range []int{16, 1} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) { benchQueries(b, s, names, clients) })
	}
}

func benchQueries(b *testing.B, s *Server, names []string, clients int) {
	services := len(names)
	var mu sync.Mutex
	var lat []time.Duration
	var failed int
	per := max(b.N, 200_000) / clients
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("udp", s.UDPAddr.String())
			if err != nil {
				b.Error(err)
				return
			}
			defer conn.Close()
			dc := &miekg.Conn{Conn: conn}
			mine := make([]time.Duration, 0, per)
			bad := 0
			m := new(miekg.Msg)
			for i := range per {
				m.SetQuestion(names[(c*per+i)%services], miekg.TypeA)
				t0 := time.Now()
				_ = conn.SetDeadline(t0.Add(2 * time.Second))
				if err := dc.WriteMsg(m); err != nil {
					bad++
					continue
				}
				resp, err := dc.ReadMsg()
				if err != nil || resp.Id != m.Id || len(resp.Answer) != 1 {
					bad++
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			failed += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if len(lat) == 0 {
		b.Fatal("no query was answered")
	}
	slices.Sort(lat)
	qps := float64(len(lat)) / elapsed.Seconds()
	b.ReportMetric(qps, "queries/s")
	b.ReportMetric(qps/float64(runtime.GOMAXPROCS(0)), "queries/s/core")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(runtime.GOMAXPROCS(0)), "GOMAXPROCS")
	b.ReportMetric(float64(failed), "failed")
}

// BenchmarkAnswer measures the answer to one cluster question without
// the sockets: the cost of the lookup and of building the message, what
// one core does when the network costs nothing.
//
//	go test -run '^$' -bench BenchmarkAnswer ./dns/
func BenchmarkAnswer(b *testing.B) {
	h := benchHandler(b, benchCluster(1000))
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"svc-500.ns-0.svc.cluster.local.", miekg.TypeA},
		{"_http._tcp.svc-500.ns-0.svc.cluster.local.", miekg.TypeSRV},
		{"nothing.ns-0.svc.cluster.local.", miekg.TypeA},
	} {
		b.Run(miekg.TypeToString[q.qtype]+"/"+q.name, func(b *testing.B) {
			m := new(miekg.Msg).SetQuestion(q.name, q.qtype)
			b.ReportAllocs()
			for b.Loop() {
				if r := h.Answer(context.Background(), m, false); r.Rcode == miekg.RcodeServerFailure {
					b.Fatal(r)
				}
			}
		})
	}
}

// BenchmarkCacheMemory measures the heap the DNS server's caches hold for
// 1,000 services with one EndpointSlice of three endpoints each: the
// objects as decoded from the API (Service and EndpointSlice caches) and
// the DNS indexes over them; and a full cache of 10,000 forwarded
// answers.
//
//	go test -run '^$' -bench BenchmarkCacheMemory -benchtime 1x ./dns/
func BenchmarkCacheMemory(b *testing.B) {
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	for b.Loop() {
		objs := benchCluster(1000)
		before := heap()
		svcIdx := ServiceIndexers()
		svcIdx[cache.NamespaceIndex] = cache.MetaNamespaceIndexFunc
		services := cache.NewIndexer(cache.MetaNamespaceKeyFunc, svcIdx)
		slices := cache.NewIndexer(cache.MetaNamespaceKeyFunc, SliceIndexers())
		for _, o := range objs {
			if _, ok := o.(*corev1.Service); ok {
				_ = services.Add(o)
			} else {
				_ = slices.Add(o)
			}
		}
		// The objects were made before "before"; count them too, as
		// the informers hold them.
		objects := approxObjectBytes(b, objs)
		indexes := heap() - before
		b.ReportMetric(float64(objects+indexes)/(1<<20), "caches-MiB")
		b.ReportMetric(float64(objects+indexes)/1000, "bytes/service")
		b.ReportMetric(float64(indexes)/(1<<20), "indexes-MiB")

		before = heap()
		c := NewCache(10000)
		for i := range 10000 {
			q := new(miekg.Msg).SetQuestion(fmt.Sprintf("host-%d.example.org.", i), miekg.TypeA)
			r := new(miekg.Msg).SetReply(q)
			r.Answer = []miekg.RR{&miekg.A{Hdr: miekg.RR_Header{Name: q.Question[0].Name, Rrtype: miekg.TypeA, Class: miekg.ClassINET, Ttl: 300}, A: net.IPv4(192, 0, 2, byte(i))}}
			c.Put(q, r)
		}
		b.ReportMetric(float64(heap()-before)/(1<<20), "forward-cache-10k-MiB")
		runtime.KeepAlive(services)
		runtime.KeepAlive(slices)
		runtime.KeepAlive(c)
	}
}

// approxObjectBytes is the heap the objects take: measured by building
// them again.
func approxObjectBytes(b *testing.B, objs []any) uint64 {
	b.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	again := benchCluster(len(objs) / 2)
	runtime.GC()
	runtime.ReadMemStats(&ms)
	runtime.KeepAlive(again)
	return ms.HeapAlloc - before
}
