package runtime

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiffdev/skiff/internal/wait"
)

func TestRunToCompletion(t *testing.T) {
	tr := newTestRuntime(t)
	sb := tr.sandbox("echo-pod")
	spec := tr.spec(sb, "echo", "sh", "-c", `echo hello; echo "$GREETING" >&2; cat /etc/which`)
	st := tr.start(spec)
	if st.State != StateRunning && st.State != StateExited {
		t.Fatalf("state after Start: got %q, want running (or already exited)", st.State)
	}
	if st.StartedAt.IsZero() || st.CreatedAt.IsZero() {
		t.Errorf("times not set: %+v", st)
	}
	st = tr.waitExited("echo")
	if st.ExitCode != 0 || st.Reason != ReasonCompleted {
		t.Errorf("exit: got code %d reason %q, want 0 %q", st.ExitCode, st.Reason, ReasonCompleted)
	}
	if st.FinishedAt.Before(st.StartedAt) {
		t.Errorf("finished %v before started %v", st.FinishedAt, st.StartedAt)
	}
	if st.Labels["test"] != t.Name() || st.SandboxID != sb.ID || st.LogPath != spec.LogPath {
		t.Errorf("status does not carry the spec: %+v", st)
	}
	got := logText(t, spec.LogPath)
	for _, want := range []string{"stdout hello\n", "stderr hi\n", "stdout upper\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("log: got %q, want a line %q", got, want)
		}
	}
}

func TestExitCodeAndStartError(t *testing.T) {
	tr := newTestRuntime(t)
	sb := tr.sandbox("exit-pod")
	tr.start(tr.spec(sb, "three", "sh", "-c", "exit 3"))
	st := tr.waitExited("three")
	if st.ExitCode != 3 || st.Reason != ReasonError {
		t.Errorf("exit: got code %d reason %q, want 3 %q", st.ExitCode, st.Reason, ReasonError)
	}

	_, err := tr.Start(testContext(t), tr.spec(sb, "missing", "/no/such/binary"))
	if err == nil {
		t.Fatal("start of a missing binary: got no error")
	}
	if !strings.Contains(err.Error(), "/no/such/binary") {
		t.Errorf("start error does not name the binary: %v", err)
	}
	st, err = tr.Status("missing")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != StateExited || st.Reason != ReasonStartError {
		t.Errorf("after a failed start: got %q %q, want exited %q", st.State, st.Reason, ReasonStartError)
	}

	if _, err := tr.Start(testContext(t), tr.spec(sb, "three", "true")); err == nil {
		t.Error("second Start with the same id: got no error")
	}
	if _, err := tr.Start(testContext(t), tr.spec(Sandbox{ID: "nope"}, "orphan", "true")); !errors.Is(err, ErrNotFound) {
		t.Errorf("start in a missing sandbox: got %v, want ErrNotFound", err)
	}
}

func TestOOMKilled(t *testing.T) {
	tr := newTestRuntime(t)
	sb := tr.sandbox("oom-pod")
	spec := tr.spec(sb, "hog", "sh", "-c", `x=0123456789abcdef; while :; do x=$x$x; done`)
	// libcontainer's init (this test binary, race-enabled under make
	// test) also runs in the cgroup before it execs the shell: the limit
	// leaves it room, and the shell's doubling string passes it anyway.
	spec.Resources = Resources{MemoryLimit: 128 << 20, CPUShares: 512, CPUQuota: 100000, CPUPeriod: 100000}
	tr.start(spec)
	st := tr.waitExited("hog")
	if st.Reason != ReasonOOMKilled || st.ExitCode != 137 {
		t.Errorf("exit: got code %d reason %q, want 137 %q", st.ExitCode, st.Reason, ReasonOOMKilled)
	}
}

