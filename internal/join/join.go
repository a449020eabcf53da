// Package join gives a node its credentials, and keeps them fresh.
//
// A machine joins a cluster with the server's address and a join token,
// K10<CA hash>::<id>.<secret>. In order:
//
//  1. It asks the server for the cluster CA, trusting nothing yet, and
//     compares the CA's SHA-256 with the token's. A server with another
//     CA is refused here, before the token's secret is sent anywhere.
//  2. It connects again, now checking the server's certificate against
//     that CA, and sends the token's id.secret as a bearer token with a
//     certificate signing request for system:node:NAME, made with a key
//     it has just made itself (the key never leaves the machine), and its
//     node password (ROOT-DIR/node-password, made at the first join),
//     which the server keeps for the name so that no second machine can
//     take it.
//  3. With its new identity it has its kubelet's serving certificate
//     signed, for its addresses.
//
// Its credentials live in ROOT-DIR/kubelet.kubeconfig (the node's client
// identity, 0600) and ROOT-DIR/tls/kubelet-serving.{crt,key}; a later
// start reads them and needs no token. While the node runs, each
// certificate is renewed through the same signing request, with a new
// key, once less than a third of its life is left.
package join

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/clientconfig"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/pki"
	skiffv1 "github.com/skiffdev/skiff/proto/skiff/v1"
)

// Files under the node's root directory.
const (
	KubeconfigFile   = "kubelet.kubeconfig"
	NodePasswordFile = "node-password"
	ServingCertFile  = "tls/kubelet-serving.crt"
	ServingKeyFile   = "tls/kubelet-serving.key"
)

// Config says how a node joins.
type Config struct {
	// Server is the API server, https://host:port. A later start may
	// leave it empty: the kubeconfig names it.
	Server string
	// Token is the join token; only needed while the node has no
	// credentials of its own (or they expired).
	Token string
	// RootDir holds the node's credentials.
	RootDir string
	// NodeName is the node's name; its identity is system:node:NodeName.
	NodeName string
	// IPs and DNSNames are what the kubelet's serving certificate covers.
	IPs      []net.IP
	DNSNames []string
}

// Credentials are a node's identity towards the API server and its
// kubelet's serving certificate, each renewed in place by Run.
type Credentials struct {
	cfg Config
	// password is the node password, sent with every signing request.
	password string
	server   string
	caPEM    []byte
	ca       *x509.CertPool
	client   *pki.Source
	serving  *pki.Source
}

