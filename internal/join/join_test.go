package join_test

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/apiserver"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/join"
	"github.com/skiffdev/skiff/internal/pki"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
	skiffv1 "github.com/skiffdev/skiff/proto/skiff/v1"
)

func newToken(t *testing.T, c *client.Client, ttl time.Duration) string {
	t.Helper()
	tok, err := c.CreateToken(testenv.Context(t), ttl, "join test")
	if err != nil {
		t.Fatal(err)
	}
	return tok.GetToken()
}

func joinCfg(srv *apiserver.Server, token, root, node string) join.Config {
	return join.Config{Server: "https://" + srv.Addr(), Token: token, RootDir: root, NodeName: node, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}
}

// TestJoin checks a first join with a token, the files it leaves, and a
// second start that needs no token.
func TestJoin(t *testing.T) {
	srv := testenv.StartServer(t)
	admin := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	root := t.TempDir()

	creds, err := join.Join(ctx, joinCfg(srv, newToken(t, admin, time.Hour), root, "n1"))
	if err != nil {
		t.Fatal(err)
	}
	if got := creds.ClientCertificate().Subject.CommonName; got != "system:node:n1" {
		t.Errorf("got client identity %q, want system:node:n1", got)
	}
	if got := creds.ServingCertificate(); got.VerifyHostname("127.0.0.1") != nil || got.Subject.CommonName != "system:node:n1" {
		t.Errorf("got a serving certificate for %q naming %v", got.Subject.CommonName, got.IPAddresses)
	}
	for _, f := range []string{join.KubeconfigFile, join.NodePasswordFile, join.ServingKeyFile} {
		fi, err := os.Stat(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: got mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	// The node's identity works, and is a node's.
	c := testenv.NewClientWith(t, creds.ClientConfig("test"))
	if _, err := c.Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}); err != nil {
		t.Errorf("creating its own Node: %v", err)
	}
	if _, err := c.Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}}); err == nil {
		t.Error("a node created another node")
	}

	// A later start reads the credentials: no token, no new certificate.
	again, err := join.Join(ctx, join.Config{RootDir: root, NodeName: "n1", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatalf("starting again without a token: %v", err)
	}
	if again.ClientCertificate().SerialNumber.Cmp(creds.ClientCertificate().SerialNumber) != 0 {
		t.Error("a second start got a new client certificate")
	}
	// Without credentials and without a token, the message says what to do.
	_, err = join.Join(ctx, join.Config{RootDir: t.TempDir(), NodeName: "n3"})
	if err == nil || !strings.Contains(err.Error(), "give --server and --token") {
		t.Errorf("got %v, want a message asking for --server and --token", err)
	}
}

// TestJoinRefusals checks that each bad join fails with a message saying
// why.
func TestJoinRefusals(t *testing.T) {
	srv := testenv.StartServer(t)
	admin := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	good := newToken(t, admin, time.Hour)
	tok, _ := pki.ParseToken(good, true)

	wrongSecret := tok
	wrongSecret.Secret = "zzzzzzzzzzzzzzzz"
	deleted, _ := pki.ParseToken(newToken(t, admin, time.Hour), true)
	if err := admin.DeleteToken(ctx, deleted.ID); err != nil {
		t.Fatal(err)
	}
	expiring := newToken(t, admin, time.Second)

	tests := []struct {
		name, token, want string
	}{
		{"malformed", "K10abc::x.y", "--token: malformed token"},
		{"wrong secret", wrongSecret.String(), `wrong secret for token "` + tok.ID + `"`},
		{"deleted", deleted.String(), `token "` + deleted.ID + `" does not exist`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := join.Join(ctx, joinCfg(srv, tt.token, t.TempDir(), "n-"+strings.ReplaceAll(tt.name, " ", "-")))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		wait.For(t, 10*time.Second, "the token to expire", func() (bool, error) {
			_, err := join.Join(ctx, joinCfg(srv, expiring, t.TempDir(), "n-expired"))
			return err != nil && strings.Contains(err.Error(), "expired at"), err
		})
	})
	t.Run("a second machine with a taken name", func(t *testing.T) {
		if _, err := join.Join(ctx, joinCfg(srv, good, t.TempDir(), "taken")); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "taken"}}); err != nil {
			t.Fatal(err)
		}
		wait.For(t, 10*time.Second, "the second machine to be refused", func() (bool, error) {
			_, err := join.Join(ctx, joinCfg(srv, good, t.TempDir(), "taken"))
			return err != nil && strings.Contains(err.Error(), "the name is taken by another machine"), err
		})
	})
}

// TestJoinRefusesAnotherCA checks that an agent whose token pins another
// CA than the server's stops before it sends the token: the server it
// reached never sees an authorization header.
func TestJoinRefusesAnotherCA(t *testing.T) {
	ca, err := pki.NewCA("impostor", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.Issue(pki.Leaf{CommonName: "impostor", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Usage: pki.ServerAuth}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := kp.TLS()
	if err != nil {
		t.Fatal(err)
	}
	// mu guards seen.
	var mu sync.Mutex
	var seen []string
	g := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{*cert}})),
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			md, _ := metadata.FromIncomingContext(ctx)
			mu.Lock()
			seen = append(seen, md.Get("authorization")...)
			mu.Unlock()
			return h(ctx, req)
		}),
	)
	imp := &impostor{}
	imp.ca.Store(&ca.CertPEM)
	skiffv1.RegisterClusterServer(g, imp)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(lis)
	t.Cleanup(g.Stop)

	other, err := pki.NewCA("the real one", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := pki.NewToken(other.Hash())
	if err != nil {
		t.Fatal(err)
	}
	_, err = join.Join(testenv.Context(t), join.Config{Server: "https://" + lis.Addr().String(), Token: tok.String(), RootDir: t.TempDir(), NodeName: "n1"})
	if err == nil || !strings.Contains(err.Error(), "has another CA than the token names") || !strings.Contains(err.Error(), "not sending the token") {
		t.Errorf("got %v, want a refusal naming the CA mismatch", err)
	}

	// The real CA, with the impostor's own behind it: the pin matches the
	// first, but nothing but exactly the pinned certificate is trusted.
	both := append(append([]byte(nil), other.CertPEM...), ca.CertPEM...)
	imp.ca.Store(&both)
	_, err = join.Join(testenv.Context(t), join.Config{Server: "https://" + lis.Addr().String(), Token: tok.String(), RootDir: t.TempDir(), NodeName: "n1"})
	if err == nil || !strings.Contains(err.Error(), "answered 2 certificates for its CA, not one") {
		t.Errorf("got %v, want a refusal of the extra certificate", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) > 0 {
		t.Errorf("the impostor received credentials: %q", seen)
	}
}

// impostor is a server with a CA of its own that would sign anything.
type impostor struct {
	skiffv1.UnimplementedClusterServer
	ca atomic.Pointer[[]byte]
}

func (i *impostor) CA(context.Context, *skiffv1.CARequest) (*skiffv1.CAResponse, error) {
	return &skiffv1.CAResponse{Certificate: *i.ca.Load()}, nil
}
