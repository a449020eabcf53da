package prober

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/wait"
)

const waitFor = 10 * time.Second

// fakeExec answers exec probes by command name (args[0]) and counts the
// calls per name.
type fakeExec struct {
	// mu guards answers and calls.
	mu      sync.Mutex
	answers map[string]func(ctx context.Context) (int, []byte, error)
	calls   map[string]int
}

func newFakeExec() *fakeExec {
	return &fakeExec{answers: map[string]func(context.Context) (int, []byte, error){}, calls: map[string]int{}}
}

// set makes command name exit with code and print out.
func (f *fakeExec) set(name string, code int, out string) {
	f.setFunc(name, func(context.Context) (int, []byte, error) { return code, []byte(out), nil })
}

func (f *fakeExec) setFunc(name string, fn func(context.Context) (int, []byte, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[name] = fn
}

func (f *fakeExec) count(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[name]
}

func (f *fakeExec) exec(ctx context.Context, _ string, args []string) (int, []byte, error) {
	f.mu.Lock()
	f.calls[args[0]]++
	fn := f.answers[args[0]]
	f.mu.Unlock()
	if fn == nil {
		return 127, []byte(args[0] + ": not found"), nil
	}
	return fn(ctx)
}

// loopbackDial stands in for dialling inside the pod's netns: the tests'
// pods have the IP 127.0.0.1.
func loopbackDial(ctx context.Context, _, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// changes counts onChange calls.
type changes struct{ n atomic.Int64 }

func (c *changes) onChange(types.UID) { c.n.Add(1) }

type fixture struct {
	t       *testing.T
	clk     *clocktesting.FakeClock
	exec    *fakeExec
	changes *changes
	m       *Manager
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, clk: clocktesting.NewFakeClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)), exec: newFakeExec(), changes: &changes{}}
	f.m = NewManager(logging.Into(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil))), f.exec.exec, loopbackDial, f.changes.onChange, f.clk)
	t.Cleanup(f.m.Close)
	return f
}

// settle waits until exactly n workers wait on the clock: every worker
// that is still running has recorded its last result.
func (f *fixture) settle(n int) {
	f.t.Helper()
	wait.For(f.t, waitFor, fmt.Sprintf("%d waiting workers", n), func() (bool, error) {
		return f.clk.Waiters() == n, nil
	})
}

// tick waits until n workers wait, then moves the clock on by d.
func (f *fixture) tick(n int, d time.Duration) {
	f.t.Helper()
	f.settle(n)
	f.clk.Step(d)
}

// waitChanges waits until onChange has been called n times. onChange
// runs after the result is visible, so a test waits for it.
func (f *fixture) waitChanges(n int64) {
	f.t.Helper()
	wait.For(f.t, waitFor, fmt.Sprintf("%d onChange calls", n), func() (bool, error) {
		got := f.changes.n.Load()
		return got == n, fmt.Errorf("%d calls", got)
	})
}

// waitFailed waits until the container's liveness has failed.
func (f *fixture) waitFailed(id string) {
	f.t.Helper()
	wait.For(f.t, waitFor, id+"'s liveness failure", func() (bool, error) {
		failed, _ := f.m.LivenessFailed(id)
		return failed, nil
	})
}

func (f *fixture) add(id string, c *corev1.Container) Target {
	t := Target{Pod: testPod(), Container: c, ContainerID: id, PodIP: "127.0.0.1", StartedAt: f.clk.Now()}
	f.m.Add(t)
	return t
}

func testPod() *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-1"}}
}

func execProbe(name string, period, failureThreshold int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{name}}},
		PeriodSeconds:    period,
		FailureThreshold: failureThreshold,
	}
}

