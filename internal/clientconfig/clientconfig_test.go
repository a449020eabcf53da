package clientconfig

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/pki"
)

// testCA is a cluster CA with a client certificate for "alice" and a
// serving certificate for 127.0.0.1.
type testCA struct {
	ca      *pki.CA
	alice   pki.KeyPair
	serving pki.KeyPair
}

func newTestCA(t *testing.T) testCA {
	t.Helper()
	now := time.Now()
	ca, err := pki.NewCA("skiff-ca", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	alice, err := ca.Issue(pki.Leaf{CommonName: "alice", Organization: []string{"devs"}, Usage: pki.ClientAuth}, now)
	if err != nil {
		t.Fatal(err)
	}
	serving, err := ca.Issue(pki.Leaf{CommonName: "apiserver", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"apiserver.skiff"}, Usage: pki.ServerAuth}, now)
	if err != nil {
		t.Fatal(err)
	}
	return testCA{ca: ca, alice: alice, serving: serving}
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// noEnv makes the test independent of the caller's $KUBECONFIG.
func noEnv(t *testing.T) { t.Setenv(EnvKubeconfig, "") }

// handshake makes a TLS connection with cfg to a server that presents
// the CA's serving certificate and asks for a client certificate, and
// returns the common name the server saw ("" for none).
func handshake(t *testing.T, tc testCA, cfg client.Config) (string, error) {
	t.Helper()
	serving, err := tls.X509KeyPair(tc.serving.CertPEM, tc.serving.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	clientSide, serverSide := net.Pipe()
	defer clientSide.Close()
	seen := make(chan string, 1)
	go func() {
		defer serverSide.Close()
		s := tls.Server(serverSide, &tls.Config{
			Certificates: []tls.Certificate{serving},
			ClientAuth:   tls.VerifyClientCertIfGiven,
			ClientCAs:    tc.ca.Pool(),
		})
		if err := s.Handshake(); err != nil {
			seen <- ""
			return
		}
		var cn string
		if peers := s.ConnectionState().PeerCertificates; len(peers) > 0 {
			cn = peers[0].Subject.CommonName
		}
		seen <- cn
	}()
	conf := cfg.TLS.Clone()
	if conf.ServerName == "" {
		host, _, _ := net.SplitHostPort(strings.TrimPrefix(cfg.Server, "https://"))
		conf.ServerName = host
	}
	c := tls.Client(clientSide, conf)
	err = c.Handshake()
	if err != nil {
		clientSide.Close()
	}
	return <-seen, err
}

// TestWriteKubeconfig writes credentials, reads them back with
// LoadKubeconfig and with client-go (as kubectl will), and connects
// with what was read.
func TestWriteKubeconfig(t *testing.T) {
	tc := newTestCA(t)
	tests := []struct {
		name      string
		creds     Credentials
		wantCN    string // the identity the server sees from the certificate
		wantToken string
	}{
		{"certificate", Credentials{Server: "https://127.0.0.1:6443", CA: tc.ca.CertPEM, CertPEM: tc.alice.CertPEM, KeyPEM: tc.alice.KeyPEM, User: "alice"}, "alice", ""},
		{"token", Credentials{Server: "https://127.0.0.1:6443", CA: tc.ca.CertPEM, Token: "abcdef.0123456789abcdef", User: "system:node:n1", Cluster: "lab"}, "", "abcdef.0123456789abcdef"},
		{"address without scheme", Credentials{Server: "127.0.0.1:6443", CA: tc.ca.CertPEM, Token: "t", User: "u"}, "", "t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "home", ".skiff", "config")
			if err := WriteKubeconfig(path, tt.creds); err != nil {
				t.Fatal(err)
			}
			if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("file: got %v, %v; want mode 0600", st, err)
			}
			if st, err := os.Stat(filepath.Dir(path)); err != nil || st.Mode().Perm() != 0o700 {
				t.Errorf("directory: got %v, %v; want mode 0700", st, err)
			}

			cfg, err := LoadKubeconfig(path)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Server != "https://127.0.0.1:6443" || cfg.Token != tt.wantToken || cfg.Plaintext {
				t.Errorf("got server %q, token %q, plaintext %v; want https://127.0.0.1:6443, %q, false", cfg.Server, cfg.Token, cfg.Plaintext, tt.wantToken)
			}
			if cfg.TLS == nil || cfg.TLS.RootCAs == nil || !cfg.TLS.RootCAs.Equal(tc.ca.Pool()) {
				t.Errorf("RootCAs are not the CA alone")
			}
			if cn, err := handshake(t, tc, cfg); err != nil || cn != tt.wantCN {
				t.Errorf("handshake: got identity %q, %v; want %q", cn, err, tt.wantCN)
			}

			// Skiff's own reader gives back what was written.
			read, err := ReadCredentials(path)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.creds
			want.Server = "https://127.0.0.1:6443"
			if want.Cluster == "" {
				want.Cluster = DefaultCluster
			}
			if !equalCredentials(read, want) {
				t.Errorf("ReadCredentials: got %+v, want %+v", read, want)
			}

			// kubectl reads the same file.
			kc, err := clientcmd.LoadFromFile(path)
			if err != nil {
				t.Fatalf("client-go: %v", err)
			}
			wantCluster := tt.creds.Cluster
			if wantCluster == "" {
				wantCluster = "skiff"
			}
			ctx := kc.Contexts[kc.CurrentContext]
			if kc.CurrentContext != tt.creds.User || ctx == nil || ctx.Cluster != wantCluster || ctx.AuthInfo != tt.creds.User {
				t.Fatalf("client-go: got current context %q = %+v, want %q with cluster %q and user %q", kc.CurrentContext, ctx, tt.creds.User, wantCluster, tt.creds.User)
			}
			cluster, user := kc.Clusters[wantCluster], kc.AuthInfos[tt.creds.User]
			if cluster.Server != "https://127.0.0.1:6443" || !bytes.Equal(cluster.CertificateAuthorityData, tc.ca.CertPEM) {
				t.Errorf("client-go: got cluster %+v", cluster)
			}
			if !bytes.Equal(user.ClientCertificateData, tt.creds.CertPEM) || !bytes.Equal(user.ClientKeyData, tt.creds.KeyPEM) || user.Token != tt.creds.Token {
				t.Errorf("client-go: got user %+v", user)
			}
			if _, err := clientcmd.NewDefaultClientConfig(*kc, nil).ClientConfig(); err != nil {
				t.Errorf("client-go: not a usable config: %v", err)
			}
		})
	}
}

