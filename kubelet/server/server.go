package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/internal/grpcerr"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/pki"
	skiffv1 "github.com/skiffdev/skiff/proto/skiff/v1"
)

// Host is what the kubelet core offers the server.
type Host interface {
	// LogPath returns the log file of the container's current run, or
	// with previous of the run before it, and a function that reports
	// whether that run has ended (its log will not grow any more). It is
	// called once per request; exited is polled while following.
	LogPath(namespace, pod, container string, previous bool) (path string, exited func() bool, err error)
	// Exec runs opts.Args in the container and returns the command's exit
	// code once it has ended and its output has been written to
	// opts.Stdout and opts.Stderr. It stops the command when ctx ends.
	Exec(ctx context.Context, namespace, pod, container string, opts ExecOptions) (exitCode int, err error)
}

// chunkSize bounds the data of one output message: large writes are cut
// so that no message comes near gRPC's message size limit.
const chunkSize = 32 << 10

// Server serves the Kubelet gRPC service for one Host.
type Server struct {
	skiffv1.UnimplementedKubeletServer
	host Host
	// log is the logger of the context New was given, set once: the
	// handshake and the handlers run on gRPC's goroutines, with contexts
	// that gRPC makes and that carry no logger.
	log  *slog.Logger
	grpc *grpc.Server
}

// New returns a server for host. tc is the port's TLS: the node's
// serving certificate (Certificates or GetCertificate) and the CA that
// client certificates must chain to (ClientCAs). Every caller must show
// such a certificate, and only the API server's kubelet-client identity
// is let through: a node, an admin or anyone else is refused, so that
// exec and logs go only through the API server, which authorizes them.
// The server logs through the logger ctx carries, with part=api.
func New(ctx context.Context, host Host, tc *tls.Config) *Server {
	s := &Server{host: host, log: logging.From(ctx).With("part", "api")}
	tc = tc.Clone()
	tc.MinVersion = max(tc.MinVersion, tls.VersionTLS12)
	tc.ClientAuth = tls.RequireAndVerifyClientCert
	s.grpc = grpc.NewServer(
		grpc.Creds(pki.LoggedTLS(credentials.NewTLS(tc), s.log)),
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			if err := s.authorize(ctx, info.FullMethod); err != nil {
				return nil, err
			}
			return handler(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			if err := s.authorize(ss.Context(), info.FullMethod); err != nil {
				return err
			}
			return handler(srv, ss)
		}),
	)
	skiffv1.RegisterKubeletServer(s.grpc, s)
	return s
}

// authorize lets only the API server's kubelet-client identity through.
// The handshake has already refused anyone without a certificate of the
// cluster CA. The refusal reads as the kubelet's in Kubernetes: logs and
// exec are both the node's proxy subresource.
func (s *Server) authorize(ctx context.Context, method string) error {
	user := ""
	if p, ok := peer.FromContext(ctx); ok {
		if info, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(info.State.VerifiedChains) > 0 {
			user = info.State.VerifiedChains[0][0].Subject.CommonName
		}
	}
	if user == pki.KubeletClientUser {
		return nil
	}
	// As the kubelet's HTTP API has it: reading a log is a get, running
	// a command a create.
	verb := "create"
	if method == skiffv1.Kubelet_ContainerLogs_FullMethodName {
		verb = "get"
	}
	s.log.Info("request forbidden", "user", user, "verb", verb)
	return grpcerr.ToStatus(&apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden,
		Message: fmt.Sprintf("Forbidden (user=%s, verb=%s, resource=nodes, subresource=proxy)", user, verb),
	}})
}

// Serve answers requests on ln until Stop. It returns nil after Stop.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.grpc.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

// Stop closes the listeners and ends every open stream at once.
func (s *Server) Stop() { s.grpc.Stop() }

// toStatus turns a Host error into the gRPC status the API server relays:
// API errors as they are, fs.ErrNotExist as NotFound, the rest as
// InternalError.
func toStatus(err error) error {
	var apiStatus apierrors.APIStatus
	switch {
	case errors.As(err, &apiStatus), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
	case errors.Is(err, fs.ErrNotExist):
		err = &apierrors.StatusError{ErrStatus: metav1.Status{
			Status: metav1.StatusFailure, Code: http.StatusNotFound,
			Reason: metav1.StatusReasonNotFound, Message: err.Error(),
		}}
	default:
		err = apierrors.NewInternalError(err)
	}
	return grpcerr.ToStatus(err)
}

// chunkWriter is an io.Writer that hands what is written to it to send,
// in pieces of at most chunkSize bytes.
type chunkWriter struct {
	send func(data []byte) error
}

func (w chunkWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		c := min(len(p), chunkSize)
		// gRPC may hold on to a sent message, and the caller reuses p.
		if err := w.send(append([]byte(nil), p[:c]...)); err != nil {
			return n, err
		}
		n += c
		p = p[c:]
	}
	return n, nil
}
