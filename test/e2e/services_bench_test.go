package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/skiffdev/skiff/internal/nsutil"
	"github.com/skiffdev/skiff/internal/wait"
)

// BenchmarkServices measures, on three real nodes: the time from a pod
// turning Ready (seen through a watch) to a client on another node
// reaching it through its Service (p50, p99 over 20 pods); and the rate of
// HTTP connections from a node to a pod through a ClusterIP against
// straight to the pod's address, as a ratio.
//
//	sudo go test -run '^$' -bench BenchmarkServices -benchtime 1x ./test/e2e/
func BenchmarkServices(b *testing.B) {
	cl, lan := startRealNodes(b, 3)
	const svcIP = "10.96.0.20"
	if _, err := cl.Client.Services(ns).Create(cl.Ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "bench", Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector:  map[string]string{"bench": "on"},
			ClusterIP: svcIP,
			Ports:     []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}},
		},
	}); err != nil {
		b.Fatal(err)
	}
	web := func(name, node string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"bench": "on"}},
			Spec: corev1.PodSpec{
				NodeName:                      node,
				TerminationGracePeriodSeconds: ptr.To[int64](0),
				Containers: []corev1.Container{{
					Name: "web", Image: lan.Image, ImagePullPolicy: corev1.PullIfNotPresent,
					Command: []string{"sh", "-c", "hostname > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"},
					ReadinessProbe: &corev1.Probe{
						ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}},
						PeriodSeconds: 1,
					},
				}},
			},
		}
	}
	// The client: node 0's network namespace, through which the test
	// dials as a process on that node would.
	client0 := lan.Nodes[0].NetNS
	if _, err := cl.Client.Pods(ns).Create(cl.Ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "client", Namespace: ns},
		Spec: corev1.PodSpec{NodeName: lan.Nodes[0].Name, TerminationGracePeriodSeconds: ptr.To[int64](0),
			Containers: []corev1.Container{{Name: "c", Image: lan.Image, ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sleep", "3600"}}}},
	}); err != nil {
		b.Fatal(err)
	}
	wait.For(b, time.Minute, "the client pod to run", func() (bool, error) {
		p, err := cl.Client.Pods(ns).Get(cl.Ctx, "client")
		if err != nil || p.Status.Phase != corev1.PodRunning {
			return false, err
		}
		client0 = lan.Nodes[0].Config.StateDir + "/runtime/sandboxes/" + string(p.UID) + "/net"
		return true, nil
	})
	get := func(ctx context.Context, addr string) (string, error) {
		conn, err := nsutil.Dial(ctx, client0, "tcp", addr)
		if err != nil {
			return "", err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.WriteString(conn, "GET /index.html HTTP/1.0\r\n\r\n"); err != nil {
			return "", err
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return strings.TrimSpace(string(body)), err
	}

	for b.Loop() {
		w, err := cl.Client.Pods(ns).Watch(cl.Ctx, metav1.ListOptions{LabelSelector: "bench=on"})
		if err != nil {
			b.Fatal(err)
		}
		readyAt := make(chan time.Time, 1)
		go func() {
			sent := map[string]bool{}
			for ev := range w.ResultChan() {
				p, ok := ev.Object.(*corev1.Pod)
				if !ok || ev.Type == watch.Deleted || sent[p.Name] {
					continue
				}
				for _, c := range p.Status.Conditions {
					if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
						sent[p.Name] = true
						readyAt <- time.Now()
					}
				}
			}
		}()
		var lat []time.Duration
		for i := range 20 {
			name := fmt.Sprintf("bench-%d", i)
			if _, err := cl.Client.Pods(ns).Create(cl.Ctx, web(name, lan.Nodes[1+i%2].Name)); err != nil {
				b.Fatal(err)
			}
			var ready time.Time
			select {
			case ready = <-readyAt:
			case <-time.After(time.Minute):
				b.Fatalf("%s did not turn ready", name)
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				ctx, cancel := context.WithTimeout(cl.Ctx, time.Second)
				body, err := get(ctx, net.JoinHostPort(svcIP, "80"))
				cancel()
				if err == nil && body == name {
					lat = append(lat, time.Since(ready))
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("%s not reachable through its Service 30s after turning ready (last: %q, %v)", name, body, err)
				}
			}
			if err := cl.Client.Pods(ns).Delete(cl.Ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
				b.Fatal(err)
			}
			// Gone means refused: the Service has no endpoint left. A
			// timeout is not enough, it only says the deleted pod no
			// longer answers while the rules may still send to it, and
			// the next pod's first connection would then go there too.
			wait.For(b, time.Minute, name+" to be gone from the Service", func() (bool, error) {
				ctx, cancel := context.WithTimeout(cl.Ctx, time.Second)
				defer cancel()
				_, err := get(ctx, net.JoinHostPort(svcIP, "80"))
				return errors.Is(err, syscall.ECONNREFUSED), err
			})
		}
		w.Stop()
		slices.Sort(lat)
		b.ReportMetric(ms(lat[len(lat)/2]), "ready-to-reachable-p50-ms")
		b.ReportMetric(ms(lat[len(lat)*99/100]), "ready-to-reachable-p99-ms")

		// Connection rate: one pod on node 1, dialled from node 0 through
		// the ClusterIP and directly, alternately in rounds.
		if _, err := cl.Client.Pods(ns).Create(cl.Ctx, web("rate", lan.Nodes[1].Name)); err != nil {
			b.Fatal(err)
		}
		var podIP string
		wait.For(b, time.Minute, "the rate pod to be reachable", func() (bool, error) {
			p, err := cl.Client.Pods(ns).Get(cl.Ctx, "rate")
			if err != nil || p.Status.PodIP == "" {
				return false, err
			}
			podIP = p.Status.PodIP
			_, err = get(cl.Ctx, net.JoinHostPort(svcIP, "80"))
			return err == nil, err
		})
		// rate makes n requests to addr one after another and returns the
		// requests per second and how many failed (and were made again).
		rate := func(addr string, n int) (float64, int) {
			failed := 0
			start := time.Now()
			for range n {
				for {
					if _, err := get(cl.Ctx, addr); err == nil {
						break
					}
					failed++
					if failed > n {
						b.Fatalf("GET %s keeps failing", addr)
					}
				}
			}
			return float64(n) / time.Since(start).Seconds(), failed
		}
		var viaSvc, direct float64
		var svcFailed, directFailed int
		for range 5 {
			r, f := rate(net.JoinHostPort(svcIP, "80"), 200)
			viaSvc, svcFailed = viaSvc+r, svcFailed+f
			r, f = rate(net.JoinHostPort(podIP, "8080"), 200)
			direct, directFailed = direct+r, directFailed+f
		}
		b.ReportMetric(viaSvc/5, "clusterip-conn/s")
		b.ReportMetric(direct/5, "direct-conn/s")
		b.ReportMetric(float64(svcFailed), "clusterip-failed")
		b.ReportMetric(float64(directFailed), "direct-failed")
		b.ReportMetric(viaSvc/5, "clusterip-conn/s")
		b.ReportMetric(direct/5, "direct-conn/s")
		b.ReportMetric(viaSvc/direct, "clusterip/direct")
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
