package apiserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/skiffdev/skiff/apiserver/auth"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/pki"
)

// The server's certificates, in DATA-DIR/tls: the cluster CA, the API
// server's serving certificate and its client certificate towards the
// kubelets. The CA is made at the first start; the leaves are made when
// missing, re-made when the addresses they must cover changed, and renewed
// in place while the server runs, once less than a third of their life is
// left.
const (
	tlsDirName            = "tls"
	servingCertFile       = "server.crt"
	servingKeyFile        = "server.key"
	kubeletClientCertFile = "kubelet-client.crt"
	kubeletClientKeyFile  = "kubelet-client.key"
	// caCommonName names the CA in its certificate.
	caCommonName = "skiff-ca"
)

// followInterval is how often the certificate files are read again, so
// that one renewed by `skiff certificate rotate` is used within seconds.
const followInterval = 5 * time.Second

// kubeletServingCADir is where the CA of kubelets' serving certificates
// lives, inside DATA-DIR/tls. It is a CA of its own, trusted by the API
// server alone when it dials kubelets: a node may have a serving
// certificate signed for whatever addresses it claims, and no API client
// (skiffctl, a component, a joining agent) must ever take such a
// certificate for the API server's.
const kubeletServingCADir = "kubelet-serving-ca"

// certs are the server's CAs and its own certificates.
type certs struct {
	dir string
	// ca is the cluster CA: the API server's serving certificate and
	// every client certificate.
	ca *pki.CA
	// kubeletCA signs kubelets' serving certificates only.
	kubeletCA     *pki.CA
	lifetime      time.Duration
	sans          pki.Leaf // the serving certificate's names
	serving       *pki.Source
	kubeletClient *pki.Source
}

// TLSDir is where a server with this data directory keeps its CA and
// certificates.
func TLSDir(dataDir string) string { return filepath.Join(dataDir, tlsDirName) }

// loadCerts reads the CA and the server's certificates, making what is
// missing or out of date, and logs through ctx's logger what it made.
func loadCerts(ctx context.Context, cfg Config, listen net.Addr, now time.Time) (*certs, error) {
	dir := TLSDir(cfg.DataDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// A directory made by an older version, or by hand, may be wider.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	ca, created, err := pki.LoadOrCreateCA(dir, caCommonName, now)
	if err != nil {
		return nil, fmt.Errorf("the cluster CA: %w", err)
	}
	if created {
		logging.From(ctx).Info("made the cluster CA", "path", filepath.Join(dir, pki.CACertFile), "expires", ca.Cert.NotAfter.Format(time.RFC3339))
	}
	kubeletCA, _, err := pki.LoadOrCreateCA(filepath.Join(dir, kubeletServingCADir), "skiff-kubelet-serving-ca", now)
	if err != nil {
		return nil, fmt.Errorf("the kubelet serving CA: %w", err)
	}
	c := &certs{dir: dir, ca: ca, kubeletCA: kubeletCA, lifetime: cfg.CertLifetime, sans: servingNames(cfg, listen)}
	if c.serving, err = c.loadLeaf(ctx, servingCertFile, servingKeyFile, c.sans, now); err != nil {
		return nil, err
	}
	kubeletClient := pki.Leaf{CommonName: auth.KubeletClientUser, Usage: pki.ClientAuth}
	if c.kubeletClient, err = c.loadLeaf(ctx, kubeletClientCertFile, kubeletClientKeyFile, kubeletClient, now); err != nil {
		return nil, err
	}
	return c, nil
}

// loadLeaf reads a leaf certificate of the server's, or signs a new one
// when the file is missing, does not chain to the CA, names less than
// want, or is due for renewal.
func (c *certs) loadLeaf(ctx context.Context, certFile, keyFile string, want pki.Leaf, now time.Time) (*pki.Source, error) {
	log := logging.From(ctx)
	certPath, keyPath := filepath.Join(c.dir, certFile), filepath.Join(c.dir, keyFile)
	kp, err := pki.ReadKeyPair(certPath, keyPath)
	if err == nil {
		if why := c.staleBecause(kp, want, now); why != "" {
			log.Info("renewing a certificate", "path", certPath, "reason", why)
			err = os.ErrNotExist
		}
	}
	if err != nil && !os.IsNotExist(err) {
		log.Warn("replacing an unreadable certificate", "path", certPath, "err", err)
	}
	if err != nil {
		if kp, err = c.issueFile(certPath, keyPath, want, now); err != nil {
			return nil, err
		}
	}
	return pki.NewSource(kp)
}

// staleBecause says why a stored leaf must be signed again, or "".
func (c *certs) staleBecause(kp pki.KeyPair, want pki.Leaf, now time.Time) string {
	cert, err := kp.Leaf()
	if err != nil {
		return err.Error()
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: c.ca.Pool(), CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return "it does not verify against the cluster CA: " + err.Error()
	}
	if !now.Before(pki.RenewAt(cert)) {
		return "less than a third of its life is left"
	}
	if cert.Subject.CommonName != want.CommonName {
		return "its subject changed"
	}
	for _, name := range want.DNSNames {
		if !slices.Contains(cert.DNSNames, name) {
			return fmt.Sprintf("it does not name %s", name)
		}
	}
	for _, ip := range want.IPs {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return fmt.Sprintf("it does not name %s", ip)
		}
	}
	return ""
}

