package apiserver_test

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/apiserver"
	"github.com/skiffdev/skiff/apiserver/auth"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/pki"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
	skiffv1 "github.com/skiffdev/skiff/proto/skiff/v1"
)

// connect makes a client of srv with tc and an optional token; the
// client is closed when the test ends.
func connect(t *testing.T, srv *apiserver.Server, tc *tls.Config, token string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{Server: "https://" + srv.Addr(), TLS: tc, Token: token, Timeout: 10 * time.Second, WarningHandler: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// withCert is a TLS configuration trusting roots and presenting kp
// always (Go's client would leave out a certificate of a CA the server
// does not name; other clients may not).
func withCert(t *testing.T, roots *x509.CertPool, kp pki.KeyPair) *tls.Config {
	t.Helper()
	cert, err := kp.TLS()
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: roots, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }}
}

// TestTLS checks the API port's transport: TLS only, the cluster CA's
// certificates only, and a serving certificate that names every address
// a client may use.
func TestTLS(t *testing.T) {
	cfg := testenv.ServerConfig(t)
	cfg.TLSSANs = []string{"api.example.test", "192.0.2.10"}
	srv := testenv.StartServerWith(t, cfg)
	ctx := testenv.Context(t)
	ca := srv.CA()
	other, err := pki.NewCA("other", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	admin := func(signer *pki.CA, now time.Time) pki.KeyPair {
		kp, err := signer.Issue(pki.Leaf{CommonName: auth.AdminUser, Organization: []string{auth.MastersGroup}, Usage: pki.ClientAuth, Lifetime: time.Hour}, now)
		if err != nil {
			t.Fatal(err)
		}
		return kp
	}

	t.Run("plaintext is refused, never answered", func(t *testing.T) {
		c, err := client.New(client.Config{Server: srv.Addr(), Plaintext: true, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if v, err := c.Version(ctx); !apierrors.IsServiceUnavailable(err) {
			t.Errorf("got %+v, %v; want the connection refused (ServiceUnavailable)", v, err)
		}
	})
	t.Run("a server certificate of another CA is refused by the client", func(t *testing.T) {
		_, err := connect(t, srv, withCert(t, other.Pool(), admin(other, time.Now())), "").Version(ctx)
		if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
			t.Errorf("got %v, want the server's certificate refused", err)
		}
	})
	refused := []struct {
		name string
		kp   pki.KeyPair
	}{
		{"a client certificate of another CA", admin(other, time.Now())},
		{"an expired client certificate", admin(ca, time.Now().Add(-2*time.Hour))},
		{"a client certificate not valid yet", admin(ca, time.Now().Add(2*time.Hour))},
	}
	for _, tt := range refused {
		t.Run(tt.name+" is refused at the handshake", func(t *testing.T) {
			_, err := connect(t, srv, withCert(t, ca.Pool(), tt.kp), "").Version(ctx)
			if !apierrors.IsServiceUnavailable(err) {
				t.Errorf("got %v, want the handshake refused (ServiceUnavailable)", err)
			}
		})
	}
	t.Run("an oversized client certificate is refused at the handshake", func(t *testing.T) {
		names := make([]string, 1000)
		for i := range names {
			names[i] = strings.Repeat("x", 20) + ".example.test"
		}
		kp, err := ca.Issue(pki.Leaf{CommonName: auth.AdminUser, Organization: []string{auth.MastersGroup}, DNSNames: names, Usage: pki.ClientAuth}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := connect(t, srv, withCert(t, ca.Pool(), kp), "").Version(ctx); !apierrors.IsServiceUnavailable(err) {
			t.Errorf("got %v, want the handshake refused (ServiceUnavailable)", err)
		}
	})

	t.Run("the serving certificate's names", func(t *testing.T) {
		data, err := os.ReadFile(filepath.Join(apiserver.TLSDir(cfg.DataDir), "server.crt"))
		if err != nil {
			t.Fatal(err)
		}
		cert, err := pki.ParseCert(data)
		if err != nil {
			t.Fatal(err)
		}
		host, _ := os.Hostname()
		for _, name := range []string{"127.0.0.1", "localhost", "kubernetes", "kubernetes.default.svc", "10.96.0.1", "api.example.test", "192.0.2.10", host} {
			if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: name}); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
		if err := cert.VerifyHostname("10.96.0.2"); err == nil {
			t.Error("the certificate names 10.96.0.2, a Service's address")
		}
	})
	t.Run("files and modes", func(t *testing.T) {
		dir := apiserver.TLSDir(cfg.DataDir)
		for name, want := range map[string]os.FileMode{".": 0o700, "ca.key": 0o600, "server.key": 0o600, "kubelet-client.key": 0o600, "../token": 0o600, "../etcd": 0o700} {
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != want {
				t.Errorf("%s: got mode %v, want %v", name, got, want)
			}
		}
	})
}

// TestAuthenticationAndAuthorization checks the answers to who may call
// and what they may do, in Kubernetes' words.
func TestAuthenticationAndAuthorization(t *testing.T) {
	srv := testenv.StartServer(t)
	ctx := testenv.Context(t)
	ca := srv.CA()
	admin := testenv.NewClient(t, srv)
	for _, n := range []string{"a", "b"} {
		if _, err := admin.Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}); err != nil {
			t.Fatal(err)
		}
	}
	nodeA := testenv.NewClientAs(t, srv, "system:node:a", auth.NodesGroup)
	alice := testenv.NewClientAs(t, srv, "alice", "developers")
	anonymous := connect(t, srv, &tls.Config{RootCAs: ca.Pool()}, "")

	t.Run("no credentials: 401", func(t *testing.T) {
		_, err := anonymous.Version(ctx)
		if !apierrors.IsUnauthorized(err) || err.Error() != "Unauthorized" {
			t.Errorf("got %v, want Unauthorized", err)
		}
		if _, err := anonymous.Pods("default").List(ctx, metav1.ListOptions{}); !apierrors.IsUnauthorized(err) {
			t.Errorf("list pods: got %v, want Unauthorized", err)
		}
	})
	t.Run("no credentials may fetch the CA", func(t *testing.T) {
		got, err := anonymous.CA(ctx)
		if err != nil || string(got) != string(ca.CertPEM) {
			t.Errorf("got %q, %v; want the CA", got, err)
		}
	})
	t.Run("a garbage token: 401 saying why", func(t *testing.T) {
		_, err := connect(t, srv, &tls.Config{RootCAs: ca.Pool()}, "nope").Version(ctx)
		if !apierrors.IsUnauthorized(err) || !strings.Contains(err.Error(), "malformed token") {
			t.Errorf("got %v, want Unauthorized: malformed token", err)
		}
	})
	t.Run("a node deletes another node: 403", func(t *testing.T) {
		err := nodeA.Nodes().Delete(ctx, "b", metav1.DeleteOptions{})
		want := `nodes "b" is forbidden: User "system:node:a" cannot delete resource "nodes" in API group "" at the cluster scope: node "a" is not allowed to modify node "b"`
		if !apierrors.IsForbidden(err) || err.Error() != want {
			t.Errorf("got %v, want %s", err, want)
		}
	})
	t.Run("a node updates its own node", func(t *testing.T) {
		n, err := nodeA.Nodes().Get(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		n.Labels = map[string]string{"zone": "one"}
		if _, err := nodeA.Nodes().Update(ctx, n); err != nil {
			t.Errorf("got %v, want the update accepted", err)
		}
		if n, err = nodeA.Nodes().Get(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		n.Labels["node-restriction.kubernetes.io/pool"] = "gold"
		if _, err := nodeA.Nodes().Update(ctx, n); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "node-restriction.kubernetes.io/pool") {
			t.Errorf("got %v, want a refusal naming the restricted label", err)
		}
	})
	t.Run("a node may create only mirror pods", func(t *testing.T) {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"}, Spec: corev1.PodSpec{NodeName: "a", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
		_, err := nodeA.Pods("default").Create(ctx, pod)
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `node "a" can only create mirror pods`) {
			t.Errorf("got %v, want mirror pods only", err)
		}
		if _, err := admin.Pods("default").Get(ctx, "p"); !apierrors.IsNotFound(err) {
			t.Errorf("the refused pod was stored: %v", err)
		}
	})
	t.Run("a user with no rights: 403", func(t *testing.T) {
		_, err := alice.Pods("default").List(ctx, metav1.ListOptions{})
		want := `pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default"`
		if !apierrors.IsForbidden(err) || err.Error() != want {
			t.Errorf("got %v, want %s", err, want)
		}
		if _, err := alice.CreateToken(ctx, time.Hour, ""); !apierrors.IsForbidden(err) {
			t.Errorf("create token: got %v, want Forbidden", err)
		}
	})
	t.Run("a node may not make join tokens", func(t *testing.T) {
		if _, err := nodeA.CreateToken(ctx, time.Hour, ""); !apierrors.IsForbidden(err) {
			t.Errorf("got %v, want Forbidden", err)
		}
	})
}

