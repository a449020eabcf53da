package images

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// startRegistry serves an in-memory registry on 127.0.0.1 and returns its
// host:port.
func startRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(discardLogger())))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func openStore(t *testing.T, host string) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), Options{InsecureRegistries: []string{host}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func push(t *testing.T, ref string, img v1.Image) v1.Hash {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func randomImage(t *testing.T, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(256, layers)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func tarBytes(t *testing.T, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link,
			Size: int64(len(e.body)), ModTime: time.Unix(1700000000, 0)}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func tarLayer(t *testing.T, entries []entry) v1.Layer {
	t.Helper()
	b := tarBytes(t, entries)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// handImage has a base layer and a top layer that deletes etc/a with a
// whiteout and makes data/ opaque.
func handImage(t *testing.T) v1.Image {
	t.Helper()
	base := tarLayer(t, []entry{
		{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		{name: "etc/a", body: "a", typ: tar.TypeReg},
		{name: "etc/b", body: "b", typ: tar.TypeReg, mode: 0o4755},
		{name: "data/", typ: tar.TypeDir, mode: 0o700},
		{name: "data/x", body: "x", typ: tar.TypeReg},
		{name: "/abs/file", body: "abs", typ: tar.TypeReg},
	})
	top := tarLayer(t, []entry{
		{name: "etc/.wh.a", typ: tar.TypeReg},
		{name: "data/.wh..wh..opq", typ: tar.TypeReg},
		{name: "data/y", body: "y", typ: tar.TypeReg},
		{name: "etc/link", link: "/etc/b", typ: tar.TypeSymlink},
		{name: "etc/hard", link: "data/y", typ: tar.TypeLink},
	})
	img, err := mutate.AppendLayers(empty.Image, base, top)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, v1.Config{
		Entrypoint:   []string{"/bin/sh"},
		Cmd:          []string{"-c", "echo hi"},
		Env:          []string{"PATH=/bin"},
		WorkingDir:   "/data",
		User:         "1000:1000",
		ExposedPorts: map[string]struct{}{"8080/tcp": {}, "53/udp": {}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestParseDefaults(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"busybox":                "index.docker.io/library/busybox:latest",
		"nginx:1.27":             "index.docker.io/library/nginx:1.27",
		"quay.io/coreos/etcd:v3": "quay.io/coreos/etcd:v3",
		"localhost:5000/app":     "localhost:5000/app:latest",
		"ghcr.io/a/b@sha256:" + strings.Repeat("0", 64): "ghcr.io/a/b@sha256:" + strings.Repeat("0", 64),
	} {
		r, err := s.parse(in)
		if err != nil {
			t.Fatalf("parse %q: %v", in, err)
		}
		if got := r.Name(); got != want {
			t.Errorf("parse %q: got %q, want %q", in, got, want)
		}
	}
}

func TestPullByTagAndDigest(t *testing.T) {
	host := startRegistry(t)
	img := randomImage(t, 3)
	digest := push(t, host+"/app:v1", img)
	s := openStore(t, host)
	ctx := context.Background()

	got, err := s.Pull(ctx, host+"/app:v1", corev1.PullIfNotPresent)
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != digest.String() {
		t.Errorf("digest: got %s, want %s", got.Digest, digest)
	}
	if cfg, _ := img.ConfigName(); got.ID != cfg.String() {
		t.Errorf("ID: got %s, want %s", got.ID, cfg)
	}
	if len(got.LayerDirs) != 3 {
		t.Fatalf("layer dirs: got %d, want 3", len(got.LayerDirs))
	}
	layers, _ := img.Layers()
	for i, d := range got.LayerDirs {
		diffID, _ := layers[i].DiffID()
		if !strings.Contains(d, diffID.Hex) {
			t.Errorf("layer %d: dir %s is not keyed by diffID %s", i, d, diffID)
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(d), "complete")); err != nil {
			t.Errorf("layer %d: %v", i, err)
		}
	}
	if n := s.unpacks.Load(); n != 3 {
		t.Errorf("unpacks: got %d, want 3", n)
	}

	byDigest, err := s.Pull(ctx, host+"/app@"+digest.String(), corev1.PullIfNotPresent)
	if err != nil {
		t.Fatal(err)
	}
	if byDigest.Digest != digest.String() {
		t.Errorf("by digest: got %s, want %s", byDigest.Digest, digest)
	}
	if _, err := s.Pull(ctx, host+"/app:v1", corev1.PullAlways); err != nil {
		t.Fatal(err)
	}
	if n := s.unpacks.Load(); n != 3 {
		t.Errorf("unpacks after pulling again: got %d, want 3", n)
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Errorf("list: got %d images, want 2 (tag and digest references)", len(list))
	}
}

func TestPullPlatformFromIndex(t *testing.T) {
	host := startRegistry(t)
	amd, arm := randomImage(t, 1), randomImage(t, 1)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)
	r, _ := name.ParseReference(host+"/multi:latest", name.Insecure)
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		s, err := Open(t.TempDir(), Options{InsecureRegistries: []string{host},
			Platform: v1.Platform{OS: "linux", Architecture: arch}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Pull(context.Background(), host+"/multi", corev1.PullAlways)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := map[string]v1.Image{"amd64": amd, "arm64": arm}[arch].Digest()
		if got.Digest != want.String() {
			t.Errorf("%s: got %s, want %s", arch, got.Digest, want)
		}
	}
}

func TestSharedLayers(t *testing.T) {
	host := startRegistry(t)
	one := randomImage(t, 2)
	extra, err := random.Layer(128, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	two, err := mutate.AppendLayers(one, extra)
	if err != nil {
		t.Fatal(err)
	}
	push(t, host+"/one", one)
	push(t, host+"/two", two)
	s := openStore(t, host)
	a, err := s.Pull(context.Background(), host+"/one", corev1.PullIfNotPresent)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Pull(context.Background(), host+"/two", corev1.PullIfNotPresent)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.LayerDirs {
		if a.LayerDirs[i] != b.LayerDirs[i] {
			t.Errorf("layer %d: got %s and %s, want one shared directory", i, a.LayerDirs[i], b.LayerDirs[i])
		}
	}
	if n := s.unpacks.Load(); n != 3 {
		t.Errorf("unpacks: got %d, want 3", n)
	}

	// Remove garbage-collects what only the removed image used.
	if err := s.Remove(host + "/two"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b.LayerDirs[2]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("unused layer after Remove: got %v, want not exist", err)
	}
	for _, d := range a.LayerDirs {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("shared layer after Remove: %v", err)
		}
	}
	if _, err := s.Get(host + "/two"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get removed: got %v, want ErrNotFound", err)
	}
	if err := s.Remove(host + "/one"); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(s.root, "layers", "sha256"))
	imgs, _ := os.ReadDir(filepath.Join(s.root, "images", "sha256"))
	if len(ents) != 0 || len(imgs) != 0 {
		t.Errorf("after removing all: got %d layers and %d images, want none", len(ents), len(imgs))
	}
	if err := s.Remove(host + "/one"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove twice: got %v, want ErrNotFound", err)
	}
}

func TestWhiteoutsAndConfig(t *testing.T) {
	host := startRegistry(t)
	push(t, host+"/hand:v1", handImage(t))
	s := openStore(t, host)
	img, err := s.Pull(context.Background(), host+"/hand:v1", corev1.PullIfNotPresent)
	if err != nil {
		t.Fatal(err)
	}
	want := ImageConfig{Entrypoint: []string{"/bin/sh"}, Cmd: []string{"-c", "echo hi"},
		Env: []string{"PATH=/bin"}, WorkingDir: "/data", User: "1000:1000",
		ExposedPorts: []string{"53/udp", "8080/tcp"}}
	if got := img.Config; strings.Join(got.Entrypoint, " ") != strings.Join(want.Entrypoint, " ") ||
		strings.Join(got.Cmd, " ") != strings.Join(want.Cmd, " ") ||
		strings.Join(got.Env, " ") != strings.Join(want.Env, " ") ||
		got.WorkingDir != want.WorkingDir || got.User != want.User ||
		strings.Join(got.ExposedPorts, " ") != strings.Join(want.ExposedPorts, " ") {
		t.Errorf("config: got %+v, want %+v", got, want)
	}
	base, top := img.LayerDirs[0], img.LayerDirs[1]
	if b, err := os.ReadFile(filepath.Join(base, "etc/a")); err != nil || string(b) != "a" {
		t.Errorf("base etc/a: got %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(base, "abs/file")); err != nil || string(b) != "abs" {
		t.Errorf("base abs/file (absolute entry name): got %q, %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(base, "etc/b")); err != nil || fi.Mode()&(os.ModePerm|os.ModeSetuid) != 0o755|os.ModeSetuid {
		t.Errorf("etc/b mode: got %v, %v, want -rwsr-xr-x", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(base, "data")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data mode: got %v, %v, want 0700", fi.Mode(), err)
	}
	if l, err := os.Readlink(filepath.Join(top, "etc/link")); err != nil || l != "/etc/b" {
		t.Errorf("symlink: got %q, %v, want /etc/b", l, err)
	}
	if b, err := os.ReadFile(filepath.Join(top, "etc/hard")); err != nil || string(b) != "y" {
		t.Errorf("hardlink: got %q, %v", b, err)
	}

	if os.Geteuid() != 0 {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(top), "whiteouts.json"))
		if err != nil || !strings.Contains(string(b), "etc/a") || !strings.Contains(string(b), `"opaque": true`) {
			t.Errorf("whiteouts.json: got %s, %v", b, err)
		}
		t.Skip("not root: overlay whiteout device and opaque xattr are not checked")
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(top, "etc/a"), &st); err != nil {
		t.Fatalf("whiteout: %v", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("whiteout etc/a: got mode %o rdev %d, want a 0:0 character device", st.Mode, st.Rdev)
	}
	if _, err := os.Stat(filepath.Join(top, "etc/.wh.a")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf(".wh.a left in layer: %v", err)
	}
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(filepath.Join(top, "data"), "trusted.overlay.opaque", buf)
	if err != nil || string(buf[:n]) != "y" {
		t.Errorf("opaque xattr on data: got %q, %v, want y", buf[:n], err)
	}
}

func TestUnpackRefusesEscape(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []entry
	}{
		{"dotdot", []entry{{name: "../x", body: "x", typ: tar.TypeReg}}},
		{"nested dotdot", []entry{{name: "a/../../x", body: "x", typ: tar.TypeReg}}},
		{"through symlink", []entry{
			{name: "a", link: "/", typ: tar.TypeSymlink},
			{name: "a/x", body: "x", typ: tar.TypeReg},
		}},
		{"through relative symlink", []entry{
			{name: "a", link: "../..", typ: tar.TypeSymlink},
			{name: "a/x", body: "x", typ: tar.TypeReg},
		}},
		{"hardlink out", []entry{{name: "h", link: "../../etc/passwd", typ: tar.TypeLink}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			outer := t.TempDir()
			dir := filepath.Join(outer, "l", "rootfs")
			_, err := unpack(bytes.NewReader(tarBytes(t, tc.entries)), dir)
			if err == nil {
				t.Fatal("got no error, want the entry refused")
			}
			for _, p := range []string{filepath.Join(outer, "x"), filepath.Join(outer, "l", "x"), "/x"} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("%s was written outside the layer", p)
				}
			}
		})
	}
}

func TestPullPolicy(t *testing.T) {
	host := startRegistry(t)
	ref := host + "/pol:v1"
	s := openStore(t, host)
	ctx := context.Background()

	if _, err := s.Pull(ctx, ref, corev1.PullNever); !errors.Is(err, ErrImageNeverPull) {
		t.Fatalf("Never, absent: got %v, want ErrImageNeverPull", err)
	}
	first := push(t, ref, randomImage(t, 1))
	got, err := s.Pull(ctx, ref, corev1.PullIfNotPresent)
	if err != nil || got.Digest != first.String() {
		t.Fatalf("IfNotPresent, absent: got %v, %v, want %s", got, err, first)
	}
	second := push(t, ref, randomImage(t, 1)) // the tag moves
	for _, tc := range []struct {
		policy corev1.PullPolicy
		want   v1.Hash
	}{
		{corev1.PullIfNotPresent, first},
		{corev1.PullNever, first},
		{corev1.PullAlways, second},
		{corev1.PullNever, second},
	} {
		got, err := s.Pull(ctx, ref, tc.policy)
		if err != nil {
			t.Fatalf("%s: %v", tc.policy, err)
		}
		if got.Digest != tc.want.String() {
			t.Errorf("%s: got %s, want %s", tc.policy, got.Digest, tc.want)
		}
	}
}

func TestPullMissing(t *testing.T) {
	host := startRegistry(t)
	push(t, host+"/app:v0", randomImage(t, 1))
	s := openStore(t, host)
	_, err := s.Pull(context.Background(), host+"/app:v1", corev1.PullAlways)
	if !errors.Is(err, ErrImagePull) {
		t.Fatalf("got %v, want ErrImagePull", err)
	}
	if !strings.Contains(err.Error(), "MANIFEST_UNKNOWN") {
		t.Errorf("got %q, want the registry's MANIFEST_UNKNOWN in the message", err)
	}
	if _, err := s.Pull(context.Background(), "Bad Ref", corev1.PullAlways); !errors.Is(err, ErrImagePull) {
		t.Errorf("bad reference: got %v, want ErrImagePull", err)
	}
}

func TestConcurrentPulls(t *testing.T) {
	host := startRegistry(t)
	push(t, host+"/conc", randomImage(t, 4))
	s := openStore(t, host)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	digests := make([]string, 8)
	for i := range errs {
		wg.Go(func() {
			img, err := s.Pull(context.Background(), host+"/conc", corev1.PullAlways)
			errs[i] = err
			if err == nil {
				digests[i] = img.Digest
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("pull %d: %v", i, err)
		}
		if digests[i] != digests[0] {
			t.Errorf("pull %d: got %s, want %s", i, digests[i], digests[0])
		}
	}
	if n := s.unpacks.Load(); n != 4 {
		t.Errorf("unpacks: got %d, want 4 (each layer once)", n)
	}
}

func TestImportDockerSave(t *testing.T) {
	img := handImage(t)
	tag, _ := name.NewTag("example.com/hand:v2")
	path := filepath.Join(t.TempDir(), "save.tar")
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := s.Import(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || imgs[0].Ref != "example.com/hand:v2" {
		t.Fatalf("imported: got %+v, want example.com/hand:v2", imgs)
	}
	got, err := s.Pull(context.Background(), "example.com/hand:v2", corev1.PullNever)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(got.LayerDirs[1], "data/y")); err != nil || string(b) != "y" {
		t.Errorf("data/y: got %q, %v", b, err)
	}
}

func TestImportOCILayout(t *testing.T) {
	img := randomImage(t, 2)
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": "example.com/oci/app:1.0",
	})); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "oci.tar")
	tarDir(t, dir, archive)

	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := s.Import(context.Background(), archive)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if len(imgs) != 1 || imgs[0].Ref != "example.com/oci/app:1.0" || imgs[0].Digest != want.String() {
		t.Fatalf("imported: got %+v, want example.com/oci/app:1.0 at %s", imgs, want)
	}
	if _, err := s.Get("example.com/oci/app:1.0"); err != nil {
		t.Error(err)
	}
	if n := s.unpacks.Load(); n != 2 {
		t.Errorf("unpacks: got %d, want 2", n)
	}
}

// tarDir writes the files under dir to a tar archive at out.
func tarDir(t *testing.T, dir, out string) {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	if err := tw.AddFS(os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }
