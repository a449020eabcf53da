package nsutil_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/skiffdev/skiff/internal/nsutil"
	"github.com/skiffdev/skiff/internal/nsutil/nstest"
	"github.com/skiffdev/skiff/internal/wait"
)

func needRoot(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("creates namespaces and mounts, which needs root: not in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates namespaces and mounts")
	}
}

// nsID is the identity of a namespace file ("net:[4026531840]" style).
func nsID(t *testing.T, kind, path string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return fmt.Sprintf("%s:[%d]", kind, st.Ino)
}

// threadNetns is the network namespace of the calling thread.
func threadNetns(t *testing.T) string {
	t.Helper()
	return nsID(t, "net", "/proc/thread-self/ns/net")
}

// shortDir is a temporary directory removed at the end of the test.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "nsutil-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// isMount reports whether path appears as a mount point in our mount table.
func isMount(t *testing.T, path string) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}

func TestNewPinnedNetworkNamespace(t *testing.T) {
	path := nstest.NewNetns(t)
	host := nsID(t, "net", "/proc/self/ns/net")
	pinned := nsID(t, "net", path)
	if pinned == host {
		t.Fatalf("pinned netns is the host's (%s)", host)
	}
	if !isMount(t, path) {
		t.Fatalf("%s is not a mount point", path)
	}

	err := nsutil.Do(path, func() error {
		if got := threadNetns(t); got != pinned {
			return fmt.Errorf("inside Do the thread is in %s, want %s", got, pinned)
		}
		ifs, err := net.Interfaces()
		if err != nil {
			return err
		}
		if len(ifs) != 1 || ifs[0].Name != "lo" {
			return fmt.Errorf("interfaces %v, want only lo", ifs)
		}
		if ifs[0].Flags&net.FlagUp == 0 {
			return errors.New("lo is down")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestNewPinnedAllKinds(t *testing.T) {
	needRoot(t)
	dir := shortDir(t)
	paths := map[nsutil.Kind]string{
		nsutil.Net: filepath.Join(dir, "a", "net"),
		nsutil.IPC: filepath.Join(dir, "a", "ipc"),
		nsutil.UTS: filepath.Join(dir, "a", "uts"),
	}
	t.Cleanup(func() {
		for _, p := range paths {
			nsutil.Unpin(p)
		}
	})
	if err := nsutil.NewPinned(paths, "pod-a"); err != nil {
		t.Fatal(err)
	}
	for k, p := range paths {
		if got, host := nsID(t, string(k), p), nsID(t, string(k), "/proc/self/ns/"+string(k)); got == host {
			t.Errorf("%s namespace is the host's", k)
		}
		if !isMount(t, p) {
			t.Errorf("%s is not a mount point", p)
		}
	}

	// Read the hostname from inside the UTS namespace on a thread that is
	// thrown away afterwards.
	type result struct {
		name string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		// Never unlocked: the thread changes namespace. It is moved back
		// all the same, in case it is the main thread, which the runtime
		// parks instead of ending.
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/uts", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer unix.Close(orig)
		defer unix.Setns(orig, unix.CLONE_NEWUTS)
		fd, err := unix.Open(paths[nsutil.UTS], unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWUTS); err != nil {
			done <- result{err: err}
			return
		}
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			done <- result{err: err}
			return
		}
		done <- result{name: unix.ByteSliceToString(u.Nodename[:])}
	}()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.name != "pod-a" {
		t.Errorf("hostname %q, want %q", r.name, "pod-a")
	}
	host, _ := os.Hostname()
	if host == "pod-a" {
		t.Errorf("the host's hostname changed")
	}
}

func TestNewPinnedErrors(t *testing.T) {
	needRoot(t)
	dir := shortDir(t)

	if err := nsutil.NewPinned(map[nsutil.Kind]string{"pid": filepath.Join(dir, "pid")}, ""); err == nil {
		t.Error("pid namespace: want an error")
	}
	if err := nsutil.NewPinned(map[nsutil.Kind]string{nsutil.Net: filepath.Join(dir, "n")}, "host"); err == nil {
		t.Error("hostname without uts: want an error")
	}
	if err := nsutil.NewPinned(nil, ""); err == nil {
		t.Error("no namespaces: want an error")
	}

	// "ipc" is pinned before "net"; the net path exists already, so the
	// call fails and must take the ipc pin back.
	exists := filepath.Join(dir, "net")
	if err := os.WriteFile(exists, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ipc := filepath.Join(dir, "ipc")
	err := nsutil.NewPinned(map[nsutil.Kind]string{nsutil.IPC: ipc, nsutil.Net: exists}, "")
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("got %v, want an error wrapping fs.ErrExist", err)
	}
	if _, err := os.Stat(ipc); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ipc pin left behind after the failure: %v", err)
	}
	if isMount(t, ipc) {
		t.Errorf("ipc mount left behind after the failure")
	}
	if _, err := os.Stat(exists); err != nil {
		t.Errorf("the pre-existing file was touched: %v", err)
	}
}

func TestUnpin(t *testing.T) {
	needRoot(t)
	dir := shortDir(t)

	if err := nsutil.Unpin(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("missing path: %v", err)
	}

	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := nsutil.Unpin(plain); err != nil {
		t.Errorf("plain file: %v", err)
	}
	if _, err := os.Stat(plain); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("plain file still there: %v", err)
	}

	pinned := filepath.Join(dir, "net")
	if err := nsutil.NewPinned(map[nsutil.Kind]string{nsutil.Net: pinned}, ""); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // the second call finds nothing
		if err := nsutil.Unpin(pinned); err != nil {
			t.Fatalf("unpin #%d: %v", i+1, err)
		}
	}
	if isMount(t, pinned) {
		t.Error("mount left behind")
	}
	if _, err := os.Stat(pinned); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("file left behind: %v", err)
	}
}

