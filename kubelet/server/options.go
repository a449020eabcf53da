package server

import "io"

// TerminalSize is a terminal's size in character cells. It mirrors
// kubelet/runtime.TerminalSize.
type TerminalSize struct{ Width, Height uint16 }

// ExecOptions is what Host.Exec gets. It mirrors kubelet/runtime.ExecOptions
// field for field, so the kubelet core can pass it on unchanged.
//
// Stdin is nil when the caller asked for no input. Stderr is nil with TTY:
// a terminal has one output. Resize is set only with TTY; it carries the
// initial size (when the caller sent one) and then every change, and is
// never closed: stop reading it when the command ends.
type ExecOptions struct {
	Args, Env      []string
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	TTY            bool
	Resize         <-chan TerminalSize
}
