// Command skiffctl is Skiff's command-line client.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	server := os.Getenv("SKIFF_SERVER")
	if server == "" {
		server = "127.0.0.1:6443"
	}
	root := &cobra.Command{
		Use:           "skiffctl",
		Short:         "skiffctl controls a Skiff cluster",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&server, "server", server, "address of the API server (host:port); default $SKIFF_SERVER")
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the client and server versions",
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := version.Get()
			fmt.Fprintf(cmd.OutOrStdout(), "Client Version: %s\n", v.GitVersion)
			c, err := client.New(client.Config{Server: server})
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			sv, err := c.Version(ctx)
			if err != nil {
				return fmt.Errorf("the server %s did not answer: %w", server, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Server Version: %s\n", sv.GitVersion)
			return nil
		},
	})
	return root
}
