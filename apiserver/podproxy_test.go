package apiserver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
	"github.com/skiffdev/skiff/kubelet/server"
	"github.com/skiffdev/skiff/kubelet/server/servertest"
)

// syncBuffer is a bytes.Buffer that a stream writes while the test reads.
type syncBuffer struct {
	// mu guards b.
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proxyCluster is an API server, a fake kubelet on loopback and its Node.
func proxyCluster(t *testing.T) (*client.Client, *servertest.Host) {
	t.Helper()
	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	host := servertest.NewHost(t)
	port := servertest.Start(t, host, srv.KubeletServingCA(), srv.CA(), "node-1")
	servertest.RegisterNode(t, c, "node-1", port)
	return c, host
}

func TestPodLogs(t *testing.T) {
	c, host := proxyCluster(t)
	ctx := testenv.Context(t)
	servertest.RunningPod(t, c, "default", "web", "node-1", "app")
	cur := host.Log(t, "default", "web", "app", false)
	cur.Stdout("one\ntwo\n")
	cur.Stderr("oops\n")
	cur.Stdout("three\n")
	prev := host.Log(t, "default", "web", "app", true)
	prev.Stdout("before the restart\n")
	prev.Exit()

	logs := func(opts *corev1.PodLogOptions) (string, error) {
		var out bytes.Buffer
		err := c.PodLogs(ctx, "default", "web", opts, &out)
		return out.String(), err
	}
	for _, tc := range []struct {
		name string
		opts *corev1.PodLogOptions
		want string
	}{
		{"all", nil, "one\ntwo\noops\nthree\n"},
		{"container named", &corev1.PodLogOptions{Container: "app"}, "one\ntwo\noops\nthree\n"},
		{"tail", &corev1.PodLogOptions{TailLines: new(int64(2))}, "oops\nthree\n"},
		{"limit", &corev1.PodLogOptions{LimitBytes: new(int64(5))}, "one\nt"},
		{"since", &corev1.PodLogOptions{SinceSeconds: new(int64(3600))}, "one\ntwo\noops\nthree\n"},
		{"since time in the future", &corev1.PodLogOptions{SinceTime: &metav1.Time{Time: time.Now().Add(time.Hour)}}, ""},
		{"previous", &corev1.PodLogOptions{Previous: true}, "before the restart\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := logs(tc.opts)
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	t.Run("timestamps", func(t *testing.T) {
		got, err := logs(&corev1.PodLogOptions{Timestamps: true, TailLines: new(int64(1))})
		ts, text, _ := strings.Cut(got, " ")
		if err != nil || text != "three\n" {
			t.Fatalf("got %q, %v", got, err)
		}
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Errorf("timestamp %q: %v", ts, err)
		}
	})
	t.Run("invalid options", func(t *testing.T) {
		_, err := logs(&corev1.PodLogOptions{SinceSeconds: new(int64(5)), SinceTime: &metav1.Time{Time: time.Now()}})
		if !apierrors.IsBadRequest(err) {
			t.Errorf("got %v, want BadRequest", err)
		}
	})
}

func TestPodLogsFollow(t *testing.T) {
	c, host := proxyCluster(t)
	ctx := testenv.Context(t)
	servertest.RunningPod(t, c, "default", "web", "node-1", "app")
	l := host.Log(t, "default", "web", "app", false)
	l.Stdout("first\n")

	t.Run("until the container exits", func(t *testing.T) {
		var out syncBuffer
		done := make(chan error, 1)
		go func() { done <- c.PodLogs(ctx, "default", "web", &corev1.PodLogOptions{Follow: true}, &out) }()
		wait.For(t, 10*time.Second, "the first line", func() (bool, error) { return out.String() == "first\n", nil })
		l.Stdout("second\n")
		wait.For(t, 10*time.Second, "the second line", func() (bool, error) { return out.String() == "first\nsecond\n", nil })
		select {
		case err := <-done:
			t.Fatalf("follow ended early: %v", err)
		default:
		}
		l.Stdout("last\n")
		l.Exit()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := out.String(); got != "first\nsecond\nlast\n" {
			t.Errorf("got %q", got)
		}
	})

	t.Run("until cancelled", func(t *testing.T) {
		servertest.RunningPod(t, c, "default", "api", "node-1", "app")
		l := host.Log(t, "default", "api", "app", false)
		l.Stdout("hello\n")
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var out syncBuffer
		done := make(chan error, 1)
		go func() { done <- c.PodLogs(ctx, "default", "api", &corev1.PodLogOptions{Follow: true}, &out) }()
		wait.For(t, 10*time.Second, "the first line", func() (bool, error) { return out.String() == "hello\n", nil })
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	})
}

func TestPodExec(t *testing.T) {
	c, host := proxyCluster(t)
	ctx := testenv.Context(t)
	servertest.RunningPod(t, c, "default", "web", "node-1", "app", "sidecar")
	sizes := make(chan server.TerminalSize, 10)
	started, stopped := make(chan struct{}), make(chan struct{})
	host.ExecFunc = func(ctx context.Context, ns, pod, container string, opts server.ExecOptions) (int, error) {
		switch opts.Args[0] {
		case "cat": // echo stdin, report where we are
			fmt.Fprintf(opts.Stderr, "%s/%s/%s\n", ns, pod, container)
			if opts.Stdin == nil {
				return 0, nil
			}
			_, err := io.Copy(opts.Stdout, opts.Stdin)
			return 0, err
		case "exit":
			var code int
			fmt.Sscan(opts.Args[1], &code)
			return code, nil
		case "tty":
			if !opts.TTY || opts.Stderr != nil {
				return 1, errors.New("no terminal")
			}
			// Report sizes until stdin ends.
			go func() {
				for sz := range opts.Resize {
					sizes <- sz
				}
			}()
			_, err := io.Copy(opts.Stdout, opts.Stdin)
			return 0, err
		case "wait":
			close(started)
			<-ctx.Done()
			close(stopped)
			return -1, ctx.Err()
		case "broken":
			fmt.Fprint(opts.Stdout, "partial")
			return -1, errors.New(`exec: "broken": executable file not found in $PATH`)
		}
		return -1, fmt.Errorf("unknown command %q", opts.Args[0])
	}
	exec := func(ctx context.Context, opts client.ExecOptions) (string, string, int, error) {
		var out, errOut bytes.Buffer
		opts.Stdout, opts.Stderr = &out, &errOut
		code, err := c.PodExec(ctx, "default", "web", opts)
		return out.String(), errOut.String(), code, err
	}

	t.Run("stdin echo", func(t *testing.T) {
		out, errOut, code, err := exec(ctx, client.ExecOptions{Container: "sidecar", Command: []string{"cat"}, Stdin: strings.NewReader("hello\nworld\n")})
		if err != nil || code != 0 || out != "hello\nworld\n" || errOut != "default/web/sidecar\n" {
			t.Errorf("got %q, %q, %d, %v", out, errOut, code, err)
		}
	})
	t.Run("without stdin", func(t *testing.T) {
		out, _, code, err := exec(ctx, client.ExecOptions{Container: "app", Command: []string{"cat"}})
		if err != nil || code != 0 || out != "" {
			t.Errorf("got %q, %d, %v", out, code, err)
		}
	})
	t.Run("exit code", func(t *testing.T) {
		_, _, code, err := exec(ctx, client.ExecOptions{Container: "app", Command: []string{"exit", "3"}})
		if err != nil || code != 3 {
			t.Errorf("got %d, %v; want 3", code, err)
		}
	})
	t.Run("command fails to run", func(t *testing.T) {
		out, _, _, err := exec(ctx, client.ExecOptions{Container: "app", Command: []string{"broken"}})
		want := `Internal error occurred: error executing command in container: exec: "broken": executable file not found in $PATH`
		if out != "partial" || err == nil || err.Error() != want {
			t.Errorf("got %q, %v; want %q", out, err, want)
		}
	})
	t.Run("tty resize", func(t *testing.T) {
		resize := make(chan client.TerminalSize, 1)
		resize <- client.TerminalSize{Width: 80, Height: 24}
		stdinR, stdinW := io.Pipe()
		type result struct {
			out  string
			code int
			err  error
		}
		done := make(chan result, 1)
		go func() {
			out, _, code, err := exec(ctx, client.ExecOptions{Container: "app", Command: []string{"tty"}, TTY: true, Stdin: stdinR, Resize: resize})
			done <- result{out, code, err}
		}()
		if sz := <-sizes; sz != (server.TerminalSize{Width: 80, Height: 24}) {
			t.Errorf("initial size %v", sz)
		}
		resize <- client.TerminalSize{Width: 100, Height: 40}
		if sz := <-sizes; sz != (server.TerminalSize{Width: 100, Height: 40}) {
			t.Errorf("resized to %v", sz)
		}
		fmt.Fprint(stdinW, "typed")
		stdinW.Close()
		r := <-done
		if r.err != nil || r.code != 0 || r.out != "typed" {
			t.Errorf("got %q, %d, %v", r.out, r.code, r.err)
		}
	})
	t.Run("cancel stops the command", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			_, _, _, err := exec(ctx, client.ExecOptions{Container: "app", Command: []string{"wait"}})
			done <- err
		}()
		<-started
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
		<-stopped // the kubelet's context ended too

	})
}

