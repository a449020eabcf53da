package ctl

import (
	"context"
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"

	"github.com/containerd/console"
	"golang.org/x/sys/unix"

	"github.com/skiffdev/skiff/kubelet/server"
	"github.com/skiffdev/skiff/kubelet/server/servertest"
)

// TestExecTTY runs exec -it with a pseudo-terminal as standard input: the
// command gets a terminal of the local terminal's size, then a resize on
// SIGWINCH, and the local terminal is back in its old mode afterwards.
func TestExecTTY(t *testing.T) {
	pty, slavePath, err := console.NewPty()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { pty.Close() })
	slave, err := os.OpenFile(slavePath, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slave.Close() })
	if err := pty.Resize(console.WinSize{Width: 80, Height: 24}); err != nil {
		t.Fatal(err)
	}
	before, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}

	kubeconfig, c, host := streamCluster(t)
	servertest.RunningPod(t, c, "default", "web", "node-1", "app")
	sizes := make(chan server.TerminalSize, 4)
	host.ExecFunc = func(ctx context.Context, ns, pod, container string, opts server.ExecOptions) (int, error) {
		if !opts.TTY || opts.Stderr != nil || opts.Stdin == nil || opts.Resize == nil {
			return 1, fmt.Errorf("not a terminal session: %+v", opts)
		}
		sizes <- <-opts.Resize // the initial size
		sizes <- <-opts.Resize // after SIGWINCH
		buf := make([]byte, 1)
		if _, err := io.ReadFull(opts.Stdin, buf); err != nil {
			return 1, err
		}
		fmt.Fprintf(opts.Stdout, "got %s\r\n", buf)
		return 5, nil
	}

	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		o := DefaultOptions()
		o.Streams = Streams{In: slave, Out: &out, ErrOut: &out}
		o.Kubeconfig = kubeconfig
		cmd := NewCommand(o)
		cmd.SetArgs([]string{"exec", "-it", "web", "--", "sh"})
		done <- cmd.ExecuteContext(t.Context())
		o.Close()
	}()

	if sz := <-sizes; sz != (server.TerminalSize{Width: 80, Height: 24}) {
		t.Errorf("initial size %v, want 80x24", sz)
	}
	raw, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Lflag&unix.ICANON != 0 || raw.Lflag&unix.ECHO != 0 {
		t.Errorf("the terminal is not in raw mode during the session")
	}
	if err := pty.Resize(console.WinSize{Width: 120, Height: 40}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGWINCH); err != nil {
		t.Fatal(err)
	}
	if sz := <-sizes; sz != (server.TerminalSize{Width: 120, Height: 40}) {
		t.Errorf("size after SIGWINCH %v, want 120x40", sz)
	}
	if _, err := pty.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	err = <-done
	if FormatError(err) != "command terminated with exit code 5" || out.String() != "got x\r\n" {
		t.Errorf("got %q, %v", out.String(), err)
	}
	after, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if *after != *before {
		t.Errorf("the terminal mode was not restored:\nbefore %+v\nafter  %+v", before, after)
	}
}
