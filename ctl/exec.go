package ctl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/skiffdev/skiff/internal/client"
)

// execOptions are the flags of `exec`.
type execOptions struct {
	*Options
	container string
	stdin     bool
	tty       bool
	quiet     bool
}

// ExitError is the non-zero exit status of a command run by exec.
// skiffctl prints its message, "command terminated with exit code N", and
// exits with N, as kubectl does.
type ExitError struct{ Code int }

func (e *ExitError) Error() string {
	return fmt.Sprintf("command terminated with exit code %d", e.Code)
}

// isTerminal reports whether r is a terminal, and its file descriptor.
// Tests replace it.
var isTerminal = func(r any) (int, bool) {
	f, ok := r.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0, false
	}
	return int(f.Fd()), true
}

func newExecCommand(o *Options) *cobra.Command {
	e := &execOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "exec (POD | TYPE/NAME) [-c CONTAINER] [-i] [-t] -- COMMAND [args...]",
		Short: "Execute a command in a container",
		Long: `Execute a command in a container, as kubectl does: the API server
relays the session to the kubelet of the pod's node, which runs the command
in the container.

With -i the command reads skiffctl's standard input. With -t as well, and a
terminal on standard input, the command runs on a terminal of its own:
skiffctl puts the local terminal in raw mode (so keys such as Ctrl-C go to
the command), sends its size and every change of it, and restores it at the
end. skiffctl exits with the command's exit status.`,
		Example: `  # Run date in the only container of pod web-1
  skiffctl exec web-1 -- date

  # Run ls in container app, with arguments
  skiffctl exec web-1 -c app -- ls -l /

  # Feed standard input to a command
  echo hello | skiffctl exec -i web-1 -- cat

  # An interactive shell in a pod of deployment web
  skiffctl exec -it deploy/web -- sh`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.run(cmd.Context(), args, cmd.ArgsLenAtDash())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&e.container, "container", "c", "", "the container to run the command in (default: the pod's only or default container)")
	f.BoolVarP(&e.stdin, "stdin", "i", false, "pass standard input to the command")
	f.BoolVarP(&e.tty, "tty", "t", false, "run the command on a terminal (with -i and a terminal on standard input)")
	f.BoolVarP(&e.quiet, "quiet", "q", false, "print only what the command prints")
	return cmd
}

func (e *execOptions) run(ctx context.Context, args []string, dash int) error {
	const usage = "expected 'exec (POD | TYPE/NAME) COMMAND [ARG1] [ARG2] ... [ARGN]'.\nPOD or TYPE/NAME and COMMAND are required arguments for the exec command"
	switch {
	case len(args) == 0 || dash == 0:
		return errors.New(usage)
	case dash < 0 && len(args) > 1:
		return errors.New("exec (POD | TYPE/NAME) COMMAND is not supported; write the command after --: skiffctl exec POD -- COMMAND [args...]")
	case dash > 1:
		return errors.New(usage)
	case len(args) < 2:
		return errors.New("you must specify at least one command for the container")
	}
	opts := client.ExecOptions{
		Container: e.container,
		Command:   args[1:],
		Stdout:    e.Out,
		Stderr:    e.ErrOut,
	}
	// As kubectl: a terminal only with stdin, and only when stdin is
	// one; otherwise say so and carry on without.
	var termFD int
	if e.stdin {
		opts.Stdin = e.In
		if e.tty {
			fd, ok := isTerminal(e.In)
			if ok {
				opts.TTY, termFD = true, fd
			} else if !e.quiet {
				fmt.Fprintln(e.ErrOut, "Unable to use a TTY - input is not a terminal or the right kind of file")
			}
		}
	}

	c, err := e.Client()
	if err != nil {
		return err
	}
	ns := e.EffectiveNamespace()
	pod, err := e.podFor(ctx, c, ns, args[0])
	if err != nil {
		return err
	}
	if opts.TTY {
		restore, resize, err := e.rawTerminal(termFD)
		if err != nil {
			return err
		}
		defer restore()
		opts.Resize = resize
	}
	code, err := c.PodExec(ctx, ns, pod, opts)
	if err != nil {
		return err
	}
	if code != 0 {
		return &ExitError{Code: code}
	}
	return nil
}

// rawTerminal puts the terminal on fd in raw mode and returns a function
// that restores it, and a channel that holds its size and then receives
// every change (SIGWINCH) until restore is called. The size is that of
// the output terminal when Out is one (as kubectl measures it), else of
// the input terminal.
func (e *execOptions) rawTerminal(fd int) (restore func(), resize <-chan client.TerminalSize, err error) {
	sizeFD := fd
	if out, ok := isTerminal(e.Out); ok {
		sizeFD = out
	}
	state, err := term.MakeRaw(fd)
	if err != nil {
		return nil, nil, fmt.Errorf("putting the terminal in raw mode: %w", err)
	}
	sizes := make(chan client.TerminalSize, 1)
	offerSize := func() {
		w, h, err := term.GetSize(sizeFD)
		if err != nil || w <= 0 || h <= 0 {
			return
		}
		sz := client.TerminalSize{Width: uint16(w), Height: uint16(h)}
		// Only the latest size matters: replace one not sent yet.
		select {
		case <-sizes:
		default:
		}
		sizes <- sz
	}
	offerSize()
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			case <-winch:
				offerSize()
			}
		}
	}()
	restore = func() {
		signal.Stop(winch)
		close(done)
		<-finished
		_ = term.Restore(fd, state)
	}
	return restore, sizes, nil
}