func TestStop(t *testing.T) {
	tr := newTestRuntime(t)
	sb := tr.sandbox("stop-pod")
	ctx := testContext(t)

	// A shell that handles SIGTERM exits by itself.
	tr.start(tr.spec(sb, "polite", "sh", "-c", `trap 'echo bye; exit 0' TERM; echo trapped; sleep 1000 & wait`))
	// As the init of its PID namespace, sleep has no handler and so never
	// sees SIGTERM: only SIGKILL ends it.
	tr.start(tr.spec(sb, "stubborn", "sleep", "1000"))
	// A started shell has not set its trap yet; until it has, it too
	// would ignore SIGTERM, being the init of its PID namespace.
	wait.For(t, time.Minute, "the polite shell's trap", func() (bool, error) {
		st, err := tr.Status("polite")
		if err != nil {
			return false, err
		}
		return strings.Contains(logText(t, st.LogPath), "stdout trapped\n"), nil
	})

	if err := tr.Stop(ctx, "polite", time.Minute); err != nil {
		t.Fatal(err)
	}
	st, err := tr.Status("polite")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != StateExited || st.ExitCode != 0 || st.Reason != ReasonCompleted {
		t.Errorf("polite: got %q code %d %q, want exited 0 %q", st.State, st.ExitCode, st.Reason, ReasonCompleted)
	}
	if got := logText(t, st.LogPath); !strings.Contains(got, "stdout bye\n") {
		t.Errorf("polite log: got %q, want bye", got)
	}

	if err := tr.Stop(ctx, "stubborn", 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	st, err = tr.Status("stubborn")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != StateExited || st.ExitCode != 137 || st.Reason != ReasonError {
		t.Errorf("stubborn: got %q code %d %q, want exited 137 %q", st.State, st.ExitCode, st.Reason, ReasonError)
	}
	// Stopping again is harmless; signalling an exited container is not.
	if err := tr.Stop(ctx, "stubborn", 0); err != nil {
		t.Errorf("second stop: %v", err)
	}
	if err := tr.Signal("stubborn", syscall.SIGTERM); err == nil {
		t.Error("signal to an exited container: got no error")
	}
}

func TestSandboxIsShared(t *testing.T) {
	tr := newTestRuntime(t)
	sb := tr.sandbox("shared-host")
	// The same sandbox again is the same sandbox.
	if again, err := tr.CreateSandbox(sb.ID, "other"); err != nil || again != sb {
		t.Fatalf("CreateSandbox again: got %+v, %v; want %+v", again, err, sb)
	}
	tr.start(tr.spec(sb, "web", "httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/www"))
	client := tr.spec(sb, "client", "sh", "-c", `hostname; for i in $(seq 1 200); do wget -q -O - http://127.0.0.1:8080/index.html && exit 0; sleep 0.05; done; exit 1`)
	tr.start(client)
	st := tr.waitExited("client")
	got := logText(t, client.LogPath)
	if st.ExitCode != 0 {
		t.Fatalf("client: exit code %d, log %q", st.ExitCode, got)
	}
	for _, want := range []string{"stdout shared-host\n", "stdout hello from httpd\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("client log: got %q, want a line %q", got, want)
		}
	}
	var out bytes.Buffer
	code, err := tr.Exec(testContext(t), "web", ExecOptions{Args: []string{"hostname"}, Stdout: &out})
	if err != nil || code != 0 || out.String() != "shared-host\n" {
		t.Errorf("hostname in web: got %q, code %d, %v", out.String(), code, err)
	}
	list, err := tr.ListSandboxes()
	if err != nil || len(list) != 1 || list[0] != sb {
		t.Errorf("ListSandboxes: got %+v, %v", list, err)
	}
}

func TestExec(t *testing.T) {
	tr := newTestRuntime(t)
	sb := tr.sandbox("exec-pod")
	tr.start(tr.spec(sb, "box", "sleep", "1000"))
	ctx := testContext(t)

	t.Run("pipes", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		code, err := tr.Exec(ctx, "box", ExecOptions{
			Args:   []string{"sh", "-c", `cat; echo "$GREETING $EXTRA" >&2; exit 5`},
			Env:    []string{"EXTRA=there"},
			Stdin:  strings.NewReader("from stdin\n"),
			Stdout: &stdout,
			Stderr: &stderr,
		})
		if err != nil {
			t.Fatal(err)
		}
		if code != 5 || stdout.String() != "from stdin\n" || stderr.String() != "hi there\n" {
			t.Errorf("got code %d stdout %q stderr %q, want 5 %q %q", code, stdout.String(), stderr.String(), "from stdin\n", "hi there\n")
		}
	})

	t.Run("tty", func(t *testing.T) {
		resize := make(chan TerminalSize, 1)
		resize <- TerminalSize{Width: 100, Height: 30}
		var out bytes.Buffer
		code, err := tr.Exec(ctx, "box", ExecOptions{
			Args:   []string{"sh", "-c", `tty; stty size; exit 2`},
			Stdout: &out,
			TTY:    true,
			Resize: resize,
		})
		if err != nil {
			t.Fatal(err)
		}
		got := strings.ReplaceAll(out.String(), "\r", "")
		if code != 2 || !strings.Contains(got, "/dev/pts/") || !strings.Contains(got, "30 100\n") {
			t.Errorf("got code %d output %q, want 2, a /dev/pts terminal of 30 rows 100 columns", code, got)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			_, err := tr.Exec(ctx, "box", ExecOptions{Args: []string{"sleep", "1000"}})
			done <- err
		}()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	})

	if err := tr.Stop(ctx, "box", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Exec(ctx, "box", ExecOptions{Args: []string{"true"}}); err == nil {
		t.Error("exec in an exited container: got no error")
	}
}

