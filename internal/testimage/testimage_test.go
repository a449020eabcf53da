package testimage_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffdev/skiff/internal/testimage"
	"github.com/skiffdev/skiff/kubelet/images"
)

// The image pushed to a registry on loopback is pulled by the kubelet's
// image store, and what it unpacks is a working busybox.
func TestPullBusybox(t *testing.T) {
	img := testimage.Busybox(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := testimage.Serve(t, ln)
	ref := testimage.Push(t, host, "test/busybox", img)
	if want := host + "/test/busybox:latest"; ref != want {
		t.Errorf("reference: got %q, want %q", ref, want)
	}

	store, err := images.Open(t.TempDir(), images.Options{InsecureRegistries: []string{host}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := store.Pull(context.Background(), ref, corev1.PullAlways)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Config.Cmd, []string{"sh"}) || len(got.Config.Env) != 1 || got.Config.WorkingDir != "/" {
		t.Errorf("config: got %+v", got.Config)
	}
	if len(got.LayerDirs) != 1 {
		t.Fatalf("layer dirs: got %d, want 1", len(got.LayerDirs))
	}
	root := got.LayerDirs[0]

	st, err := os.Stat(filepath.Join(root, "bin/busybox"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o111 == 0 {
		t.Errorf("bin/busybox mode %v, want executable", st.Mode())
	}
	for _, a := range testimage.Applets {
		if target, err := os.Readlink(filepath.Join(root, "bin", a)); err != nil || target != "busybox" {
			t.Errorf("bin/%s: got link to %q (%v), want busybox", a, target, err)
		}
	}
	if st, err := os.Stat(filepath.Join(root, "tmp")); err != nil || st.Mode()&os.ModeSticky == 0 {
		t.Errorf("tmp: %v, %v; want a sticky directory", st.Mode(), err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "var/www/index.html")); err != nil || string(b) != testimage.IndexHTML {
		t.Errorf("index.html: got %q, %v", b, err)
	}

	// The static binary runs straight from the layer, applet name and all.
	out, err := exec.Command(filepath.Join(root, "bin/sh"), "-c", "echo hi from $(echo sh)").CombinedOutput()
	if err != nil || string(out) != "hi from sh\n" {
		t.Errorf("bin/sh: got %q, %v; want %q", out, err, "hi from sh\n")
	}
}

// Busybox builds the image once per test binary.
func TestBusyboxIsShared(t *testing.T) {
	a, b := testimage.Busybox(t), testimage.Busybox(t)
	da, err := a.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if db, _ := b.Digest(); da != db || a != b {
		t.Errorf("two calls gave different images: %s and %s", da, db)
	}
}