func (c *certs) issueFile(certPath, keyPath string, leaf pki.Leaf, now time.Time) (pki.KeyPair, error) {
	leaf.Lifetime = c.lifetime
	kp, err := c.ca.Issue(leaf, now)
	if err != nil {
		return pki.KeyPair{}, err
	}
	if err := pki.WriteKeyPair(certPath, keyPath, kp); err != nil {
		return pki.KeyPair{}, fmt.Errorf("writing %s: %w", certPath, err)
	}
	return kp, nil
}

// renew keeps the server's own certificates fresh until ctx ends,
// rewriting their files.
func (c *certs) renew(ctx context.Context) {
	log := logging.From(ctx)
	leaves := []struct {
		src               *pki.Source
		certFile, keyFile string
		leaf              pki.Leaf
	}{
		{c.serving, servingCertFile, servingKeyFile, c.sans},
		{c.kubeletClient, kubeletClientCertFile, kubeletClientKeyFile, pki.Leaf{CommonName: auth.KubeletClientUser, Usage: pki.ClientAuth}},
	}
	for _, l := range leaves {
		certPath, keyPath := filepath.Join(c.dir, l.certFile), filepath.Join(c.dir, l.keyFile)
		go l.src.Follow(ctx, followInterval, func() (pki.KeyPair, error) { return pki.ReadKeyPair(certPath, keyPath) })
		go l.src.Renew(ctx, time.Now, func(context.Context) (pki.KeyPair, error) {
			kp, err := c.issueFile(certPath, keyPath, l.leaf, time.Now())
			if err == nil {
				log.Info("renewed a certificate", "path", certPath)
			}
			return kp, err
		}, func(err error, expires time.Time) {
			log.Error("renewing a certificate failed", "path", certPath, "expires", expires, "err", err)
		})
	}
}

// servingNames are the names the API server's certificate covers: this
// machine's addresses and host name, loopback, the in-cluster names of
// the kubernetes Service and its cluster IP, the listen address, and
// --tls-san.
func servingNames(cfg Config, listen net.Addr) pki.Leaf {
	leaf := pki.Leaf{
		CommonName: "kube-apiserver",
		Usage:      pki.ServerAuth,
		DNSNames:   []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		IPs:        []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	addIP := func(ip net.IP) {
		if ip != nil && !ip.IsUnspecified() && !slices.ContainsFunc(leaf.IPs, ip.Equal) {
			leaf.IPs = append(leaf.IPs, ip)
		}
	}
	addName := func(name string) {
		if ip := net.ParseIP(name); ip != nil {
			addIP(ip)
		} else if name != "" && !slices.Contains(leaf.DNSNames, name) {
			leaf.DNSNames = append(leaf.DNSNames, name)
		}
	}
	if host, err := os.Hostname(); err == nil {
		addName(host)
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLinkLocalUnicast() {
				addIP(n.IP)
			}
		}
	}
	if tcp, ok := listen.(*net.TCPAddr); ok {
		addIP(tcp.IP)
	}
	if prefix, err := netip.ParsePrefix(cfg.ServiceClusterIPRange); err == nil {
		addIP(net.IP(prefix.Masked().Addr().Next().AsSlice()))
	}
	for _, san := range cfg.TLSSANs {
		addName(san)
	}
	return leaf
}

// serverTLS is the TLS configuration of the API port: TLS 1.2 or later,
// the serving certificate of the moment, and client certificates checked
// against the CA when given (a caller may instead send a bearer token).
func (c *certs) serverTLS() *tls.Config {
	return &tls.Config{
		MinVersion:            tls.VersionTLS12,
		GetCertificate:        c.serving.GetCertificate,
		ClientAuth:            tls.VerifyClientCertIfGiven,
		ClientCAs:             c.ca.Pool(),
		NextProtos:            []string{"h2"},
		VerifyPeerCertificate: checkCertificateSize,
	}
}

