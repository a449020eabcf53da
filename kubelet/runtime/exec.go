package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/containerd/console"
	"golang.org/x/sys/unix"

	"github.com/opencontainers/runc/libcontainer"
)

// Exec runs a process in running container id (as "kubectl exec" does) and
// returns its exit code (128+N when killed by signal N). The process
// joins all the container's namespaces and its cgroup. When ctx ends
// first, the process is killed and ctx's error returned.
//
// Without TTY, Stdin (if not nil) is copied to the process and its
// output to Stdout and Stderr (discarded when nil); Exec returns once the
// process has exited and its output is copied. A Stdin that never ends
// keeps one goroutine blocked in its Read after Exec returns, until it
// does end.
func (r *Runtime) Exec(ctx context.Context, id string, opts ExecOptions) (int, error) {
	if len(opts.Args) == 0 {
		return -1, fmt.Errorf("container %q: exec: no command", id)
	}
	st, err := r.Status(id)
	if err != nil {
		return -1, err
	}
	if st.State != StateRunning {
		return -1, fmt.Errorf("container %q is not running", id)
	}
	var rec containerRecord
	if err := readJSON(filepath.Join(r.containerDir(id), containerFile), &rec); err != nil {
		return -1, fmt.Errorf("container %q: %w", id, err)
	}
	c, err := r.load(id)
	if err != nil {
		return -1, err
	}
	p := &libcontainer.Process{
		Args:             opts.Args,
		Env:              containerEnv(rec.Spec.Env, opts.Env),
		Cwd:              workingDir(rec.Spec.WorkingDir),
		UID:              int(rec.Spec.UID),
		GID:              int(rec.Spec.GID),
		AdditionalGroups: intGIDs(rec.Spec.AdditionalGIDs),
	}
	var streams execIO
	if opts.TTY {
		err = streams.startTTY(c, p, opts)
	} else {
		err = streams.startPipes(c, p, opts)
	}
	if err != nil {
		return -1, fmt.Errorf("container %q: exec: %w", id, err)
	}

	waited := make(chan *os.ProcessState, 1)
	go func() {
		ps, _ := p.Wait()
		waited <- ps
	}()
	var ps *os.ProcessState
	select {
	case ps = <-waited:
	case <-ctx.Done():
		_ = p.Signal(unix.SIGKILL)
		<-waited
		streams.close()
		return -1, fmt.Errorf("container %q: exec: %w", id, ctx.Err())
	}
	streams.finish(ctx)
	return exitCode(ps), nil
}

// exitCode is a process's exit status, or 128+N when signal N killed it.
func exitCode(ps *os.ProcessState) int {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// execIO connects an exec'd process to the caller's streams.
type execIO struct {
	// closers are closed when the process is done (our ends).
	closers []io.Closer
	// copies finish when the process's output has been copied.
	copies sync.WaitGroup
	// stop ends the resize loop.
	stop chan struct{}
}

// startPipes runs p with pipes for its stdin, stdout and stderr.
func (x *execIO) startPipes(c *libcontainer.Container, p *libcontainer.Process, opts ExecOptions) error {
	var theirs []*os.File // the process's ends, closed once it started
	defer func() {
		for _, f := range theirs {
			f.Close()
		}
	}()
	if opts.Stdin != nil {
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		p.Stdin = r
		theirs = append(theirs, r)
		x.closers = append(x.closers, w)
		go func() {
			_, _ = io.Copy(w, opts.Stdin)
			w.Close() // EOF for the process
		}()
	}
	for _, out := range []struct {
		dst io.Writer
		set func(*os.File)
	}{
		{opts.Stdout, func(f *os.File) { p.Stdout = f }},
		{opts.Stderr, func(f *os.File) { p.Stderr = f }},
	} {
		r, w, err := os.Pipe()
		if err != nil {
			x.close()
			return err
		}
		out.set(w)
		theirs = append(theirs, w)
		x.closers = append(x.closers, r)
		dst := out.dst
		if dst == nil {
			dst = io.Discard
		}
		x.copies.Add(1)
		go func() {
			defer x.copies.Done()
			_, _ = io.Copy(dst, r)
		}()
	}
	if err := c.Run(p); err != nil {
		for _, f := range theirs {
			f.Close()
		}
		theirs = nil
		x.close()
		x.copies.Wait()
		return err
	}
	return nil
}

// startTTY runs p with a terminal. libcontainer creates the terminal
// inside the container and sends its master side back over a socket
// pair (the "console socket").
func (x *execIO) startTTY(c *libcontainer.Container, p *libcontainer.Process, opts ExecOptions) error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	ours := os.NewFile(uintptr(fds[0]), "console-socket")
	theirs := os.NewFile(uintptr(fds[1]), "console-socket-child")
	defer ours.Close()
	p.ConsoleSocket = theirs
	// Take a size that is already waiting as the initial one.
	select {
	case sz, ok := <-opts.Resize:
		if ok {
			p.ConsoleWidth, p.ConsoleHeight = sz.Width, sz.Height
		}
	default:
	}
	if p.ConsoleWidth == 0 || p.ConsoleHeight == 0 {
		p.ConsoleWidth, p.ConsoleHeight = 80, 24
	}
	err = c.Run(p)
	theirs.Close()
	if err != nil {
		return err
	}
	master, err := recvFile(ours)
	if err != nil {
		_ = p.Signal(unix.SIGKILL)
		_, _ = p.Wait()
		return fmt.Errorf("receiving the terminal: %w", err)
	}
	cons, err := console.ConsoleFromFile(master)
	if err != nil {
		master.Close()
		_ = p.Signal(unix.SIGKILL)
		_, _ = p.Wait()
		return err
	}
	x.closers = append(x.closers, master)
	if opts.Stdin != nil {
		go func() { _, _ = io.Copy(master, opts.Stdin) }()
	}
	dst := opts.Stdout
	if dst == nil {
		dst = io.Discard
	}
	x.copies.Add(1)
	go func() {
		defer x.copies.Done()
		// Reading the master fails with EIO once the last process with
		// the terminal open has exited.
		_, _ = io.Copy(dst, master)
	}()
	if opts.Resize != nil {
		stop := make(chan struct{})
		x.stop = stop
		go func() {
			for {
				select {
				case sz, ok := <-opts.Resize:
					if !ok {
						return
					}
					_ = cons.Resize(console.WinSize{Width: sz.Width, Height: sz.Height})
				case <-stop:
					return
				}
			}
		}()
	}
	return nil
}

// finish waits until the output is copied (or ctx ends) and closes our
// ends.
func (x *execIO) finish(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		x.copies.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
	x.close()
}

func (x *execIO) close() {
	for _, c := range x.closers {
		c.Close()
	}
	x.closers = nil
	if x.stop != nil {
		close(x.stop)
		x.stop = nil
	}
}

// recvFile receives one file descriptor sent with SCM_RIGHTS over a unix
// socket.
func recvFile(sock *os.File) (*os.File, error) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			return nil, err
		}
		for _, fd := range fds[1:] {
			unix.Close(fd)
		}
		if len(fds) > 0 {
			return os.NewFile(uintptr(fds[0]), string(buf[:n])), nil
		}
	}
	return nil, errors.New("no file descriptor received")
}
