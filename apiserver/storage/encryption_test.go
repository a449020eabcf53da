package storage

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func testKey(name string, fill byte) Key {
	return Key{Name: name, Secret: bytes.Repeat([]byte{fill}, KeySize)}
}

func mustKeyring(t *testing.T, keys ...Key) *Keyring {
	t.Helper()
	k, err := NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const secretKey = "/registry/core/secrets/default/db"

func TestKeyringRoundTrip(t *testing.T) {
	k := mustKeyring(t, testKey("key1", 1))
	plain := []byte("k8s\x00 the encoded secret: password=hunter2")
	stored, done, err := k.ToStorage(secretKey, plain)
	if err != nil {
		t.Fatal(err)
	}
	done()
	if !bytes.HasPrefix(stored, []byte("k8s:enc:aesgcm:v1:key1:")) {
		t.Errorf("stored value starts %q, want Kubernetes' prefix k8s:enc:aesgcm:v1:key1:", stored[:min(len(stored), 30)])
	}
	if bytes.Contains(stored, []byte("hunter2")) {
		t.Error("the stored value holds the plaintext")
	}
	// prefix + 12-byte nonce + ciphertext + 16-byte tag.
	if want := len("k8s:enc:aesgcm:v1:key1:") + 12 + len(plain) + 16; len(stored) != want {
		t.Errorf("stored value is %d bytes, want %d", len(stored), want)
	}
	again, done, _ := k.ToStorage(secretKey, plain)
	done()
	if bytes.Equal(again, stored) {
		t.Error("two writes of the same value are identical: the nonce is not random")
	}
	got, stale, err := k.FromStorage(secretKey, stored)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, plain) || stale {
		t.Errorf("FromStorage = %q, stale %v; want %q, not stale", got, stale, plain)
	}
}