func equalCredentials(a, b Credentials) bool {
	return a.Server == b.Server && bytes.Equal(a.CA, b.CA) && bytes.Equal(a.CertPEM, b.CertPEM) &&
		bytes.Equal(a.KeyPEM, b.KeyPEM) && a.Token == b.Token && a.User == b.User && a.Cluster == b.Cluster
}

// TestReadCredentialsMissing checks that a file that is not there can be
// told from one that cannot be used.
func TestReadCredentialsMissing(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadCredentials(filepath.Join(dir, "none")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v, want os.ErrNotExist", err)
	}
	old := writeFile(t, filepath.Join(dir, "old"), "server: 127.0.0.1:6443\n")
	if _, err := ReadCredentials(old); err == nil || errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "before Skiff used TLS") {
		t.Errorf("old file: got %v, want the old-format error", err)
	}
}

// TestWriteKubeconfigReplaces checks that a second write replaces the
// file by a rename: a reader that opened the old file keeps the old
// content whole, and no temporary file is left behind.
func TestWriteKubeconfigReplaces(t *testing.T) {
	tc := newTestCA(t)
	path := filepath.Join(t.TempDir(), "admin.kubeconfig")
	write := func(server string) {
		t.Helper()
		if err := WriteKubeconfig(path, Credentials{Server: server, CA: tc.ca.CertPEM, CertPEM: tc.alice.CertPEM, KeyPEM: tc.alice.KeyPEM, User: "admin"}); err != nil {
			t.Fatal(err)
		}
	}
	write("https://10.0.0.1:6443")
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	old, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	write("https://10.0.0.2:6443")

	if cfg, err := LoadKubeconfig(path); err != nil || cfg.Server != "https://10.0.0.2:6443" {
		t.Errorf("got %q, %v; want https://10.0.0.2:6443", cfg.Server, err)
	}
	got := make([]byte, len(before)+1)
	n, _ := old.Read(got)
	if !bytes.Equal(got[:n], before) {
		t.Errorf("the old file changed under its reader")
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only admin.kubeconfig", names)
	}
}

