// Package nstest gives tests scratch network namespaces.
//
// Tests that create bridges, veths, addresses or routes must never do so
// in the machine's own network namespace. They call NewNetns and do all of
// that inside the namespace it returns (with nsutil.Do, nsutil.Listen,
// netlink handles, ...). The namespace is removed when the test ends,
// and with it every device inside.
package nstest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/skiffdev/skiff/internal/nsutil"
)

// NewNetns pins a fresh network namespace, with its loopback device up,
// and returns its path. The test is skipped when not run as root, and in
// -short mode (make test-unit), which runs nothing that needs root. The
// namespace is unpinned, and its directory removed, in t.Cleanup.
func NewNetns(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("creates a network namespace, which needs root: not in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace")
	}
	// A short directory under the system temp dir (not t.TempDir, whose
	// removal would fail on a still-mounted file).
	dir, err := os.MkdirTemp("", "skiff-ns-")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "net")
	t.Cleanup(func() {
		if err := nsutil.Unpin(path); err != nil {
			t.Errorf("unpin test netns: %v", err)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove test netns dir: %v", err)
		}
	})
	if err := nsutil.NewPinned(map[nsutil.Kind]string{nsutil.Net: path}, ""); err != nil {
		t.Fatalf("create test netns: %v", err)
	}
	return path
}
