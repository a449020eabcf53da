package proxy

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
)

// TestRunFollowsTheAPI runs a whole proxy against a real API server: the
// table follows Services and EndpointSlices as they are created, changed
// and deleted.
func TestRunFollowsTheAPI(t *testing.T) {
	n := newTestNode(t, "a", "b")
	n.serveTCP("a", 8080)
	n.serveTCP("b", 8080)
	a, b := n.pods["a"], n.pods["b"]

	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	ctx, cancel := context.WithCancel(logging.Into(context.Background(), quietLogger()))
	cfg := DefaultConfig()
	cfg.NodeName = "node-1"
	cfg.ClusterCIDR = testClusterCIDR.String()
	cfg.ServiceCIDR = testServiceCIDR.String()
	cfg.NetNSPath = n.ns
	p, err := New(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		p.syncer.Close()
	})

	svc, err := c.Services("default").Create(ctx, service("web", "10.96.0.10", tcpPort("http", 80, 0)))
	if err != nil {
		t.Fatal(err)
	}
	ip := svc.Spec.ClusterIP
	slices := client.Resource[*discoveryv1.EndpointSlice, *discoveryv1.EndpointSliceList](c, "default")
	es, err := slices.Create(ctx, slice("web", "http", corev1.ProtocolTCP, 8080, ready(a.ip.String())))
	if err != nil {
		t.Fatal(err)
	}
	reaches := func(want string) func() (bool, error) {
		return func() (bool, error) {
			ans, err := call(n.ns, ip+":80", time.Second)
			if err != nil {
				return false, err
			}
			return strings.HasPrefix(ans, want+" "), nil
		}
	}
	wait.For(t, 10*time.Second, "service reaches a", reaches("a"))

	es.Endpoints = slice("web", "http", corev1.ProtocolTCP, 8080, ready(b.ip.String())).Endpoints
	if _, err := slices.Update(ctx, es); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, "service reaches b only", reaches("b"))

	if err := c.Services("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, "deleted service unreachable", func() (bool, error) {
		_, err := call(n.ns, ip+":80", 200*time.Millisecond)
		return err != nil, nil
	})
}
