package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/clientconfig"
	"github.com/skiffdev/skiff/internal/version"
	"github.com/skiffdev/skiff/kubelet"
	"github.com/skiffdev/skiff/proxy"
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

// newAgentCommand builds "skiff agent": what joins a machine to a cluster
// as a node — the kubelet and the service proxy, in one process.
func newAgentCommand() *cobra.Command {
	cfg := kubelet.DefaultConfig()
	pcfg := proxy.DefaultConfig()
	var server string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Join this machine to a cluster as a node: the kubelet and the service proxy (needs root)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAgent(cmd.Context(), server, cfg, pcfg)
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "API server address (default: $SKIFF_SERVER, then the client config file)")
	cfg.AddFlags(cmd.Flags())
	addProxyFlags(cmd, &pcfg)
	return cmd
}

// addProxyFlags adds the proxy's flags to a command that also runs a
// kubelet: --node-name and --cluster-cidr are the kubelet's, and set both;
// the flags in skip are set from another component's too.
func addProxyFlags(cmd *cobra.Command, pcfg *proxy.Config, skip ...string) {
	fs := pflag.NewFlagSet("proxy", pflag.ContinueOnError)
	pcfg.AddFlags(fs)
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name != "node-name" && f.Name != "cluster-cidr" && !slices.Contains(skip, f.Name) {
			cmd.Flags().AddFlag(f)
		}
	})
}

// runAgent runs a kubelet and a proxy until ctx ends; when one fails, the
// other is stopped.
func runAgent(ctx context.Context, server string, cfg kubelet.Config, pcfg proxy.Config) error {
	if os.Geteuid() != 0 {
		return kubelet.ErrNotRoot
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	pcfg.NodeName, pcfg.ClusterCIDR = cfg.NodeName, cfg.ClusterCIDR
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	go func() { errs <- runKubelet(ctx, server, cfg) }()
	go func() { errs <- runProxy(ctx, server, pcfg) }()
	var first error
	for range 2 {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
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
