package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Identities, as Kubernetes names them.
const (
	NodeUserPrefix = "system:node:"
	NodesGroup     = "system:nodes"
	// KubeletClientUser is the API server's identity towards kubelets,
	// the only one a kubelet's API lets through.
	KubeletClientUser = "kube-apiserver-kubelet-client"
)

// MaxCSRBytes bounds a certificate signing request: a node's has a name
// and a few addresses, far under this.
const MaxCSRBytes = 16 << 10

// CreateCSR makes a certificate signing request for key, in PEM.
func CreateCSR(key crypto.Signer, commonName string, organization []string, dnsNames []string, ips []net.IP) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: commonName, Organization: organization},
		DNSNames:    dnsNames,
		IPAddresses: ips,
	}, key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// ParseCSR reads a PEM certificate signing request and checks its
// signature (the requester holds the key).
func ParseCSR(data []byte) (*x509.CertificateRequest, error) {
	if len(data) > MaxCSRBytes {
		return nil, fmt.Errorf("the certificate signing request is %d bytes, over the limit of %d", len(data), MaxCSRBytes)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New(`the certificate signing request is not a PEM "CERTIFICATE REQUEST" block`)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing the certificate signing request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("the certificate signing request's signature: %w", err)
	}
	return csr, nil
}

// NodeLeaf checks that csr asks for exactly what a node of that usage may
// have, and returns what to sign: for a client certificate, the subject
// CN=system:node:NAME, O=system:nodes and nothing else; for a serving
// certificate, the same subject with DNS names and IP addresses. Keys are
// ECDSA P-256 as every key Skiff makes (nothing weaker is signed). node,
// when not empty, is the only node name allowed.
func NodeLeaf(csr *x509.CertificateRequest, usage Usage, node string) (Leaf, error) {
	name, ok := strings.CutPrefix(csr.Subject.CommonName, NodeUserPrefix)
	if !ok || name == "" {
		return Leaf{}, fmt.Errorf("the certificate signing request is for %q: a node may only ask for %q", csr.Subject.CommonName, NodeUserPrefix+"NAME")
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return Leaf{}, fmt.Errorf("the certificate signing request names node %q, which is not a valid node name: %s", name, strings.Join(errs, "; "))
	}
	if node != "" && name != node {
		return Leaf{}, fmt.Errorf("the certificate signing request is for node %q, not for %q", name, node)
	}
	if !slices.Equal(csr.Subject.Organization, []string{NodesGroup}) {
		return Leaf{}, fmt.Errorf("the certificate signing request asks for groups %q: a node may only be in %q", csr.Subject.Organization, NodesGroup)
	}
	if len(csr.Subject.OrganizationalUnit) > 0 || len(csr.Subject.Country) > 0 || len(csr.Subject.Locality) > 0 ||
		len(csr.Subject.Province) > 0 || len(csr.Subject.StreetAddress) > 0 || len(csr.Subject.PostalCode) > 0 ||
		csr.Subject.SerialNumber != "" || len(csr.EmailAddresses) > 0 || len(csr.URIs) > 0 {
		return Leaf{}, errors.New("the certificate signing request has subject fields or names a node may not ask for")
	}
	if k, ok := csr.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		return Leaf{}, errors.New("the certificate signing request's key is not ECDSA P-256")
	}
	leaf := Leaf{CommonName: csr.Subject.CommonName, Organization: []string{NodesGroup}, Usage: usage}
	switch usage {
	case ClientAuth:
		if len(csr.DNSNames) > 0 || len(csr.IPAddresses) > 0 {
			return Leaf{}, errors.New("a node's client certificate signing request may not name addresses")
		}
	case ServerAuth:
		if len(csr.DNSNames)+len(csr.IPAddresses) == 0 {
			return Leaf{}, errors.New("a node's serving certificate signing request must name its addresses")
		}
		if len(csr.DNSNames)+len(csr.IPAddresses) > 32 {
			return Leaf{}, errors.New("a node's serving certificate signing request names more than 32 addresses")
		}
		leaf.DNSNames, leaf.IPs = csr.DNSNames, csr.IPAddresses
	default:
		return Leaf{}, fmt.Errorf("unknown certificate usage %d", int(usage))
	}
	return leaf, nil
}
