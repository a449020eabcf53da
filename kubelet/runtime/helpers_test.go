package runtime

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/wait"
)

func TestMain(m *testing.M) {
	// As the container init or a shim, the test binary never gets past
	// this line.
	Reexec()
	code := m.Run()
	if imageDir != "" {
		os.RemoveAll(imageDir)
	}
	os.Exit(code)
}

// busyboxApplets are linked into the test image.
var busyboxApplets = []string{
	"sh", "sleep", "cat", "echo", "wget", "httpd", "ls", "id", "hostname",
	"true", "false", "stty", "tty", "seq", "mkdir", "test", "[", "kill",
}

var (
	imageOnce   sync.Once
	imageDir    string
	imageLayers []string
	imageErr    error
)

// testImage returns the layers of a small image made from Debian's static
// busybox: the lower layer has busybox, its applets and /etc files; the
// upper one adds a web root and overrides /etc/which.
func testImage(t testing.TB) []string {
	t.Helper()
	imageOnce.Do(func() { imageLayers, imageErr = buildImage() })
	if imageErr != nil {
		t.Fatalf("building the test image: %v", imageErr)
	}
	return imageLayers
}

func buildImage() ([]string, error) {
	const busybox = "/bin/busybox"
	if _, err := os.Stat(busybox); err != nil {
		return nil, fmt.Errorf("%s is missing (apt-get install busybox-static): %w", busybox, err)
	}
	dir, err := os.MkdirTemp("", "skiff-img-")
	if err != nil {
		return nil, err
	}
	imageDir = dir
	lower, upper := filepath.Join(dir, "l0"), filepath.Join(dir, "l1")
	for _, d := range []string{"bin", "etc", "tmp", "proc", "sys", "dev"} {
		if err := os.MkdirAll(filepath.Join(lower, d), 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.Chmod(filepath.Join(lower, "tmp"), 0o1777); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(busybox)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(lower, "bin", "busybox"), data, 0o755); err != nil {
		return nil, err
	}
	for _, a := range busyboxApplets {
		if err := os.Symlink("busybox", filepath.Join(lower, "bin", a)); err != nil {
			return nil, err
		}
	}
	files := map[string]string{
		filepath.Join(lower, "etc", "passwd"):     "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
		filepath.Join(lower, "etc", "group"):      "root:x:0:\nnogroup:x:65534:\n",
		filepath.Join(lower, "etc", "which"):      "lower\n",
		filepath.Join(upper, "etc", "which"):      "upper\n",
		filepath.Join(upper, "www", "index.html"): "hello from httpd\n",
	}
	for path, content := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return nil, err
		}
	}
	return []string{lower, upper}, nil
}

func requireRoot(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs containers: not in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates namespaces, mounts and cgroups")
	}
}

// testRuntime is a Runtime on a fresh root and cgroup root, everything of
// which is removed when the test ends, whatever happened.
type testRuntime struct {
	*Runtime
	t          testing.TB
	root       string
	cgroupRoot string
}

func newTestRuntime(t testing.TB) *testRuntime {
	t.Helper()
	requireRoot(t)
	// A short directory under the system temp dir (not t.TempDir, which
	// could not be removed while something is still mounted in it).
	root, err := os.MkdirTemp("", "skiff-rt-")
	if err != nil {
		t.Fatal(err)
	}
	cgroupRoot := "/skiff-test-" + randomHex(4)
	t.Cleanup(func() { cleanupRoot(t, root, cgroupRoot) })
	rt, err := New(quietCtx(), Options{Root: root, CgroupRoot: cgroupRoot})
	if err != nil {
		t.Fatal(err)
	}
	return &testRuntime{Runtime: rt, t: t, root: root, cgroupRoot: cgroupRoot}
}

// quietCtx carries a logger that discards what the runtime logs.
func quietCtx() context.Context {
	return logging.Into(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// cleanupRoot stops and removes every container and sandbox under root,
// then checks that nothing is left: no mounts, no cgroups.
func cleanupRoot(t testing.TB, root, cgroupRoot string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rt, err := New(quietCtx(), Options{Root: root, CgroupRoot: cgroupRoot})
	if err == nil {
		list, _ := rt.List()
		for _, st := range list {
			if err := rt.Stop(ctx, st.ID, 0); err != nil {
				t.Errorf("cleanup: stop %s: %v", st.ID, err)
			}
			if err := rt.Remove(st.ID); err != nil {
				t.Errorf("cleanup: remove %s: %v", st.ID, err)
			}
		}
		sbs, _ := rt.ListSandboxes()
		for _, sb := range sbs {
			if err := rt.RemoveSandbox(sb.ID); err != nil {
				t.Errorf("cleanup: remove sandbox %s: %v", sb.ID, err)
			}
		}
	} else {
		t.Errorf("cleanup: %v", err)
	}
	if err := removeCgroup(cgroupRoot); err != nil {
		t.Errorf("cleanup: remove cgroup root %s: %v", cgroupRoot, err)
	}
	for _, m := range mountsUnder(t, root) {
		t.Errorf("cleanup: %s still mounted", m)
		_ = unmountDetach(m)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Errorf("cleanup: %v", err)
	}
}

// mountsUnder lists the mount points under dir, from /proc/self/mountinfo.
func mountsUnder(t testing.TB, dir string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			out = append(out, fields[4])
		}
	}
	return out
}

// cgroupDirs lists the directories of cgroup path that exist, in every
// hierarchy.
func cgroupDirs(t testing.TB, path string) []string {
	t.Helper()
	mps, err := cgroupMountpoints()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mp := range mps {
		p := filepath.Join(mp, path)
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// sandbox creates a sandbox with a random id.
func (tr *testRuntime) sandbox(hostname string) Sandbox {
	tr.t.Helper()
	sb, err := tr.CreateSandbox("pod-"+randomHex(3), hostname)
	if err != nil {
		tr.t.Fatal(err)
	}
	return sb
}

// spec is a container spec running args in sandbox sb, logging to a file
// under the runtime's root.
func (tr *testRuntime) spec(sb Sandbox, id string, args ...string) Spec {
	return Spec{
		ID:        id,
		SandboxID: sb.ID,
		Labels:    map[string]string{"test": tr.t.Name()},
		Layers:    testImage(tr.t),
		Args:      args,
		Env:       []string{"PATH=/bin", "GREETING=hi"},
		LogPath:   filepath.Join(tr.root, "logs", id, "0.log"),
	}
}

func (tr *testRuntime) start(spec Spec) Status {
	tr.t.Helper()
	st, err := tr.Start(testContext(tr.t), spec)
	if err != nil {
		tr.t.Fatalf("start %s: %v", spec.ID, err)
	}
	return st
}

// waitExited waits until container id has exited and returns its status.
func (tr *testRuntime) waitExited(id string) Status {
	tr.t.Helper()
	var st Status
	wait.For(tr.t, 30*time.Second, id+" to exit", func() (bool, error) {
		var err error
		st, err = tr.Status(id)
		return err == nil && st.State == StateExited, err
	})
	return st
}

// logText returns the container's log as plain text: the text of every
// record, with its stream, one per line ("stdout hello").
func logText(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		// "<time> <stream> <F|P> <text>"
		parts := strings.SplitN(line, " ", 4)
		if len(parts) == 4 {
			b.WriteString(parts[1] + " " + parts[3] + "\n")
		}
	}
	return b.String()
}

func unmountDetach(path string) error { return unix.Unmount(path, unix.MNT_DETACH) }
