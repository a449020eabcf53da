// Command skiff runs Skiff's daemons. Each is a subcommand: "skiff server"
// runs the control plane on the first machine, "skiff apiserver" runs the
// API server alone.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/apiserver"
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
	var verbose bool
	root := &cobra.Command{
		Use:           "skiff",
		Short:         "Skiff runs a small Kubernetes-style cluster",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(*cobra.Command, []string) {
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
		},
	}
	root.PersistentFlags().BoolVarP(&verbose, "verbose", "v", false, "log debug messages")
	root.AddCommand(newAPIServerCommand("apiserver", "Run the API server (with an embedded etcd unless --etcd-servers is given)"))
	root.AddCommand(newAPIServerCommand("server", "Run the control plane of a cluster: the API server with its embedded etcd"))
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Run: func(cmd *cobra.Command, _ []string) {
			v := version.Get()
			fmt.Fprintf(cmd.OutOrStdout(), "skiff %s (%s, %s)\n", v.GitVersion, v.GoVersion, v.Platform)
		},
	})
	return root
}

// newAPIServerCommand builds "skiff apiserver" and, for now, "skiff server",
// which later grows the scheduler, controllers, kubelet and proxy.
func newAPIServerCommand(use, short string) *cobra.Command {
	cfg := apiserver.DefaultConfig()
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return apiserver.Run(cmd.Context(), cfg)
		},
	}
	cfg.AddFlags(cmd.Flags())
	return cmd
}
