package pki

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skiffdev/skiff/internal/wait"
)

func TestCAFilesAndModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	now := time.Now()
	ca, created, err := LoadOrCreateCA(dir, "test-ca", now)
	if err != nil || !created {
		t.Fatalf("got created=%v, %v; want a new CA", created, err)
	}
	for name, want := range map[string]os.FileMode{".": 0o700, CAKeyFile: 0o600, CACertFile: 0o644} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: got mode %v, want %v", name, got, want)
		}
	}
	if life := ca.Cert.NotAfter.Sub(now); life < CALifetime-time.Minute || life > CALifetime {
		t.Errorf("got a CA valid for %v, want %v", life, CALifetime)
	}
	again, created, err := LoadOrCreateCA(dir, "test-ca", now)
	if err != nil || created || again.Hash() != ca.Hash() {
		t.Errorf("got created=%v, hash %s, %v; want the same CA read back (%s)", created, again.Hash(), err, ca.Hash())
	}
	// A key without its certificate is never replaced by a new CA.
	os.Remove(filepath.Join(dir, CACertFile))
	if _, _, err := LoadOrCreateCA(dir, "test-ca", now); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("got %v, want a refusal to make a CA over an existing key", err)
	}
}

func TestLeafChainsAndNames(t *testing.T) {
	now := time.Now()
	ca, err := NewCA("test-ca", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.Issue(Leaf{CommonName: "kube-apiserver", DNSNames: []string{"kubernetes"}, IPs: []net.IP{net.IPv4(10, 96, 0, 1)}, Usage: ServerAuth, Lifetime: 2 * time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := kp.Leaf()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "kubernetes", CurrentTime: now}); err != nil {
		t.Errorf("verify: %v", err)
	}
	if err := leaf.VerifyHostname("10.96.0.1"); err != nil {
		t.Errorf("verify 10.96.0.1: %v", err)
	}
	if !leaf.NotAfter.Equal(ca.Cert.NotAfter) {
		t.Errorf("got a leaf valid until %v, want it cut to the CA's end %v", leaf.NotAfter, ca.Cert.NotAfter)
	}
}

func TestRenewAt(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cert := &x509.Certificate{NotBefore: start, NotAfter: start.Add(300 * 24 * time.Hour)}
	if got, want := RenewAt(cert), start.Add(200*24*time.Hour); !got.Equal(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestSourceRenews checks that a source renews its certificate when a
// third of its life is left, and that handshakes get the new one.
func TestSourceRenews(t *testing.T) {
	ca, err := NewCA("test-ca", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	issue := func(context.Context) (KeyPair, error) {
		return ca.Issue(Leaf{CommonName: "u", Usage: ClientAuth, Lifetime: 3 * time.Second}, time.Now())
	}
	kp, _ := issue(context.Background())
	src, err := NewSource(kp)
	if err != nil {
		t.Fatal(err)
	}
	var renewals atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		src.Renew(ctx, time.Now, func(ctx context.Context) (KeyPair, error) {
			renewals.Add(1)
			return issue(ctx)
		}, nil)
	}()
	defer func() { cancel(); <-done }()
	first := src.Current().Leaf.SerialNumber
	wait.For(t, 20*time.Second, "2 renewals", func() (bool, error) {
		n := renewals.Load()
		return n >= 2, fmt.Errorf("got %d renewals", n)
	})
	cert, _ := src.GetClientCertificate(nil)
	if cert.Leaf.SerialNumber.Cmp(first) == 0 {
		t.Error("handshakes still get the first certificate")
	}
}

func TestParseToken(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	tests := []struct {
		in        string
		requireCA bool
		want      string // error part; "" for success
	}{
		{"K10" + hash + "::abcdef.0123456789abcdef", true, ""},
		{"abcdef.0123456789abcdef", false, ""},
		{"abcdef.0123456789abcdef", true, "expected K10<CA hash>::<id>.<secret>"},
		{"K11" + hash + "::abcdef.0123456789abcdef", true, `must start with "K10"`},
		{"K10" + hash[:10] + "::abcdef.0123456789abcdef", true, "must be 64 hex digits"},
		{"K10" + strings.ToUpper(hash) + "::abcdef.0123456789abcdef", true, "must be 64 hex digits"},
		{"K10" + hash + "::abcdef0123456789abcdef", true, "expected <id>.<secret>"},
		{"K10" + hash + "::ABCDEF.0123456789abcdef", true, "the id must be 6 characters"},
		{"K10" + hash + "::abcdef.0123", true, "the secret must be 16 characters"},
		{strings.Repeat("x", 300), false, "longer than"},
		{"", false, "expected <id>.<secret>"},
	}
	for _, tt := range tests {
		tok, err := ParseToken(tt.in, tt.requireCA)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("ParseToken(%q): %v", tt.in, err)
		case tt.want == "" && tok.Bearer() != "abcdef.0123456789abcdef":
			t.Errorf("ParseToken(%q): got bearer %q", tt.in, tok.Bearer())
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "malformed token")):
			t.Errorf("ParseToken(%q): got %v, want an error containing %q", tt.in, err, tt.want)
		}
	}
	tok, err := NewToken(hash)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseToken(tok.String(), true)
	if err != nil || back != tok {
		t.Errorf("got %+v, %v; want %+v back", back, err, tok)
	}
	if !tok.SecretMatches(tok.SecretHash()) || (Token{Secret: "x"}).SecretMatches(tok.SecretHash()) {
		t.Error("SecretMatches does not tell the secret from another")
	}
}

func FuzzParseToken(f *testing.F) {
	f.Add("K10" + strings.Repeat("ab", 32) + "::abcdef.0123456789abcdef")
	f.Add("abcdef.0123456789abcdef")
	f.Add("K10::.")
	f.Add("::::")
	f.Fuzz(func(t *testing.T, s string) {
		for _, requireCA := range []bool{true, false} {
			tok, err := ParseToken(s, requireCA)
			if err != nil {
				continue
			}
			// What parses prints back to a token that parses the same.
			again, err := ParseToken(tok.String(), true)
			if tok.CAHash != "" && (err != nil || again != tok) {
				t.Fatalf("ParseToken(%q) = %+v, which does not round-trip: %+v, %v", s, tok, again, err)
			}
			if !ValidTokenID(tok.ID) || len(tok.Secret) != tokenSecretLen {
				t.Fatalf("ParseToken(%q) accepted id %q secret %q", s, tok.ID, tok.Secret)
			}
		}
	})
}
