package testenv

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/skiffdev/skiff/apiserver"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/wait"
	"github.com/skiffdev/skiff/simnodes"
)

// Cluster is the test cluster every integration test builds on: a
// running API server with what a test needs to tell a story against it —
// the administrator's client, a context that ends with the test, a logger
// for the components, components started in goroutines and stopped (and
// checked) when the test ends, and Await.
//
// A cluster starts no component by itself; the test starts what its
// story needs, each as its own identity:
//
//	cl := testenv.NewCluster(t)
//	cfg := scheduler.DefaultConfig()
//	cfg.Client = cl.ClientAs(auth.SchedulerUser)
//	cl.Start("scheduler", func(ctx context.Context) error { return scheduler.Run(ctx, cfg) })
//	cl.StartSimNodes(cl.SimNodes(3))
//	cl.Await(10*time.Second, "3 nodes", ...)
//
// The scheduler and the controllers have no Start of their own here
// because this package cannot import them: their in-package tests import
// it, and Go refuses that cycle. Simulated nodes, which no package under
// test imports, have one.
type Cluster struct {
	// T is the test the cluster belongs to: Await fails it, and the
	// components are stopped when it ends. For gives a subtest its own.
	T      testing.TB
	Server *apiserver.Server
	// Client is the administrator's (system:admin in system:masters), for
	// what the test itself does.
	Client *client.Client
	// Ctx ends with the test, or after the cluster's timeout
	// (WithTimeout; a minute unless said otherwise).
	Ctx context.Context
	// Log is for the components the test starts: warnings and errors to
	// stderr unless WithLogger says otherwise.
	Log *slog.Logger

	stopTimeout time.Duration
}

// options are what Options change before the cluster starts.
type options struct {
	server      []func(*apiserver.Config)
	timeout     time.Duration
	stopTimeout time.Duration
	log         *slog.Logger
}

// Option changes how NewCluster starts a cluster.
type Option func(*options)

// WithServer changes the API server's configuration before it starts.
func WithServer(f func(*apiserver.Config)) Option {
	return func(o *options) { o.server = append(o.server, f) }
}

// WithTimeout makes Ctx last d instead of a minute: for stories against
// real nodes, under the race detector, on a busy machine.
func WithTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = d }
}

// WithStopTimeout gives each component d instead of 10 s to return once
// its context ends: for benchmarks whose components hold thousands of
// simulated nodes.
func WithStopTimeout(d time.Duration) Option {
	return func(o *options) { o.stopTimeout = d }
}

// WithLogger makes l the cluster's Log.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.log = l }
}

// NewCluster starts an API server (ServerConfig, then the WithServer
// options) and connects the administrator's client to it. Everything is
// stopped when the test ends: the components first, the last started
// first, then the clients, then the server.
func NewCluster(t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	o := options{
		timeout:     time.Minute,
		stopTimeout: 10 * time.Second,
		log:         slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	for _, opt := range opts {
		opt(&o)
	}
	srv := StartServer(t, o.server...)
	return &Cluster{
		T:           t,
		Server:      srv,
		Client:      NewClient(t, srv),
		Ctx:         ContextFor(t, o.timeout),
		Log:         o.log,
		stopTimeout: o.stopTimeout,
	}
}

// For is the cluster as subtest t sees it: the same server, client and
// context, with Await failing t and Start stopping its components when
// t ends.
func (cl *Cluster) For(t testing.TB) *Cluster {
	c := *cl
	c.T = t
	return &c
}

// ConfigAs is a client configuration for user in groups, for a component
// that dials its own connection (scheduler.Config.Connection and the
// like), as in its own process.
func (cl *Cluster) ConfigAs(user string, groups ...string) client.Config {
	cl.T.Helper()
	return ConfigAs(cl.T, cl.Server, user, groups...)
}

// ClientAs connects a client as user in groups and closes it when the
// test ends. Connect it before starting the component that uses it, so
// that it is closed after that component stops.
func (cl *Cluster) ClientAs(user string, groups ...string) *client.Client {
	cl.T.Helper()
	return NewClientAs(cl.T, cl.Server, user, groups...)
}

// Await waits up to timeout for cond (see wait.For), and logs how long
// that took: a story's pace is part of what it tells.
func (cl *Cluster) Await(timeout time.Duration, what string, cond func() (bool, error)) {
	cl.T.Helper()
	start := time.Now()
	wait.For(cl.T, timeout, what, cond)
	cl.T.Logf("%s after %v", what, time.Since(start).Round(time.Millisecond))
}

// Component is one run of a component in a goroutine of its own, started
// by Cluster.Start.
type Component struct {
	name        string
	t           testing.TB
	cancel      context.CancelFunc
	done        chan struct{}
	stopTimeout time.Duration
}

// Start runs run in a goroutine of its own until Stop is called or the
// test ends. run must return once its context ends; any error it returns
// fails the test, except that context's own cancellation.
func (cl *Cluster) Start(name string, run func(ctx context.Context) error) *Component {
	cl.T.Helper()
	// Components log to the cluster's logger, which travels in their
	// context (internal/logging).
	ctx, cancel := context.WithCancel(logging.Into(context.Background(), cl.Log))
	comp := &Component{name: name, t: cl.T, cancel: cancel, done: make(chan struct{}), stopTimeout: cl.stopTimeout}
	go func() {
		defer close(comp.done)
		err := run(ctx)
		if err != nil && !(ctx.Err() != nil && errors.Is(err, context.Canceled)) {
			comp.t.Errorf("%s: %v", name, err)
		}
	}()
	cl.T.Cleanup(comp.Stop)
	return comp
}

// Stop ends the component's context and waits for it to return, failing
// the test if that takes longer than the cluster's stop timeout. It may
// be called from any goroutine, and again.
func (comp *Component) Stop() {
	comp.t.Helper()
	comp.cancel()
	select {
	case <-comp.done:
	case <-time.After(comp.stopTimeout):
		comp.t.Errorf("%s did not stop within %v of its context ending", comp.name, comp.stopTimeout)
	}
}

// SimNodes is a configuration for count simulated nodes (see simnodes)
// that act as the administrator; the test adjusts it
// (capacity, StartDelay, names) and passes it to StartSimNodes.
func (cl *Cluster) SimNodes(count int) simnodes.Config {
	cfg := simnodes.DefaultConfig()
	cfg.Client, cfg.Count = cl.Client, count
	return cfg
}

// StartSimNodes runs the simulated nodes of cfg as one component:
// stopping it is all of them dying at once.
func (cl *Cluster) StartSimNodes(cfg simnodes.Config) *Component {
	cl.T.Helper()
	return cl.Start("simnodes "+cfg.NamePrefix, func(ctx context.Context) error { return simnodes.Run(ctx, cfg) })
}