func TestNoProbes(t *testing.T) {
	f := newFixture(t)
	f.add("c1", &corev1.Container{Name: "app"})
	if !f.m.Ready("c1") || !f.m.Started("c1") {
		t.Errorf("Ready, Started = %v, %v; want true, true for a container without probes", f.m.Ready("c1"), f.m.Started("c1"))
	}
	if failed, _ := f.m.LivenessFailed("c1"); failed {
		t.Errorf("LivenessFailed = true, want false")
	}
	if f.m.Ready("unknown") || f.m.Started("unknown") {
		t.Errorf("an unknown container is ready or started")
	}
}

func TestLivenessFailsAtThreshold(t *testing.T) {
	f := newFixture(t)
	f.exec.set("check", 1, "database unreachable\n")
	f.add("c1", &corev1.Container{Name: "app", LivenessProbe: execProbe("check", 10, 3)})

	for i := 1; i <= 2; i++ {
		f.settle(1)
		if got := f.exec.count("check"); got != i {
			t.Fatalf("after %d periods: %d probes, want %d", i-1, got, i)
		}
		if failed, _ := f.m.LivenessFailed("c1"); failed {
			t.Fatalf("liveness failed after %d failures, want only after 3", i)
		}
		f.clk.Step(10 * time.Second)
	}
	// The third failure reaches the threshold; the worker stops.
	f.waitFailed("c1")
	failed, msg := f.m.LivenessFailed("c1")
	if !failed || msg != "Liveness probe failed: database unreachable" {
		t.Errorf("LivenessFailed = %v, %q; want true, %q", failed, msg, "Liveness probe failed: database unreachable")
	}
	f.waitChanges(1)
	if !f.m.Ready("c1") {
		t.Errorf("Ready = false; a container without readiness probe stays ready")
	}

	f.m.Remove("c1")
	if failed, _ := f.m.LivenessFailed("c1"); failed {
		t.Errorf("LivenessFailed after Remove = true, want false")
	}
}

func TestLivenessRecovers(t *testing.T) {
	// Failures that do not reach the threshold in a row are forgotten.
	f := newFixture(t)
	f.exec.set("check", 0, "")
	f.add("c1", &corev1.Container{Name: "app", LivenessProbe: execProbe("check", 5, 2)})
	for _, code := range []int{1, 0, 1} {
		f.settle(1)
		f.exec.set("check", code, "")
		f.clk.Step(5 * time.Second)
	}
	f.settle(1)
	if failed, msg := f.m.LivenessFailed("c1"); failed {
		t.Errorf("LivenessFailed = true (%s) after failure, success, failure; want false", msg)
	}
	f.clk.Step(5 * time.Second)
	f.waitFailed("c1")
	if failed, msg := f.m.LivenessFailed("c1"); !failed || msg != `Liveness probe failed: command "check" exited with code 1` {
		t.Errorf("LivenessFailed = %v, %q", failed, msg)
	}
}

func TestReadinessToggles(t *testing.T) {
	f := newFixture(t)
	f.exec.set("ready", 0, "")
	p := execProbe("ready", 10, 1)
	p.SuccessThreshold = 2
	f.add("c1", &corev1.Container{Name: "app", ReadinessProbe: p})

	f.settle(1)
	if f.m.Ready("c1") {
		t.Fatalf("ready after one success, want two (successThreshold)")
	}
	f.clk.Step(10 * time.Second)
	wait.For(t, waitFor, "ready", func() (bool, error) { return f.m.Ready("c1"), nil })
	f.waitChanges(1)

	f.exec.set("ready", 1, "not yet")
	f.tick(1, 10*time.Second)
	wait.For(t, waitFor, "not ready", func() (bool, error) { return !f.m.Ready("c1"), nil })
	f.waitChanges(2)
	// A failing readiness probe never restarts the container.
	if failed, _ := f.m.LivenessFailed("c1"); failed {
		t.Errorf("LivenessFailed = true for a readiness failure")
	}

	f.exec.set("ready", 0, "")
	f.tick(1, 10*time.Second)
	f.tick(1, 10*time.Second)
	wait.For(t, waitFor, "ready again", func() (bool, error) { return f.m.Ready("c1"), nil })
}