func TestDo(t *testing.T) {
	ns := nstest.NewNetns(t)
	want := nsID(t, "net", ns)
	host := nsID(t, "net", "/proc/self/ns/net")

	sentinel := errors.New("from fn")
	if err := nsutil.Do(ns, func() error { return sentinel }); !errors.Is(err, sentinel) {
		t.Errorf("got %v, want fn's error", err)
	}
	if err := nsutil.Do(filepath.Join(t.TempDir(), "missing"), func() error {
		t.Error("fn ran for a missing netns")
		return nil
	}); err == nil {
		t.Error("missing netns: want an error")
	}

	// Many goroutines in and out at once; each must see the netns inside
	// and the host's afterwards, on the same (still locked) thread.
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread() // nested with Do's own lock
			defer runtime.UnlockOSThread()
			err := nsutil.Do(ns, func() error {
				if got := threadNetns(t); got != want {
					return fmt.Errorf("inside: %s, want %s", got, want)
				}
				return nil
			})
			if err != nil {
				errs <- err
			}
			if got := threadNetns(t); got != host {
				errs <- fmt.Errorf("after Do: %s, want the host's %s", got, host)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// No thread of the process may be left inside the namespace.
	wait.For(t, 10*time.Second, "all threads back in the host netns", func() (bool, error) {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return false, err
		}
		for _, task := range tasks {
			link, err := os.Readlink("/proc/self/task/" + task.Name() + "/ns/net")
			if err != nil {
				continue // the thread just exited
			}
			if link == want {
				return false, fmt.Errorf("thread %s is still in %s", task.Name(), want)
			}
		}
		return true, nil
	})
}

func TestListenDial(t *testing.T) {
	a := nstest.NewNetns(t)
	b := nstest.NewNetns(t)

	l, err := nsutil.Listen(a, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()

	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "hello from a")
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// From b, the listener is invisible: b's loopback is a different one.
	if c, err := nsutil.Dial(ctx, b, "tcp", addr); err == nil {
		c.Close()
		t.Fatalf("dial %s from another netns succeeded", addr)
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial from another netns: got %v, want connection refused", err)
	}

	c, err := nsutil.Dial(ctx, a, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Read on a different goroutine than the one that dialed.
	got := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(c)
		got <- string(b)
	}()
	if s := <-got; s != "hello from a" {
		t.Errorf("read %q, want %q", s, "hello from a")
	}
}

func TestStartIn(t *testing.T) {
	ns := nstest.NewNetns(t)
	want := nsID(t, "net", ns)
	readlink, err := exec.LookPath("readlink")
	if err != nil {
		t.Skip("no readlink binary")
	}

	// Several at once, so that forks happen while other goroutines run
	// on other threads.
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out strings.Builder
			cmd := exec.Command(readlink, "/proc/self/ns/net")
			cmd.Stdout = &out
			if err := nsutil.StartIn(ns, cmd); err != nil {
				errs <- err
				return
			}
			if err := cmd.Wait(); err != nil {
				errs <- err
				return
			}
			if got := strings.TrimSpace(out.String()); got != want {
				errs <- fmt.Errorf("child ran in %s, want %s", got, want)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// And a plain exec afterwards is back in the host's namespace.
	out, err := exec.Command(readlink, "/proc/self/ns/net").Output()
	if err != nil {
		t.Fatal(err)
	}
	if host := nsID(t, "net", "/proc/self/ns/net"); strings.TrimSpace(string(out)) != host {
		t.Errorf("plain child ran in %s, want the host's %s", out, host)
	}
}

// TestNewPinnedLeavesNoThreadInside checks that no thread of the process
// stays in a namespace NewPinned made — not even the main thread, which the
// Go runtime parks rather than ends when a locked goroutine exits on it.
func TestNewPinnedLeavesNoThreadInside(t *testing.T) {
	needRoot(t)
	dir := shortDir(t)
	host := nsID(t, "net", "/proc/self/ns/net")
	made := map[string]bool{}
	for i := 0; i < 20; i++ {
		p := filepath.Join(dir, fmt.Sprint(i))
		t.Cleanup(func() { nsutil.Unpin(p) })
		if err := nsutil.NewPinned(map[nsutil.Kind]string{nsutil.Net: p}, ""); err != nil {
			t.Fatal(err)
		}
		made[nsID(t, "net", p)] = true
	}
	wait.For(t, 10*time.Second, "no thread inside a pinned netns", func() (bool, error) {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return false, err
		}
		for _, task := range tasks {
			link, err := os.Readlink("/proc/self/task/" + task.Name() + "/ns/net")
			if err != nil {
				continue // the thread just exited
			}
			if made[link] {
				return false, fmt.Errorf("thread %s is in %s", task.Name(), link)
			}
		}
		return true, nil
	})
	if got := nsID(t, "net", "/proc/self/ns/net"); got != host {
		t.Errorf("the main thread moved from %s to %s", host, got)
	}
}
