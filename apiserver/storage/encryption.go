package storage

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"
)

// Transformer turns the encoded bytes of an object into the bytes stored
// in etcd, and back. A store without one stores the encoding as it is.
//
// key is the object's etcd key: an encrypting transformer binds the
// stored value to it, so that a value copied under another key does not
// decrypt.
type Transformer interface {
	// ToStorage returns the bytes to store under key. done must be
	// called once the write that stores them has been tried (applied or
	// not): until then the transformer knows the write is in flight.
	ToStorage(key string, plain []byte) (stored []byte, done func(), err error)
	// FromStorage returns the encoded object stored under key. stale
	// reports that the value is not stored the way ToStorage would store
	// it now (it is in the clear, or under a key that no longer
	// encrypts): an update writes it again even when the object did not
	// change, which is how a key rotation re-encrypts every object.
	FromStorage(key string, stored []byte) (plain []byte, stale bool, err error)
}

// Encrypted values carry Kubernetes' envelope, so that a value says how to
// read it: "k8s:enc:" PROVIDER ":v1:" KEYNAME ":" then the provider's
// bytes. Values without that prefix were stored in the clear (before
// encryption, or for resources that are not encrypted) and are read as
// they are.
const (
	// EncryptedPrefix starts every encrypted value, whatever its
	// provider. A Kubernetes protobuf encoding starts with "k8s\x00", so
	// the two cannot be confused.
	EncryptedPrefix = "k8s:enc:"
	// AESGCMPrefix starts a value encrypted with AES-GCM, Kubernetes'
	// aesgcm provider: it is followed by the key's name, ":", a 12-byte
	// random nonce, and the ciphertext with its 16-byte tag. The etcd key
	// is the additional authenticated data.
	AESGCMPrefix = EncryptedPrefix + "aesgcm:v1:"
	// AESGCMProvider names the provider in messages.
	AESGCMProvider = "aesgcm"
)

// KeySize is the size of an AES-GCM key: 32 bytes, AES-256.
const KeySize = 32

// Key is one named AES-GCM key.
type Key struct {
	// Name is recorded in every value the key encrypts, and picks the key
	// that decrypts it.
	Name string
	// Secret is the key itself, KeySize bytes.
	Secret []byte
}

// keyNamePattern is what a key's name may be: it goes into the stored
// value's prefix, ended by ":".
var keyNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// CheckKey reports what is wrong with a key, or nil.
func CheckKey(k Key) error {
	if !keyNamePattern.MatchString(k.Name) {
		return fmt.Errorf("key name %q: must be 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit", k.Name)
	}
	if len(k.Secret) != KeySize {
		return fmt.Errorf("key %q: must be %d bytes, not %d", k.Name, KeySize, len(k.Secret))
	}
	return nil
}

// gcmKey is a key ready to use.
type gcmKey struct {
	name   string
	prefix []byte // AESGCMPrefix + name + ":"
	aead   cipher.AEAD
}

// keyset is the keys of a Keyring at one time: the one that encrypts and
// every one that decrypts.
type keyset struct {
	write *gcmKey
	read  map[string]*gcmKey
	// writes is held for reading by every write encrypted with this
	// set's write key until the write has been tried, so that SetKeys can
	// wait for them.
	writes sync.RWMutex
}

// Keyring is the AES-GCM Transformer: the first of its keys encrypts
// every value written, any of them decrypts (the name in the value's
// prefix picks which). Its keys can be changed while it is in use, which
// is how a rotation brings in a new key and later retires the old one.
type Keyring struct {
	set atomic.Pointer[keyset]
}

// NewKeyring returns a keyring whose first key encrypts.
func NewKeyring(keys ...Key) (*Keyring, error) {
	k := &Keyring{}
	ks, err := newKeyset(keys)
	if err != nil {
		return nil, err
	}
	k.set.Store(ks)
	return k, nil
}

func newKeyset(keys []Key) (*keyset, error) {
	if len(keys) == 0 {
		return nil, errors.New("no keys")
	}
	ks := &keyset{read: make(map[string]*gcmKey, len(keys))}
	for _, k := range keys {
		if err := CheckKey(k); err != nil {
			return nil, err
		}
		if _, dup := ks.read[k.Name]; dup {
			return nil, fmt.Errorf("two keys are named %q", k.Name)
		}
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.Name, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.Name, err)
		}
		gk := &gcmKey{name: k.Name, prefix: []byte(AESGCMPrefix + k.Name + ":"), aead: aead}
		ks.read[k.Name] = gk
		if ks.write == nil {
			ks.write = gk
		}
	}
	return ks, nil
}

