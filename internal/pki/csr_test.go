package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"strings"
	"testing"
)

func csrPEM(t testing.TB, key any, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// TestNodeLeaf checks what a node may ask for, and the refusals of what
// it may not, with their messages.
func TestNodeLeaf(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	node := func(name string) pkix.Name {
		return pkix.Name{CommonName: NodeUserPrefix + name, Organization: []string{NodesGroup}}
	}
	tests := []struct {
		name  string
		key   any
		tmpl  *x509.CertificateRequest
		usage Usage
		self  string
		want  string // error part; "" to accept
	}{
		{"a node's client certificate", key, &x509.CertificateRequest{Subject: node("a")}, ClientAuth, "", ""},
		{"its serving certificate", key, &x509.CertificateRequest{Subject: node("a"), IPAddresses: []net.IP{net.IPv4(10, 0, 0, 1)}}, ServerAuth, "a", ""},
		{"another node's name, asked by a node", key, &x509.CertificateRequest{Subject: node("b")}, ClientAuth, "a", `is for node "b", not for "a"`},
		{"system:masters", key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: NodeUserPrefix + "a", Organization: []string{"system:masters"}}}, ClientAuth, "", `a node may only be in "system:nodes"`},
		{"masters as well as nodes", key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: NodeUserPrefix + "a", Organization: []string{NodesGroup, "system:masters"}}}, ClientAuth, "", "a node may only be in"},
		{"the admin's name", key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "system:admin", Organization: []string{NodesGroup}}}, ClientAuth, "", `a node may only ask for "system:node:NAME"`},
		{"an empty node name", key, &x509.CertificateRequest{Subject: node("")}, ClientAuth, "", "a node may only ask for"},
		{"addresses in a client certificate", key, &x509.CertificateRequest{Subject: node("a"), DNSNames: []string{"x"}}, ClientAuth, "", "may not name addresses"},
		{"a serving certificate without addresses", key, &x509.CertificateRequest{Subject: node("a")}, ServerAuth, "", "must name its addresses"},
		{"an email address", key, &x509.CertificateRequest{Subject: node("a"), EmailAddresses: []string{"a@b"}}, ClientAuth, "", "may not ask for"},
		{"an RSA key", rsaKey, &x509.CertificateRequest{Subject: node("a")}, ClientAuth, "", "not ECDSA P-256"},
		{"a P-384 key", p384, &x509.CertificateRequest{Subject: node("a")}, ClientAuth, "", "not ECDSA P-256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			csr, err := ParseCSR(csrPEM(t, tt.key, tt.tmpl))
			if err != nil {
				t.Fatal(err)
			}
			_, err = NodeLeaf(csr, tt.usage, tt.self)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestParseCSRRejects(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good := csrPEM(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "system:node:a"}})
	block, _ := pem.Decode(good)
	tampered := append([]byte(nil), block.Bytes...)
	tampered[len(tampered)-3] ^= 0xff
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"not PEM", []byte("hello"), `not a PEM "CERTIFICATE REQUEST" block`},
		{"a certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes}), "not a PEM"},
		{"garbage DER", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte{1, 2, 3}}), "parsing the certificate signing request"},
		{"a broken signature", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: tampered}), "certificate signing request"},
		{"oversized", append(good, make([]byte, MaxCSRBytes)...), "over the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseCSR(tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func FuzzParseCSR(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.Add(csrPEM(f, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "system:node:a", Organization: []string{NodesGroup}}}))
	f.Add(csrPEM(f, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "system:node:a", Organization: []string{NodesGroup}}, IPAddresses: []net.IP{net.IPv4(1, 2, 3, 4)}}))
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		csr, err := ParseCSR(data)
		if err != nil {
			return
		}
		for _, u := range []Usage{ClientAuth, ServerAuth} {
			leaf, err := NodeLeaf(csr, u, "")
			if err != nil {
				continue
			}
			// Whatever is accepted names one node in system:nodes only.
			if !strings.HasPrefix(leaf.CommonName, NodeUserPrefix) || len(leaf.Organization) != 1 || leaf.Organization[0] != NodesGroup {
				t.Fatalf("accepted %+v", leaf)
			}
		}
	})
}
