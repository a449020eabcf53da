// Package testenv starts real Skiff components for tests: an API server
// with an embedded etcd in a temporary directory, listening on
// 127.0.0.1:0, and clients connected to it. Everything is stopped and
// removed when the test ends.
//
// Integration tests build on Cluster (NewCluster): the server, the
// administrator's client, the components the story starts, and Await.
// Waiting itself is internal/wait's, which every package's tests can
// import, this one's dependencies' included.
package testenv

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/skiffdev/skiff/apiserver"
	"github.com/skiffdev/skiff/apiserver/auth"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/clientconfig"
)

// ServerConfig returns an API server configuration for a test: a fresh
// data directory and a loopback port chosen by the kernel.
func ServerConfig(t testing.TB) apiserver.Config {
	cfg := apiserver.DefaultConfig()
	cfg.DataDir = ShortTempDir(t)
	cfg.Listen = "127.0.0.1:0"
	cfg.BookmarkInterval = time.Second
	return cfg
}

// ShortTempDir is a temporary directory with a short path: the embedded
// etcd puts unix sockets in it, whose paths are limited to 107 bytes.
func ShortTempDir(t testing.TB) string {
	dir, err := os.MkdirTemp("", "skiff-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// StartServer starts an API server and stops it when the test ends.
// Options change the configuration first.
func StartServer(t testing.TB, opts ...func(*apiserver.Config)) *apiserver.Server {
	t.Helper()
	cfg := ServerConfig(t)
	for _, o := range opts {
		o(&cfg)
	}
	return StartServerWith(t, cfg)
}

// StartServerWith starts an API server with exactly cfg.
func StartServerWith(t testing.TB, cfg apiserver.Config) *apiserver.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := apiserver.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("starting the API server: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// NewClient connects a client to srv as the cluster's administrator
// (system:admin in system:masters) and closes it when the test ends.
// Warnings are dropped.
func NewClient(t testing.TB, srv *apiserver.Server) *client.Client {
	t.Helper()
	return NewClientWith(t, AdminConfig(t, srv))
}

// NewClientAs connects a client to srv as user in groups: for tests of
// what an identity may do, and for components that must run as their own
// identity (system:kube-scheduler, system:node:NAME, ...).
func NewClientAs(t testing.TB, srv *apiserver.Server, user string, groups ...string) *client.Client {
	t.Helper()
	return NewClientWith(t, ConfigAs(t, srv, user, groups...))
}

// NewClientWith connects a client with cfg and closes it when the test
// ends. A nil WarningHandler drops warnings.
func NewClientWith(t testing.TB, cfg client.Config) *client.Client {
	t.Helper()
	if cfg.WarningHandler == nil {
		cfg.WarningHandler = func(string) {}
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatalf("connecting to %s: %v", cfg.Server, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// AdminKubeconfig writes a kubeconfig for srv's administrator into a
// temporary directory and returns its path, for tests that run skiffctl
// (or kubectl) as a user would.
func AdminKubeconfig(t testing.TB, srv *apiserver.Server) string {
	t.Helper()
	kp, err := srv.IssueClientCertificate(auth.AdminUser, auth.MastersGroup)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "admin.kubeconfig")
	err = clientconfig.WriteKubeconfig(path, clientconfig.Credentials{
		Server: "https://" + srv.Addr(), CA: srv.CA().CertPEM, CertPEM: kp.CertPEM, KeyPEM: kp.KeyPEM, User: "admin",
	})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// AdminConfig is a client configuration for srv as its administrator.
func AdminConfig(t testing.TB, srv *apiserver.Server) client.Config {
	t.Helper()
	return ConfigAs(t, srv, auth.AdminUser, auth.MastersGroup)
}

// ConfigAs is a client configuration for srv as user in groups, with a
// certificate the server's CA signed.
func ConfigAs(t testing.TB, srv *apiserver.Server, user string, groups ...string) client.Config {
	t.Helper()
	cfg, err := srv.ClientConfig(user, groups...)
	if err != nil {
		t.Fatalf("a client certificate for %s: %v", user, err)
	}
	return cfg
}

// Context returns a context that ends with the test or after a minute.
func Context(t testing.TB) context.Context {
	return ContextFor(t, time.Minute)
}

// ContextFor returns a context that ends with the test or after d: for
// tests that tell a long story against one cluster (real nodes, under
// the race detector, on a busy machine).
func ContextFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Output collects what a process started by a test prints: exec copies
// its stdout and stderr into it from goroutines of its own while the test
// reads it.
type Output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}
