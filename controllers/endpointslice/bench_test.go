package endpointslice

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/controllers/controller"
	"github.com/skiffdev/skiff/internal/informers"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/wait"
)

// BenchmarkFullSync1000x10 reconciles 1,000 Services of 10 ready pods
// each against the in-process API server, one Service after another (a
// single worker). The first pass creates every slice and is reported as
// first-sync-ms; each timed iteration is a pass in the steady state, in
// which nothing is written.
//
//	go test -run XXX -bench FullSync -benchtime 20x ./controllers/endpointslice/
func BenchmarkFullSync1000x10(b *testing.B) {
	const services, podsPer = 1000, 10
	e := newEnv(b)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range services {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			labels := map[string]string{"app": fmt.Sprintf("svc-%04d", i)}
			e.createService(service(fmt.Sprintf("svc-%04d", i), labels))
			for j := range podsPer {
				n := i*podsPer + j
				e.createPod(podSpec{name: fmt.Sprintf("svc-%04d-%d", i, j), labels: labels, node: "node-a",
					ip: fmt.Sprintf("10.%d.%d.%d", 100+n/62500, n/250%250, n%250+1), ready: true})
			}
		})
	}
	wg.Wait()

	f := informers.NewFactory(e.cc, 0)
	ctrl, err := New(controller.Deps{Client: e.cc, Informers: f, Recorder: e.events}, DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(logging.Into(context.Background(), quietLogger))
	f.Start(ctx)
	b.Cleanup(func() { cancel(); f.Wait() })
	if !f.WaitForCacheSync(ctx) {
		b.Fatal("caches did not sync")
	}
	wait.For(b, time.Minute, "every pod cached", func() (bool, error) {
		return len(ctrl.pods.ListKeys()) == services*podsPer && len(ctrl.services.ListKeys()) >= services, nil
	})
	pass := func() {
		for i := range services {
			if _, err := ctrl.Reconcile(ctx, fmt.Sprintf("%s/svc-%04d", ns, i)); err != nil {
				b.Fatal(err)
			}
		}
	}

	start := time.Now()
	pass()
	first := time.Since(start)
	wait.For(b, time.Minute, "every slice cached", func() (bool, error) {
		return len(ctrl.slices.ListKeys()) == services, nil
	})
	list, err := e.c.EndpointSlices(ns).List(e.ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if len(list.Items) != services {
		b.Fatalf("got %d slices, want %d", len(list.Items), services)
	}

	b.ResetTimer()
	for b.Loop() {
		pass()
	}
	b.StopTimer()
	b.ReportMetric(float64(first.Microseconds())/1000, "first-sync-ms")
	after, err := e.c.EndpointSlices(ns).List(e.ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	versions := map[string]string{}
	for _, s := range list.Items {
		versions[s.Name] = s.ResourceVersion
	}
	for _, s := range after.Items {
		if versions[s.Name] != s.ResourceVersion {
			b.Fatalf("slice %q written in the steady state", s.Name)
		}
	}
}

// BenchmarkCompute is the pure planning step for one Service of 10 pods
// whose slice is already up to date.
func BenchmarkCompute(b *testing.B) {
	svc := planService()
	pods := planPods(10)
	existing := applyPlan(nil, Compute(svc, pods, nil, 100))
	for b.Loop() {
		if p := Compute(svc, pods, existing, 100); !p.Empty() {
			b.Fatal("plan not empty")
		}
	}
}
