package apiserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiffdev/skiff/apiserver/registry"
	"github.com/skiffdev/skiff/apiserver/storage"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/scheme"
)

// Encryption at rest. The objects of encryptedResources are encrypted
// before they go to etcd, with AES-256-GCM under keys kept in
// DATA-DIR/tls/encryption-keys.json (made at the first start, mode 0600):
// the first key of the file encrypts, every key decrypts, and each stored
// value names its key in Kubernetes' envelope,
// "k8s:enc:aesgcm:v1:KEYNAME:" + nonce + ciphertext (storage.Keyring).
// A value without the envelope was written before encryption and is read
// as it is. At start, the server refuses to run when a stored value names
// a key the file does not hold (or the file is gone): it would fail every
// read of that value, and a new key would read nothing.
//
// A rotation (Cluster/RotateEncryptionKey, skiff secrets-encrypt rotate)
// runs in the server, which alone knows which key its writes use:
//
//  1. a new key is written to the file, first, then made the keyring's
//     write key; the rotation waits for the writes already encrypting
//     with the old key to be tried;
//  2. every stored object of the encrypted resources that is not under
//     the new key is written again, unchanged (a compare-and-swap on its
//     mod revision, retried on conflict), so the new key encrypts it;
//  3. the values are read again until none names an older key;
//  4. the older keys are taken out of the file; the server keeps them in
//     memory a while more (retiredKeyGrace): a paged list reads every
//     page at the revision of its first, so one begun before the
//     rotation still meets old values until etcd compacts that revision.
//
// The file is changed before memory at each step, so that a crash never
// leaves a stored value under a key the file does not hold. An
// interrupted rotation leaves both keys in the file: everything reads,
// and the next rotation retires them all.

// encryptedResources are the resources whose objects are encrypted at
// rest: the one place that says so.
var encryptedResources = []schema.GroupResource{{Resource: "secrets"}}

// encryptionKeysFile holds the keys, in DATA-DIR/tls.
const encryptionKeysFile = "encryption-keys.json"

// retiredKeyGrace is how long a retired key still decrypts in memory: as
// long as etcd keeps the history a paged list may read (the embedded
// etcd's --etcd-compaction-retention), and at least a minute.
func retiredKeyGrace(compactionRetention time.Duration) time.Duration {
	return max(time.Minute, compactionRetention)
}

// rotationPasses bounds how often a rotation reads every value again
// looking for ones still under an older key.
const rotationPasses = 5

// EncryptionKeysPath is where a server with this data directory keeps the
// keys that encrypt Secrets at rest.
func EncryptionKeysPath(dataDir string) string {
	return filepath.Join(TLSDir(dataDir), encryptionKeysFile)
}

// keyFile is the key file's content.
type keyFile struct {
	// Comment tells whoever opens the file what it is.
	Comment string `json:"comment"`
	// Provider is always "aesgcm".
	Provider string `json:"provider"`
	// Keys: the first encrypts, every one decrypts.
	Keys []fileKey `json:"keys"`
}

type fileKey struct {
	Name    string    `json:"name"`
	Secret  []byte    `json:"secret"` // base64 in the file
	Created time.Time `json:"created"`
}

const keyFileComment = "The keys that encrypt Secrets in etcd. The first encrypts, every one decrypts. " +
	"Without this file the Secrets in etcd cannot be read: back it up with the etcd data, apart from it. " +
	"Change keys with `skiff secrets-encrypt rotate`, never by hand."

// encryption is the server's encryption at rest.
type encryption struct {
	path    string
	keyring *storage.Keyring
	// grace is how long retired keys still decrypt.
	grace time.Duration
	// rotating makes rotations one at a time.
	rotating sync.Mutex
	// mu guards what follows, and the key file.
	mu sync.Mutex
	// keys are the key file's, the write key first.
	keys []fileKey
	// retired are keys taken out of the file that still decrypt until
	// their grace ends.
	retired []fileKey
}