// TestKeyringErrors: every way a stored value can be wrong gives an error
// that says which key, never a panic and never wrong plaintext.
func TestKeyringErrors(t *testing.T) {
	k := mustKeyring(t, testKey("key1", 1))
	stored, done, err := k.ToStorage(secretKey, []byte("k8s\x00secret"))
	if err != nil {
		t.Fatal(err)
	}
	done()
	other := mustKeyring(t, testKey("key2", 2))
	fromOther, done, _ := other.ToStorage(secretKey, []byte("k8s\x00secret"))
	done()
	sameNameOtherKey := mustKeyring(t, testKey("key1", 9))

	flipped := bytes.Clone(stored)
	flipped[len(flipped)-20] ^= 0x01

	tests := []struct {
		name   string
		ring   *Keyring
		key    string
		stored []byte
		want   []string // substrings of the error
	}{
		{"key name unknown", k, secretKey, fromOther, []string{`key "key2"`, "not among the keys", "key1"}},
		{"same name, different key", sameNameOtherKey, secretKey, stored, []string{`key "key1"`, "failed"}},
		{"corrupted ciphertext", k, secretKey, flipped, []string{`key "key1"`, "corrupted"}},
		{"truncated", k, secretKey, stored[:len("k8s:enc:aesgcm:v1:key1:")+5], []string{`key "key1"`, "truncated"}},
		{"nothing after the prefix", k, secretKey, []byte("k8s:enc:aesgcm:v1:key1:"), []string{`key "key1"`, "truncated"}},
		{"copied under another etcd key", k, "/registry/core/secrets/default/other", stored, []string{`key "key1"`, "another key"}},
		{"another provider", k, secretKey, []byte("k8s:enc:kms:v2:vault:xxxx"), []string{`"kms"`}},
		{"no key name", k, secretKey, []byte("k8s:enc:aesgcm:v1:"), []string{"malformed"}},
		{"no version", k, secretKey, []byte("k8s:enc:aesgcm"), []string{"malformed"}},
		{"wrong version", k, secretKey, []byte("k8s:enc:aesgcm:v9:key1:xxxx"), []string{"malformed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := tt.ring.FromStorage(tt.key, tt.stored)
			if err == nil {
				t.Fatalf("FromStorage = %q, want an error", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestKeyringPlainValuesAndStale(t *testing.T) {
	k := mustKeyring(t, testKey("key1", 1))
	plain := []byte("k8s\x00written before encryption")
	got, stale, err := k.FromStorage(secretKey, plain)
	if err != nil || !bytes.Equal(got, plain) || !stale {
		t.Errorf("a value in the clear: got %q, stale %v, %v; want it as it is, stale", got, stale, err)
	}

	old, done, _ := k.ToStorage(secretKey, []byte("k8s\x00old"))
	done()
	if err := k.SetKeys(testKey("key2", 2), testKey("key1", 1)); err != nil {
		t.Fatal(err)
	}
	if k.WriteKey() != "key2" {
		t.Errorf("write key %q, want key2", k.WriteKey())
	}
	got, stale, err = k.FromStorage(secretKey, old)
	if err != nil || string(got) != "k8s\x00old" || !stale {
		t.Errorf("a value under the old key after a new one came first: got %q, stale %v, %v; want it read, stale", got, stale, err)
	}
	fresh, done, _ := k.ToStorage(secretKey, []byte("k8s\x00new"))
	done()
	if !bytes.HasPrefix(fresh, []byte("k8s:enc:aesgcm:v1:key2:")) {
		t.Errorf("a write after SetKeys is under %q, want key2", fresh[:min(len(fresh), 26)])
	}
	if _, stale, _ := k.FromStorage(secretKey, fresh); stale {
		t.Error("a value under the write key is stale")
	}

	if err := k.SetKeys(testKey("key2", 2)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := k.FromStorage(secretKey, old); err == nil || !strings.Contains(err.Error(), `"key1"`) {
		t.Errorf("a value under a retired key: err %v, want one naming key1", err)
	}
}

func TestCheckKey(t *testing.T) {
	for _, k := range []Key{
		{Name: "", Secret: make([]byte, KeySize)},
		{Name: "a:b", Secret: make([]byte, KeySize)},
		{Name: "-a", Secret: make([]byte, KeySize)},
		{Name: "key1", Secret: make([]byte, 16)},
	} {
		if err := CheckKey(k); err == nil {
			t.Errorf("CheckKey(%q, %d bytes) = nil, want an error", k.Name, len(k.Secret))
		}
	}
	if _, err := NewKeyring(testKey("a", 1), testKey("a", 2)); err == nil {
		t.Error("NewKeyring with two keys of one name: want an error")
	}
	if _, err := NewKeyring(); err == nil {
		t.Error("NewKeyring without keys: want an error")
	}
}

// TestSetKeysWaitsForWritesInFlight: SetKeys returns only once a write
// that encrypted with the old write key has been tried, so a rotation
// that then reads etcd sees every value the old key will ever encrypt.
func TestSetKeysWaitsForWritesInFlight(t *testing.T) {
	k := mustKeyring(t, testKey("key1", 1))
	_, done, err := k.ToStorage(secretKey, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	returned := make(chan struct{})
	go func() {
		_ = k.SetKeys(testKey("key2", 2), testKey("key1", 1))
		close(returned)
	}()
	select {
	case <-returned:
		t.Fatal("SetKeys returned while a write under the old key was in flight")
	case <-time.After(100 * time.Millisecond):
	}
	// A write that starts now uses the new key and does not hold SetKeys.
	stored, done2, _ := k.ToStorage(secretKey, []byte("y"))
	if !bytes.HasPrefix(stored, []byte("k8s:enc:aesgcm:v1:key2:")) {
		t.Errorf("a write that started during SetKeys is under %q, want key2", stored[:26])
	}
	done()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("SetKeys did not return once the write was tried")
	}
	done2()
}

// TestStoreEncrypts: a store with a keyring keeps values encrypted in
// etcd, reads them back, and rewrites a value only when it is stale.
func TestStoreEncrypts(t *testing.T) {
	client := startEtcd(t)
	ctx := context.Background()
	k := mustKeyring(t, testKey("key1", 1))
	s := NewStore(Config{
		Client:      client,
		Resource:    schema.GroupResource{Resource: "secrets"},
		Prefix:      "/registry/core/secrets/",
		NewFunc:     func() runtime.Object { return &corev1.Secret{} },
		NewListFunc: func() runtime.Object { return &corev1.SecretList{} },
		Attrs:       func(runtime.Object) (labels.Set, fields.Set) { return nil, nil },
		Transformer: k,
	})
	key := s.Key("default", "db")
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default"}, Data: map[string][]byte{"password": []byte("hunter2")}}
	if _, err := s.Create(ctx, key, "db", secret); err != nil {
		t.Fatal(err)
	}
	raw := func() ([]byte, int64) {
		resp, err := client.Get(ctx, key)
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("get %s: %v", key, err)
		}
		return resp.Kvs[0].Value, resp.Kvs[0].ModRevision
	}
	value, rev := raw()
	if bytes.Contains(value, []byte("hunter2")) || !bytes.HasPrefix(value, []byte("k8s:enc:aesgcm:v1:key1:")) {
		t.Errorf("stored value %q: want it encrypted with key1", value)
	}
	obj, err := s.Get(ctx, key, "db")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(obj.(*corev1.Secret).Data["password"]); got != "hunter2" {
		t.Errorf("read back password %q, want hunter2", got)
	}

	// Not stale: nothing is written.
	if wrote, err := s.Rewrite(ctx, key); err != nil || wrote {
		t.Errorf("Rewrite of a value under the write key: wrote %v, %v; want no write", wrote, err)
	}
	if _, r := raw(); r != rev {
		t.Errorf("mod revision moved from %d to %d without a change", rev, r)
	}

	// A new write key makes it stale: Rewrite re-encrypts it.
	if err := k.SetKeys(testKey("key2", 2), testKey("key1", 1)); err != nil {
		t.Fatal(err)
	}
	if wrote, err := s.Rewrite(ctx, key); err != nil || !wrote {
		t.Errorf("Rewrite of a value under an old key: wrote %v, %v; want a write", wrote, err)
	}
	value, _ = raw()
	if !bytes.HasPrefix(value, []byte("k8s:enc:aesgcm:v1:key2:")) {
		t.Errorf("after Rewrite the value starts %q, want key2", value[:26])
	}
	if wrote, err := s.Rewrite(ctx, s.Key("default", "gone")); err != nil || wrote {
		t.Errorf("Rewrite of a missing key: wrote %v, %v; want neither", wrote, err)
	}

	// A value stored in the clear (before encryption) reads, and Rewrite
	// encrypts it.
	plainKey := s.Key("default", "old")
	old := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "old", Namespace: "default"}, Data: map[string][]byte{"token": []byte("plain-old")}}
	enc, err := encode(old)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Put(ctx, plainKey, string(enc)); err != nil {
		t.Fatal(err)
	}
	if obj, err := s.Get(ctx, plainKey, "old"); err != nil || string(obj.(*corev1.Secret).Data["token"]) != "plain-old" {
		t.Fatalf("a value in the clear: %v, %v", obj, err)
	}
	if wrote, err := s.Rewrite(ctx, plainKey); err != nil || !wrote {
		t.Errorf("Rewrite of a value in the clear: wrote %v, %v; want a write", wrote, err)
	}
	var scanned []string
	err = s.Scan(ctx, func(k string, v []byte) error {
		if !bytes.HasPrefix(v, []byte("k8s:enc:aesgcm:v1:key2:")) {
			t.Errorf("%s is not under key2 after the rewrites", k)
		}
		scanned = append(scanned, k)
		return nil
	})
	if err != nil || len(scanned) != 2 {
		t.Errorf("Scan: %v, %v; want both keys", scanned, err)
	}

	// A corrupted value is an error that names the key, not a panic.
	if _, err := client.Put(ctx, key, "k8s:enc:aesgcm:v1:key2:garbage"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, key, "db"); err == nil || !strings.Contains(err.Error(), `key "key2"`) || !strings.Contains(err.Error(), key) {
		t.Errorf("reading a corrupted value: %v; want an error naming the etcd key and key2", err)
	}
}

// BenchmarkKeyring is the cost of AES-256-GCM on one Secret of about
// 1.2 KiB, without etcd: an encryption and a decryption per iteration.
func BenchmarkKeyring(b *testing.B) {
	k, err := NewKeyring(testKey("key1", 1))
	if err != nil {
		b.Fatal(err)
	}
	plain := bytes.Repeat([]byte("x"), 1200)
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		stored, done, err := k.ToStorage(secretKey, plain)
		if err != nil {
			b.Fatal(err)
		}
		done()
		if _, _, err := k.FromStorage(secretKey, stored); err != nil {
			b.Fatal(err)
		}
	}
}