func TestWriteKubeconfigRejects(t *testing.T) {
	tc := newTestCA(t)
	other := newTestCA(t)
	good := Credentials{Server: "https://127.0.0.1:6443", CA: tc.ca.CertPEM, CertPEM: tc.alice.CertPEM, KeyPEM: tc.alice.KeyPEM, User: "alice"}
	tests := []struct {
		name   string
		change func(*Credentials)
		want   string
	}{
		{"no user", func(c *Credentials) { c.User = "" }, "no user name"},
		{"http", func(c *Credentials) { c.Server = "http://127.0.0.1:6443" }, "served only over TLS"},
		{"no server", func(c *Credentials) { c.Server = "" }, "no server given"},
		{"no CA", func(c *Credentials) { c.CA = nil }, "the CA certificate"},
		{"key of another certificate", func(c *Credentials) { c.KeyPEM = other.alice.KeyPEM }, "the client certificate"},
		{"certificate without key", func(c *Credentials) { c.KeyPEM = nil }, "the client certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config")
			c := good
			tt.change(&c)
			err := WriteKubeconfig(path, c)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("got %v, want an error naming %s and containing %q", err, path, tt.want)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("a file was written: %v", err)
			}
		})
	}
}

// kubeconfigFor is a kubeconfig whose cluster is at server, with no
// credentials: enough to tell files apart.
func kubeconfigFor(server string) string {
	return `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: ` + server + `
    insecure-skip-tls-verify: true
contexts:
- name: ctx
  context: {cluster: c}
current-context: ctx
`
}

// TestResolveOrder checks which file Resolve reads: --kubeconfig, else
// the first existing file of $KUBECONFIG, else the first existing path.
func TestResolveOrder(t *testing.T) {
	dir := t.TempDir()
	flagFile := writeFile(t, filepath.Join(dir, "flag"), kubeconfigFor("https://flag:1"))
	envFile := writeFile(t, filepath.Join(dir, "env"), kubeconfigFor("https://env:1"))
	user := writeFile(t, filepath.Join(dir, "home", ".skiff", "config"), kubeconfigFor("https://user:1"))
	admin := writeFile(t, filepath.Join(dir, "etc", "admin.kubeconfig"), kubeconfigFor("https://admin:1"))
	missing := filepath.Join(dir, "nowhere", "config")

	tests := []struct {
		name       string
		flags      Flags
		env        string
		paths      []string
		wantServer string
		wantPath   string
		wantErr    string
	}{
		{"--kubeconfig first", Flags{Kubeconfig: flagFile}, envFile, []string{user}, "https://flag:1", flagFile, ""},
		{"then $KUBECONFIG", Flags{}, envFile, []string{user}, "https://env:1", envFile, ""},
		{"first existing of $KUBECONFIG", Flags{}, missing + ":" + envFile + ":" + flagFile, []string{user}, "https://env:1", envFile, ""},
		{"then the paths", Flags{}, "", []string{user, admin}, "https://user:1", user, ""},
		{"missing paths skipped", Flags{}, "", []string{"", missing, admin}, "https://admin:1", admin, ""},
		{"--server over the file", Flags{Server: "https://other:2"}, "", []string{user}, "https://other:2", user, ""},
		{"no file, --server", Flags{Server: "other:2", InsecureSkipTLSVerify: true}, "", []string{missing}, "https://other:2", "", ""},
		{"$KUBECONFIG hides the paths", Flags{}, missing, []string{user}, "", "", "no kubeconfig found ($KUBECONFIG names " + missing + ", and none exists)"},
		{"missing --kubeconfig", Flags{Kubeconfig: missing}, "", []string{user}, "", missing, "no such file"},
		{"nothing", Flags{}, "", []string{missing}, "", "", "no kubeconfig found (looked for " + missing + ")"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvKubeconfig, tt.env)
			cfg, path, err := tt.flags.Resolve(tt.paths...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("got %v, want an error containing %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if cfg.Server != tt.wantServer || path != tt.wantPath {
				t.Errorf("got server %q from %q, want %q from %q", cfg.Server, path, tt.wantServer, tt.wantPath)
			}
		})
	}
}