// Join returns the node's credentials: those it has when they are valid
// and its own, otherwise new ones obtained with the token. It logs
// through the logger ctx carries.
func Join(ctx context.Context, cfg Config) (*Credentials, error) {
	if cfg.NodeName == "" || cfg.RootDir == "" {
		return nil, errors.New("join: a node name and a root directory are required")
	}
	log := logging.From(ctx)
	password, err := nodePassword(filepath.Join(cfg.RootDir, NodePasswordFile))
	if err != nil {
		return nil, err
	}
	c := &Credentials{cfg: cfg, password: password}
	kubeconfig := filepath.Join(cfg.RootDir, KubeconfigFile)
	have, err := c.readKubeconfig(kubeconfig)
	switch {
	case err == nil && have:
		log.Info("using the node's credentials", "path", kubeconfig, "server", c.server)
	case err != nil && cfg.Token == "":
		return nil, fmt.Errorf("%s: %w; join again with --token", kubeconfig, err)
	case cfg.Token == "":
		return nil, fmt.Errorf("this machine has not joined a cluster yet (no %s): give --server and --token (the token is in DATA-DIR/token on the server, or from `skiff token create`)", kubeconfig)
	default:
		if err != nil {
			log.Warn("joining again with the token", "reason", err)
		}
		if err := c.bootstrap(ctx); err != nil {
			return nil, err
		}
	}
	if err := c.loadServing(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// readKubeconfig loads the node's existing identity. have is false when
// there is none; an error says why an existing one cannot be used.
func (c *Credentials) readKubeconfig(path string) (have bool, err error) {
	creds, err := clientconfig.ReadCredentials(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if c.cfg.Server != "" && strings.TrimSuffix(c.cfg.Server, "/") != creds.Server {
		return false, fmt.Errorf("the node's credentials are for %s, not %s", creds.Server, c.cfg.Server)
	}
	kp := pki.KeyPair{CertPEM: creds.CertPEM, KeyPEM: creds.KeyPEM}
	leaf, err := kp.Leaf()
	if err != nil {
		return false, err
	}
	if want := pki.NodeUserPrefix + c.cfg.NodeName; leaf.Subject.CommonName != want {
		return false, fmt.Errorf("the node's credentials are for %q, not %q", leaf.Subject.CommonName, want)
	}
	if !time.Now().Before(leaf.NotAfter) {
		return false, fmt.Errorf("the node's certificate expired at %s", leaf.NotAfter.Format(time.RFC3339))
	}
	if err := c.setCA(creds.CA); err != nil {
		return false, err
	}
	c.server = creds.Server
	if c.client, err = pki.NewSource(kp); err != nil {
		return false, err
	}
	return true, nil
}

func (c *Credentials) setCA(caPEM []byte) error {
	certs, err := pki.ParseCerts(caPEM)
	if err != nil {
		return fmt.Errorf("the cluster CA: %w", err)
	}
	if len(certs) != 1 {
		return fmt.Errorf("the cluster CA: %d certificates where one is expected", len(certs))
	}
	c.caPEM, c.ca = caPEM, x509.NewCertPool()
	c.ca.AddCert(certs[0])
	return nil
}

// bootstrap joins with the token: CA pinned, then the node's client
// certificate.
func (c *Credentials) bootstrap(ctx context.Context) error {
	tok, err := pki.ParseToken(strings.TrimSpace(c.cfg.Token), true)
	if err != nil {
		return fmt.Errorf("--token: %w", err)
	}
	if c.cfg.Server == "" {
		return errors.New("--server is required to join a cluster")
	}
	c.server = strings.TrimSuffix(c.cfg.Server, "/")
	if !strings.HasPrefix(c.server, "https://") {
		c.server = "https://" + c.server
	}

	// 1. The CA, trusting nothing, checked against the token's pin.
	anon, err := client.New(client.Config{Server: c.server, TLS: &tls.Config{InsecureSkipVerify: true}, Timeout: 30 * time.Second, UserAgent: "skiff-join"})
	if err != nil {
		return err
	}
	caPEM, err := anon.CA(ctx)
	anon.Close()
	if err != nil {
		return fmt.Errorf("fetching the cluster CA from %s: %w", c.server, err)
	}
	// Exactly one certificate, and only the one whose hash was checked is
	// ever trusted: extra certificates in the answer would otherwise ride
	// along with the pinned one into every trust decision after this.
	certs, err := pki.ParseCerts(caPEM)
	if err != nil {
		return fmt.Errorf("the CA from %s: %w", c.server, err)
	}
	if len(certs) != 1 {
		return fmt.Errorf("the server at %s answered %d certificates for its CA, not one: not sending the token", c.server, len(certs))
	}
	if got := pki.CertHash(certs[0]); got != tok.CAHash {
		return fmt.Errorf("the server at %s has another CA than the token names (its CA is sha256:%s, the token's sha256:%s): not sending the token", c.server, got, tok.CAHash)
	}
	if err := c.setCA(pki.EncodeCert(certs[0])); err != nil {
		return err
	}

	// 2. The node's identity, with the token and the node password.
	boot, err := client.New(client.Config{Server: c.server, TLS: &tls.Config{RootCAs: c.ca}, Token: tok.Bearer(), Timeout: 30 * time.Second, UserAgent: "skiff-join"})
	if err != nil {
		return err
	}
	defer boot.Close()
	kp, err := c.sign(ctx, boot, pki.ClientAuth)
	if err != nil {
		return fmt.Errorf("joining %s as node %q: %w", c.server, c.cfg.NodeName, err)
	}
	if c.client, err = pki.NewSource(kp); err != nil {
		return err
	}
	if err := c.writeKubeconfig(kp); err != nil {
		return err
	}
	logging.From(ctx).Info("joined the cluster", "server", c.server, "node", c.cfg.NodeName, "expires", c.client.Current().Leaf.NotAfter)
	return nil
}

// sign makes a new key and has the server sign a certificate for it.
func (c *Credentials) sign(ctx context.Context, via *client.Client, usage pki.Usage) (pki.KeyPair, error) {
	key, err := pki.NewKey()
	if err != nil {
		return pki.KeyPair{}, err
	}
	var ips []net.IP
	var names []string
	u := skiffv1.CertificateUsage_CERTIFICATE_USAGE_CLIENT
	if usage == pki.ServerAuth {
		ips, names, u = c.cfg.IPs, c.cfg.DNSNames, skiffv1.CertificateUsage_CERTIFICATE_USAGE_SERVING
	}
	csr, err := pki.CreateCSR(key, pki.NodeUserPrefix+c.cfg.NodeName, []string{pki.NodesGroup}, names, ips)
	if err != nil {
		return pki.KeyPair{}, err
	}
	certPEM, err := via.SignNodeCertificate(ctx, csr, u, c.password)
	if err != nil {
		return pki.KeyPair{}, err
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		return pki.KeyPair{}, err
	}
	kp := pki.KeyPair{CertPEM: certPEM, KeyPEM: keyPEM}
	if _, err := kp.TLS(); err != nil {
		return pki.KeyPair{}, fmt.Errorf("the signed certificate: %w", err)
	}
	return kp, nil
}

// loadServing reads the kubelet's serving certificate, or has a new one
// signed when it is missing, stale, or does not name the node's
// addresses.
func (c *Credentials) loadServing(ctx context.Context) error {
	certPath, keyPath := filepath.Join(c.cfg.RootDir, ServingCertFile), filepath.Join(c.cfg.RootDir, ServingKeyFile)
	kp, err := pki.ReadKeyPair(certPath, keyPath)
	if err == nil {
		if why := c.servingStale(kp); why != "" {
			logging.From(ctx).Info("renewing the kubelet's serving certificate", "reason", why)
			err = os.ErrNotExist
		}
	}
	if err != nil {
		if kp, err = c.renewServing(ctx); err != nil {
			return fmt.Errorf("the kubelet's serving certificate: %w", err)
		}
	}
	c.serving, err = pki.NewSource(kp)
	return err
}

func (c *Credentials) servingStale(kp pki.KeyPair) string {
	leaf, err := kp.Leaf()
	if err != nil {
		return err.Error()
	}
	if leaf.Subject.CommonName != pki.NodeUserPrefix+c.cfg.NodeName {
		return "it is for another node"
	}
	if !time.Now().Before(pki.RenewAt(leaf)) {
		return "less than a third of its life is left"
	}
	for _, ip := range c.cfg.IPs {
		if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
			return fmt.Sprintf("it does not name %s", ip)
		}
	}
	for _, n := range c.cfg.DNSNames {
		if !slices.Contains(leaf.DNSNames, n) {
			return fmt.Sprintf("it does not name %s", n)
		}
	}
	return ""
}

// renewServing has a serving certificate signed with the node's identity
// and writes it.
func (c *Credentials) renewServing(ctx context.Context) (pki.KeyPair, error) {
	via, err := client.New(c.clientConfig("skiff-join"))
	if err != nil {
		return pki.KeyPair{}, err
	}
	defer via.Close()
	kp, err := c.sign(ctx, via, pki.ServerAuth)
	if err != nil {
		return pki.KeyPair{}, err
	}
	certPath, keyPath := filepath.Join(c.cfg.RootDir, ServingCertFile), filepath.Join(c.cfg.RootDir, ServingKeyFile)
	if err := pki.WriteKeyPair(certPath, keyPath, kp); err != nil {
		return pki.KeyPair{}, err
	}
	return kp, nil
}

// renewClient has a new client certificate signed with the current one
// and writes the kubeconfig.
func (c *Credentials) renewClient(ctx context.Context) (pki.KeyPair, error) {
	via, err := client.New(c.clientConfig("skiff-join"))
	if err != nil {
		return pki.KeyPair{}, err
	}
	defer via.Close()
	kp, err := c.sign(ctx, via, pki.ClientAuth)
	if err != nil {
		return pki.KeyPair{}, err
	}
	return kp, c.writeKubeconfig(kp)
}

func (c *Credentials) writeKubeconfig(kp pki.KeyPair) error {
	return clientconfig.WriteKubeconfig(filepath.Join(c.cfg.RootDir, KubeconfigFile), clientconfig.Credentials{
		Server:  c.server,
		CA:      c.caPEM,
		CertPEM: kp.CertPEM,
		KeyPEM:  kp.KeyPEM,
		User:    pki.NodeUserPrefix + c.cfg.NodeName,
	})
}

// clientConfig is the node's client configuration; the certificate of
// the moment is used by every new connection.
func (c *Credentials) clientConfig(userAgent string) client.Config {
	return client.Config{Server: c.server, TLS: c.client.ClientTLS(c.ca), UserAgent: userAgent}
}

// ClientConfig is how the node's components (kubelet, proxy) reach the
// API server as the node.
func (c *Credentials) ClientConfig(userAgent string) client.Config { return c.clientConfig(userAgent) }

// ServingTLS is the kubelet API's TLS: the serving certificate of the
// moment, and the cluster CA for its callers.
func (c *Credentials) ServingTLS() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.serving.GetCertificate, ClientCAs: c.ca}
}

