// Command skiffctl is Skiff's command-line client; see package ctl.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/skiffdev/skiff/ctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first Ctrl-C, a second one ends skiffctl at once,
		// should a command not stop on its own.
		<-ctx.Done()
		stop()
	}()
	o := ctl.DefaultOptions()
	err := ctl.NewCommand(o).ExecuteContext(ctx)
	// An interrupted command exits quietly: FormatError has no line for
	// context.Canceled, and a command such as get -w returns nothing
	// when its context ends.
	if msg := ctl.FormatError(err); msg != "" {
		fmt.Fprintln(os.Stderr, msg)
	}
	if err != nil || ctx.Err() != nil {
		os.Exit(1)
	}
}
