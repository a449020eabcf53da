package server

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"

	"google.golang.org/grpc"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/internal/grpcerr"
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
	log  *slog.Logger
	grpc *grpc.Server
}

// New returns a server for host. logger may be nil (slog.Default()).
func New(host Host, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.Default()
	}
	s := &Server{host: host, log: logger.With("component", "kubelet-api")}
	s.grpc = grpc.NewServer()
	skiffv1.RegisterKubeletServer(s.grpc, s)
	return s
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