// csr makes a certificate signing request for a node.
func csr(t *testing.T, cn string, groups []string, ips ...net.IP) []byte {
	t.Helper()
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	data, err := pki.CreateCSR(key, cn, groups, nil, ips)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

var (
	clientUsage  = skiffv1.CertificateUsage_CERTIFICATE_USAGE_CLIENT
	servingUsage = skiffv1.CertificateUsage_CERTIFICATE_USAGE_SERVING
	nodesGroup   = []string{auth.NodesGroup}
)

// TestJoinTokens checks join tokens and the signing of nodes'
// certificates: each refusal says which check failed.
func TestJoinTokens(t *testing.T) {
	srv := testenv.StartServer(t)
	ctx := testenv.Context(t)
	admin := testenv.NewClient(t, srv)
	roots := &tls.Config{RootCAs: srv.CA().Pool()}
	const password = "0123456789abcdef0123"

	tok, err := admin.CreateToken(ctx, time.Hour, "for node a")
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := pki.ParseToken(tok.GetToken(), true)
	if err != nil {
		t.Fatalf("the token made: %v", err)
	}
	if parsed.CAHash != srv.CA().Hash() {
		t.Errorf("got a token pinning %s, want the CA %s", parsed.CAHash, srv.CA().Hash())
	}
	joiner := connect(t, srv, roots, parsed.Bearer())

	t.Run("the right token has a node's certificate signed", func(t *testing.T) {
		certPEM, err := joiner.SignNodeCertificate(ctx, csr(t, "system:node:a", nodesGroup), clientUsage, password)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := pki.ParseCert(certPEM)
		if err != nil {
			t.Fatal(err)
		}
		if cert.Subject.CommonName != "system:node:a" || len(cert.Subject.Organization) != 1 || cert.Subject.Organization[0] != auth.NodesGroup {
			t.Errorf("got subject %v", cert.Subject)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: srv.CA().Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("verify: %v", err)
		}
	})
	t.Run("a token may do nothing else", func(t *testing.T) {
		if _, err := joiner.Pods("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("got %v, want Forbidden", err)
		}
	})
	refusals := []struct {
		name, cn string
		groups   []string
		password string
		want     string
	}{
		{"system:masters", "system:node:a", []string{"system:masters"}, password, `a node may only be in "system:nodes"`},
		{"the admin's name", "system:admin", nodesGroup, password, `a node may only ask for "system:node:NAME"`},
		{"no node password", "system:node:a", nodesGroup, "", "node_password: a node password of at least 16 characters is required"},
	}
	for _, tt := range refusals {
		t.Run("a request for "+tt.name+" is refused", func(t *testing.T) {
			_, err := joiner.SignNodeCertificate(ctx, csr(t, tt.cn, tt.groups), clientUsage, tt.password)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
	t.Run("a malformed request is refused", func(t *testing.T) {
		_, err := joiner.SignNodeCertificate(ctx, []byte("not a CSR"), clientUsage, password)
		if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "CERTIFICATE REQUEST") {
			t.Errorf("got %v, want BadRequest", err)
		}
	})

	t.Run("a second machine cannot take a node's name", func(t *testing.T) {
		// The node "a" exists now, registered by the first machine.
		if _, err := admin.Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "a"}}); err != nil {
			t.Fatal(err)
		}
		_, err := joiner.SignNodeCertificate(ctx, csr(t, "system:node:a", nodesGroup), clientUsage, "another-machine-password")
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "the name is taken by another machine") {
			t.Errorf("got %v, want the name refused", err)
		}
		// The first machine may join again.
		if _, err := joiner.SignNodeCertificate(ctx, csr(t, "system:node:a", nodesGroup), clientUsage, password); err != nil {
			t.Errorf("the first machine again: %v", err)
		}
		// Once the node is deleted, its name is free.
		if err := admin.Nodes().Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := joiner.SignNodeCertificate(ctx, csr(t, "system:node:a", nodesGroup), clientUsage, "another-machine-password"); err != nil {
			t.Errorf("the name after its Node was deleted: %v", err)
		}
	})

	t.Run("serving certificates are for nodes, from a CA of their own", func(t *testing.T) {
		_, err := joiner.SignNodeCertificate(ctx, csr(t, "system:node:a", nodesGroup, net.IPv4(10, 0, 0, 1)), servingUsage, password)
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "only a node may have its serving certificate signed") {
			t.Errorf("a bootstrapper's serving request: got %v, want Forbidden", err)
		}
		node := testenv.NewClientAs(t, srv, "system:node:b", auth.NodesGroup)
		certPEM, err := node.SignNodeCertificate(ctx, csr(t, "system:node:b", nodesGroup, net.IPv4(127, 0, 0, 1)), servingUsage, password)
		if err != nil {
			t.Fatalf("its own serving certificate: %v", err)
		}
		cert, err := pki.ParseCert(certPEM)
		if err != nil {
			t.Fatal(err)
		}
		// A node may name any address in it, even the API server's: no
		// client of the API trusts its CA.
		if _, err := cert.Verify(x509.VerifyOptions{Roots: srv.CA().Pool(), DNSName: "127.0.0.1"}); err == nil {
			t.Error("a kubelet's serving certificate verifies against the cluster CA, so it could pass for the API server")
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: srv.KubeletServingCA().Pool(), DNSName: "127.0.0.1"}); err != nil {
			t.Errorf("against the kubelet serving CA: %v", err)
		}
	})

	t.Run("a node renews only its own certificates, with its password", func(t *testing.T) {
		node := testenv.NewClientAs(t, srv, "system:node:b", auth.NodesGroup)
		if _, err := node.SignNodeCertificate(ctx, csr(t, "system:node:b", nodesGroup), clientUsage, password); err != nil {
			t.Errorf("its own client certificate: %v", err)
		}
		_, err := node.SignNodeCertificate(ctx, csr(t, "system:node:c", nodesGroup), clientUsage, password)
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `is for node "c", not for "b"`) {
			t.Errorf("another node's: got %v, want Forbidden", err)
		}
		// A machine that lost its name to another (after its Node was
		// deleted) can renew no more.
		_, err = node.SignNodeCertificate(ctx, csr(t, "system:node:b", nodesGroup), clientUsage, "another-machine-password")
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "the name is taken by another machine") {
			t.Errorf("with another password: got %v, want Forbidden", err)
		}
	})

	t.Run("a wrong secret, a deleted token, an expired token", func(t *testing.T) {
		wrong := parsed
		wrong.Secret = "0000000000000000"
		_, err := connect(t, srv, roots, wrong.Bearer()).SignNodeCertificate(ctx, csr(t, "system:node:x", nodesGroup), clientUsage, password)
		if !apierrors.IsUnauthorized(err) || !strings.Contains(err.Error(), "wrong secret for token "+`"`+parsed.ID+`"`) {
			t.Errorf("wrong secret: got %v", err)
		}

		gone, err := admin.CreateToken(ctx, time.Hour, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := admin.DeleteToken(ctx, gone.GetId()); err != nil {
			t.Fatal(err)
		}
		gp, _ := pki.ParseToken(gone.GetToken(), true)
		_, err = connect(t, srv, roots, gp.Bearer()).SignNodeCertificate(ctx, csr(t, "system:node:x", nodesGroup), clientUsage, password)
		if !apierrors.IsUnauthorized(err) || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("deleted token: got %v", err)
		}
		if err := admin.DeleteToken(ctx, gone.GetId()); !apierrors.IsNotFound(err) {
			t.Errorf("deleting it again: got %v, want NotFound", err)
		}

		short, err := admin.CreateToken(ctx, time.Second, "")
		if err != nil {
			t.Fatal(err)
		}
		sp, _ := pki.ParseToken(short.GetToken(), true)
		c := connect(t, srv, roots, sp.Bearer())
		wait.For(t, 10*time.Second, "the token to expire", func() (bool, error) {
			_, err := c.SignNodeCertificate(ctx, csr(t, "system:node:y", nodesGroup), clientUsage, password)
			return apierrors.IsUnauthorized(err) && strings.Contains(err.Error(), "expired at"), err
		})
	})

	t.Run("list shows ids and descriptions, never secrets", func(t *testing.T) {
		toks, err := admin.ListTokens(ctx)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, lt := range toks {
			if lt.GetToken() != "" {
				t.Errorf("token %s listed with its secret", lt.GetId())
			}
			found = found || lt.GetId() == tok.GetId() && lt.GetDescription() == "for node a" && lt.GetExpires() > 0
		}
		if !found {
			t.Errorf("token %s not listed as made: %v", tok.GetId(), toks)
		}
	})
}