// SetKeys replaces the keyring's keys; the first encrypts from now on.
// It returns once every write encrypted with the previous write key has
// been tried, so that a caller that then looks at etcd finds every value
// the old key will ever encrypt.
func (k *Keyring) SetKeys(keys ...Key) error {
	ks, err := newKeyset(keys)
	if err != nil {
		return err
	}
	old := k.set.Swap(ks)
	if old != nil {
		// A write that took the old set before the swap holds its read
		// lock until it is tried; one that takes it after sees the swap
		// and takes the new set instead (acquire).
		old.writes.Lock()
		old.writes.Unlock() // an empty critical section: the wait is the point
	}
	return nil
}

// WriteKey is the name of the key that encrypts.
func (k *Keyring) WriteKey() string { return k.set.Load().write.name }

// Has reports whether the keyring can decrypt with a key of that name.
func (k *Keyring) Has(name string) bool {
	_, ok := k.set.Load().read[name]
	return ok
}

// acquire returns the current keyset with its writes lock held for
// reading: SetKeys waits for it.
func (k *Keyring) acquire() *keyset {
	for {
		ks := k.set.Load()
		ks.writes.RLock()
		if k.set.Load() == ks {
			return ks
		}
		ks.writes.RUnlock()
	}
}

// ToStorage encrypts plain with the write key, bound to the etcd key.
func (k *Keyring) ToStorage(key string, plain []byte) ([]byte, func(), error) {
	ks := k.acquire()
	w := ks.write
	nonceSize := w.aead.NonceSize()
	out := make([]byte, len(w.prefix)+nonceSize, len(w.prefix)+nonceSize+len(plain)+w.aead.Overhead())
	copy(out, w.prefix)
	nonce := out[len(w.prefix):]
	if _, err := rand.Read(nonce); err != nil {
		ks.writes.RUnlock()
		return nil, nil, fmt.Errorf("making a nonce for key %q: %w", w.name, err)
	}
	out = w.aead.Seal(out, nonce, plain, []byte(key))
	return out, ks.writes.RUnlock, nil
}

// FromStorage decrypts a value with the key its prefix names. A value
// without EncryptedPrefix is in the clear and returned as it is (stale: it
// should be encrypted).
func (k *Keyring) FromStorage(key string, stored []byte) ([]byte, bool, error) {
	if !bytes.HasPrefix(stored, []byte(EncryptedPrefix)) {
		return stored, true, nil
	}
	provider, name, body, err := ParseEncrypted(stored)
	if err != nil {
		return nil, false, err
	}
	if provider != AESGCMProvider {
		return nil, false, fmt.Errorf("the value is encrypted by provider %q, which Skiff does not have (only %q)", provider, AESGCMProvider)
	}
	ks := k.set.Load()
	gk, ok := ks.read[name]
	if !ok {
		return nil, false, fmt.Errorf("the value is encrypted with key %q, which is not among the keys this server has (%s): was the key file replaced or a key retired too early?", name, ks.names())
	}
	nonceSize := gk.aead.NonceSize()
	if len(body) < nonceSize+gk.aead.Overhead() {
		return nil, false, fmt.Errorf("the value encrypted with key %q is truncated: %d bytes after its prefix, fewer than a nonce and a tag", name, len(body))
	}
	plain, err := gk.aead.Open(nil, body[:nonceSize], body[nonceSize:], []byte(key))
	if err != nil {
		return nil, false, fmt.Errorf("decrypting with key %q failed (the value is corrupted, was stored under another key, or the key file holds a different key of that name): %w", name, err)
	}
	return plain, gk != ks.write, nil
}

func (ks *keyset) names() string {
	var b bytes.Buffer
	b.WriteString(ks.write.name)
	for name := range ks.read {
		if name != ks.write.name {
			b.WriteString(", ")
			b.WriteString(name)
		}
	}
	return b.String()
}

// ParseEncrypted splits an encrypted value, "k8s:enc:PROVIDER:v1:NAME:BODY",
// into its provider, its key's name and the provider's bytes. It looks at
// the prefix only: it decrypts nothing, and tells what a value is
// encrypted with (skiff secrets-encrypt status).
func ParseEncrypted(stored []byte) (provider, keyName string, body []byte, err error) {
	rest, ok := bytes.CutPrefix(stored, []byte(EncryptedPrefix))
	if !ok {
		return "", "", nil, errors.New("the value is not encrypted")
	}
	prov, rest, ok := bytes.Cut(rest, []byte(":"))
	if !ok {
		return "", "", nil, errors.New("the value's encryption prefix is malformed: no provider")
	}
	version, rest, ok := bytes.Cut(rest, []byte(":"))
	if !ok || string(version) != "v1" {
		return "", "", nil, fmt.Errorf("the value's encryption prefix is malformed: provider %q without version v1", prov)
	}
	name, body, ok := bytes.Cut(rest, []byte(":"))
	if !ok || len(name) == 0 {
		return "", "", nil, fmt.Errorf("the value's encryption prefix is malformed: provider %q without a key name", prov)
	}
	return string(prov), string(name), body, nil
}