func TestReadoption(t *testing.T) {
	tr := newTestRuntime(t)
	sb := tr.sandbox("adopt-pod")
	first := tr.start(tr.spec(sb, "long", "sleep", "1000"))

	// A second Runtime on the same root, as after a kubelet restart.
	rt2, err := New(context.Background(), Options{Root: tr.root, CgroupRoot: tr.cgroupRoot})
	if err != nil {
		t.Fatal(err)
	}
	list, err := rt2.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != "long" || list[0].State != StateRunning || list[0].Pid != first.Pid {
		t.Fatalf("List after restart: got %+v, want long running as pid %d", list, first.Pid)
	}
	sbs, err := rt2.ListSandboxes()
	if err != nil || len(sbs) != 1 || sbs[0] != sb {
		t.Fatalf("ListSandboxes after restart: got %+v, %v", sbs, err)
	}
	if err := rt2.Signal("long", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-rt2.Exits():
		if id != "long" {
			t.Errorf("Exits: got %q, want long", id)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit reported by the adopting runtime")
	}
	st, err := rt2.Status("long")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != StateExited || st.ExitCode != 137 {
		t.Errorf("after kill: got %q code %d, want exited 137", st.State, st.ExitCode)
	}
	// The runtime that started it hears of it too.
	select {
	case id := <-tr.Exits():
		if id != "long" {
			t.Errorf("Exits: got %q, want long", id)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit reported by the starting runtime")
	}
}

func TestRemoveLeavesNothing(t *testing.T) {
	tr := newTestRuntime(t)
	sb := tr.sandbox("rm-pod")
	vol := t.TempDir()
	if err := os.WriteFile(filepath.Join(vol, "data"), []byte("volume\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := tr.spec(sb, "app", "sh", "-c", `cat /vol/data; echo x > /vol/new && echo writable; echo y > /data/new || echo readonly; sleep 1000`)
	spec.Mounts = []Mount{{Source: vol, Destination: "/vol"}, {Source: vol, Destination: "/data", ReadOnly: true}}
	tr.start(spec)
	wait.For(t, 30*time.Second, "the container's output", func() (bool, error) {
		data, err := os.ReadFile(spec.LogPath)
		return bytes.Contains(data, []byte("readonly")), err
	})
	got := logText(t, spec.LogPath)
	for _, want := range []string{"stdout volume\n", "stdout writable\n", "stdout readonly\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("log: got %q, want a line %q", got, want)
		}
	}
	if len(mountsUnder(t, tr.root)) == 0 || len(cgroupDirs(t, filepath.Join(tr.cgroupRoot, sb.ID, "app"))) == 0 {
		t.Fatal("the running container has no rootfs mount or no cgroup")
	}

	if err := tr.Remove("app"); err == nil {
		t.Fatal("Remove of a running container: got no error")
	}
	if err := tr.Stop(testContext(t), "app", 0); err != nil {
		t.Fatal(err)
	}
	if err := tr.Remove("app"); err != nil {
		t.Fatal(err)
	}
	if err := tr.Remove("app"); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	if _, err := tr.Status("app"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Status after Remove: got %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(tr.containerDir("app")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("container directory still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(tr.libcontainerDir(), "app")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("libcontainer state still there: %v", err)
	}
	if dirs := cgroupDirs(t, filepath.Join(tr.cgroupRoot, sb.ID, "app")); len(dirs) > 0 {
		t.Errorf("container cgroups left: %v", dirs)
	}
	if _, err := os.Stat(spec.LogPath); err != nil {
		t.Errorf("the log file should stay: %v", err)
	}

	if err := tr.RemoveSandbox(sb.ID); err != nil {
		t.Fatal(err)
	}
	if err := tr.RemoveSandbox(sb.ID); err != nil {
		t.Errorf("second RemoveSandbox: %v", err)
	}
	if m := mountsUnder(t, tr.root); len(m) > 0 {
		t.Errorf("mounts left: %v", m)
	}
	if dirs := cgroupDirs(t, filepath.Join(tr.cgroupRoot, sb.ID)); len(dirs) > 0 {
		t.Errorf("pod cgroups left: %v", dirs)
	}
	if list, _ := tr.ListSandboxes(); len(list) != 0 {
		t.Errorf("sandboxes left: %v", list)
	}
}

func TestRemoveAfterCrash(t *testing.T) {
	tr := newTestRuntime(t)
	sb := tr.sandbox("crash-pod")
	tr.start(tr.spec(sb, "victim", "sleep", "1000"))
	// Kill the shim, as if the machine had lost it: the runtime records an
	// exit, kills the container and can remove it.
	pid, err := readShimPid(tr.containerDir("victim"))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st := tr.waitExited("victim")
	if st.Reason != ReasonError {
		t.Errorf("reason: got %q, want %q", st.Reason, ReasonError)
	}
	if err := tr.Remove("victim"); err != nil {
		t.Fatal(err)
	}
	if m := mountsUnder(t, tr.containersDir()); len(m) > 0 {
		t.Errorf("mounts left: %v", m)
	}
	if dirs := cgroupDirs(t, filepath.Join(tr.cgroupRoot, sb.ID, "victim")); len(dirs) > 0 {
		t.Errorf("cgroups left: %v", dirs)
	}
}

func TestVersion(t *testing.T) {
	tr := newTestRuntime(t)
	if v := tr.Version(); !strings.HasPrefix(v, "libcontainer 1.") {
		t.Errorf("Version: got %q", v)
	}
}

func BenchmarkStart(b *testing.B) {
	tr := newTestRuntime(b)
	sb := tr.sandbox("bench")
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := "c" + randomHex(4)
		spec := tr.spec(sb, id, "sleep", "1000")
		spec.LogPath = ""
		if _, err := tr.Start(ctx, spec); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := tr.Stop(ctx, id, 0); err != nil {
			b.Fatal(err)
		}
		if err := tr.Remove(id); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
