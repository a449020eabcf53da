package leaderelection_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/apiserver"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/leaderelection"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
)

const (
	leaseDuration = time.Second
	renewDeadline = 600 * time.Millisecond
	retryPeriod   = 100 * time.Millisecond
)

// candidate is one copy of a component in an election.
type candidate struct {
	id      string
	cancel  context.CancelFunc
	done    chan struct{}
	leading atomic.Bool
	stopped atomic.Int32 // onStoppedLeading calls
}

// campaign starts a candidate; active counts the candidates acting at
// once, and the test fails if it ever exceeds one.
func campaign(t *testing.T, c *client.Client, id string, active *atomic.Int32) *candidate {
	t.Helper()
	ctx, cancel := context.WithCancel(testenv.Context(t))
	cand := &candidate{id: id, cancel: cancel, done: make(chan struct{})}
	cfg := leaderelection.Config{
		Client: c, Namespace: metav1.NamespaceSystem, Name: "test-lease", Identity: id,
		LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod,
	}
	go func() {
		defer close(cand.done)
		err := leaderelection.Run(ctx, cfg, func(ctx context.Context) {
			if n := active.Add(1); n > 1 {
				t.Errorf("%s started leading while %d others act", id, n-1)
			}
			cand.leading.Store(true)
			<-ctx.Done()
			cand.leading.Store(false)
			active.Add(-1)
		}, func() { cand.stopped.Add(1) })
		if err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}()
	t.Cleanup(func() { cancel(); <-cand.done })
	return cand
}

func leader(cands ...*candidate) *candidate {
	for _, c := range cands {
		if c.leading.Load() {
			return c
		}
	}
	return nil
}

func TestOneLeaderAndTakeover(t *testing.T) {
	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	var active atomic.Int32
	a, b := campaign(t, c, "a", &active), campaign(t, c, "b", &active)

	wait.For(t, 5*time.Second, "a leader", func() (bool, error) { return leader(a, b) != nil, nil })
	first := leader(a, b)
	other := a
	if first == a {
		other = b
	}
	// The other keeps waiting while the leader renews.
	deadline := time.Now().Add(2 * leaseDuration)
	for time.Now().Before(deadline) {
		if other.leading.Load() {
			t.Fatalf("%s leads while %s renews", other.id, first.id)
		}
		time.Sleep(retryPeriod / 2)
	}

	stopped := time.Now()
	first.cancel()
	<-first.done
	wait.For(t, leaseDuration+retryPeriod+500*time.Millisecond, other.id+" taking over", func() (bool, error) {
		return other.leading.Load(), nil
	})
	t.Logf("%s took over %v after %s stopped", other.id, time.Since(stopped).Round(time.Millisecond), first.id)
	if n := first.stopped.Load(); n != 1 {
		t.Errorf("got %d onStoppedLeading calls, want 1", n)
	}
	l, err := c.Leases(metav1.NamespaceSystem).Get(testenv.Context(t), "test-lease")
	if err != nil {
		t.Fatal(err)
	}
	if got := *l.Spec.HolderIdentity; got != other.id {
		t.Errorf("got holder %q, want %q", got, other.id)
	}
	if l.Spec.LeaseTransitions == nil || *l.Spec.LeaseTransitions != 1 {
		t.Errorf("got leaseTransitions %v, want 1", l.Spec.LeaseTransitions)
	}
}

// TestLeaseTaken: a leader that finds the Lease held by another stops
// acting, and campaigns again.
func TestLeaseTaken(t *testing.T) {
	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	var active atomic.Int32
	a := campaign(t, c, "a", &active)
	wait.For(t, 5*time.Second, "a leading", func() (bool, error) { return a.leading.Load(), nil })

	l, err := c.Leases(metav1.NamespaceSystem).Get(ctx, "test-lease")
	if err != nil {
		t.Fatal(err)
	}
	l.Spec.HolderIdentity = new("intruder")
	l.Spec.RenewTime = new(metav1.NowMicro())
	if _, err := c.Leases(metav1.NamespaceSystem).Update(ctx, l); err != nil {
		t.Fatal(err)
	}
	taken := time.Now()
	wait.For(t, 2*retryPeriod+500*time.Millisecond, "a stopping", func() (bool, error) { return !a.leading.Load(), nil })
	t.Logf("a stopped %v after the lease was taken", time.Since(taken).Round(time.Millisecond))
	if n := a.stopped.Load(); n != 1 {
		t.Errorf("got %d onStoppedLeading calls, want 1", n)
	}
	// The intruder never renews: a takes the Lease back once it expires.
	wait.For(t, leaseDuration+2*retryPeriod+500*time.Millisecond, "a leading again", func() (bool, error) { return a.leading.Load(), nil })
}

