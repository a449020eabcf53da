package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"k8s.io/apimachinery/pkg/version"

	"github.com/skiffdev/skiff/internal/grpcerr"
	skiffv1 "github.com/skiffdev/skiff/proto/skiff/v1"
)

// DefaultMaxMessageSize is the largest response the client accepts unless
// Config.MaxMessageSize says otherwise. A list of every pod in a large
// cluster is tens of megabytes; gRPC's own default of 4 MiB is far too
// small for that.
const DefaultMaxMessageSize = 256 << 20

// Config says how to reach the API server.
type Config struct {
	// Server is the API server's address: "https://host:port" or
	// "host:port". Required. The API is served only over TLS.
	Server string

	// TLS is the client's TLS configuration: the cluster CA to trust
	// (RootCAs) and, for an identity made of a certificate,
	// GetClientCertificate or Certificates. Required unless Plaintext.
	TLS *tls.Config

	// Token, when set, is sent as a bearer token with every request
	// (a join token, later a service account token).
	Token string

	// Plaintext dials without TLS. Only for the in-memory stand-in of
	// clienttest and the plaintext listener kept in one benchmark; the
	// API server itself never answers plaintext.
	Plaintext bool

	// WarningHandler receives every warning the server attaches to a
	// response, one call per warning, for example when a manifest sets a
	// Kubernetes field that Skiff accepts but does not implement yet. It
	// may be called from several goroutines at once. Nil means
	// WarningsToStderr.
	WarningHandler func(warning string)

	// Timeout bounds each request that is not a watch. Zero means the
	// caller's context alone decides.
	Timeout time.Duration

	// MaxMessageSize bounds the size of one response (a whole list, or
	// one watch event). Zero means DefaultMaxMessageSize.
	MaxMessageSize int

	// UserAgent names the component in the server's logs ("scheduler",
	// "skiffctl/v0.1.0"). Optional.
	UserAgent string

	// DialOptions are appended to the client's own gRPC dial options,
	// for tests that dial in memory and for transport security.
	DialOptions []grpc.DialOption
}

// WarningsToStderr is the default WarningHandler: it writes
// "Warning: <message>" to standard error, as kubectl does.
func WarningsToStderr(warning string) {
	WarningsTo(os.Stderr)(warning)
}

// WarningsTo returns a WarningHandler that writes "Warning: <message>"
// lines to w.
func WarningsTo(w io.Writer) func(string) {
	return func(warning string) {
		fmt.Fprintf(w, "Warning: %s\n", warning)
	}
}

// Client is a connection to the API server. It is safe for concurrent use;
// share one per process.
type Client struct {
	conn    *grpc.ClientConn
	api     skiffv1.APIClient
	cluster skiffv1.ClusterClient
	warn    func(string)
	timeout time.Duration
}

// New creates a client for cfg.Server. It does not connect yet: the
// connection is made by the first request and re-made whenever it breaks,
// so New succeeds even while the server is down.
func New(cfg Config) (*Client, error) {
	target, err := grpcTarget(cfg.Server)
	if err != nil {
		return nil, err
	}
	maxSize := cfg.MaxMessageSize
	if maxSize == 0 {
		maxSize = DefaultMaxMessageSize
	}
	opts := []grpc.DialOption{
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxSize)),
	}
	switch {
	case cfg.Plaintext:
		if cfg.Token != "" {
			return nil, errors.New("a bearer token is never sent without TLS")
		}
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	case cfg.TLS == nil:
		return nil, fmt.Errorf("server %q: no TLS configuration (the cluster CA to trust, and a certificate or token)", cfg.Server)
	default:
		tc := cfg.TLS.Clone()
		if tc.MinVersion < tls.VersionTLS12 {
			tc.MinVersion = tls.VersionTLS12
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
		if cfg.Token != "" {
			opts = append(opts, grpc.WithPerRPCCredentials(bearerToken(cfg.Token)))
		}
	}
	if cfg.UserAgent != "" {
		opts = append(opts, grpc.WithUserAgent(cfg.UserAgent))
	}
	opts = append(opts, cfg.DialOptions...)
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %q: %w", cfg.Server, err)
	}
	warn := cfg.WarningHandler
	if warn == nil {
		warn = WarningsToStderr
	}
	return &Client{
		conn:    conn,
		api:     skiffv1.NewAPIClient(conn),
		cluster: skiffv1.NewClusterClient(conn),
		warn:    warn,
		timeout: cfg.Timeout,
	}, nil
}

// grpcTarget turns a server address as users write it into a gRPC target.
func grpcTarget(server string) (string, error) {
	switch {
	case server == "":
		return "", errors.New("server address is required")
	case strings.HasPrefix(server, "http://"):
		return "", fmt.Errorf("server %q: the API is served only over TLS, use https://", server)
	case strings.HasPrefix(server, "https://"):
		return strings.TrimSuffix(strings.TrimPrefix(server, "https://"), "/"), nil
	}
	return server, nil
}

// bearerToken sends a token in the authorization metadata of every call,
// and only over TLS.
type bearerToken string

func (t bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

func (bearerToken) RequireTransportSecurity() bool { return true }

// Close closes the connection. Watches still open end, and requests
// made afterwards fail.
func (c *Client) Close() error {
	return c.conn.Close()
}

// Version asks the server for its version.
func (c *Client) Version(ctx context.Context) (version.Info, error) {
	ctx, cancel := c.requestContext(ctx)
	defer cancel()
	resp, err := c.api.Version(ctx, &skiffv1.VersionRequest{})
	if err != nil {
		return version.Info{}, grpcerr.FromStatus(err)
	}
	return version.Info{
		GitVersion: resp.GetGitVersion(),
		GoVersion:  resp.GetGoVersion(),
		Platform:   resp.GetPlatform(),
	}, nil
}

// requestContext applies Config.Timeout to one unary request.
func (c *Client) requestContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.timeout > 0 {
		return context.WithTimeout(ctx, c.timeout)
	}
	return context.WithCancel(ctx)
}

// warnings hands the warnings of one response to the WarningHandler.
func (c *Client) warnings(ws []string) {
	for _, w := range ws {
		c.warn(w)
	}
}
