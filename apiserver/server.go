package apiserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/apiserver/registry"
	skiffv1 "github.com/skiffdev/skiff/proto/skiff/v1"
)

// Server is a running API server.
type Server struct {
	cfg      Config
	etcd     *embeddedEtcd // nil with an external etcd
	client   *clientv3.Client
	registry *registry.Registry
	grpc     *grpc.Server
	listener net.Listener
	cancel   context.CancelFunc
	done     chan struct{}
}

// SystemNamespaces exist from the start.
var SystemNamespaces = []string{metav1.NamespaceDefault, metav1.NamespaceSystem, "kube-node-lease"}

// Start brings the server up: etcd (embedded unless cfg.EtcdServers is
// set), the registry and its watch caches, the system namespaces, and the
// gRPC listener. It returns once the server answers requests.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, done: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			s.Stop()
		}
	}()

	endpoints := cfg.EtcdServers
	if len(endpoints) == 0 {
		e, err := startEmbeddedEtcd(ctx, cfg.DataDir, cfg.EtcdCompactionRetention)
		if err != nil {
			return nil, err
		}
		s.etcd = e
		endpoints = []string{e.Clients[0].Addr().Network() + "://" + e.Clients[0].Addr().String()}
	}
	client, err := newEtcdClient(endpoints)
	if err != nil {
		return nil, err
	}
	s.client = client

	s.registry = registry.New(registry.Config{
		Client:           client,
		RequestTimeout:   cfg.RequestTimeout,
		WatchWindow:      cfg.WatchWindow,
		BookmarkInterval: cfg.BookmarkInterval,
	})
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		defer close(s.done)
		s.registry.Run(runCtx)
	}()
	if err := s.registry.WaitReady(ctx); err != nil {
		return nil, fmt.Errorf("waiting for the watch caches: %w", err)
	}
	if err := s.registry.EnsureNamespaces(ctx, SystemNamespaces...); err != nil {
		return nil, err
	}

	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	s.listener = lis
	s.grpc = grpc.NewServer(
		// Bodies above MaxRequestBytes get a clear 413 from the service;
		// this only stops a client from making the server buffer far more.
		grpc.MaxRecvMsgSize(MaxRequestBytes+64*1024),
		grpc.MaxSendMsgSize(1<<30),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)
	skiffv1.RegisterAPIServer(s.grpc, &service{reg: s.registry})
	go func() {
		if err := s.grpc.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			slog.Error("api server stopped serving", "err", err)
		}
	}()
	slog.Info("api server ready", "listen", lis.Addr().String(), "etcd", endpoints)
	ok = true
	return s, nil
}

// Addr is the address the API is served on.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// Registry is the server's registry, for in-process callers.
func (s *Server) Registry() *registry.Registry { return s.registry }

// Stop shuts the server down: the API first, then the caches, then etcd.
func (s *Server) Stop() {
	if s.grpc != nil {
		s.grpc.Stop()
	}
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
	if s.client != nil {
		s.client.Close()
	}
	if s.etcd != nil {
		s.etcd.Close()
	}
}

// Run starts the server and serves until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	s, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	s.Stop()
	return nil
}
