// Command skiffctl is Skiff's command-line client; see package ctl.
package main

import (
	"context"
	"errors"
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
	// exec exits with the status of the command it ran, as kubectl does
	// (a status outside 1-255 cannot be passed on; it becomes 1).
	var exit *ctl.ExitError
	if errors.As(err, &exit) && exit.Code > 0 && exit.Code < 256 {
		os.Exit(exit.Code)
	}
	if err != nil || ctx.Err() != nil {
		os.Exit(1)
	}
}