// TestResolveNothing checks that a client with no file and no --server
// is told how to get one.
func TestResolveNothing(t *testing.T) {
	noEnv(t)
	_, _, err := Flags{Token: "x"}.Resolve(filepath.Join(t.TempDir(), "config"))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"--kubeconfig", "set KUBECONFIG", "skiff server", AdminPath, "~/.skiff/config"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want it to mention %q", err, want)
		}
	}
}

// TestResolveFlags checks that each flag given wins over the file's
// current context, as in kubectl.
func TestResolveFlags(t *testing.T) {
	noEnv(t)
	tc := newTestCA(t)
	other := newTestCA(t)
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "config")
	if err := WriteKubeconfig(kubeconfig, Credentials{Server: "https://127.0.0.1:6443", CA: tc.ca.CertPEM, CertPEM: tc.alice.CertPEM, KeyPEM: tc.alice.KeyPEM, Token: "from-file", User: "alice"}); err != nil {
		t.Fatal(err)
	}
	caFile := writeFile(t, filepath.Join(dir, "ca.crt"), string(tc.ca.CertPEM))
	otherCA := writeFile(t, filepath.Join(dir, "other-ca.crt"), string(other.ca.CertPEM))
	bobPair, err := tc.ca.Issue(pki.Leaf{CommonName: "bob", Usage: pki.ClientAuth}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	bobCert := writeFile(t, filepath.Join(dir, "bob.crt"), string(bobPair.CertPEM))
	bobKey := writeFile(t, filepath.Join(dir, "bob.key"), string(bobPair.KeyPEM))

	tests := []struct {
		name       string
		flags      Flags
		wantServer string
		wantToken  string
		wantCN     string // "" with wantTLSErr: the handshake fails
		wantTLSErr bool
		insecure   bool
	}{
		{"the file alone", Flags{}, "https://127.0.0.1:6443", "from-file", "alice", false, false},
		{"--server", Flags{Server: "127.0.0.1:7443"}, "https://127.0.0.1:7443", "from-file", "alice", false, false},
		{"--token", Flags{Token: "from-flag"}, "https://127.0.0.1:6443", "from-flag", "alice", false, false},
		{"--client-certificate and --client-key", Flags{ClientCertificate: bobCert, ClientKey: bobKey}, "https://127.0.0.1:6443", "from-file", "bob", false, false},
		{"--certificate-authority", Flags{CertificateAuthority: caFile}, "https://127.0.0.1:6443", "from-file", "alice", false, false},
		{"--certificate-authority of another CA", Flags{CertificateAuthority: otherCA}, "https://127.0.0.1:6443", "from-file", "", true, false},
		{"--insecure-skip-tls-verify drops the file's CA", Flags{InsecureSkipTLSVerify: true}, "https://127.0.0.1:6443", "from-file", "alice", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.flags
			f.Kubeconfig = kubeconfig
			cfg, path, err := f.Resolve()
			if err != nil {
				t.Fatal(err)
			}
			if path != kubeconfig || cfg.Server != tt.wantServer || cfg.Token != tt.wantToken || cfg.TLS.InsecureSkipVerify != tt.insecure {
				t.Errorf("got server %q, token %q, insecure %v from %q; want %q, %q, %v from %q", cfg.Server, cfg.Token, cfg.TLS.InsecureSkipVerify, path, tt.wantServer, tt.wantToken, tt.insecure, kubeconfig)
			}
			if tt.insecure && cfg.TLS.RootCAs != nil {
				t.Errorf("RootCAs kept with --insecure-skip-tls-verify")
			}
			cn, err := handshake(t, tc, cfg)
			if (err != nil) != tt.wantTLSErr || cn != tt.wantCN {
				t.Errorf("handshake: got identity %q, %v; want %q (failure: %v)", cn, err, tt.wantCN, tt.wantTLSErr)
			}
		})
	}

	t.Run("a missing flag file names the flag", func(t *testing.T) {
		_, _, err := Flags{Kubeconfig: kubeconfig, ClientKey: filepath.Join(dir, "nope.key")}.Resolve()
		if err == nil || !strings.HasPrefix(err.Error(), "--client-key: ") {
			t.Errorf("got %v, want an error naming --client-key", err)
		}
	})
}

