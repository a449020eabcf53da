package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/version"
	"github.com/skiffdev/skiff/proxy"
)

// newProxyCommand builds "skiff proxy": the service proxy of one node,
// which programs nftables so that Service addresses reach ready pods. It
// runs with the credentials of a kubeconfig, typically the node's own
// (--kubeconfig ROOT-DIR/kubelet.kubeconfig).
func newProxyCommand() *cobra.Command {
	cfg := proxy.DefaultConfig()
	var conn connection
	cmd := &cobra.Command{
		Use:   "proxy",
		Short: "Run the service proxy, which makes ClusterIPs and NodePorts reach ready pods through nftables (needs root)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if os.Geteuid() != 0 {
				return proxy.ErrNotRoot
			}
			ccfg, err := conn.resolve("proxy/" + version.Get().GitVersion)
			if err != nil {
				return err
			}
			c, err := client.New(ccfg)
			if err != nil {
				return err
			}
			defer c.Close()
			return runProxy(cmd.Context(), c, cfg)
		},
	}
	cfg.AddFlags(cmd.Flags())
	conn.addFlags(cmd)
	return cmd
}

// runProxy runs the proxy until ctx ends.
func runProxy(ctx context.Context, c *client.Client, cfg proxy.Config) error {
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
	if err := proxy.Run(ctx, c, cfg); err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	return nil
}
