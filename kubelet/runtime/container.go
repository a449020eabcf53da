package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opencontainers/runc/libcontainer"
)

// Start creates container spec.ID in sandbox spec.SandboxID and starts its
// process. It returns once the process runs. When the container cannot
// start, the error says why and the container is left behind as exited
// with reason StartError (Remove it as usual).
func (r *Runtime) Start(ctx context.Context, spec Spec) (Status, error) {
	if err := validateID(spec.ID); err != nil {
		return Status{}, err
	}
	if err := validateID(spec.SandboxID); err != nil {
		return Status{}, fmt.Errorf("container %q: sandbox: %w", spec.ID, err)
	}
	if len(spec.Args) == 0 {
		return Status{}, fmt.Errorf("container %q: no command", spec.ID)
	}
	if len(spec.Layers) == 0 {
		return Status{}, fmt.Errorf("container %q: no image layers", spec.ID)
	}
	sb := r.sandbox(spec.SandboxID)
	if !isPinned(sb.NetNS) || !isPinned(sb.IPCNS) || !isPinned(sb.UTSNS) {
		return Status{}, fmt.Errorf("container %q: sandbox %q: %w", spec.ID, spec.SandboxID, ErrNotFound)
	}

	dir := r.containerDir(spec.ID)
	if err := os.Mkdir(dir, 0o711); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return Status{}, fmt.Errorf("container %q already exists", spec.ID)
		}
		return Status{}, err
	}
	// The lock is taken before container.json exists, so that nobody ever
	// sees a container without a live shim that is not really gone.
	lock, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		os.RemoveAll(dir)
		return Status{}, err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		os.RemoveAll(dir)
		return Status{}, err
	}
	rec := containerRecord{
		Spec:      spec,
		CreatedAt: time.Now().UTC(),
		PodCgroup: filepath.Join(r.cgroupRoot, spec.SandboxID),
		Cgroup:    filepath.Join(r.cgroupRoot, spec.SandboxID, spec.ID),
		Sandbox:   sb,
		StateRoot: r.libcontainerDir(),
		Writable:  r.writableDir(spec.ID),
	}
	if err := writeJSONAtomic(filepath.Join(dir, containerFile), rec); err != nil {
		os.RemoveAll(dir)
		return Status{}, err
	}

	h, reports, err := r.spawnShim(spec.ID, lock)
	if err != nil {
		err = fmt.Errorf("container %q: starting the shim: %w", spec.ID, err)
		r.recordStartError(spec.ID, err)
		return r.statusOr(spec.ID), err
	}
	lock.Close() // the shim holds the lock now

	var rep shimReport
	select {
	case rep = <-reports:
	case <-ctx.Done():
		// The caller gave up: the container must not run behind its
		// back. Kill it once the shim reports (or has died), and return
		// it exited.
		rep = <-reports
		if rep.Pid != 0 {
			_ = r.Signal(spec.ID, unix.SIGKILL)
		}
		<-h.done
		return r.statusOr(spec.ID), fmt.Errorf("container %q: %w", spec.ID, ctx.Err())
	}
	if rep.Error != "" || rep.Pid == 0 {
		var err error
		if rep.Error != "" {
			err = fmt.Errorf("container %q: %s", spec.ID, rep.Error)
		} else {
			// The shim died before reporting; its log may say why.
			err = fmt.Errorf("container %q: %w%s", spec.ID, errShimDied, shimLogTail(dir))
			r.recordStartError(spec.ID, err)
		}
		// Let the shim finish its cleanup, so the container is fully
		// "exited" when Start returns.
		select {
		case <-h.done:
		case <-ctx.Done():
		}
		return r.statusOr(spec.ID), err
	}
	return r.Status(spec.ID)
}

