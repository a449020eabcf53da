package apiserver

import (
	"errors"
	"net"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
)

// ServePlaintext serves s's API a second time, on a loopback port and
// without TLS, authentication or authorization, until the test ends: for
// the benchmark that measures what those cost on the same server. Nothing
// but a test can open it.
func ServePlaintext(tb testing.TB, s *Server) string {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	g := s.newGRPCServer(grpc.ChainUnaryInterceptor(recoverUnary), grpc.ChainStreamInterceptor(recoverStream))
	go func() {
		if err := g.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			tb.Errorf("plaintext listener: %v", err)
		}
	}()
	tb.Cleanup(g.Stop)
	return lis.Addr().String()
}

// EtcdClient is the server's etcd client, for tests that look at the
// stored values as they are.
func EtcdClient(s *Server) *clientv3.Client { return s.client }

// WithoutEncryption makes a server store Secrets in the clear: for the
// benchmark that measures what encryption at rest costs.
func WithoutEncryption(cfg *Config) { cfg.noEncryption = true }
