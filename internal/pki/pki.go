// Package pki is the cluster's certificate authority and the certificates
// it signs: the CA made at a server's first start, leaf certificates for
// servers (the API server, each kubelet) and for clients (the admin, the
// components, each node), certificate signing requests, and the files
// they live in.
//
// Every key is ECDSA P-256. An identity is read from a client certificate
// as Kubernetes reads it: the user is the subject's common name, the
// groups are its organizations.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Lifetimes of the certificates the CA signs, unless a caller asks for
// another (tests ask for seconds).
const (
	CALifetime   = 10 * 365 * 24 * time.Hour
	LeafLifetime = 365 * 24 * time.Hour
)

// clockSkew is how far back a certificate's validity starts, so that a
// machine whose clock is a little behind the CA's accepts it at once.
const clockSkew = 5 * time.Minute

// CA is a certificate authority: its certificate and its key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// CertPEM is Cert in PEM, as clients are given it.
	CertPEM []byte
}

// NewCA makes a self-signed CA valid for lifetime from now.
func NewCA(commonName string, lifetime time.Duration, now time.Time) (*CA, error) {
	key, err := NewKey()
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(lifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("signing the CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, CertPEM: EncodeCert(cert)}, nil
}

// Files of a CA in its directory.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
)

// LoadOrCreateCA reads the CA in dir, or makes one there (named
// commonName, valid for CALifetime) when dir holds none. The directory is
// made 0700 and the key written 0600. created reports which happened.
func LoadOrCreateCA(dir, commonName string, now time.Time) (ca *CA, created bool, err error) {
	ca, err = LoadCA(dir)
	if err == nil {
		return ca, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	if _, err := os.Stat(filepath.Join(dir, CAKeyFile)); err == nil {
		return nil, false, fmt.Errorf("%s exists without %s: refusing to make a new CA over it", filepath.Join(dir, CAKeyFile), CACertFile)
	}
	ca, err = NewCA(commonName, CALifetime, now)
	if err != nil {
		return nil, false, err
	}
	keyPEM, err := EncodeKey(ca.Key)
	if err != nil {
		return nil, false, err
	}
	if err := WriteFile(filepath.Join(dir, CAKeyFile), keyPEM, 0o600); err != nil {
		return nil, false, err
	}
	if err := WriteFile(filepath.Join(dir, CACertFile), ca.CertPEM, 0o644); err != nil {
		return nil, false, err
	}
	return ca, true, nil
}

// LoadCA reads the CA in dir. A missing certificate is an error matching
// os.ErrNotExist.
func LoadCA(dir string) (*CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, err
	}
	cert, err := ParseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, CACertFile), err)
	}
	key, err := ParseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, CAKeyFile), err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("%s does not belong to %s", filepath.Join(dir, CAKeyFile), filepath.Join(dir, CACertFile))
	}
	return &CA{Cert: cert, Key: key, CertPEM: EncodeCert(cert)}, nil
}

// Pool is a certificate pool holding only the CA.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return pool
}

// Hash is the CA's pin: the SHA-256 of its certificate (DER), in hex. A
// join token carries it, so that an agent can tell the right server from
// any other before it sends a secret.
func (ca *CA) Hash() string { return CertHash(ca.Cert) }