// TestCannotRenew: a leader that cannot reach the API server stops acting
// within RenewDeadline, before its Lease could expire for the others.
func TestCannotRenew(t *testing.T) {
	srv, err := apiserver.Start(testenv.Context(t), testenv.ServerConfig(t)) // stopped below, once
	if err != nil {
		t.Fatal(err)
	}
	conn := testenv.AdminConfig(t, srv)
	conn.Timeout, conn.WarningHandler = retryPeriod, func(string) {}
	c, err := client.New(conn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var active atomic.Int32
	a := campaign(t, c, "a", &active)
	wait.For(t, 5*time.Second, "a leading", func() (bool, error) { return a.leading.Load(), nil })

	srv.Stop()
	down := time.Now()
	wait.For(t, renewDeadline+2*retryPeriod+500*time.Millisecond, "a stopping", func() (bool, error) { return !a.leading.Load(), nil })
	if d := time.Since(down); d >= leaseDuration {
		t.Errorf("a stopped %v after losing the server, not within the lease duration %v", d, leaseDuration)
	}
}

func TestValidate(t *testing.T) {
	cfg := leaderelection.Config{Namespace: "kube-system", Name: "x", Identity: "a", LeaseDuration: time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: time.Second}
	if err := cfg.Validate(); err == nil {
		t.Error("got no error for renew deadline above lease duration and no client, want one")
	}
	o := leaderelection.DefaultOptions("skiff-scheduler")
	if err := o.Validate(); err != nil {
		t.Errorf("defaults: got %v, want no error", err)
	}
}

// TestFailingTermEndsRun: a leader whose work fails at once (while its
// ctx is still alive) does not take the Lease again and again: RunE gives
// the Lease up and returns the error, and another candidate takes over.
func TestFailingTermEndsRun(t *testing.T) {
	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	cfg := leaderelection.Config{
		Client: c, Namespace: metav1.NamespaceSystem, Name: "test-lease", Identity: "failing",
		LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod,
	}
	boom := errors.New("controller cannot be built")
	var terms, stopped atomic.Int32
	errc := make(chan error, 1)
	go func() {
		errc <- leaderelection.RunE(ctx, cfg, func(context.Context) error {
			terms.Add(1)
			return boom
		}, func() { stopped.Add(1) })
	}()
	var err error
	select {
	case err = <-errc:
	case <-time.After(5 * time.Second):
		t.Fatal("RunE did not return after its term failed")
	}
	if !errors.Is(err, boom) {
		t.Errorf("got %v, want %v", err, boom)
	}
	if terms.Load() != 1 || stopped.Load() != 1 {
		t.Errorf("got %d terms and %d onStoppedLeading calls, want 1 and 1", terms.Load(), stopped.Load())
	}
	lease, err := c.Leases(metav1.NamespaceSystem).Get(ctx, "test-lease")
	if err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h != nil && *h != "" {
		t.Errorf("lease still held by %q, want it given up", *h)
	}
	// Given up, the Lease goes to the next candidate at its first try.
	var active atomic.Int32
	start := time.Now()
	b := campaign(t, c, "b", &active)
	wait.For(t, 5*time.Second, "b leading", func() (bool, error) { return b.leading.Load(), nil })
	if d := time.Since(start); d >= leaseDuration {
		t.Errorf("b took %v to lead, want less than the lease duration %v", d, leaseDuration)
	}
}

// TestEndedTermWaitsBeforeCampaigning: a callback that returns at once
// without an error does not make Run take the Lease again in a loop: it
// waits RetryPeriod between terms.
func TestEndedTermWaitsBeforeCampaigning(t *testing.T) {
	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	ctx, cancel := context.WithTimeout(testenv.Context(t), 5*retryPeriod+retryPeriod/2)
	defer cancel()
	cfg := leaderelection.Config{
		Client: c, Namespace: metav1.NamespaceSystem, Name: "test-lease", Identity: "quick",
		LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod,
	}
	var terms atomic.Int32
	if err := leaderelection.RunE(ctx, cfg, func(context.Context) error {
		terms.Add(1)
		return nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	if n := terms.Load(); n < 1 || n > 6 {
		t.Errorf("got %d terms in %v, want at most one per retry period", n, 5*retryPeriod+retryPeriod/2)
	}
}

// TestLogsThroughTheContextsLogger: Run logs through the logger of its
// ctx, which names the component already, adding the Lease and the
// candidate's identity once per line.
func TestLogsThroughTheContextsLogger(t *testing.T) {
	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	var out strings.Builder // written by Run only, read once it returned
	log := slog.New(slog.NewTextHandler(&out, nil)).With("component", "scheduler")
	ctx, cancel := context.WithCancel(logging.Into(testenv.Context(t), log))
	cfg := leaderelection.Config{
		Client: c, Namespace: metav1.NamespaceSystem, Name: "test-lease", Identity: "a",
		LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod,
	}
	// The term ends Run's ctx: Run returns once it stopped leading.
	if err := leaderelection.Run(ctx, cfg, func(context.Context) { cancel() }, nil); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `msg="became leader"`) || !strings.Contains(lines[1], `msg="stopped leading"`) {
		t.Fatalf("got lines\n%s\nwant became leader, then stopped leading", out.String())
	}
	for _, l := range lines {
		for _, want := range []string{"component=scheduler", "lease=kube-system/test-lease", "identity=a"} {
			if n := strings.Count(l, want); n != 1 {
				t.Errorf("line %q has %s %d times, want once", l, want, n)
			}
		}
	}
}
