package pki

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
)

// A join token lets a machine join a cluster. Its full form pins the CA:
//
//	K10<sha256 of the CA certificate, hex>::<id>.<secret>
//
// The id (6 characters of [a-z0-9]) names the token and may be shown; the
// secret (16 characters of [a-z0-9]) is never stored, only its hash. The
// part after "::" is what travels as a bearer token, and only to a server
// whose CA matched the hash. The shape of id.secret is Kubernetes'
// bootstrap token's.
type Token struct {
	// CAHash is the hex SHA-256 of the CA certificate; empty in a token
	// given without its CA part.
	CAHash string
	ID     string
	Secret string
}

const (
	tokenPrefix    = "K10"
	tokenIDLen     = 6
	tokenSecretLen = 16
	tokenAlphabet  = "abcdefghijklmnopqrstuvwxyz0123456789"
	// maxTokenLen bounds what ParseToken looks at.
	maxTokenLen = 256
)

// NewToken makes a token with a random id and secret for the CA with the
// given hash.
func NewToken(caHash string) (Token, error) {
	id, err := randomString(tokenIDLen)
	if err != nil {
		return Token{}, err
	}
	secret, err := randomString(tokenSecretLen)
	if err != nil {
		return Token{}, err
	}
	return Token{CAHash: caHash, ID: id, Secret: secret}, nil
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	for i := range b {
		// 256 is not a multiple of 36: the bias is under 1 in 7 per
		// character, and the secret keeps over 80 bits.
		b[i] = tokenAlphabet[int(b[i])%len(tokenAlphabet)]
	}
	return string(b), nil
}

// String is the full token, K10<hash>::<id>.<secret>.
func (t Token) String() string {
	return tokenPrefix + t.CAHash + "::" + t.Bearer()
}

// Bearer is the part sent to the server: <id>.<secret>.
func (t Token) Bearer() string { return t.ID + "." + t.Secret }

// SecretHash is what the server keeps of the secret.
func (t Token) SecretHash() string {
	sum := sha256.Sum256([]byte(t.Secret))
	return hex.EncodeToString(sum[:])
}

// SecretMatches compares the secret with a stored hash in constant time.
func (t Token) SecretMatches(hash string) bool {
	return subtle.ConstantTimeCompare([]byte(t.SecretHash()), []byte(hash)) == 1
}

// ParseToken reads a full token (K10<hash>::<id>.<secret>). With
// requireCA false it also takes the short form <id>.<secret>, as a server
// receives it.
func ParseToken(s string, requireCA bool) (Token, error) {
	if len(s) > maxTokenLen {
		return Token{}, fmt.Errorf("malformed token: longer than %d characters", maxTokenLen)
	}
	var t Token
	rest := s
	if hashPart, after, ok := strings.Cut(s, "::"); ok {
		if !strings.HasPrefix(hashPart, tokenPrefix) {
			return Token{}, fmt.Errorf("malformed token: it must start with %q", tokenPrefix)
		}
		t.CAHash = strings.TrimPrefix(hashPart, tokenPrefix)
		if len(t.CAHash) != 2*sha256.Size || !isLowerHex(t.CAHash) {
			return Token{}, fmt.Errorf("malformed token: the CA hash after %q must be %d hex digits", tokenPrefix, 2*sha256.Size)
		}
		rest = after
	} else if requireCA {
		return Token{}, fmt.Errorf("malformed token: expected %s<CA hash>::<id>.<secret>", tokenPrefix)
	}
	id, secret, ok := strings.Cut(rest, ".")
	if !ok {
		return Token{}, fmt.Errorf("malformed token: expected <id>.<secret> after the CA hash")
	}
	if !isTokenPart(id, tokenIDLen) {
		return Token{}, fmt.Errorf("malformed token: the id must be %d characters of [a-z0-9]", tokenIDLen)
	}
	if !isTokenPart(secret, tokenSecretLen) {
		return Token{}, fmt.Errorf("malformed token: the secret must be %d characters of [a-z0-9]", tokenSecretLen)
	}
	t.ID, t.Secret = id, secret
	return t, nil
}

// ValidTokenID reports whether s has the shape of a token id.
func ValidTokenID(s string) bool { return isTokenPart(s, tokenIDLen) }

func isTokenPart(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune(tokenAlphabet, rune(s[i])) {
			return false
		}
	}
	return true
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
