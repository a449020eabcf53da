package apiserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiffdev/skiff/apiserver/auth"
	"github.com/skiffdev/skiff/apiserver/registry"
	"github.com/skiffdev/skiff/apiserver/storage"
	"github.com/skiffdev/skiff/internal/grpcerr"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/pki"
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
	certs    *certs
	tokens   *tokens
	// encryption encrypts Secrets at rest; nil when the benchmark of its
	// cost turned it off.
	encryption *encryption
	// log is Start's logger (component=apiserver). The interceptors put
	// it into every request's context: gRPC makes those, not Start.
	log *slog.Logger
	// runCtx lives as long as the server: renewals run in it. It carries
	// Start's values (the logger), not Start's cancellation.
	runCtx context.Context
	cancel context.CancelFunc
	done   chan struct{}
	stop   sync.Once
}

// SystemNamespaces exist from the start and cannot be deleted.
var SystemNamespaces = registry.SystemNamespaces

// Start brings the server up: etcd (embedded unless cfg.EtcdServers is
// set), the registry and its watch caches, the system namespaces, and the
// gRPC listener. It returns once the server answers requests.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, log := logging.With(ctx, "component", "apiserver")
	s := &Server{cfg: cfg, log: log, done: make(chan struct{})}
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
		// In-process calls: the same etcd API without a gRPC hop.
		s.client = v3client.New(e.Server)
	} else {
		client, err := newEtcdClient(endpoints, cfg.EtcdCAFile, cfg.EtcdCertFile, cfg.EtcdKeyFile)
		if err != nil {
			return nil, err
		}
		s.client = client
	}
	client := s.client

	var transformers map[schema.GroupResource]storage.Transformer
	if !cfg.noEncryption {
		enc, err := loadEncryption(ctx, cfg.DataDir, retiredKeyGrace(cfg.EtcdCompactionRetention), scanEncrypted(client, cfg.RequestTimeout), time.Now())
		if err != nil {
			return nil, fmt.Errorf("encryption at rest: %w", err)
		}
		s.encryption, transformers = enc, enc.transformers()
	}

	serviceIPs, nodePorts, _ := cfg.serviceRanges() // checked by Validate
	s.registry = registry.New(registry.Config{
		Client:                   client,
		RequestTimeout:           cfg.RequestTimeout,
		WatchWindow:              cfg.WatchWindow,
		BookmarkInterval:         cfg.BookmarkInterval,
		EventTTL:                 cfg.EventTTL,
		DefaultTolerationSeconds: new(cfg.DefaultTolerationSeconds),
		ServiceIPRange:           serviceIPs,
		ServiceNodePortRange:     nodePorts,
		Admit:                    admit,
		Transformers:             transformers,
	})
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.runCtx, s.cancel = runCtx, cancel
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
	if s.certs, err = loadCerts(ctx, cfg, lis.Addr(), time.Now()); err != nil {
		return nil, err
	}
	s.certs.renew(runCtx)
	s.tokens = &tokens{etcd: client, timeout: cfg.RequestTimeout, caHash: s.certs.ca.Hash()}
	if err := s.ensureServerToken(ctx); err != nil {
		return nil, err
	}
	pods, _ := s.registry.Store(podsResource)
	acc := &access{
		tokens: s.tokens,
		now:    time.Now,
		authorizer: auth.Chain{
			auth.Masters{},
			auth.NodeAuthorizer{Pods: podNodes{pods}},
			auth.Policy{},
		},
	}
	s.grpc = s.newGRPCServer(
		grpc.Creds(pki.LoggedTLS(credentials.NewTLS(s.certs.serverTLS()), log)),
		grpc.ChainUnaryInterceptor(recoverUnary, acc.unary),
		grpc.ChainStreamInterceptor(recoverStream, acc.stream),
	)
	go func() {
		if err := s.grpc.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			log.Error("api server stopped serving", "err", err)
		}
	}()
	log.Info("api server ready", "listen", lis.Addr().String(), "etcd", endpoints)
	ok = true
	return s, nil
}

// newGRPCServer is a gRPC server of the API with opts (transport
// security and interceptors) added to the common ones. Its first
// interceptors put the server's logger into each request's context, so
// that everything a request runs logs through logging.From(ctx).
func (s *Server) newGRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	opts = append([]grpc.ServerOption{
		grpc.ChainUnaryInterceptor(s.logUnary),
		grpc.ChainStreamInterceptor(s.logStream),
	}, opts...)
	opts = append(opts,
		// Bodies above MaxRequestBytes get a clear 413 from the service;
		// this only stops a client from making the server buffer far more.
		grpc.MaxRecvMsgSize(MaxRequestBytes+64*1024),
		grpc.MaxSendMsgSize(1<<30),
		// A pool of request goroutines keeps their grown stacks, instead
		// of growing a fresh goroutine's stack on every request.
		grpc.NumStreamWorkers(uint32(4*runtime.GOMAXPROCS(0))),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)
	g := grpc.NewServer(opts...)
	skiffv1.RegisterAPIServer(g, &service{reg: s.registry, kubeletDialer: s.cfg.KubeletDialer, kubeletTLS: s.certs.kubeletTLS()})
	skiffv1.RegisterClusterServer(g, &clusterService{s: s})
	return g
}

// admit is the API server's validating admission: NodeRestriction, for
// writes made by nodes.
func admit(ctx context.Context, a registry.Admission) error {
	user, ok := auth.UserFrom(ctx)
	if !ok {
		return nil
	}
	verb := "update"
	if a.Old == nil {
		verb = "create"
	}
	return auth.NodeRestriction(user, verb, a.Resource.Resource, a.Subresource, a.Object, a.Old)
}

// logUnary is the interceptor that puts s.log into a unary call's
// context.
func (s *Server) logUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	return handler(logging.Into(ctx, s.log), req)
}

// logStream is logUnary for streams.
func (s *Server) logStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, &loggedStream{ServerStream: ss, ctx: logging.Into(ss.Context(), s.log)})
}

// loggedStream is a stream whose context carries the server's logger.
type loggedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *loggedStream) Context() context.Context { return s.ctx }

// recoverUnary turns a panic in a request handler into an Internal error
// for that request, so that one bad request cannot stop the server.
func recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = panicError(ctx, info.FullMethod, r)
		}
	}()
	return handler(ctx, req)
}

// recoverStream is recoverUnary for streams (Watch).
func recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = panicError(ss.Context(), info.FullMethod, r)
		}
	}()
	return handler(srv, ss)
}

func panicError(ctx context.Context, method string, r any) error {
	logging.From(ctx).Error("request handler panicked", "method", method, "panic", r, "stack", string(debug.Stack()))
	return grpcerr.ToStatus(apierrors.NewInternalError(fmt.Errorf("the server failed to handle the request: %v", r)))
}

// Addr is the address the API is served on.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// Registry is the server's registry, for in-process callers.
func (s *Server) Registry() *registry.Registry { return s.registry }

// Stop shuts the server down: the API first, then the caches, then etcd.
func (s *Server) Stop() {
	s.stop.Do(s.stopOnce)
}

func (s *Server) stopOnce() {
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