// ClientCertificate is the node's client certificate of the moment.
func (c *Credentials) ClientCertificate() *x509.Certificate { return c.client.Current().Leaf }

// ServingCertificate is the kubelet's serving certificate of the moment.
func (c *Credentials) ServingCertificate() *x509.Certificate { return c.serving.Current().Leaf }

// Run renews both certificates in place until ctx ends. A renewal that
// fails is retried and logged through ctx's logger; failed, when not nil,
// also hears of it (the kubelet turns it into a warning event once expiry
// is near).
func (c *Credentials) Run(ctx context.Context, failed func(what string, err error, expires time.Time)) {
	log := logging.From(ctx)
	report := func(what string) func(error, time.Time) {
		return func(err error, expires time.Time) {
			log.Error("renewing a certificate failed", "certificate", what, "expires", expires, "err", err)
			if failed != nil {
				failed(what, err, expires)
			}
		}
	}
	// Certificates renewed by `skiff certificate rotate` are picked up
	// from the files.
	certPath, keyPath := filepath.Join(c.cfg.RootDir, ServingCertFile), filepath.Join(c.cfg.RootDir, ServingKeyFile)
	go c.serving.Follow(ctx, followInterval, func() (pki.KeyPair, error) { return pki.ReadKeyPair(certPath, keyPath) })
	go c.client.Follow(ctx, followInterval, func() (pki.KeyPair, error) {
		creds, err := clientconfig.ReadCredentials(filepath.Join(c.cfg.RootDir, KubeconfigFile))
		return pki.KeyPair{CertPEM: creds.CertPEM, KeyPEM: creds.KeyPEM}, err
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.serving.Renew(ctx, time.Now, func(ctx context.Context) (pki.KeyPair, error) {
			kp, err := c.renewServing(ctx)
			if err == nil {
				log.Info("renewed the kubelet's serving certificate", "expires", mustLeaf(kp).NotAfter)
			}
			return kp, err
		}, report("kubelet serving"))
	}()
	c.client.Renew(ctx, time.Now, func(ctx context.Context) (pki.KeyPair, error) {
		kp, err := c.renewClient(ctx)
		if err == nil {
			log.Info("renewed the node's client certificate", "expires", mustLeaf(kp).NotAfter)
		}
		return kp, err
	}, report("node client"))
	<-done
}

func mustLeaf(kp pki.KeyPair) *x509.Certificate {
	leaf, err := kp.Leaf()
	if err != nil {
		return &x509.Certificate{}
	}
	return leaf
}

// followInterval is how often the credential files are read again.
const followInterval = 5 * time.Second

// Rotate renews the node's credentials in rootDir now, through the API
// server, as the node. A running agent picks the new files up within
// seconds. It returns the node's name.
func Rotate(ctx context.Context, rootDir string) (string, error) {
	creds, err := clientconfig.ReadCredentials(filepath.Join(rootDir, KubeconfigFile))
	if err != nil {
		return "", err
	}
	leaf, err := pki.KeyPair{CertPEM: creds.CertPEM, KeyPEM: creds.KeyPEM}.Leaf()
	if err != nil {
		return "", err
	}
	node, ok := strings.CutPrefix(leaf.Subject.CommonName, pki.NodeUserPrefix)
	if !ok {
		return "", fmt.Errorf("%s is not a node's kubeconfig (its user is %q)", filepath.Join(rootDir, KubeconfigFile), leaf.Subject.CommonName)
	}
	serving, err := pki.ReadKeyPair(filepath.Join(rootDir, ServingCertFile), filepath.Join(rootDir, ServingKeyFile))
	if err != nil {
		return node, err
	}
	sleaf, err := serving.Leaf()
	if err != nil {
		return node, err
	}
	password, err := nodePassword(filepath.Join(rootDir, NodePasswordFile))
	if err != nil {
		return node, err
	}
	c := &Credentials{cfg: Config{RootDir: rootDir, NodeName: node, IPs: sleaf.IPAddresses, DNSNames: sleaf.DNSNames}, server: creds.Server, password: password}
	if err := c.setCA(creds.CA); err != nil {
		return node, err
	}
	if c.client, err = pki.NewSource(pki.KeyPair{CertPEM: creds.CertPEM, KeyPEM: creds.KeyPEM}); err != nil {
		return node, err
	}
	if _, err := c.renewServing(ctx); err != nil {
		return node, err
	}
	_, err = c.renewClient(ctx)
	return node, err
}

// nodePassword reads the node's password, making it at the first join.
func nodePassword(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		if p := strings.TrimSpace(string(data)); len(p) >= 16 {
			return p, nil
		}
		return "", fmt.Errorf("%s: too short to be a node password; remove it to make a new one (only if this machine is not a node yet)", path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	p := hex.EncodeToString(b)
	if err := pki.WriteFile(path, []byte(p+"\n"), 0o600); err != nil {
		return "", err
	}
	return p, nil
}
