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
	o := ctl.DefaultOptions()
	if err := ctl.NewCommand(o).ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, ctl.FormatError(err))
		os.Exit(1)
	}
}
