package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/clientconfig"
	"github.com/skiffdev/skiff/internal/version"
	"github.com/skiffdev/skiff/kubelet"
)

// newKubeletCommand builds "skiff kubelet": the node agent that runs the
// pods bound to this machine.
func newKubeletCommand() *cobra.Command {
	cfg := kubelet.DefaultConfig()
	var server string
	cmd := &cobra.Command{
		Use:   "kubelet",
		Short: "Run the kubelet, which runs the containers of the pods bound to this node (needs root)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runKubelet(cmd.Context(), server, cfg)
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "API server address (default: $SKIFF_SERVER, then the client config file)")
	cfg.AddFlags(cmd.Flags())
	return cmd
}

// newAgentCommand builds "skiff agent": what every machine of a cluster
// but the first runs. For now that is the kubelet; the service proxy
// joins it later.
func newAgentCommand() *cobra.Command {
	cmd := newKubeletCommand()
	cmd.Use = "agent"
	cmd.Short = "Join this machine to a cluster as a node: runs the kubelet (needs root)"
	return cmd
}

// runKubelet connects to the API server and runs a kubelet until ctx ends.
func runKubelet(ctx context.Context, server string, cfg kubelet.Config) error {
	if os.Geteuid() != 0 {
		return kubelet.ErrNotRoot
	}
	server, err := clientconfig.ResolveServer(server, clientconfig.DefaultPaths()...)
	if err != nil {
		return err
	}
	c, err := client.New(client.Config{Server: server, UserAgent: "kubelet/" + version.Get().GitVersion})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := kubelet.Run(ctx, c, cfg, slog.Default().With("component", "kubelet")); err != nil {
		if errors.Is(err, kubelet.ErrNotRoot) {
			return err
		}
		return fmt.Errorf("kubelet: %w", err)
	}
	return nil
}