// loadEncryption reads the key file, or makes it with a first key. It
// refuses to make one when etcd already holds encrypted values: their key
// file was lost, and a new key would not read them.
func loadEncryption(ctx context.Context, dataDir string, grace time.Duration, scan func(ctx context.Context, fn func(key string, value []byte) error) error, now time.Time) (*encryption, error) {
	dir := TLSDir(dataDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	e := &encryption{path: filepath.Join(dir, encryptionKeysFile), grace: grace}
	keys, err := readKeyFile(e.path)
	created := false
	switch {
	case err == nil:
	case errors.Is(err, os.ErrNotExist):
		created = true
		if err := refuseLostKeys(ctx, e.path, scan); err != nil {
			return nil, err
		}
		key, err := newFileKey(nil, now)
		if err != nil {
			return nil, err
		}
		keys = []fileKey{key}
		if err := writeKeyFile(e.path, keys); err != nil {
			return nil, err
		}
		logging.From(ctx).Info("made the key that encrypts Secrets at rest", "path", e.path, "key", key.Name)
	default:
		return nil, err
	}
	e.keys = keys
	if e.keyring, err = storage.NewKeyring(storageKeys(keys)...); err != nil {
		return nil, fmt.Errorf("%s: %w", e.path, err)
	}
	if !created { // a new file: refuseLostKeys has looked already
		if err := refuseUnknownKeys(ctx, e.path, e.keyring, scan); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// refuseUnknownKeys fails when a stored value is encrypted with a key the
// keyring does not have (a key file restored from an older backup, say):
// the server would start and fail on every read of that value. It reads
// the values' prefixes only.
func refuseUnknownKeys(ctx context.Context, path string, keyring *storage.Keyring, scan func(ctx context.Context, fn func(key string, value []byte) error) error) error {
	errFound := errors.New("found")
	var found, name, provider string
	err := scan(ctx, func(key string, value []byte) error {
		if !bytes.HasPrefix(value, []byte(storage.EncryptedPrefix)) {
			return nil
		}
		p, n, _, err := storage.ParseEncrypted(value)
		if err != nil {
			return fmt.Errorf("etcd holds a value that cannot be read (%s): %w", key, err)
		}
		if p != storage.AESGCMProvider || !keyring.Has(n) {
			found, name, provider = key, n, p
			return errFound
		}
		return nil
	})
	if errors.Is(err, errFound) {
		return fmt.Errorf("etcd holds values encrypted with %s key %q (%s and maybe more), which %s does not hold: "+
			"restore the key file that has it", provider, name, found, path)
	}
	return err
}

// refuseLostKeys fails when a stored value is encrypted: the keys that
// encrypted it are gone with their file.
func refuseLostKeys(ctx context.Context, path string, scan func(ctx context.Context, fn func(key string, value []byte) error) error) error {
	errFound := errors.New("found")
	var found, name string
	err := scan(ctx, func(key string, value []byte) error {
		if _, n, _, err := storage.ParseEncrypted(value); err == nil {
			found, name = key, n
			return errFound
		}
		return nil
	})
	if errors.Is(err, errFound) {
		return fmt.Errorf("%s is missing, but etcd holds values encrypted with key %q (%s and maybe more): "+
			"restore the file from a backup; a new key would not read them", path, name, found)
	}
	return err
}

// readKeyFile reads and checks the key file, and narrows its mode to 0600.
func readKeyFile(path string) ([]fileKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f keyFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if f.Provider != storage.AESGCMProvider {
		return nil, fmt.Errorf("%s: provider %q: Skiff encrypts with %q only", path, f.Provider, storage.AESGCMProvider)
	}
	if len(f.Keys) == 0 {
		return nil, fmt.Errorf("%s: no keys", path)
	}
	if _, err := storage.NewKeyring(storageKeys(f.Keys)...); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, err
	}
	return f.Keys, nil
}

// writeKeyFile replaces the key file at once: a new file, synced, renamed
// over the old one, and the directory synced, so that a crash leaves the
// old file or the new one, never half of one.
func writeKeyFile(path string, keys []fileKey) error {
	data, err := json.MarshalIndent(keyFile{Comment: keyFileComment, Provider: storage.AESGCMProvider, Keys: keys}, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
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
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}

// newFileKey makes a random key whose name none of taken has:
// key-YYYYMMDD-HHMMSS of now, with a suffix if needed.
func newFileKey(taken []fileKey, now time.Time) (fileKey, error) {
	secret := make([]byte, storage.KeySize)
	if _, err := rand.Read(secret); err != nil {
		return fileKey{}, fmt.Errorf("making a key: %w", err)
	}
	base := "key-" + now.UTC().Format("20060102-150405")
	name := base
	for i := 2; slices.ContainsFunc(taken, func(k fileKey) bool { return k.Name == name }); i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	return fileKey{Name: name, Secret: secret, Created: now.UTC().Truncate(time.Second)}, nil
}

func storageKeys(keys []fileKey) []storage.Key {
	out := make([]storage.Key, len(keys))
	for i, k := range keys {
		out[i] = storage.Key{Name: k.Name, Secret: k.Secret}
	}
	return out
}

// scanEncrypted scans the stored values of every encrypted resource, as
// they are: what loadEncryption looks at before the registry exists.
func scanEncrypted(client *clientv3.Client, timeout time.Duration) func(ctx context.Context, fn func(key string, value []byte) error) error {
	return func(ctx context.Context, fn func(key string, value []byte) error) error {
		for _, gr := range encryptedResources {
			info, _ := scheme.Lookup(gr)
			st := storage.NewStore(storage.Config{Client: client, Resource: gr, Prefix: registry.KeyPrefix(info), RequestTimeout: timeout})
			if err := st.Scan(ctx, fn); err != nil {
				return err
			}
		}
		return nil
	}
}

// transformers are the registry's transformers: the keyring for every
// encrypted resource.
func (e *encryption) transformers() map[schema.GroupResource]storage.Transformer {
	m := map[schema.GroupResource]storage.Transformer{}
	for _, gr := range encryptedResources {
		m[gr] = e.keyring
	}
	return m
}

// setKeysLocked makes keys the key file's, and then the keyring's with
// the retired keys that still decrypt. It returns once the writes under
// the previous write key have been tried. When the file cannot be
// written, nothing changes.
func (e *encryption) setKeysLocked(keys []fileKey) error {
	if err := writeKeyFile(e.path, keys); err != nil {
		return fmt.Errorf("writing %s: %w", e.path, err)
	}
	e.keys = keys
	return e.applyLocked()
}

// applyLocked gives the keyring the file's keys and the retired ones that
// still decrypt.
func (e *encryption) applyLocked() error {
	return e.keyring.SetKeys(storageKeys(append(slices.Clone(e.keys), e.retired...))...)
}

// EncryptionStatus is what Server.EncryptionStatus reports.
type EncryptionStatus struct {
	Provider  string
	Resources []string
	KeyFile   string
	// Keys: the key file's, the write key first, then the keys stored
	// values name that the file does not hold (Missing).
	Keys []EncryptionKeyStatus
	// Unencrypted counts the values in the clear.
	Unencrypted int64
}

// EncryptionKeyStatus is one key of EncryptionStatus.
type EncryptionKeyStatus struct {
	Name    string
	Write   bool
	Created time.Time
	// Objects counts the stored values the key encrypts.
	Objects int64
	// Missing: stored values name the key, but the file does not hold it.
	Missing bool
}

// EncryptionStatus reports the keys and how many stored objects of the
// encrypted resources each encrypts. It reads every stored value's prefix
// and decrypts nothing.
func (s *Server) EncryptionStatus(ctx context.Context) (EncryptionStatus, error) {
	e := s.encryption
	if e == nil {
		return EncryptionStatus{}, errEncryptionOff
	}
	e.mu.Lock()
	keys := slices.Clone(e.keys)
	e.mu.Unlock()
	counts, unencrypted, err := s.countEncrypted(ctx)
	if err != nil {
		return EncryptionStatus{}, err
	}
	st := EncryptionStatus{Provider: storage.AESGCMProvider, KeyFile: e.path, Unencrypted: unencrypted}
	for _, gr := range encryptedResources {
		st.Resources = append(st.Resources, gr.String())
	}
	for i, k := range keys {
		st.Keys = append(st.Keys, EncryptionKeyStatus{Name: k.Name, Write: i == 0, Created: k.Created, Objects: counts[k.Name]})
		delete(counts, k.Name)
	}
	var missing []string
	for name := range counts {
		missing = append(missing, name)
	}
	slices.Sort(missing)
	for _, name := range missing {
		st.Keys = append(st.Keys, EncryptionKeyStatus{Name: name, Objects: counts[name], Missing: true})
	}
	return st, nil
}

// countEncrypted counts the stored values of the encrypted resources by
// the key that encrypts them ("provider/name" for another provider's).
func (s *Server) countEncrypted(ctx context.Context) (map[string]int64, int64, error) {
	counts := map[string]int64{}
	var unencrypted int64
	for _, gr := range encryptedResources {
		st, ok := s.registry.Store(gr)
		if !ok {
			return nil, 0, fmt.Errorf("no store for %s", gr)
		}
		err := st.Storage().Scan(ctx, func(_ string, value []byte) error {
			if !bytes.HasPrefix(value, []byte(storage.EncryptedPrefix)) {
				unencrypted++
				return nil
			}
			provider, name, _, err := storage.ParseEncrypted(value)
			switch {
			case err != nil:
				counts["<malformed>"]++
			case provider != storage.AESGCMProvider:
				counts[provider+"/"+name]++
			default:
				counts[name]++
			}
			return nil
		})
		if err != nil {
			return nil, 0, err
		}
	}
	return counts, unencrypted, nil
}

// RotationProgress is one step of a rotation, as Server.RotateEncryptionKey
// reports it.
type RotationProgress struct {
	NewKey  string
	OldKeys []string
	// Checked objects of Total so far; Rewritten of them written again.
	Checked, Total, Rewritten int64
	// Done is set on the last report: old keys retired.
	Done    bool
	Elapsed time.Duration
	// Grace is how long the server still decrypts with the retired keys.
	Grace time.Duration
}

// RotateEncryptionKey makes a new key the write key, writes every stored
// object of the encrypted resources again under it, and retires the
// older keys once no stored value needs them (see the top of this file).
// progress is called every progressEvery objects and at the end. An
// error, or ctx ending, leaves every key in the file and readable.
func (s *Server) RotateEncryptionKey(ctx context.Context, progressEvery int, progress func(RotationProgress) error) error {
	if progressEvery <= 0 {
		progressEvery = 100
	}
	e := s.encryption
	if e == nil {
		return errEncryptionOff
	}
	log := logging.From(ctx)
	e.rotating.Lock()
	defer e.rotating.Unlock()
	start := time.Now()

	// 1. The new key: in the file first, then in memory.
	e.mu.Lock()
	old := e.keys
	key, err := newFileKey(append(slices.Clone(old), e.retired...), start)
	if err == nil {
		err = e.setKeysLocked(append([]fileKey{key}, old...))
	}
	e.mu.Unlock()
	if err != nil {
		return err
	}
	rp := RotationProgress{NewKey: key.Name, Grace: e.grace}
	for _, k := range old {
		rp.OldKeys = append(rp.OldKeys, k.Name)
	}
	log.Info("encryption key rotation: a new key encrypts", "key", key.Name, "old", rp.OldKeys)
	report := func() error {
		rp.Elapsed = time.Since(start)
		return progress(rp)
	}
	if err := report(); err != nil {
		return err
	}

	// 2 and 3. Write again every value not under the new key, until a
	// whole pass finds none.
	prefix := []byte(storage.AESGCMPrefix + key.Name + ":")
	for pass := 1; ; pass++ {
		if pass > rotationPasses {
			return apierrors.NewInternalError(fmt.Errorf("after %d passes, stored values still name older keys; the older keys are kept (run the rotation again)", rotationPasses))
		}
		var stale []staleValue
		var total int64
		for _, gr := range encryptedResources {
			st, _ := s.registry.Store(gr)
			err := st.Storage().Scan(ctx, func(k string, value []byte) error {
				total++
				if !bytes.HasPrefix(value, prefix) {
					stale = append(stale, staleValue{store: st.Storage(), key: k})
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		if pass == 1 {
			rp.Total = total
			rp.Checked = total - int64(len(stale))
			if err := report(); err != nil {
				return err
			}
		}
		if len(stale) == 0 {
			break
		}
		for i, v := range stale {
			wrote, err := v.store.Rewrite(ctx, v.key)
			if err != nil {
				return fmt.Errorf("re-encrypting %s: %w", v.key, err)
			}
			if wrote {
				rp.Rewritten++
			}
			if pass == 1 {
				rp.Checked++
				if (i+1)%progressEvery == 0 {
					if err := report(); err != nil {
						return err
					}
				}
			}
		}
	}

	// 4. Retire the older keys: out of the file, then out of memory once
	// their grace has passed.
	e.mu.Lock()
	e.retired = append(e.retired, old...)
	err = e.setKeysLocked([]fileKey{key})
	e.mu.Unlock()
	if err != nil {
		return err
	}
	time.AfterFunc(e.grace, func() { e.forget(old) })
	rp.Done = true
	log.Info("encryption key rotation done", "key", key.Name, "retired", rp.OldKeys, "objects", rp.Total, "rewritten", rp.Rewritten, "elapsed", time.Since(start).Round(time.Millisecond).String())
	return report()
}

// errEncryptionOff is the answer of a server that does not encrypt.
var errEncryptionOff = apierrors.NewServiceUnavailable("this server does not encrypt at rest")

// staleValue is a stored value a rotation must write again.
type staleValue struct {
	store *storage.Store
	key   string
}

// forget drops retired keys from memory.
func (e *encryption) forget(keys []fileKey) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.retired = slices.DeleteFunc(e.retired, func(r fileKey) bool {
		return slices.ContainsFunc(keys, func(k fileKey) bool { return k.Name == r.Name })
	})
	_ = e.applyLocked() // the same keys, fewer: cannot fail
}