// spawnShim starts the shim of container id, handing it the locked lock
// file. It returns the shim's handle and a channel that gets the shim's
// report (a zero report if it exits without one).
func (r *Runtime) spawnShim(id string, lock *os.File) (*shimHandle, <-chan shimReport, error) {
	dir := r.containerDir(id)
	logf, err := os.OpenFile(filepath.Join(dir, shimLogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, err
	}
	defer logf.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	defer pw.Close()
	cmd := &exec.Cmd{
		Path:   "/proc/self/exe",
		Args:   []string{os.Args[0], shimCommand, r.root, id},
		Stdout: logf,
		Stderr: logf,
		// ExtraFiles[i] becomes descriptor 3+i in the shim.
		ExtraFiles: []*os.File{pw, lock},
		// A session of its own: no signal meant for the kubelet's process
		// group or terminal reaches the shim. A mount namespace of its
		// own: the container's root file system is mounted there, out of
		// the node's mount table (see shimMain).
		SysProcAttr: &syscall.SysProcAttr{Setsid: true, Cloneflags: syscall.CLONE_NEWNS},
	}
	if err := cmd.Start(); err != nil {
		pr.Close()
		return nil, nil, err
	}
	h := r.track(id)
	go func() {
		_ = cmd.Wait()
		r.shimExited(id, h)
	}()
	reports := make(chan shimReport, 1)
	go func() {
		defer pr.Close()
		var rep shimReport
		data, _ := io.ReadAll(pr)
		_ = json.Unmarshal(bytes.TrimSpace(data), &rep)
		reports <- rep
	}()
	return h, reports, nil
}

// shimLogTail returns the end of a container's shim log, to explain a
// shim that died, as ": <text>" (or "" when there is none).
func shimLogTail(dir string) string {
	data, err := os.ReadFile(filepath.Join(dir, shimLogFile))
	if err != nil || len(bytes.TrimSpace(data)) == 0 {
		return ""
	}
	const max = 512
	if len(data) > max {
		data = data[len(data)-max:]
	}
	return ": " + string(bytes.TrimSpace(data))
}

// recordStartError records a start failure when the shim did not.
func (r *Runtime) recordStartError(id string, err error) {
	path := filepath.Join(r.containerDir(id), exitFile)
	if _, serr := os.Stat(path); serr == nil {
		return
	}
	ex := exitRecord{ExitCode: 128, Reason: ReasonStartError, Message: err.Error(), FinishedAt: time.Now().UTC()}
	if werr := writeJSONAtomic(path, ex); werr != nil {
		r.log.Error("recording a start error", "container", id, "err", werr)
	}
}

// statusOr returns the status of id, or a bare one if it cannot be read.
func (r *Runtime) statusOr(id string) Status {
	st, err := r.Status(id)
	if err != nil {
		return Status{ID: id, State: StateUnknown}
	}
	return st
}

// load opens the libcontainer container of id.
func (r *Runtime) load(id string) (*libcontainer.Container, error) {
	c, err := libcontainer.Load(r.libcontainerDir(), id)
	if err != nil {
		if errors.Is(err, libcontainer.ErrNotExist) {
			return nil, fmt.Errorf("container %q is not running", id)
		}
		return nil, fmt.Errorf("container %q: %w", id, err)
	}
	return c, nil
}

// Signal sends sig to the first process of container id. As that process
// is the init of the container's PID namespace, SIGKILL ends the whole
// container, and other signals reach it only if it handles them.
func (r *Runtime) Signal(id string, sig syscall.Signal) error {
	if err := validateID(id); err != nil {
		return err
	}
	c, err := r.load(id)
	if err != nil {
		return err
	}
	if err := c.Signal(sig); err != nil {
		if errors.Is(err, libcontainer.ErrNotRunning) {
			return fmt.Errorf("container %q is not running", id)
		}
		return fmt.Errorf("container %q: %w", id, err)
	}
	return nil
}

// Stop stops container id: SIGTERM first, SIGKILL if it still runs after
// grace, then it waits until the container has exited (and its exit is on
// record) or ctx ends. Stopping an exited container does nothing.
func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) error {
	st, err := r.Status(id)
	if err != nil {
		return err
	}
	if st.State == StateExited {
		return nil
	}
	if st.State == StateRunning {
		if err := r.Signal(id, unix.SIGTERM); err != nil {
			r.log.Debug("SIGTERM not delivered", "container", id, "err", err)
		}
		graceCtx, cancel := context.WithTimeout(ctx, grace)
		err := r.waitExited(graceCtx, id)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("stopping container %q: %w", id, ctx.Err())
		}
	}
	// Kill it. A container still being created cannot be signalled yet,
	// so keep trying until it is gone.
	for {
		if err := r.Signal(id, unix.SIGKILL); err != nil {
			r.log.Debug("SIGKILL not delivered", "container", id, "err", err)
		}
		waitCtx, cancel := context.WithTimeout(ctx, time.Second)
		err := r.waitExited(waitCtx, id)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("stopping container %q: %w", id, ctx.Err())
		}
	}
}