// TestResolveRejects checks that a kubeconfig that cannot be used is an
// error naming the file and what is wrong, not a reason to try the next
// file.
func TestResolveRejects(t *testing.T) {
	noEnv(t)
	tc := newTestCA(t)
	dir := t.TempDir()
	fallback := filepath.Join(dir, "fallback")
	if err := WriteKubeconfig(fallback, Credentials{Server: "https://127.0.0.1:6443", CA: tc.ca.CertPEM, Token: "t", User: "u"}); err != nil {
		t.Fatal(err)
	}
	kubeconfig := func(cluster, user, rest string) string {
		return "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n" + cluster +
			"users:\n- name: u\n  user:\n" + user + rest
	}
	const ctx = "contexts:\n- name: ctx\n  context: {cluster: c, user: u}\ncurrent-context: ctx\n"
	const server = "    server: https://127.0.0.1:6443\n    insecure-skip-tls-verify: true\n"
	const token = "    token: t\n"
	tests := []struct {
		name, content, want string
	}{
		{"from before TLS", "server: 127.0.0.1:6443\n", "is a client config from before Skiff used TLS (it names only a server): remove it; skiff server now writes an admin kubeconfig to " + AdminPath + " (as root) or ~/.skiff/config"},
		{"empty", "", "current-context is not set"},
		{"no current context", kubeconfig(server, token, "contexts:\n- name: ctx\n  context: {cluster: c, user: u}\n"), "current-context is not set"},
		{"missing context", kubeconfig(server, token, "current-context: nope\n"), `current-context "nope" does not exist`},
		{"missing cluster", kubeconfig(server, token, "contexts:\n- name: ctx\n  context: {cluster: gone, user: u}\ncurrent-context: ctx\n"), `context "ctx": cluster "gone" does not exist`},
		{"missing user", kubeconfig(server, token, "contexts:\n- name: ctx\n  context: {cluster: c, user: gone}\ncurrent-context: ctx\n"), `context "ctx": user "gone" does not exist`},
		{"http", kubeconfig("    server: http://127.0.0.1:6443\n", token, ctx), `cluster "c": server "http://127.0.0.1:6443": the API is served only over TLS, use https://`},
		{"no server", kubeconfig("    insecure-skip-tls-verify: true\n", token, ctx), `cluster "c": no server given`},
		{"a path", kubeconfig("    server: https://127.0.0.1:6443/api\n", token, ctx), "want https://host:port"},
		{"CA and insecure", kubeconfig(server+"    certificate-authority: ca.crt\n", token, ctx), "insecure-skip-tls-verify are both set"},
		{"CA not PEM", kubeconfig("    server: https://127.0.0.1:6443\n    certificate-authority-data: bm90IGEgY2VydA==\n", token, ctx), "certificate-authority: no PEM certificate found"},
		{"missing CA file", kubeconfig("    server: https://127.0.0.1:6443\n    certificate-authority: nope.crt\n", token, ctx), "certificate-authority: open " + filepath.Join(dir, "nope.crt")},
		{"certificate without key", kubeconfig(server, "    client-certificate-data: "+b64(tc.alice.CertPEM)+"\n", ctx), `user "u": a client certificate without its key`},
		{"exec plugin", kubeconfig(server, "    exec: {apiVersion: client.authentication.k8s.io/v1, command: get-token}\n", ctx), `user "u": exec credential plugins: not supported`},
		{"basic auth", kubeconfig(server, "    username: admin\n    password: secret\n", ctx), "basic authentication"},
		{"not YAML", "apiVersion: v1\nclusters: [\n", "not a kubeconfig"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")), tt.content)
			_, got, err := Flags{}.Resolve(path, fallback)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("got %v, want an error naming %s and containing %q", err, path, tt.want)
			}
			if got != path {
				t.Errorf("got path %q, want %q", got, path)
			}
		})
	}
}