// TestServerToken checks the join token skiff server writes at its first
// start: pinning the CA, usable, and kept across restarts.
func TestServerToken(t *testing.T) {
	cfg := testenv.ServerConfig(t)
	srv := testenv.StartServerWith(t, cfg)
	data, err := os.ReadFile(filepath.Join(cfg.DataDir, apiserver.TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := pki.ParseToken(strings.TrimSpace(string(data)), true)
	if err != nil {
		t.Fatal(err)
	}
	if tok.CAHash != srv.CA().Hash() {
		t.Errorf("got a token pinning %s, want %s", tok.CAHash, srv.CA().Hash())
	}
	c := connect(t, srv, &tls.Config{RootCAs: srv.CA().Pool()}, tok.Bearer())
	if _, err := c.SignNodeCertificate(testenv.Context(t), csr(t, "system:node:a", nodesGroup), clientUsage, "0123456789abcdef0123"); err != nil {
		t.Errorf("joining with the server's token: %v", err)
	}
	srv.Stop()
	again := testenv.StartServerWith(t, cfg)
	if again.CA().Hash() != srv.CA().Hash() {
		t.Error("the CA changed across a restart")
	}
	after, _ := os.ReadFile(filepath.Join(cfg.DataDir, apiserver.TokenFile))
	if string(after) != string(data) {
		t.Error("the token file changed across a restart")
	}
}