func TestPodStreamErrors(t *testing.T) {
	c, host := proxyCluster(t)
	ctx := testenv.Context(t)
	host.ExecFunc = func(context.Context, string, string, string, server.ExecOptions) (int, error) { return 0, nil }
	servertest.RunningPod(t, c, "default", "two", "node-1", "a", "b")
	servertest.RunningPod(t, c, "default", "unbound", "", "app")
	servertest.RunningPod(t, c, "default", "lonely", "node-2", "app")
	waiting := servertest.RunningPod(t, c, "default", "waiting", "node-1", "app")
	waiting.Status.ContainerStatuses[0].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
	if _, err := c.Pods("default").UpdateStatus(ctx, waiting); err != nil {
		t.Fatal(err)
	}
	def := servertest.RunningPod(t, c, "default", "defaulted", "node-1", "a", "b")
	def.Annotations = map[string]string{"kubectl.kubernetes.io/default-container": "b"}
	if _, err := c.Pods("default").Update(ctx, def); err != nil {
		t.Fatal(err)
	}
	host.Log(t, "default", "defaulted", "b", false).Stdout("from b\n")

	var out bytes.Buffer
	if err := c.PodLogs(ctx, "default", "defaulted", nil, &out); err != nil || out.String() != "from b\n" {
		t.Errorf("default container: got %q, %v", out.String(), err)
	}

	for _, tc := range []struct {
		pod, container string
		previous       bool
		want           string
		is             func(error) bool
	}{
		{"nope", "", false, `pods "nope" not found`, apierrors.IsNotFound},
		{"two", "", false, `a container name must be specified for pod two, choose one of: [a b]`, apierrors.IsBadRequest},
		{"two", "c", false, `container c is not valid for pod two`, apierrors.IsBadRequest},
		{"unbound", "", false, `pod unbound does not have a host assigned`, apierrors.IsBadRequest},
		{"waiting", "", false, `container "app" in pod "waiting" is waiting to start: ContainerCreating`, apierrors.IsBadRequest},
		{"two", "a", true, `previous terminated container "a" in pod "two" not found`, apierrors.IsBadRequest},
		{"lonely", "", false, `nodes "node-2" not found`, apierrors.IsNotFound},
	} {
		name := tc.pod + "/" + tc.container
		t.Run("logs "+name, func(t *testing.T) {
			err := c.PodLogs(ctx, "default", tc.pod, &corev1.PodLogOptions{Container: tc.container, Previous: tc.previous}, io.Discard)
			if err == nil || err.Error() != tc.want || !tc.is(err) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
		if tc.previous {
			continue
		}
		t.Run("exec "+name, func(t *testing.T) {
			_, err := c.PodExec(ctx, "default", tc.pod, client.ExecOptions{Container: tc.container, Command: []string{"true"}})
			if err == nil || err.Error() != tc.want || !tc.is(err) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}

	t.Run("no log on the kubelet", func(t *testing.T) {
		err := c.PodLogs(ctx, "default", "two", &corev1.PodLogOptions{Container: "a"}, io.Discard)
		if !apierrors.IsNotFound(err) || !strings.Contains(err.Error(), `no log for container "a"`) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("no command", func(t *testing.T) {
		_, err := c.PodExec(ctx, "default", "two", client.ExecOptions{Container: "a"})
		if !apierrors.IsBadRequest(err) || err.Error() != "you must specify at least one command for the container" {
			t.Errorf("got %v", err)
		}
	})
	t.Run("kubelet unreachable", func(t *testing.T) {
		// A port nothing listens on: take one and give it back.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		servertest.RegisterNode(t, c, "node-3", port)
		servertest.RunningPod(t, c, "default", "gone", "node-3", "app")
		err = c.PodLogs(ctx, "default", "gone", nil, io.Discard)
		if !apierrors.IsServiceUnavailable(err) || !strings.Contains(err.Error(), `cannot reach the kubelet of node "node-3" at 127.0.0.1:`) {
			t.Errorf("got %v", err)
		}
	})
}
