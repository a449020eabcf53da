package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/clientconfig"
	"github.com/skiffdev/skiff/internal/version"
	"github.com/skiffdev/skiff/proxy"
)

// newProxyCommand builds "skiff proxy": the service proxy of one node,
// which programs nftables so that Service addresses reach ready pods.
func newProxyCommand() *cobra.Command {
	cfg := proxy.DefaultConfig()
	var server string
	cmd := &cobra.Command{
		Use:   "proxy",
		Short: "Run the service proxy, which makes ClusterIPs and NodePorts reach ready pods through nftables (needs root)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runProxy(cmd.Context(), server, cfg)
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "API server address (default: $SKIFF_SERVER, then the client config file)")
	cfg.AddFlags(cmd.Flags())
	return cmd
}

// runProxy connects to the API server and runs the proxy until ctx ends.
func runProxy(ctx context.Context, server string, cfg proxy.Config) error {
	if os.Geteuid() != 0 {
		return proxy.ErrNotRoot
	}
	if cfg.NodeName == "" {
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("proxy: --node-name not given and no host name: %w", err)
		}
		cfg.NodeName = host
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	server, err := clientconfig.ResolveServer(server, clientconfig.DefaultPaths()...)
	if err != nil {
		return err
	}
	c, err := client.New(client.Config{Server: server, UserAgent: "proxy/" + version.Get().GitVersion})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := proxy.Run(ctx, c, cfg, slog.Default().With("component", "proxy", "node", cfg.NodeName)); err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	return nil
}