func b64(data []byte) string { return base64.StdEncoding.EncodeToString(data) }

// TestRelativeFiles checks that file names in a kubeconfig are relative
// to its directory, not to the working directory.
func TestRelativeFiles(t *testing.T) {
	noEnv(t)
	tc := newTestCA(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "pki", "ca.crt"), string(tc.ca.CertPEM))
	writeFile(t, filepath.Join(dir, "pki", "alice.crt"), string(tc.alice.CertPEM))
	writeFile(t, filepath.Join(dir, "pki", "alice.key"), string(tc.alice.KeyPEM))
	writeFile(t, filepath.Join(dir, "pki", "token"), "abc\n")
	path := writeFile(t, filepath.Join(dir, "config"), `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443", certificate-authority: pki/ca.crt}
users:
- name: u
  user: {client-certificate: pki/alice.crt, client-key: pki/alice.key, tokenFile: pki/token}
contexts:
- name: ctx
  context: {cluster: c, user: u}
current-context: ctx
`)
	cfg, err := LoadKubeconfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Token != "abc" {
		t.Errorf("got token %q, want abc", cfg.Token)
	}
	if cn, err := handshake(t, tc, cfg); err != nil || cn != "alice" {
		t.Errorf("handshake: got identity %q, %v; want alice", cn, err)
	}
}

// TestUserPath checks the paths under a home directory of the test's own.
func TestUserPath(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	want := filepath.Join(home, ".skiff", "config")
	if got := UserPath(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := DefaultPaths(); len(got) != 2 || got[0] != want || got[1] != AdminPath {
		t.Errorf("got %q, want [%s %s]", got, want, AdminPath)
	}
}

// TestAddFlags checks that the flags carry kubectl's names.
func TestAddFlags(t *testing.T) {
	var f Flags
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f.AddFlags(fs)
	err := fs.Parse([]string{
		"--kubeconfig=/k", "-s", "https://h:1", "--certificate-authority=/ca",
		"--client-certificate=/c", "--client-key=/k.key", "--token=t", "--insecure-skip-tls-verify",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Flags{Kubeconfig: "/k", Server: "https://h:1", CertificateAuthority: "/ca", ClientCertificate: "/c", ClientKey: "/k.key", Token: "t", InsecureSkipTLSVerify: true}
	if f != want {
		t.Errorf("got %+v, want %+v", f, want)
	}
}

// TestResolveUnreadable checks that a kubeconfig of another user, such as
// root's admin kubeconfig, is an error that says so, not skipped.
func TestResolveUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every file")
	}
	noEnv(t)
	dir := t.TempDir()
	private := writeFile(t, filepath.Join(dir, "etc", "admin.kubeconfig"), kubeconfigFor("https://admin:1"))
	if err := os.Chmod(private, 0); err != nil {
		t.Fatal(err)
	}
	_, path, err := Flags{}.Resolve(filepath.Join(dir, "missing"), private)
	if err == nil || !strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), "--kubeconfig") || path != private {
		t.Errorf("got %v from %q, want permission denied with a way out, from %s", err, path, private)
	}
}
