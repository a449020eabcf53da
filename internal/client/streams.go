package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"google.golang.org/protobuf/types/known/timestamppb"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/skiffdev/skiff/internal/grpcerr"
	skiffv1 "github.com/skiffdev/skiff/proto/skiff/v1"
)

// The two streams that reach into containers: logs and exec. The API
// server relays both to the kubelet of the pod's node. Like watches, they
// are not bounded by Config.Timeout: the caller's context alone ends them.

// PodLogs copies the log of a container of a pod to w, as plain text
// (stdout and stderr interleaved as they were written). opts may be nil;
// its Container, Follow, Previous, TailLines, SinceSeconds, SinceTime,
// Timestamps and LimitBytes are honoured. Without Follow it returns at
// the log's current end; with Follow when the container exits or ctx
// ends (then with ctx's error).
func (c *Client) PodLogs(ctx context.Context, namespace, pod string, opts *corev1.PodLogOptions, w io.Writer) error {
	req := &skiffv1.PodLogsRequest{Namespace: namespace, Pod: pod}
	if opts != nil {
		req.Container = opts.Container
		req.Follow = opts.Follow
		req.Previous = opts.Previous
		req.Timestamps = opts.Timestamps
		if opts.TailLines != nil {
			req.TailLines = new(*opts.TailLines)
		}
		if opts.LimitBytes != nil {
			req.LimitBytes = new(*opts.LimitBytes)
		}
		if opts.SinceSeconds != nil {
			req.SinceSeconds = *opts.SinceSeconds
		}
		if opts.SinceTime != nil {
			req.SinceTime = timestamppb.New(opts.SinceTime.Time)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.api.PodLogs(ctx, req)
	if err != nil {
		return grpcerr.FromStatus(err)
	}
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return grpcerr.FromStatus(err)
		}
		if _, err := w.Write(chunk.GetData()); err != nil {
			return err
		}
	}
}

// TerminalSize is a terminal's size in character cells.
type TerminalSize struct{ Width, Height uint16 }

// ExecOptions describe a command to run in a container.
type ExecOptions struct {
	// Container may be empty for a pod with one container or a default
	// one (the kubectl.kubernetes.io/default-container annotation).
	Container string
	// Command is the program and its arguments (no shell).
	Command []string
	// Stdin, when set, is copied to the command's standard input; its
	// end closes that input. Nil gives the command an empty input.
	Stdin io.Reader
	// Stdout and Stderr receive the command's output; nil discards it.
	// With TTY everything arrives on Stdout.
	Stdout, Stderr io.Writer
	// TTY runs the command on a terminal.
	TTY bool
	// Resize, with TTY, carries the terminal's size: a size already
	// waiting in it when PodExec is called is the initial size, and every
	// later one is sent as a resize.
	Resize <-chan TerminalSize
}

// PodExec runs a command in a container of a pod and returns its exit
// code once it has ended and its output has been written. err is set
// when the command could not be run (the pod or container is missing or
// not running, the command could not be started, the connection broke);
// the exit code is then meaningless. Ending ctx stops the command.
//
// Stdin is read by a goroutine of its own, which returns when Stdin
// reaches its end; a Read that blocks (a terminal) keeps it alive after
// PodExec has returned, until the Read returns.
func (c *Client) PodExec(ctx context.Context, namespace, pod string, opts ExecOptions) (exitCode int, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.api.PodExec(ctx)
	if err != nil {
		return -1, grpcerr.FromStatus(err)
	}
	start := &skiffv1.ExecStart{
		Namespace: namespace,
		Pod:       pod,
		Container: opts.Container,
		Command:   opts.Command,
		Stdin:     opts.Stdin != nil,
		Tty:       opts.TTY,
	}
	resize := opts.Resize
	if !opts.TTY {
		resize = nil
	}
	if resize != nil {
		select {
		case sz, ok := <-resize:
			if ok {
				start.Size = &skiffv1.TerminalSize{Width: uint32(sz.Width), Height: uint32(sz.Height)}
			} else {
				resize = nil
			}
		default:
		}
	}

	// mu guards stream.Send: two goroutines may send (stdin and resizes),
	// and gRPC allows one at a time.
	var mu sync.Mutex
	send := func(in *skiffv1.ExecInput) error {
		mu.Lock()
		defer mu.Unlock()
		return stream.Send(in)
	}
	// A failed send means the stream broke; Recv below reports why.
	if err := send(&skiffv1.ExecInput{Input: &skiffv1.ExecInput_Start{Start: start}}); err != nil {
		return receiveExec(stream, opts)
	}
	if opts.Stdin != nil {
		go copyStdin(opts.Stdin, send)
	}
	if resize != nil {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case sz, ok := <-resize:
					if !ok {
						return
					}
					r := &skiffv1.TerminalSize{Width: uint32(sz.Width), Height: uint32(sz.Height)}
					if send(&skiffv1.ExecInput{Input: &skiffv1.ExecInput_Resize{Resize: r}}) != nil {
						return
					}
				}
			}
		}()
	}
	return receiveExec(stream, opts)
}

// copyStdin sends r as stdin messages, then stdin_close at its end (or
// when reading fails).
func copyStdin(r io.Reader, send func(*skiffv1.ExecInput) error) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			data := append([]byte(nil), buf[:n]...)
			if send(&skiffv1.ExecInput{Input: &skiffv1.ExecInput_Stdin{Stdin: data}}) != nil {
				return
			}
		}
		if err != nil {
			_ = send(&skiffv1.ExecInput{Input: &skiffv1.ExecInput_StdinClose{StdinClose: true}})
			return
		}
	}
}

// receiveExec writes the output of an exec stream until its exit.
func receiveExec(stream skiffv1.API_PodExecClient, opts ExecOptions) (int, error) {
	for {
		out, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return -1, apierrors.NewInternalError(errors.New("the exec stream ended without an exit status"))
		}
		if err != nil {
			return -1, grpcerr.FromStatus(err)
		}
		switch x := out.GetOutput().(type) {
		case *skiffv1.ExecOutput_Stdout:
			if opts.Stdout != nil {
				if _, err := opts.Stdout.Write(x.Stdout); err != nil {
					return -1, err
				}
			}
		case *skiffv1.ExecOutput_Stderr:
			if opts.Stderr != nil {
				if _, err := opts.Stderr.Write(x.Stderr); err != nil {
					return -1, err
				}
			}
		case *skiffv1.ExecOutput_Exit:
			if msg := x.Exit.GetError(); msg != "" {
				return -1, apierrors.NewInternalError(fmt.Errorf("error executing command in container: %s", msg))
			}
			return int(x.Exit.GetCode()), nil
		}
	}
}