// CertHash is the SHA-256 of a certificate's DER bytes, in hex.
func CertHash(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// Usage says what a leaf certificate is for.
type Usage int

const (
	// ClientAuth certificates name a user (CN) and its groups (O).
	ClientAuth Usage = iota + 1
	// ServerAuth certificates name the addresses a server answers on.
	ServerAuth
)

func (u Usage) String() string {
	switch u {
	case ClientAuth:
		return "client"
	case ServerAuth:
		return "serving"
	}
	return fmt.Sprintf("Usage(%d)", int(u))
}

// Leaf describes a certificate to sign.
type Leaf struct {
	CommonName   string
	Organization []string
	// DNSNames and IPs are the subject alternative names of a serving
	// certificate.
	DNSNames []string
	IPs      []net.IP
	Usage    Usage
	// Lifetime defaults to LeafLifetime; it is cut to the CA's own end.
	Lifetime time.Duration
}

// Sign signs a certificate for pub as leaf describes, valid from now.
func (ca *CA) Sign(pub crypto.PublicKey, leaf Leaf, now time.Time) (*x509.Certificate, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	lifetime := leaf.Lifetime
	if lifetime <= 0 {
		lifetime = LeafLifetime
	}
	if !now.Before(ca.Cert.NotAfter) {
		return nil, fmt.Errorf("certificate for %q: the CA %q expired at %s", leaf.CommonName, ca.Cert.Subject.CommonName, ca.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	notAfter := now.Add(lifetime)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	// A certificate of seconds (tests) starts now; a long one allows for
	// clocks a little behind.
	notBefore := now.Add(-min(clockSkew, lifetime/10))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: leaf.CommonName, Organization: leaf.Organization},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		DNSNames:     leaf.DNSNames,
		IPAddresses:  leaf.IPs,
	}
	switch leaf.Usage {
	case ClientAuth:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	case ServerAuth:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	default:
		return nil, fmt.Errorf("certificate for %q: no usage given", leaf.CommonName)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("signing a certificate for %q: %w", leaf.CommonName, err)
	}
	return x509.ParseCertificate(der)
}

// KeyPair is a certificate with its key, both in PEM.
type KeyPair struct {
	CertPEM, KeyPEM []byte
}

// Issue makes a new key and signs a certificate for it.
func (ca *CA) Issue(leaf Leaf, now time.Time) (KeyPair, error) {
	key, err := NewKey()
	if err != nil {
		return KeyPair{}, err
	}
	cert, err := ca.Sign(key.Public(), leaf, now)
	if err != nil {
		return KeyPair{}, err
	}
	keyPEM, err := EncodeKey(key)
	if err != nil {
		return KeyPair{}, err
	}
	return KeyPair{CertPEM: EncodeCert(cert), KeyPEM: keyPEM}, nil
}

// NewKey makes an ECDSA P-256 key.
func NewKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// EncodeCert is cert in PEM.
func EncodeCert(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
}

// ParseCert reads the first certificate of a PEM file.
func ParseCert(data []byte) (*x509.Certificate, error) {
	certs, err := ParseCerts(data)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

// ParseCerts reads every certificate of a PEM file; it fails when there
// is none.
func ParseCerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing a certificate: %w", err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return certs, nil
}

// EncodeKey is key in PEM (PKCS#8).
func EncodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseKey reads a private key in PEM (PKCS#8, or SEC 1 "EC PRIVATE KEY").
func ParseKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM private key found")
	}
	var key any
	var err error
	switch block.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing the private key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", key)
	}
	return signer, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ak, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ak.Equal(b)
}

// WriteFile writes data to path through a temporary file renamed over it,
// so that a reader sees the old file or the new one, never a part of
// either. The file gets mode; a missing directory is made 0700.
func WriteFile(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// ReadKeyPair reads a certificate and its key from two files and checks
// that they belong together.
func ReadKeyPair(certPath, keyPath string) (KeyPair, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return KeyPair{}, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return KeyPair{}, err
	}
	kp := KeyPair{CertPEM: certPEM, KeyPEM: keyPEM}
	if _, err := kp.TLS(); err != nil {
		return KeyPair{}, fmt.Errorf("%s and %s: %w", certPath, keyPath, err)
	}
	return kp, nil
}

// WriteKeyPair writes a certificate (0644) and its key (0600).
func WriteKeyPair(certPath, keyPath string, kp KeyPair) error {
	if err := WriteFile(keyPath, kp.KeyPEM, 0o600); err != nil {
		return err
	}
	return WriteFile(certPath, kp.CertPEM, 0o644)
}

// Leaf parses the pair's certificate.
func (kp KeyPair) Leaf() (*x509.Certificate, error) { return ParseCert(kp.CertPEM) }

// FileStatus is one certificate file, as `skiff certificate check` lists
// it.
type FileStatus struct {
	Path string
	// Cert is nil when the file could not be read (Err).
	Cert *x509.Certificate
	Err  error
}

// CheckFiles reads the certificate of each file that exists: a PEM
// certificate, or the client certificate embedded in a kubeconfig
// (clientCert reads that). Missing files are left out.
func CheckFiles(paths []string, clientCert func(path string) ([]byte, error)) []FileStatus {
	var out []FileStatus
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		st := FileStatus{Path: p, Err: err}
		if err == nil {
			st.Cert, st.Err = ParseCert(data)
			if st.Err != nil && clientCert != nil {
				if certPEM, err := clientCert(p); err == nil {
					st.Cert, st.Err = ParseCert(certPEM)
				}
			}
		}
		out = append(out, st)
	}
	return out
}
