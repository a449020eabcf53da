package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffdev/skiff/apiserver"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/kubelet/kubelettest"
)

func TestMain(m *testing.M) { kubelettest.Main(m) }

// Three real nodes, each its own network namespace on a private LAN: a
// pod on one node reaches pods on the others by their pod addresses
// (host-gw routes made by each kubelet), and logs and exec reach every
// node's kubelet.
func TestPodsAcrossNodes(t *testing.T) {
	var lan *kubelettest.Cluster
	srv := testenv.StartServer(t, func(cfg *apiserver.Config) {
		cfg.KubeletDialer = func(ctx context.Context, addr string) (net.Conn, error) { return lan.Dial(ctx, addr) }
	})
	c := testenv.NewClient(t, srv.Addr())
	ctx := testenv.Context(t)
	lan = kubelettest.StartCluster(t, srv.Addr(), 3)
	for _, n := range lan.Nodes {
		n.WaitReady(c)
	}

	var ips []string
	for i, n := range lan.Nodes {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("web-%d", i), Namespace: ns},
			Spec: corev1.PodSpec{
				NodeName:                      n.Name,
				TerminationGracePeriodSeconds: ptr.To[int64](0),
				Containers: []corev1.Container{{
					Name: "web", Image: lan.Image, ImagePullPolicy: corev1.PullIfNotPresent,
					Command: []string{"sh", "-c", fmt.Sprintf("echo web-%d > /tmp/index.html; exec httpd -f -p 8080 -h /tmp", i)},
				}},
			},
		}
		if _, err := c.Pods(ns).Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	for i := range lan.Nodes {
		name := fmt.Sprintf("web-%d", i)
		var ip string
		testenv.Eventually(t, 90*time.Second, name+" to run", func() (bool, error) {
			p, err := c.Pods(ns).Get(ctx, name)
			if err != nil {
				return false, err
			}
			ip = p.Status.PodIP
			return p.Status.Phase == corev1.PodRunning && ip != "", nil
		})
		if want := fmt.Sprintf("10.244.%d.", i+1); !strings.HasPrefix(ip, want) {
			t.Errorf("%s has address %s, want one of its node's pod CIDR %s0/24", name, ip, want)
		}
		ips = append(ips, ip)
	}
	// From the pod on node 0, every other pod by its address.
	for i := 1; i < len(ips); i++ {
		want := fmt.Sprintf("web-%d", i)
		testenv.Eventually(t, 30*time.Second, "web-0 to reach "+want, func() (bool, error) {
			var out bytes.Buffer
			// (busybox's own wget -T crashes; the context bounds a try.)
			try, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			code, err := c.PodExec(try, ns, "web-0", client.ExecOptions{
				Command: []string{"wget", "-q", "-O", "-", "http://" + ips[i] + ":8080/index.html"},
				Stdout:  &out,
			})
			if err != nil {
				return false, err
			}
			return code == 0 && strings.TrimSpace(out.String()) == want, fmt.Errorf("exit %d, output %q", code, out.String())
		})
	}
	// An address of the cluster CIDR on no node fails at once.
	var out bytes.Buffer
	try, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	code, err := c.PodExec(try, ns, "web-0", client.ExecOptions{
		Command: []string{"sh", "-c", "wget -q -O - http://10.244.200.1:8080/ 2>&1; echo exit=$?"},
		Stdout:  &out,
	})
	if err != nil || code != 0 || strings.Contains(out.String(), "exit=0") {
		t.Errorf("a pod address on no node: got %q (code %d, err %v), want a failure", out.String(), code, err)
	}
}