// Remove deletes an exited container: its libcontainer state, cgroup,
// root file system and files. Its log file stays. Removing a container that
// does not exist is not an error, and a Remove cut short (by a crash) can
// simply be repeated.
func (r *Runtime) Remove(id string) error {
	if err := validateID(id); err != nil {
		return err
	}
	dir := r.containerDir(id)
	alive, err := shimAlive(dir)
	if err != nil {
		return fmt.Errorf("container %q: %w", id, err)
	}
	if alive {
		// A shim that has recorded the exit is only cleaning up.
		if _, err := os.Stat(filepath.Join(dir, exitFile)); err != nil {
			return fmt.Errorf("container %q is running", id)
		}
		if err := waitShimGone(dir, 10*time.Second); err != nil {
			return fmt.Errorf("container %q: %w", id, err)
		}
	}
	// The runtime's own goroutine that saw the shim exit may still be
	// recording that exit: let it finish first, so that nothing writes
	// into the directory while it is being removed.
	r.mu.Lock()
	h := r.shims[id]
	r.mu.Unlock()
	if h != nil {
		select {
		case <-h.done:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("container %q: its exit is still being recorded", id)
		}
	}
	unlock := r.lockContainer(id)
	defer unlock()
	var rec containerRecord
	recErr := readJSON(filepath.Join(dir, containerFile), &rec)
	if recErr != nil && !errors.Is(recErr, fs.ErrNotExist) {
		return fmt.Errorf("container %q: %w", id, recErr)
	}

	// The libcontainer container first: it may still have processes if
	// the shim died (then kill them) and it owns the cgroup.
	if c, err := libcontainer.Load(r.libcontainerDir(), id); err == nil {
		if st, _ := c.Status(); st == libcontainer.Running || st == libcontainer.Created {
			_ = c.Signal(unix.SIGKILL)
		}
		if err := c.Destroy(); err != nil {
			r.log.Warn("destroying the libcontainer container", "container", id, "err", err)
		}
	}
	if err := os.RemoveAll(filepath.Join(r.libcontainerDir(), id)); err != nil {
		return fmt.Errorf("container %q: %w", id, err)
	}
	if recErr == nil {
		if err := removeCgroup(rec.Cgroup); err != nil {
			return fmt.Errorf("container %q: %w", id, err)
		}
	}
	if err := r.removeDir(dir); err != nil {
		return fmt.Errorf("container %q: %w", id, err)
	}
	if err := os.RemoveAll(r.writableDir(id)); err != nil {
		return fmt.Errorf("container %q: removing its writable layer: %w", id, err)
	}
	r.mu.Lock()
	if h := r.shims[id]; h != nil {
		select {
		case <-h.done:
			delete(r.shims, id)
		default:
		}
	}
	r.mu.Unlock()
	return nil
}

