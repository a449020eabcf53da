package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync/atomic"
	"time"
)

// TLS parses the pair into a tls.Certificate (with Leaf set).
func (kp KeyPair) TLS() (*tls.Certificate, error) {
	cert, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	if err != nil {
		return nil, err
	}
	return &cert, nil
}

// RenewAt is when a certificate should be renewed: once less than a third
// of its life is left.
func RenewAt(cert *x509.Certificate) time.Time {
	life := cert.NotAfter.Sub(cert.NotBefore)
	return cert.NotAfter.Add(-life / 3)
}

// Source holds the current certificate of one identity and hands it to
// every TLS handshake, so that a renewed certificate is used from the next
// handshake on, with no restart and no connection dropped.
type Source struct {
	cur atomic.Pointer[tls.Certificate]
}

// NewSource starts a source with kp.
func NewSource(kp KeyPair) (*Source, error) {
	s := &Source{}
	if err := s.Set(kp); err != nil {
		return nil, err
	}
	return s, nil
}

// Set makes kp the current certificate.
func (s *Source) Set(kp KeyPair) error {
	cert, err := kp.TLS()
	if err != nil {
		return err
	}
	s.cur.Store(cert)
	return nil
}

// Current is the current certificate (Leaf set).
func (s *Source) Current() *tls.Certificate { return s.cur.Load() }

// GetCertificate is for tls.Config.GetCertificate (a server's side).
func (s *Source) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cur.Load(), nil
}

// GetClientCertificate is for tls.Config.GetClientCertificate (a
// client's side).
func (s *Source) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return s.cur.Load(), nil
}

// ClientTLS is a client's TLS configuration: trust roots, and this source
// as the client certificate.
func (s *Source) ClientTLS(roots *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion:           tls.VersionTLS12,
		RootCAs:              roots,
		GetClientCertificate: s.GetClientCertificate,
	}
}

// Renew keeps a source's certificate fresh until ctx ends: at RenewAt of
// the current certificate it calls renew and makes the result current.
// A failed renewal is retried with backoff (from a second, to a minute,
// never past the expiry) and reported to failed, which may be nil. The
// wait is computed from now, so that tests may inject a clock.
func (s *Source) Renew(ctx context.Context, now func() time.Time, renew func(context.Context) (KeyPair, error), failed func(err error, expires time.Time)) {
	retry := time.Second
	// Never renew more often than this, whatever the certificates say: a
	// CA about to expire can only sign certificates that are due at once,
	// and those must not make a loop that signs and writes without end.
	const minWait = time.Second
	for {
		leaf := s.Current().Leaf
		wait := max(RenewAt(leaf).Sub(now()), minWait)
		if !sleep(ctx, wait) {
			return
		}
		kp, err := renew(ctx)
		var next *tls.Certificate
		if err == nil {
			next, err = kp.TLS()
		}
		if err == nil && !RenewAt(next.Leaf).After(now()) {
			err = fmt.Errorf("the renewed certificate is due for renewal already (it expires at %s)", next.Leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		if err == nil {
			s.cur.Store(next)
			retry = time.Second
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if failed != nil {
			failed(err, leaf.NotAfter)
		}
		// Before the next try: from a second, doubling to a minute, and
		// before expiry not past a tenth of what is left.
		d := retry
		if left := leaf.NotAfter.Sub(now()); left > 0 {
			d = min(d, max(left/10, minWait))
		}
		retry = min(2*retry, time.Minute)
		if !sleep(ctx, d) {
			return
		}
	}
}

// sleep waits for d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Identity reads the user (CN) and groups (O) of a verified client
// certificate, as Kubernetes does.
func Identity(cert *x509.Certificate) (user string, groups []string) {
	return cert.Subject.CommonName, cert.Subject.Organization
}

// Follow makes the certificate on disk current whenever it is newer than
// the one in use, until ctx ends: load reads it, every interval. It is
// how a running process picks up a certificate renewed by `skiff
// certificate rotate`. A file that cannot be read (being replaced, or
// removed), or that holds an older certificate than the current one, is
// skipped.
func (s *Source) Follow(ctx context.Context, interval time.Duration, load func() (KeyPair, error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		kp, err := load()
		if err != nil {
			continue
		}
		cert, err := kp.TLS()
		if err != nil {
			continue
		}
		cur := s.Current()
		if !cert.Leaf.NotAfter.After(cur.Leaf.NotAfter) {
			continue
		}
		s.cur.CompareAndSwap(cur, cert)
	}
}
