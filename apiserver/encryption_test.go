package apiserver_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiffdev/skiff/apiserver"
	"github.com/skiffdev/skiff/apiserver/auth"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/scheme"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
	skiffv1 "github.com/skiffdev/skiff/proto/skiff/v1"
)

func randomMarker(t *testing.T, what string) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return what + "-" + hex.EncodeToString(b)
}

// filesContaining walks dir and returns the regular files that contain
// any of needles.
func filesContaining(t *testing.T, dir string, needles ...[]byte) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil // directories, and the unix sockets etcd listens on
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, n := range needles {
			if bytes.Contains(data, n) {
				found = append(found, path)
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestSecretsEncryptedAtRest reads etcd's own files (its write-ahead log
// and its database, in DATA-DIR/etcd) after the server stopped: a
// Secret's value is nowhere in them, while a ConfigMap's value, which is
// not encrypted, is — so the search does find what is there in the clear.
func TestSecretsEncryptedAtRest(t *testing.T) {
	cfg := testenv.ServerConfig(t)
	srv, stop := startStoppable(t, cfg)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)

	secretValue, stringValue, cmValue := randomMarker(t, "secret-data"), randomMarker(t, "secret-stringdata"), randomMarker(t, "configmap-data")
	if _, err := c.Secrets("default").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default"},
		Data:       map[string][]byte{"password": []byte(secretValue)},
		StringData: map[string]string{"token": stringValue},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: "default"},
		Data:       map[string]string{"setting": cmValue},
	}); err != nil {
		t.Fatal(err)
	}
	got, err := c.Secrets("default").Get(ctx, "db")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Data["password"]) != secretValue || string(got.Data["token"]) != stringValue {
		t.Fatalf("read back %v, want the values written", got.Data)
	}
	stop()

	etcdDir := filepath.Join(cfg.DataDir, "etcd")
	if files := filesContaining(t, etcdDir, []byte(cmValue)); len(files) == 0 {
		t.Fatalf("the ConfigMap's value is in none of etcd's files under %s: the search cannot see values in the clear", etcdDir)
	} else {
		t.Logf("the ConfigMap's value, in the clear, is in %v", files)
	}
	for _, v := range []string{secretValue, stringValue} {
		needles := [][]byte{[]byte(v), []byte(base64.StdEncoding.EncodeToString([]byte(v))), []byte(v[:len(v)/2])}
		if files := filesContaining(t, etcdDir, needles...); len(files) > 0 {
			t.Errorf("a Secret's value %q is in the clear in %v", v, files)
		}
	}

	// The key: 0600 in a 0700 directory, 32 bytes.
	path := apiserver.EncryptionKeysPath(cfg.DataDir)
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
	var file struct {
		Provider string
		Keys     []struct {
			Name   string
			Secret []byte
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	if file.Provider != "aesgcm" || len(file.Keys) != 1 || len(file.Keys[0].Secret) != 32 {
		t.Errorf("key file %s: provider %q, %d keys; want aesgcm with one 32-byte key", path, file.Provider, len(file.Keys))
	}

	// The same key file reads the Secret after a restart.
	srv, _ = startStoppable(t, cfg)
	c = testenv.NewClient(t, srv)
	if got, err := c.Secrets("default").Get(ctx, "db"); err != nil || string(got.Data["password"]) != secretValue {
		t.Errorf("after a restart: %v, %v; want the secret", got, err)
	}
}

// TestMissingKeyFileRefused: a server whose key file is gone while etcd
// holds encrypted Secrets does not make a new key (which would read
// nothing), and one whose key file lacks their key does not start to fail
// on every read: both refuse to start and say what to restore.
func TestMissingKeyFileRefused(t *testing.T) {
	cfg := testenv.ServerConfig(t)
	srv, stop := startStoppable(t, cfg)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	if _, err := c.Secrets("default").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default"}, Data: map[string][]byte{"k": []byte("v")}}); err != nil {
		t.Fatal(err)
	}
	stop()
	path := apiserver.EncryptionKeysPath(cfg.DataDir)
	original, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var keys struct{ Keys []struct{ Name string } }
	if err := json.Unmarshal(original, &keys); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	s, err := apiserver.Start(ctx, cfg)
	if err == nil {
		s.Stop()
		t.Fatal("the server started without the key file of its encrypted Secrets")
	}
	for _, want := range []string{"encryption-keys.json is missing", keys.Keys[0].Name, "/registry/core/secrets/default/db", "restore"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	// A key file without the key (an older backup, say) is refused too.
	other := bytes.Replace(original, []byte(keys.Keys[0].Name), []byte("key-from-elsewhere"), 1)
	if err := os.WriteFile(path, other, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = apiserver.Start(ctx, cfg)
	if err == nil {
		s.Stop()
		t.Fatal("the server started with a key file that lacks its Secrets' key")
	}
	for _, want := range []string{keys.Keys[0].Name, "does not hold", "restore the key file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	// With its own key file back, it starts and reads the Secret.
	if err := os.WriteFile(path, original, 0o600); err != nil {
		t.Fatal(err)
	}
	srv, _ = startStoppable(t, cfg)
	c = testenv.NewClient(t, srv)
	if got, err := c.Secrets("default").Get(ctx, "db"); err != nil || string(got.Data["k"]) != "v" {
		t.Errorf("with the key file restored: %v, %v", got, err)
	}
}

// rotationReaders reads Secrets every way a client can while a rotation
// runs, and records the first failure: through etcd (get, paged list),
// through the watch cache (list at resourceVersion 0) and a watch.
type rotationReaders struct {
	t     *testing.T
	c     *client.Client
	want  map[string]string // name → the value of its "n" key
	reads atomic.Int64
	mu    sync.Mutex
	errs  []error
	stop  context.CancelFunc
	wg    sync.WaitGroup
}

func (r *rotationReaders) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) < 10 {
		r.errs = append(r.errs, err)
	}
}

func (r *rotationReaders) check(s *corev1.Secret) {
	if want, ok := r.want[s.Name]; ok && string(s.Data["n"]) != want {
		r.fail(fmt.Errorf("secret %s reads %q, want %q", s.Name, s.Data["n"], want))
	}
}

func startRotationReaders(t *testing.T, c *client.Client, want map[string]string) *rotationReaders {
	ctx, cancel := context.WithCancel(context.Background())
	r := &rotationReaders{t: t, c: c, want: want, stop: cancel}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	for w := range 3 {
		r.wg.Go(func() { // gets, from etcd
			for i := w; ctx.Err() == nil; i++ {
				s, err := c.Secrets("default").Get(ctx, names[i%len(names)])
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					r.fail(fmt.Errorf("get: %w", err))
					continue
				}
				r.check(s)
				r.reads.Add(1)
			}
		})
	}
	r.wg.Go(func() { // paged lists, from etcd
		for ctx.Err() == nil {
			cont, n := "", 0
			for {
				l, err := c.Secrets("default").List(ctx, metav1.ListOptions{Limit: 50, Continue: cont})
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					r.fail(fmt.Errorf("list: %w", err))
					break
				}
				for i := range l.Items {
					r.check(&l.Items[i])
				}
				n += len(l.Items)
				r.reads.Add(int64(len(l.Items)))
				if cont = l.Continue; cont == "" {
					break
				}
			}
			if n < len(want) {
				r.fail(fmt.Errorf("a list found %d secrets, want at least %d", n, len(want)))
			}
		}
	})
	r.wg.Go(func() { // lists from the watch cache
		for ctx.Err() == nil {
			l, err := c.Secrets("default").List(ctx, metav1.ListOptions{ResourceVersion: "0"})
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				r.fail(fmt.Errorf("cached list: %w", err))
				continue
			}
			for i := range l.Items {
				r.check(&l.Items[i])
			}
			r.reads.Add(int64(len(l.Items)))
		}
	})
	w, err := c.Secrets("default").Watch(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	r.wg.Go(func() { // a watch, which sees every rewrite
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.ResultChan():
				if !ok {
					if ctx.Err() == nil {
						r.fail(fmt.Errorf("the watch ended during the rotation"))
					}
					return
				}
				if ev.Type == watch.Error {
					r.fail(fmt.Errorf("watch error: %v", apierrors.FromObject(ev.Object)))
					continue
				}
				if s, ok := ev.Object.(*corev1.Secret); ok {
					r.check(s)
					r.reads.Add(1)
				}
			}
		}
	})
	return r
}