// waitShimGone waits until the shim of the container in dir has exited.
func waitShimGone(dir string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		alive, err := shimAlive(dir)
		if err != nil || !alive {
			return err
		}
		if time.Now().After(deadline) {
			return errors.New("the shim is still cleaning up")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// removeDir unmounts the root file system in a container directory and
// deletes the directory, never following into a mount.
func (r *Runtime) removeDir(dir string) error {
	if err := unmountRootfs(dir); err != nil {
		return err
	}
	rootfs := filepath.Join(dir, "rootfs")
	var st, parent unix.Stat_t
	if unix.Lstat(rootfs, &st) == nil && unix.Lstat(dir, &parent) == nil && st.Dev != parent.Dev {
		return fmt.Errorf("%s is still a mount point", rootfs)
	}
	return os.RemoveAll(dir)
}

// adoptAll looks at the containers an earlier Runtime left: it waits for
// the shims still alive, records an exit for containers whose shim died
// without one, and clears directories left by a Start or Remove cut short.
func (r *Runtime) adoptAll() error {
	entries, err := os.ReadDir(r.containersDir())
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		id := e.Name()
		dir := r.containerDir(id)
		alive, err := shimAlive(dir)
		if err != nil {
			return err
		}
		if alive {
			r.adopt(id)
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, containerFile)); errors.Is(err, fs.ErrNotExist) {
			if err := r.removeDir(dir); err != nil {
				r.log.Warn("removing a partial container directory", "dir", dir, "err", err)
			}
			continue
		}
		if err := r.recordLostShim(id); err != nil {
			r.log.Error("recording the exit of a container whose shim died", "container", id, "err", err)
		}
	}
	return nil
}

// adopt waits, in the background, for the shim of container id that
// another Runtime started, and reports its exit like those of its own.
func (r *Runtime) adopt(id string) {
	h := r.track(id)
	go func() {
		r.waitForShim(id)
		r.shimExited(id, h)
	}()
}

// waitForShim returns when the shim of container id has exited. It waits
// on a pidfd of the shim; the lock confirms that the pid still is the
// shim's.
func (r *Runtime) waitForShim(id string) {
	dir := r.containerDir(id)
	for {
		pid, err := readShimPid(dir)
		if err != nil {
			// The shim has not written its pid yet (or cannot): watch the
			// lock instead.
			if alive, _ := shimAlive(dir); !alive {
				return
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			if errors.Is(err, unix.ESRCH) {
				return
			}
			// No pidfds on this kernel: poll the lock.
			for {
				if alive, _ := shimAlive(dir); !alive {
					return
				}
				time.Sleep(500 * time.Millisecond)
			}
		}
		if alive, _ := shimAlive(dir); !alive {
			unix.Close(fd)
			return
		}
		// The shim was alive after the pidfd was opened, so the pidfd is
		// the shim's. It becomes readable when the process exits.
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			_, err := unix.Poll(fds, -1)
			if err == nil || !errors.Is(err, unix.EINTR) {
				break
			}
		}
		unix.Close(fd)
		return
	}
}

// recordLostShim handles a container whose shim is gone without having
// recorded an exit: the container, if still running, is killed (nobody
// collects its output any more) and an exit is recorded.
func (r *Runtime) recordLostShim(id string) error {
	unlock := r.lockContainer(id)
	defer unlock()
	dir := r.containerDir(id)
	if _, err := os.Stat(filepath.Join(dir, exitFile)); err == nil {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, containerFile)); err != nil {
		return nil // removed, or never really created
	}
	if alive, err := shimAlive(dir); err != nil || alive {
		return err
	}
	_, err := os.Stat(filepath.Join(dir, startedFile))
	ex := lostShimExit(err == nil)
	if c, err := libcontainer.Load(r.libcontainerDir(), id); err == nil {
		if st, _ := c.Status(); st == libcontainer.Running || st == libcontainer.Created {
			if c.Signal(unix.SIGKILL) == nil {
				ex.ExitCode = 128 + int(unix.SIGKILL)
			}
		}
	}
	ex.FinishedAt = time.Now().UTC()
	return writeJSONAtomic(filepath.Join(dir, exitFile), ex)
}
