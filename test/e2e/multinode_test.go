package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/skiffdev/skiff/apiserver"
	"github.com/skiffdev/skiff/apiserver/auth"
	"github.com/skiffdev/skiff/controllers"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/nodetest"
	"github.com/skiffdev/skiff/internal/nsutil"
	"github.com/skiffdev/skiff/internal/testenv"
)

func TestMain(m *testing.M) { nodetest.Main(m) }

// startRealNodes starts an API server, the scheduler, the controllers and
// n real nodes (kubelet and proxy each) on a private LAN.
func startRealNodes(t testing.TB, n int) (*cluster, *nodetest.Cluster) {
	t.Helper()
	var lan *nodetest.Cluster
	cl := &cluster{Cluster: realNodesCluster(t, &lan)}
	cl.kubeconfig = testenv.AdminKubeconfig(t, cl.Server)
	lan = nodetest.StartCluster(t, cl.Server, n)
	for _, node := range lan.Nodes {
		node.WaitReady(cl.Client)
	}
	cl.startScheduler()
	// The controllers with the default node monitor grace period: real
	// kubelets renew their Leases every 10 s, and the stories of
	// cluster_test.go use a 2 s period made for simulated nodes.
	cfg := controllers.DefaultConfig()
	cfg.Connection = cl.ConfigAs(auth.ControllersUser)
	cfg.LeaderElection.LeaderElect = false
	cl.Start("controllers", func(ctx context.Context) error { return controllers.Run(ctx, cfg) })
	return cl, lan
}

// realNodesCluster starts a test cluster for stories on the real nodes
// *lan (started after it): the API server reaches their kubelets through
// the LAN, and the story has ten minutes.
func realNodesCluster(t testing.TB, lan **nodetest.Cluster, opts ...func(*apiserver.Config)) *testenv.Cluster {
	t.Helper()
	nodetest.SkipIfUnavailable(t)
	return testenv.NewCluster(t,
		testenv.WithServer(func(cfg *apiserver.Config) {
			cfg.KubeletDialer = func(ctx context.Context, addr string) (net.Conn, error) { return (*lan).Dial(ctx, addr) }
			for _, o := range opts {
				o(cfg)
			}
		}),
		testenv.WithTimeout(10*time.Minute),
		testenv.WithLogger(slog.New(slog.DiscardHandler)))
}