func TestStartupGatesLivenessAndReadiness(t *testing.T) {
	f := newFixture(t)
	f.exec.set("startup", 1, "still starting")
	f.exec.set("live", 0, "")
	f.exec.set("ready", 0, "")
	f.add("c1", &corev1.Container{
		Name:           "app",
		StartupProbe:   execProbe("startup", 1, 30),
		LivenessProbe:  execProbe("live", 1, 3),
		ReadinessProbe: execProbe("ready", 1, 3),
	})

	for range 3 {
		f.tick(3, time.Second)
	}
	f.settle(3)
	if n := f.exec.count("live") + f.exec.count("ready"); n != 0 {
		t.Fatalf("%d liveness/readiness probes ran before the startup probe succeeded", n)
	}
	if f.m.Started("c1") || f.m.Ready("c1") {
		t.Fatalf("Started, Ready = %v, %v before the startup probe succeeded", f.m.Started("c1"), f.m.Ready("c1"))
	}

	f.exec.set("startup", 0, "")
	f.clk.Step(time.Second)
	wait.For(t, waitFor, "started", func() (bool, error) { return f.m.Started("c1"), nil })
	// The startup worker is done; the other two go on.
	f.settle(2)
	if f.m.Ready("c1") && f.exec.count("ready") == 0 {
		t.Fatalf("Ready before the readiness probe ran")
	}
	f.tick(2, time.Second)
	f.settle(2)
	if !f.m.Ready("c1") {
		t.Errorf("Ready = false after the readiness probe succeeded")
	}
	if f.exec.count("live") == 0 {
		t.Errorf("the liveness probe did not run after startup")
	}
}

func TestStartupFailureRestarts(t *testing.T) {
	f := newFixture(t)
	f.exec.set("startup", 1, "no")
	f.add("c1", &corev1.Container{Name: "app", StartupProbe: execProbe("startup", 1, 2)})
	f.tick(1, time.Second)
	f.waitFailed("c1")
	if failed, msg := f.m.LivenessFailed("c1"); !failed || msg != "Startup probe failed: no" {
		t.Errorf("LivenessFailed = %v, %q; want true, %q", failed, msg, "Startup probe failed: no")
	}
	if f.m.Started("c1") {
		t.Errorf("Started = true after the startup probe failed")
	}
}

func TestInitialDelay(t *testing.T) {
	f := newFixture(t)
	f.exec.set("check", 0, "")
	p := execProbe("check", 10, 3)
	p.InitialDelaySeconds = 30
	f.add("c1", &corev1.Container{Name: "app", LivenessProbe: p})
	f.tick(1, 29*time.Second)
	f.settle(1)
	if n := f.exec.count("check"); n != 0 {
		t.Fatalf("%d probes within the initial delay", n)
	}
	f.clk.Step(time.Second)
	wait.For(t, waitFor, "the first probe", func() (bool, error) { return f.exec.count("check") == 1, nil })
}

func TestAddIsIdempotent(t *testing.T) {
	f := newFixture(t)
	f.exec.set("check", 0, "")
	c := &corev1.Container{Name: "app", LivenessProbe: execProbe("check", 10, 3)}
	f.add("c1", c)
	f.add("c1", c)
	f.settle(1)
	if n := f.exec.count("check"); n != 1 {
		t.Errorf("%d probes, want 1 (one worker)", n)
	}
}

