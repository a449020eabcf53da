// Package servertest runs the kubelet's API (kubelet/server) over a fake
// Host, so that the API server's pod proxy and skiffctl's logs and exec
// can be tested end to end without containers, and without root.
//
// A test starts the server on 127.0.0.1:0 with Start (TLS with a
// certificate of the test's CA, as a real kubelet), registers a Node
// whose InternalIP is 127.0.0.1 and whose kubelet port is the server's
// (RegisterNode), and creates pods bound to it that look running
// (RunningPod). Logs are real files written with kubelet/logs.Writer
// (Host.Log); exec runs whatever Host.ExecFunc says.
package servertest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/pki"
	"github.com/skiffdev/skiff/kubelet/logs"
	"github.com/skiffdev/skiff/kubelet/server"
)

// Host is a fake server.Host.
type Host struct {
	// ExecFunc runs every exec; nil fails each with an error.
	ExecFunc func(ctx context.Context, namespace, pod, container string, opts server.ExecOptions) (int, error)

	dir string
	// mu guards logs.
	mu   sync.Mutex
	logs map[string]*Log
}

// NewHost returns a Host that keeps its log files in a temporary
// directory of t.
func NewHost(t testing.TB) *Host {
	return &Host{dir: t.TempDir(), logs: map[string]*Log{}}
}

// Log is the log of one run of a container.
type Log struct {
	// Path is the log file.
	Path   string
	w      *logs.Writer
	exited atomic.Bool
}

// Stdout and Stderr are where the run "prints".
func (l *Log) Stdout(text string) { _, _ = l.w.Stream("stdout").Write([]byte(text)) }
func (l *Log) Stderr(text string) { _, _ = l.w.Stream("stderr").Write([]byte(text)) }

// Exit closes the log and marks the run as ended: a follower stops after
// the last line.
func (l *Log) Exit() {
	_ = l.w.Close()
	l.exited.Store(true)
}

func logKey(namespace, pod, container string, previous bool) string {
	return fmt.Sprintf("%s/%s/%s/%t", namespace, pod, container, previous)
}

// Log creates the log of a container's current (or previous) run.
func (h *Host) Log(t testing.TB, namespace, pod, container string, previous bool) *Log {
	t.Helper()
	key := logKey(namespace, pod, container, previous)
	path := filepath.Join(h.dir, namespace, pod, container, fmt.Sprintf("%t.log", previous))
	w, err := logs.NewWriter(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	l := &Log{Path: path, w: w}
	t.Cleanup(func() { _ = w.Close() })
	h.mu.Lock()
	defer h.mu.Unlock()
	h.logs[key] = l
	return l
}

// LogPath implements server.Host. A log that was not created is an
// error: for a previous run Kubernetes' BadRequest, otherwise one wrapping
// fs.ErrNotExist.
func (h *Host) LogPath(namespace, pod, container string, previous bool) (string, func() bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	l, ok := h.logs[logKey(namespace, pod, container, previous)]
	if !ok && previous {
		return "", nil, apierrors.NewBadRequest(fmt.Sprintf("previous terminated container %q in pod %q not found", container, pod))
	}
	if !ok {
		return "", nil, fmt.Errorf("no log for container %q of pod %s/%s: %w", container, namespace, pod, fs.ErrNotExist)
	}
	return l.Path, l.exited.Load, nil
}

// Exec implements server.Host.
func (h *Host) Exec(ctx context.Context, namespace, pod, container string, opts server.ExecOptions) (int, error) {
	if h.ExecFunc == nil {
		return -1, errors.New("exec is not supported by this host")
	}
	return h.ExecFunc(ctx, namespace, pod, container, opts)
}

// Start serves host on 127.0.0.1:0 until the test ends and returns the
// port. The server's certificate is signed by servingCA for node
// (covering 127.0.0.1), and it accepts clients with certificates of
// clientCA, as a real kubelet does: the API server of a test whose
// kubelet serving CA and cluster CA these are (srv.KubeletServingCA(),
// srv.CA()) reaches it as node's kubelet.
func Start(t testing.TB, host server.Host, servingCA, clientCA *pki.CA, node string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := servingCA.Issue(pki.Leaf{
		CommonName: pki.NodeUserPrefix + node, Organization: []string{pki.NodesGroup},
		IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Usage: pki.ServerAuth,
	}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := kp.TLS()
	if err != nil {
		t.Fatal(err)
	}
	s := server.New(context.Background(), host, &tls.Config{Certificates: []tls.Certificate{*cert}, ClientCAs: clientCA.Pool()})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Serve(ln); err != nil {
			t.Errorf("kubelet server: %v", err)
		}
	}()
	t.Cleanup(func() {
		s.Stop()
		<-done
	})
	return ln.Addr().(*net.TCPAddr).Port
}

func context10s(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// RegisterNode creates a Node whose kubelet is at 127.0.0.1:port.
func RegisterNode(t testing.TB, c *client.Client, name string, port int) *corev1.Node {
	t.Helper()
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeHostName, Address: name},
				{Type: corev1.NodeInternalIP, Address: "127.0.0.1"},
			},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(port)}},
		},
	}
	out, err := c.Nodes().Create(context10s(t), node)
	if err != nil {
		t.Fatalf("create node %s: %v", name, err)
	}
	return out
}

// RunningPod creates a pod with the named containers, binds it to node
// (unless node is ""), and reports every container running.
func RunningPod(t testing.TB, c *client.Client, namespace, name, node string, containers ...string) *corev1.Pod {
	t.Helper()
	ctx := context10s(t)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
	for _, n := range containers {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: n, Image: "busybox"})
	}
	pod, err := c.Pods(namespace).Create(ctx, pod)
	if err != nil {
		t.Fatalf("create pod %s: %v", name, err)
	}
	if node == "" {
		return pod
	}
	err = c.Pods(namespace).Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Target:     corev1.ObjectReference{Kind: "Node", Name: node},
	})
	if err != nil {
		t.Fatalf("bind pod %s: %v", name, err)
	}
	if pod, err = c.Pods(namespace).Get(ctx, name); err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	pod.Status.Phase = corev1.PodRunning
	pod.Status.ContainerStatuses = nil
	for _, n := range containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: n, Image: "busybox", Ready: true, Started: new(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	if pod, err = c.Pods(namespace).UpdateStatus(ctx, pod); err != nil {
		t.Fatalf("pod %s status: %v", name, err)
	}
	return pod
}