func (r *rotationReaders) finish() (int64, []error) {
	r.stop()
	r.wg.Wait()
	return r.reads.Load(), r.errs
}

func encryptionStatus(t *testing.T, ctx context.Context, c *client.Client) *skiffv1.EncryptionStatusResponse {
	t.Helper()
	st, err := c.EncryptionStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestEncryptionKeyRotation: a rotation re-encrypts every Secret with a
// new key (one stored in the clear before encryption too), readers and
// writers never fail meanwhile, the old key leaves the key file, and the
// Secrets read after a restart.
func TestEncryptionKeyRotation(t *testing.T) {
	cfg := testenv.ServerConfig(t)
	srv, stop := startStoppable(t, cfg)
	c := testenv.NewClient(t, srv)
	ctx := testenv.ContextFor(t, 3*time.Minute)

	const count = 300
	want := map[string]string{}
	for i := range count {
		want[fmt.Sprintf("s-%03d", i)] = fmt.Sprintf("value-%d", i)
	}
	_, _, err := runBatch(count, 8, func(ctx context.Context, _, i int) error {
		name := fmt.Sprintf("s-%03d", i)
		_, err := c.Secrets("default").Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Data:       map[string][]byte{"n": []byte(want[name])},
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// A Secret written before encryption existed: its value is the plain
	// encoding, without the prefix.
	legacy := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: "legacy", Namespace: "default", UID: "0e6e8a4c-1111-4c1e-9a55-000000000001", CreationTimestamp: metav1.Now()},
		Data:       map[string][]byte{"n": []byte("from-before")},
		Type:       corev1.SecretTypeOpaque,
	}
	plain, err := scheme.EncodeProtobuf(legacy)
	if err != nil {
		t.Fatal(err)
	}
	etcd := apiserver.EtcdClient(srv)
	if _, err := etcd.Put(ctx, "/registry/core/secrets/default/legacy", string(plain)); err != nil {
		t.Fatal(err)
	}
	want["legacy"] = "from-before"

	before := encryptionStatus(t, ctx, c)
	if len(before.Keys) != 1 || !before.Keys[0].Write || before.Keys[0].Objects != count || before.Unencrypted != 1 {
		t.Fatalf("status before the rotation: %v; want one write key encrypting %d secrets, 1 unencrypted", before, count)
	}
	oldKey := before.Keys[0].Name

	// Only the admin rotates.
	cc := testenv.NewClientAs(t, srv, auth.ControllersUser)
	if err := cc.RotateEncryptionKey(ctx, 0, func(*skiffv1.RotateEncryptionKeyProgress) {}); !apierrors.IsForbidden(err) {
		t.Errorf("a rotation by the controller manager: %v, want Forbidden", err)
	}

	readers := startRotationReaders(t, c, want)
	// A writer keeps changing one Secret during the rotation: its last
	// write must be what stays.
	writerCtx, stopWriter := context.WithCancel(ctx)
	var writes, tried atomic.Int64 // the last write done, and the last tried
	var writerErr error
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for i := 0; writerCtx.Err() == nil; i++ {
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "busy", Namespace: "default"}, Data: map[string][]byte{"n": []byte(fmt.Sprint(i))}}
			tried.Store(int64(i))
			var err error
			if i == 0 {
				_, err = c.Secrets("default").Create(writerCtx, s)
			} else {
				_, err = c.Secrets("default").Update(writerCtx, s) // no resourceVersion: last write wins
			}
			if writerCtx.Err() != nil {
				return
			}
			if err != nil {
				writerErr = err
				return
			}
			writes.Store(int64(i))
		}
	}()

	var progress []*skiffv1.RotateEncryptionKeyProgress
	started := time.Now()
	err = c.RotateEncryptionKey(ctx, 50, func(p *skiffv1.RotateEncryptionKeyProgress) { progress = append(progress, p) })
	took := time.Since(started)
	// Reads after the rotation, too: a few hundred more.
	more := readers.reads.Load() + 300
	wait.For(t, 30*time.Second, "reads after the rotation", func() (bool, error) { return readers.reads.Load() >= more, nil })
	stopWriter()
	<-writerDone
	reads, errs := readers.finish()
	if err != nil {
		t.Fatalf("rotation: %v", err)
	}
	for _, e := range errs {
		t.Errorf("a reader failed during the rotation: %v", e)
	}
	if writerErr != nil {
		t.Errorf("the writer failed during the rotation: %v", writerErr)
	}
	t.Logf("rotation of %d secrets took %v; %d reads and %d writes meanwhile", count+2, took, reads, writes.Load())
	if reads == 0 {
		t.Error("no reads happened during the rotation")
	}

	last := progress[len(progress)-1]
	newKey := last.GetNewKey()
	if !last.GetDone() || newKey == oldKey || len(last.GetOldKeys()) != 1 || last.GetOldKeys()[0] != oldKey {
		t.Errorf("last progress %v: want done, a new key, %s retired", last, oldKey)
	}
	if last.GetTotal() < count+1 || last.GetRewritten() < count+1 {
		t.Errorf("last progress %v: want at least %d objects rewritten", last, count+1)
	}
	if len(progress) < 1+count/50 {
		t.Errorf("%d progress messages, want at least one per 50 objects", len(progress))
	}

	after := encryptionStatus(t, ctx, c)
	if len(after.Keys) != 1 || after.Keys[0].Name != newKey || !after.Keys[0].Write || after.Keys[0].Objects < count+2 || after.Unencrypted != 0 {
		t.Errorf("status after the rotation: %v; want only %s, encrypting every secret", after, newKey)
	}
	resp, err := etcd.Get(ctx, "/registry/core/secrets/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		if !bytes.HasPrefix(kv.Value, []byte("k8s:enc:aesgcm:v1:"+newKey+":")) {
			t.Errorf("%s is stored under %.40q after the rotation", kv.Key, kv.Value)
		}
	}
	data, err := os.ReadFile(apiserver.EncryptionKeysPath(cfg.DataDir))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(`"`+oldKey+`"`)) || !bytes.Contains(data, []byte(`"`+newKey+`"`)) {
		t.Errorf("key file after the rotation:\n%s\nwant %s only", data, newKey)
	}
	// The last write may have been stored after the writer stopped
	// waiting for its answer.
	busy, err := c.Secrets("default").Get(ctx, "busy")
	if got := string(busy.Data["n"]); err != nil || (got != fmt.Sprint(writes.Load()) && got != fmt.Sprint(tried.Load())) {
		t.Errorf("the busy secret: %v, %v; want its last write, %d or %d", busy, err, writes.Load(), tried.Load())
	}

	// After a restart, with only the new key, everything reads; and a
	// second rotation works from there.
	stop()
	srv, _ = startStoppable(t, cfg)
	c = testenv.NewClient(t, srv)
	list, err := c.Secrets("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range list.Items {
		s := &list.Items[i]
		if w, ok := want[s.Name]; ok && string(s.Data["n"]) != w {
			t.Errorf("after a restart %s reads %q, want %q", s.Name, s.Data["n"], w)
		}
	}
	if len(list.Items) != count+2 {
		t.Errorf("after a restart %d secrets, want %d", len(list.Items), count+2)
	}
	if err := c.RotateEncryptionKey(ctx, 0, func(p *skiffv1.RotateEncryptionKeyProgress) { last = p }); err != nil {
		t.Fatal(err)
	}
	if last.GetOldKeys()[0] != newKey || last.GetRewritten() != count+2 {
		t.Errorf("second rotation: %v; want %s retired, %d rewritten", last, newKey, count+2)
	}
}