func TestRemoveStopsWorkers(t *testing.T) {
	f := newFixture(t)
	f.exec.set("check", 0, "")
	// A probe that hangs until it is cancelled.
	blocked := make(chan struct{}, 1)
	f.exec.setFunc("hang", func(ctx context.Context) (int, []byte, error) {
		blocked <- struct{}{}
		<-ctx.Done()
		return -1, nil, ctx.Err()
	})
	hang := execProbe("hang", 10, 1)
	hang.TimeoutSeconds = 3600
	f.add("c1", &corev1.Container{Name: "a", LivenessProbe: execProbe("check", 10, 3)})
	f.add("c2", &corev1.Container{Name: "b", ReadinessProbe: hang})
	<-blocked
	f.settle(1)

	f.m.RemovePod("uid-1")
	f.settle(0)
	if f.m.Ready("c2") || f.m.Started("c1") {
		t.Errorf("removed containers still have results")
	}
	done := make(chan struct{})
	go func() { f.m.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatal("Close did not return: a worker outlived its container")
	}
	if got := f.changes.n.Load(); got != 0 {
		t.Errorf("onChange called %d times after removal", got)
	}
}

func TestExecProbe(t *testing.T) {
	f := newFixture(t)
	f.exec.set("ok", 0, "fine")
	f.exec.set("bad", 2, "disk full\n")
	f.exec.setFunc("slow", func(ctx context.Context) (int, []byte, error) { return -1, nil, context.DeadlineExceeded })
	f.exec.setFunc("broken", func(context.Context) (int, []byte, error) { return -1, nil, errors.New("container not running") })
	tests := []struct {
		cmd     string
		ok      bool
		out     string
		errText string
	}{
		{"ok", true, "", ""},
		{"bad", false, "disk full", ""},
		{"slow", false, `command "slow" timed out after 1s`, ""},
		{"broken", false, "", `exec "broken": container not running`},
	}
	for _, tt := range tests {
		t.Run(tt.cmd, func(t *testing.T) {
			target := Target{Pod: testPod(), Container: &corev1.Container{Name: "app"}, ContainerID: "c1"}
			ok, out, err := f.m.runProbe(context.Background(), target, execProbe(tt.cmd, 1, 1), time.Second)
			if ok != tt.ok || out != tt.out || errText(err) != tt.errText {
				t.Errorf("got %v, %q, %v; want %v, %q, %q", ok, out, err, tt.ok, tt.out, tt.errText)
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestHTTPProbe(t *testing.T) {
	var gotHeader, gotHost, gotAgent atomic.Value
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		gotHeader.Store(r.Header.Get("X-Probe"))
		gotHost.Store(r.Host)
		gotAgent.Store(r.UserAgent())
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) })
	mux.HandleFunc("/same", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/fail", http.StatusFound) })
	mux.HandleFunc("/other", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://elsewhere.invalid/fail", http.StatusFound)
	})
	mux.HandleFunc("/query", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("deep") != "1" {
			w.WriteHeader(http.StatusTeapot)
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	_, portText, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(portText)
	closedPort := freePort(t)

	container := &corev1.Container{Name: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}}}
	get := func(path string, port intstr.IntOrString, headers ...corev1.HTTPHeader) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: port, HTTPHeaders: headers}}}
	}
	tests := []struct {
		name    string
		probe   *corev1.Probe
		ok      bool
		out     string
		errText string
	}{
		{"200", get("/ok", intstr.FromInt32(int32(port))), true, "", ""},
		{"named port", get("ok", intstr.FromString("http")), true, "", ""},
		{"500", get("/fail", intstr.FromInt32(int32(port))), false, "HTTP probe failed with statuscode: 500", ""},
		{"same-host redirect is followed", get("/same", intstr.FromString("http")), false, "HTTP probe failed with statuscode: 500", ""},
		{"other-host redirect is not followed", get("/other", intstr.FromString("http")), true, "", ""},
		{"query", get("/query?deep=1", intstr.FromString("http")), true, "", ""},
		{"refused", get("/ok", intstr.FromInt32(int32(closedPort))), false,
			fmt.Sprintf(`Get "http://127.0.0.1:%d/ok": dial tcp 127.0.0.1:%d: connect: connection refused`, closedPort, closedPort), ""},
		{"unknown named port", get("/ok", intstr.FromString("metrics")), false, "", `port "metrics" not found in container "app"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			target := Target{Pod: testPod(), Container: container, ContainerID: "c1", PodIP: "127.0.0.1"}
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			ok, out, err := f.m.runProbe(ctx, target, tt.probe, time.Second)
			if ok != tt.ok || out != tt.out || errText(err) != tt.errText {
				t.Errorf("got %v, %q, %v; want %v, %q, %q", ok, out, err, tt.ok, tt.out, tt.errText)
			}
		})
	}

	t.Run("headers", func(t *testing.T) {
		f := newFixture(t)
		target := Target{Pod: testPod(), Container: container, ContainerID: "c1", PodIP: "127.0.0.1"}
		p := get("/ok", intstr.FromString("http"), corev1.HTTPHeader{Name: "X-Probe", Value: "yes"}, corev1.HTTPHeader{Name: "Host", Value: "web.example"})
		if ok, out, err := f.m.runProbe(context.Background(), target, p, time.Second); !ok {
			t.Fatalf("got %v, %q, %v; want success", ok, out, err)
		}
		if gotHeader.Load() != "yes" || gotHost.Load() != "web.example" || !strings.HasPrefix(gotAgent.Load().(string), "kube-probe/") {
			t.Errorf("server saw X-Probe %q, Host %q, User-Agent %q", gotHeader.Load(), gotHost.Load(), gotAgent.Load())
		}
	})
}

func TestTCPProbe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	closedPort := freePort(t)
	tcp := func(port intstr.IntOrString) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: port}}}
	}
	container := &corev1.Container{Name: "db", Ports: []corev1.ContainerPort{{Name: "sql", ContainerPort: int32(port)}}}
	target := Target{Pod: testPod(), Container: container, ContainerID: "c1", PodIP: "127.0.0.1"}
	f := newFixture(t)
	if ok, out, err := f.m.runProbe(context.Background(), target, tcp(intstr.FromString("sql")), time.Second); !ok || err != nil {
		t.Errorf("open port: got %v, %q, %v; want success", ok, out, err)
	}
	ok, out, err := f.m.runProbe(context.Background(), target, tcp(intstr.FromInt32(int32(closedPort))), time.Second)
	want := fmt.Sprintf("dial tcp 127.0.0.1:%d: connect: connection refused", closedPort)
	if ok || out != want || err != nil {
		t.Errorf("closed port: got %v, %q, %v; want false, %q", ok, out, err, want)
	}
	if _, _, err := f.m.runProbe(context.Background(), target, tcp(intstr.FromInt32(0)), time.Second); err == nil {
		t.Errorf("port 0: got nil error")
	}
}

func TestProbeMessagesThroughManager(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	closedPort := freePort(t)

	f := newFixture(t)
	f.add("c1", &corev1.Container{Name: "web", LivenessProbe: &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(int32(port))}},
		FailureThreshold: 1,
	}})
	f.add("c2", &corev1.Container{Name: "db", LivenessProbe: &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(closedPort))}},
		FailureThreshold: 1,
	}})
	f.add("c3", &corev1.Container{Name: "grpc", LivenessProbe: &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9000}},
		FailureThreshold: 1,
	}})
	for _, id := range []string{"c1", "c2", "c3"} {
		f.waitFailed(id)
	}
	for id, want := range map[string]string{
		"c1": "Liveness probe failed: HTTP probe failed with statuscode: 500",
		"c2": fmt.Sprintf("Liveness probe failed: dial tcp 127.0.0.1:%d: connect: connection refused", closedPort),
		"c3": "Liveness probe errored: gRPC probes are not supported by Skiff",
	} {
		if failed, msg := f.m.LivenessFailed(id); !failed || msg != want {
			t.Errorf("%s: LivenessFailed = %v, %q; want true, %q", id, failed, msg, want)
		}
	}
	f.waitChanges(3)
}

// freePort returns a loopback port that nothing listens on.
func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}
