package server

import (
	"context"
	"errors"
	"io"
	"sync"

	"google.golang.org/grpc"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/skiffdev/skiff/internal/grpcerr"
	skiffv1 "github.com/skiffdev/skiff/proto/skiff/v1"
)

// ContainerExec runs a command in a container. The handler's goroutine
// calls Host.Exec; a second goroutine reads the client's messages and
// feeds standard input and terminal sizes to it. Output is sent by
// whichever goroutine of the runtime writes it, under one lock.
func (s *Server) ContainerExec(stream grpc.BidiStreamingServer[skiffv1.ExecInput, skiffv1.ExecOutput]) error {
	first, err := stream.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return grpcerr.ToStatus(apierrors.NewBadRequest("the exec stream ended before it started"))
		}
		return err
	}
	start := first.GetStart()
	if start == nil {
		return grpcerr.ToStatus(apierrors.NewBadRequest("the first message of an exec stream must be a start"))
	}
	if len(start.GetCommand()) == 0 {
		return grpcerr.ToStatus(apierrors.NewBadRequest("you must specify at least one command for the container"))
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()

	// mu guards stream.Send: standard output and standard error are
	// copied by two goroutines, and a stream takes one Send at a time.
	var mu sync.Mutex
	send := func(out *skiffv1.ExecOutput) error {
		mu.Lock()
		defer mu.Unlock()
		return stream.Send(out)
	}
	opts := ExecOptions{
		Args: start.GetCommand(),
		TTY:  start.GetTty(),
		Stdout: chunkWriter{send: func(b []byte) error {
			return send(&skiffv1.ExecOutput{Output: &skiffv1.ExecOutput_Stdout{Stdout: b}})
		}},
	}
	// On a terminal, standard error is the terminal too.
	if !start.GetTty() {
		opts.Stderr = chunkWriter{send: func(b []byte) error {
			return send(&skiffv1.ExecOutput{Output: &skiffv1.ExecOutput_Stderr{Stderr: b}})
		}}
	}
	var resize chan TerminalSize
	if start.GetTty() {
		resize = make(chan TerminalSize, 1)
		if sz, ok := terminalSize(start.GetSize()); ok {
			resize <- sz
		}
		opts.Resize = resize
	}
	var stdinR *io.PipeReader
	var stdinW *io.PipeWriter
	if start.GetStdin() {
		stdinR, stdinW = io.Pipe()
		opts.Stdin = stdinR
	}
	go pumpInput(stream, stdinW, resize)

	key := start.GetNamespace() + "/" + start.GetPod()
	s.log.Debug("exec", "pod", key, "container", start.GetContainer(), "command", start.GetCommand(), "tty", start.GetTty())
	code, err := s.host.Exec(ctx, start.GetNamespace(), start.GetPod(), start.GetContainer(), opts)
	if stdinR != nil {
		// Unblocks pumpInput should it be writing input nobody reads.
		stdinR.Close()
	}
	if ctx.Err() != nil {
		// The caller went away; there is nobody to tell.
		return nil
	}
	exit := &skiffv1.ExecExit{Code: int32(code)}
	if err != nil {
		var apiStatus apierrors.APIStatus
		if errors.As(err, &apiStatus) {
			return grpcerr.ToStatus(err)
		}
		s.log.Info("exec failed", "pod", key, "container", start.GetContainer(), "err", err)
		exit.Error = err.Error()
	}
	return send(&skiffv1.ExecOutput{Output: &skiffv1.ExecOutput_Exit{Exit: exit}})
}

// pumpInput reads the client's messages after the start until the stream
// ends: stdin chunks go to stdin (nil when the command has no input),
// sizes to resize (nil without a terminal). The end of the client's
// messages, or stdin_close, closes stdin.
//
// Only the latest terminal size matters, so a size the command has not
// taken yet is replaced rather than queued: the reader never blocks the
// stream on a slow consumer of sizes.
func pumpInput(stream grpc.BidiStreamingServer[skiffv1.ExecInput, skiffv1.ExecOutput], stdin *io.PipeWriter, resize chan TerminalSize) {
	closeStdin := func(err error) {
		if stdin != nil {
			stdin.CloseWithError(err)
			stdin = nil
		}
	}
	for {
		in, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			closeStdin(err)
			return
		}
		switch x := in.GetInput().(type) {
		case *skiffv1.ExecInput_Stdin:
			if stdin != nil {
				if _, err := stdin.Write(x.Stdin); err != nil {
					// The command's input was closed: drop what
					// follows, but keep reading for resizes.
					stdin = nil
				}
			}
		case *skiffv1.ExecInput_StdinClose:
			closeStdin(nil)
		case *skiffv1.ExecInput_Resize:
			if sz, ok := terminalSize(x.Resize); ok && resize != nil {
				offer(resize, sz)
			}
		}
	}
}

// offer puts sz into ch, which has room for one, replacing a size
// nobody took yet. Only one goroutine sends on ch.
func offer(ch chan TerminalSize, sz TerminalSize) {
	for {
		select {
		case ch <- sz:
			return
		default:
		}
		select {
		case <-ch:
		default:
		}
	}
}

// terminalSize converts a size from the wire; zero sizes are ignored.
func terminalSize(s *skiffv1.TerminalSize) (TerminalSize, bool) {
	if s == nil || s.GetWidth() == 0 || s.GetHeight() == 0 {
		return TerminalSize{}, false
	}
	return TerminalSize{Width: uint16(min(s.GetWidth(), 0xffff)), Height: uint16(min(s.GetHeight(), 0xffff))}, true
}
