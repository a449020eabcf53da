package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/dns"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/version"
	"github.com/skiffdev/skiff/kubelet/network"
)

// newDNSCommand builds "skiff dns": the node-local DNS server alone, for
// a node whose kubelet runs as "skiff kubelet" (which keeps a link-local
// --cluster-dns address on the pod bridge for it). It runs with the
// credentials of a kubeconfig, typically the node's own (--kubeconfig
// ROOT-DIR/kubelet.kubeconfig).
func newDNSCommand() *cobra.Command {
	cfg := dns.DefaultConfig()
	var conn connection
	cmd := &cobra.Command{
		Use:   "dns",
		Short: "Run the node-local DNS server, which answers cluster names to this node's pods and forwards the rest to the node's resolvers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.NodeName == "" {
				host, err := os.Hostname()
				if err != nil {
					return fmt.Errorf("dns: --node-name not given and no host name: %w", err)
				}
				cfg.NodeName = host
			}
			if err := validateNodeDNS(cfg, network.DefaultBridge); err != nil {
				return err
			}
			ccfg, err := conn.resolve("dns/" + version.Get().GitVersion)
			if err != nil {
				return err
			}
			c, err := client.New(ccfg)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := dns.Run(cmd.Context(), c, cfg); err != nil {
				return fmt.Errorf("dns: %w", err)
			}
			return nil
		},
	}
	cfg.AddFlags(cmd.Flags())
	conn.addFlags(cmd)
	return cmd
}