// Three real nodes, each its own network namespace on a private LAN: a
// pod on one node reaches pods on the others by their pod addresses
// (host-gw routes made by each kubelet), and logs and exec reach every
// node's kubelet.
func TestPodsAcrossNodes(t *testing.T) {
	var lan *nodetest.Cluster
	cl := realNodesCluster(t, &lan)
	c, ctx := cl.Client, cl.Ctx
	lan = nodetest.StartCluster(t, cl.Server, 3)
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
		cl.Await(90*time.Second, name+" to run", func() (bool, error) {
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
		cl.Await(30*time.Second, "web-0 to reach "+want, func() (bool, error) {
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

// A Service on three real nodes: its ClusterIP, reached from a pod on one
// node, spreads connections over the ready pods of all nodes; its NodePort
// answers on every node's address; a Service with no endpoints refuses at
// once.
func TestServiceAcrossNodes(t *testing.T) {
	cl, lan := startRealNodes(t, 3)

	labels := map[string]string{"app": "web"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](0),
					Containers: []corev1.Container{{
						Name: "web", Image: lan.Image, ImagePullPolicy: corev1.PullIfNotPresent,
						Command: []string{"sh", "-c", "hostname > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"},
						Ports:   []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/index.html", Port: intstr.FromString("http")}},
							PeriodSeconds: 1,
						},
					}},
				},
			},
		},
	}
	if _, err := cl.Client.Deployments(ns).Create(cl.Ctx, d); err != nil {
		t.Fatal(err)
	}
	svc := func(name, ip string, nodePort int32, sel map[string]string) *corev1.Service {
		s := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: corev1.ServiceSpec{
				Selector:  sel,
				ClusterIP: ip,
				Ports:     []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP}},
			},
		}
		if nodePort != 0 {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = nodePort
		}
		return s
	}
	for _, s := range []*corev1.Service{svc("web", "10.96.0.10", 30080, labels), svc("empty", "10.96.0.11", 0, map[string]string{"app": "nothing"})} {
		if _, err := cl.Client.Services(ns).Create(cl.Ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	clientPod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "client", Namespace: ns},
		Spec: corev1.PodSpec{
			NodeName:                      lan.Nodes[0].Name,
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			Containers:                    []corev1.Container{{Name: "c", Image: lan.Image, ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sleep", "3600"}}},
		},
	}
	if _, err := cl.Client.Pods(ns).Create(cl.Ctx, clientPod); err != nil {
		t.Fatal(err)
	}
	cl.Await(90*time.Second, "the web deployment's 3 pods to be ready, on 3 nodes", func() (bool, error) {
		pods, err := cl.Client.Pods(ns).List(cl.Ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err
		}
		nodes := map[string]bool{}
		for _, p := range pods.Items {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					nodes[p.Spec.NodeName] = true
				}
			}
		}
		return len(nodes) == 3, nil
	})
	cl.Await(60*time.Second, "the client pod to run", func() (bool, error) {
		p, err := cl.Client.Pods(ns).Get(cl.Ctx, "client")
		return err == nil && p.Status.Phase == corev1.PodRunning, err
	})
	// fetch runs wget in the client pod; the output is the page, or
	// wget's complaint.
	fetch := func(url string) (string, int) {
		var out bytes.Buffer
		try, cancel := context.WithTimeout(cl.Ctx, 10*time.Second)
		defer cancel()
		code, err := cl.Client.PodExec(try, ns, "client", client.ExecOptions{
			Command: []string{"sh", "-c", "wget -q -O - " + url + " 2>&1"},
			Stdout:  &out,
		})
		if err != nil {
			return err.Error(), -1
		}
		return strings.TrimSpace(out.String()), code
	}

	// The ClusterIP spreads connections over every ready pod.
	seen := map[string]int{}
	cl.Await(60*time.Second, "the ClusterIP to reach all three pods", func() (bool, error) {
		body, code := fetch("http://10.96.0.10/index.html")
		if code == 0 {
			seen[body]++
		}
		return len(seen) == 3, fmt.Errorf("seen %v; last: %q (%d)", seen, body, code)
	})
	// The NodePort answers on another node's address.
	nodeIP := lan.Nodes[2].Config.NodeIP
	cl.Await(30*time.Second, "the NodePort to answer on "+nodeIP, func() (bool, error) {
		body, code := fetch("http://" + nodeIP + ":30080/index.html")
		return code == 0 && seen[body] > 0, fmt.Errorf("%q (%d)", body, code)
	})
	// Hairpin: a pod reaches itself through its own Service.
	pods, err := cl.Client.Pods(ns).List(cl.Ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	self := pods.Items[1].Name
	cl.Await(30*time.Second, self+" to reach itself through its Service", func() (bool, error) {
		var out bytes.Buffer
		try, cancel := context.WithTimeout(cl.Ctx, 10*time.Second)
		defer cancel()
		code, err := cl.Client.PodExec(try, ns, self, client.ExecOptions{
			Command: []string{"sh", "-c", "wget -q -O - http://10.96.0.10/index.html 2>&1"},
			Stdout:  &out,
		})
		if err != nil {
			return false, err
		}
		return code == 0 && strings.TrimSpace(out.String()) == self, fmt.Errorf("%q (exit %d)", out.String(), code)
	})

	// A pod that turns unready leaves the rotation, and comes back.
	victim := pods.Items[0]
	exec := func(pod string, cmd ...string) {
		t.Helper()
		if code, err := cl.Client.PodExec(cl.Ctx, ns, pod, client.ExecOptions{Command: cmd}); err != nil || code != 0 {
			t.Fatalf("exec %v in %s: code %d, %v", cmd, pod, code, err)
		}
	}
	ready := func(want bool) func() (bool, error) {
		return func() (bool, error) {
			p, err := cl.Client.Pods(ns).Get(cl.Ctx, victim.Name)
			if err != nil {
				return false, err
			}
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady {
					return (c.Status == corev1.ConditionTrue) == want, nil
				}
			}
			return false, nil
		}
	}
	exec(victim.Name, "rm", "/tmp/index.html")
	cl.Await(30*time.Second, victim.Name+" to turn unready", ready(false))
	// Once the proxies have caught up, 30 requests in a row never reach
	// it (with it still in rotation, the chance of that is (2/3)^30).
	cl.Await(30*time.Second, "the ClusterIP to stop sending to "+victim.Name, func() (bool, error) {
		for range 30 {
			body, code := fetch("http://10.96.0.10/index.html")
			if code != 0 || body == victim.Name {
				return false, fmt.Errorf("got %q (exit %d)", body, code)
			}
		}
		return true, nil
	})
	exec(victim.Name, "sh", "-c", "hostname > /tmp/index.html")
	cl.Await(30*time.Second, victim.Name+" to be ready again", ready(true))
	cl.Await(30*time.Second, "the ClusterIP to reach "+victim.Name+" again", func() (bool, error) {
		body, _ := fetch("http://10.96.0.10/index.html")
		return body == victim.Name, nil
	})

	// Scaling to one pod changes the rules on every node: the NodePort of
	// each node now reaches that one pod only.
	scale, err := cl.Client.Deployments(ns).GetScale(cl.Ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	scale.Spec.Replicas = 1
	if _, err := cl.Client.Deployments(ns).UpdateScale(cl.Ctx, "web", scale); err != nil {
		t.Fatal(err)
	}
	cl.Await(60*time.Second, "one web pod left", func() (bool, error) {
		pods, err := cl.Client.Pods(ns).List(cl.Ctx, metav1.ListOptions{LabelSelector: "app=web"})
		return err == nil && len(pods.Items) == 1, err
	})
	pods, err = cl.Client.Pods(ns).List(cl.Ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	survivor := pods.Items[0].Name
	for _, n := range lan.Nodes {
		url := "http://" + n.Config.NodeIP + ":30080/index.html"
		cl.Await(30*time.Second, "the NodePort of "+n.Name+" to reach only "+survivor, func() (bool, error) {
			for range 10 {
				body, code := fetch(url)
				if code != 0 || body != survivor {
					return false, fmt.Errorf("got %q (exit %d)", body, code)
				}
			}
			return true, nil
		})
	}

	// A Service without endpoints refuses at once.
	body, code := fetch("http://10.96.0.11/")
	if code == 0 || !strings.Contains(body, "refused") {
		t.Errorf("a Service without endpoints: got %q (exit %d), want connection refused", body, code)
	}
}

// The node agent (kubelet and proxy) killed and started again while a pod
// on that node keeps connecting to a Service: no connection fails, since
// the rules stay in the kernel and the new proxy replaces them in one
// transaction.
func TestProxyRestartUnderTraffic(t *testing.T) {
	cl, lan := startRealNodes(t, 2)
	pod := func(name, node string, labels map[string]string, cmd ...string) {
		t.Helper()
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
			Spec: corev1.PodSpec{
				NodeName:                      node,
				TerminationGracePeriodSeconds: ptr.To[int64](0),
				Containers:                    []corev1.Container{{Name: "c", Image: lan.Image, ImagePullPolicy: corev1.PullIfNotPresent, Command: cmd}},
			},
		}
		if _, err := cl.Client.Pods(ns).Create(cl.Ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	pod("web", lan.Nodes[1].Name, map[string]string{"app": "web"}, "sh", "-c", "hostname > /tmp/index.html; exec httpd -f -p 8080 -h /tmp")
	pod("client", lan.Nodes[0].Name, nil, "sleep", "3600")
	if _, err := cl.Client.Services(ns).Create(cl.Ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}); err != nil {
		t.Fatal(err)
	}
	var target, clientNS string
	cl.Await(90*time.Second, "the client to reach the Service", func() (bool, error) {
		svc, err := cl.Client.Services(ns).Get(cl.Ctx, "web")
		if err != nil {
			return false, err
		}
		p, err := cl.Client.Pods(ns).Get(cl.Ctx, "client")
		if err != nil || p.Status.Phase != corev1.PodRunning {
			return false, err
		}
		target = net.JoinHostPort(svc.Spec.ClusterIP, "80")
		clientNS = lan.Nodes[0].Config.StateDir + "/runtime/sandboxes/" + string(p.UID) + "/net"
		return connectOnce(cl.Ctx, clientNS, target) == nil, nil
	})

	// Connect continuously from the client pod's network namespace.
	stop := make(chan struct{})
	done := make(chan struct{})
	var attempts, failures int
	var firstErr error
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			attempts++
			if err := connectOnce(cl.Ctx, clientNS, target); err != nil {
				failures++
				if firstErr == nil {
					firstErr = err
				}
			}
		}
	}()
	lan.Nodes[0].Restart()
	lan.Nodes[0].WaitReady(cl.Client)
	// Until the new agent has certainly synced its table: a new Service
	// works through it.
	if _, err := cl.Client.Services(ns).Create(cl.Ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web2", Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}); err != nil {
		t.Fatal(err)
	}
	cl.Await(60*time.Second, "the restarted proxy to serve a new Service", func() (bool, error) {
		svc, err := cl.Client.Services(ns).Get(cl.Ctx, "web2")
		if err != nil {
			return false, err
		}
		return connectOnce(cl.Ctx, clientNS, net.JoinHostPort(svc.Spec.ClusterIP, "80")) == nil, nil
	})
	close(stop)
	<-done
	t.Logf("%d connections during the restart, %d failed", attempts, failures)
	if failures > 0 {
		t.Errorf("%d of %d connections through the Service failed while the agent restarted (first: %v)", failures, attempts, firstErr)
	}
}

// connectOnce makes one HTTP request to addr from inside a pod's network
// namespace.
func connectOnce(ctx context.Context, netns, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := nsutil.Dial(ctx, netns, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "GET /index.html HTTP/1.0\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}