// maxClientCertBytes bounds a client's certificate chain. Go's TLS takes
// up to 256 KiB; the CA's certificates are well under 2 KiB, so anything
// near this limit was not made by it and is refused before it is parsed
// further.
const maxClientCertBytes = 16 << 10

func checkCertificateSize(raw [][]byte, _ [][]*x509.Certificate) error {
	n := 0
	for _, c := range raw {
		n += len(c)
	}
	if n > maxClientCertBytes {
		return fmt.Errorf("the client certificate chain is %d bytes, over the limit of %d", n, maxClientCertBytes)
	}
	return nil
}

// kubeletTLS is the API server's side of its connections to kubelets:
// its kubelet-client identity, and the kubelet's serving certificate
// checked against the kubelet serving CA.
func (c *certs) kubeletTLS() *tls.Config {
	return c.kubeletClient.ClientTLS(c.kubeletCA.Pool())
}

// CA is the cluster's certificate authority.
func (s *Server) CA() *pki.CA { return s.certs.ca }

// KubeletServingCA is the CA of kubelets' serving certificates, which
// only the API server trusts (for tests that stand in for a kubelet).
func (s *Server) KubeletServingCA() *pki.CA { return s.certs.kubeletCA }

// IssueClientCertificate signs a client certificate for user in groups,
// with the server's leaf lifetime, for credentials written to files (the
// admin kubeconfig) or held in memory (the components of skiff server).
func (s *Server) IssueClientCertificate(user string, groups ...string) (pki.KeyPair, error) {
	return s.certs.ca.Issue(pki.Leaf{CommonName: user, Organization: groups, Usage: pki.ClientAuth, Lifetime: s.certs.lifetime}, time.Now())
}

// ClientConfig is a client configuration for this server with an identity
// of its own (user in groups), for the components that run in this
// process and for tests. The certificate lives in memory and is renewed
// until the server stops.
func (s *Server) ClientConfig(user string, groups ...string) (client.Config, error) {
	addr := s.Addr()
	if host, port, err := net.SplitHostPort(addr); err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
	}
	kp, err := s.IssueClientCertificate(user, groups...)
	if err != nil {
		return client.Config{}, err
	}
	src, err := pki.NewSource(kp)
	if err != nil {
		return client.Config{}, err
	}
	go src.Renew(s.runCtx, time.Now, func(context.Context) (pki.KeyPair, error) {
		return s.IssueClientCertificate(user, groups...)
	}, func(err error, expires time.Time) {
		logging.From(s.runCtx).Error("renewing a client certificate failed", "user", user, "expires", expires, "err", err)
	})
	return client.Config{
		Server:    "https://" + addr,
		TLS:       src.ClientTLS(s.certs.ca.Pool()),
		UserAgent: user,
	}, nil
}

// RotateCertificates signs the server's leaf certificates in dataDir
// again now, for the same names, with lifetime (0: LeafLifetime). A
// running server picks the new files up within seconds. It returns the
// paths it wrote.
func RotateCertificates(dataDir string, lifetime time.Duration) ([]string, error) {
	dir := TLSDir(dataDir)
	ca, err := pki.LoadCA(dir)
	if err != nil {
		return nil, fmt.Errorf("the cluster CA: %w", err)
	}
	c := &certs{dir: dir, ca: ca, lifetime: lifetime}
	var written []string
	for _, f := range [][2]string{{servingCertFile, servingKeyFile}, {kubeletClientCertFile, kubeletClientKeyFile}} {
		certPath, keyPath := filepath.Join(dir, f[0]), filepath.Join(dir, f[1])
		old, err := pki.ReadKeyPair(certPath, keyPath)
		if err != nil {
			return written, err
		}
		leaf, err := old.Leaf()
		if err != nil {
			return written, err
		}
		usage := pki.ClientAuth
		if slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
			usage = pki.ServerAuth
		}
		spec := pki.Leaf{CommonName: leaf.Subject.CommonName, Organization: leaf.Subject.Organization, DNSNames: leaf.DNSNames, IPs: leaf.IPAddresses, Usage: usage}
		if lifetime == 0 {
			c.lifetime = leaf.NotAfter.Sub(leaf.NotBefore)
		}
		if _, err := c.issueFile(certPath, keyPath, spec, time.Now()); err != nil {
			return written, err
		}
		written = append(written, certPath)
	}
	return written, nil
}
