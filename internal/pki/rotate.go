package pki

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
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
	// Never renew more often than this, whatever the certificate says (a
	// lifetime shorter than the seconds certificates count in).
	const minWait = 100 * time.Millisecond
	for {
		leaf := s.Current().Leaf
		wait := max(RenewAt(leaf).Sub(now()), minWait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		kp, err := renew(ctx)
		if err == nil {
			err = s.Set(kp)
		}
		if err == nil {
			retry = time.Second
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if failed != nil {
			failed(err, leaf.NotAfter)
		}
		// Before the next try: a short while, not past a tenth of what
		// is left.
		d := min(retry, max(leaf.NotAfter.Sub(now())/10, minWait))
		retry = min(2*retry, time.Minute)
		t = time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// ErrNoChain is returned for a connection that carried no verified client
// certificate.
var ErrNoChain = errors.New("no verified client certificate")

// Identity reads the user (CN) and groups (O) of a verified client
// certificate, as Kubernetes does.
func Identity(cert *x509.Certificate) (user string, groups []string) {
	return cert.Subject.CommonName, cert.Subject.Organization
}

// Follow makes the certificate on disk current whenever it changes, until
// ctx ends: load reads it, every interval. It is how a running process
// picks up a certificate renewed by `skiff certificate rotate`. A file
// that cannot be read (being replaced, or removed) is skipped until it
// can.
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
		if err != nil || bytes.Equal(cert.Certificate[0], s.Current().Certificate[0]) {
			continue
		}
		s.cur.Store(cert)
	}
}
