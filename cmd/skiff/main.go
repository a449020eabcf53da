// Command skiff runs Skiff's daemons. Each is a subcommand: "skiff server"
// runs the control plane on the first machine, "skiff apiserver" runs the
// API server alone.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/skiffdev/skiff/apiserver"
	"github.com/skiffdev/skiff/controllers"
	"github.com/skiffdev/skiff/internal/clientconfig"
	"github.com/skiffdev/skiff/internal/version"
	"github.com/skiffdev/skiff/kubelet"
	"github.com/skiffdev/skiff/kubelet/runtime"
	"github.com/skiffdev/skiff/proxy"
	"github.com/skiffdev/skiff/scheduler"
)

func main() {
	// The container runtime runs this binary again inside new containers
	// and as each container's shim; those runs end here.
	if runtime.Reexec() {
		return
	}
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
	root.AddCommand(newAPIServerCommand())
	root.AddCommand(newServerCommand())
	root.AddCommand(newSchedulerCommand())
	root.AddCommand(newControllersCommand())
	root.AddCommand(newSimNodesCommand())
	root.AddCommand(newKubeletCommand())
	root.AddCommand(newProxyCommand())
	root.AddCommand(newAgentCommand())
	root.AddCommand(newImagesCommand())
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

// newAPIServerCommand builds "skiff apiserver": the API server alone.
func newAPIServerCommand() *cobra.Command {
	cfg := apiserver.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "apiserver",
		Short: "Run the API server (with an embedded etcd unless --etcd-servers is given)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return apiserver.Run(cmd.Context(), cfg)
		},
	}
	cfg.AddFlags(cmd.Flags())
	return cmd
}

// newSchedulerCommand builds "skiff scheduler": the scheduler alone,
// connected to an API server.
func newSchedulerCommand() *cobra.Command {
	cfg := scheduler.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "scheduler",
		Short: "Run the scheduler, which binds pending pods to nodes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			server, err := clientconfig.ResolveServer(cfg.Server, clientconfig.DefaultPaths()...)
			if err != nil {
				return err
			}
			cfg.Server = server
			return scheduler.Run(cmd.Context(), cfg)
		},
	}
	cfg.AddFlags(cmd.Flags())
	return cmd
}

// newControllersCommand builds "skiff controllers": every controller in
// one process, connected to an API server.
func newControllersCommand() *cobra.Command {
	cfg := controllers.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "controllers",
		Short: "Run the controllers, which drive what runs towards what was declared",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			server, err := clientconfig.ResolveServer(cfg.Server, clientconfig.DefaultPaths()...)
			if err != nil {
				return err
			}
			cfg.Server = server
			return controllers.Run(cmd.Context(), cfg)
		},
	}
	cfg.AddFlags(cmd.Flags())
	return cmd
}

// newServerCommand builds "skiff server": a cluster's first machine. It
// runs the control plane — the API server with its embedded etcd, the
// scheduler and the controllers — and, unless --disable-agent, a kubelet
// so that this machine is also a node. It writes skiffctl's config so
// that skiffctl on this machine finds the server with no flags.
func newServerCommand() *cobra.Command {
	cfg := apiserver.DefaultConfig()
	schedCfg := scheduler.DefaultConfig()
	ctrlCfg := controllers.DefaultConfig()
	// The server's own node gets its pod CIDR from the node IPAM
	// controller, like every other node.
	kubeletCfg := kubelet.DefaultConfig()
	proxyCfg := proxy.DefaultConfig()
	disableAgent := false
	clientConfigs := []string{clientconfig.UserPath()}
	if os.Geteuid() == 0 {
		clientConfigs = append(clientConfigs, clientconfig.SystemPath)
	}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a cluster's first machine: the API server with its embedded etcd, the scheduler, the controllers and a kubelet",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := apiserver.Start(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer s.Stop()
			addr := clientAddress(s.Addr())
			for _, path := range clientConfigs {
				if path == "" {
					continue
				}
				if err := clientconfig.Write(path, clientconfig.Config{Server: addr}); err != nil {
					return fmt.Errorf("writing the client config: %w", err)
				}
				slog.Info("wrote the client config", "path", path, "server", addr)
			}
			agent := !disableAgent
			if agent && os.Geteuid() != 0 {
				slog.Warn("not running a kubelet on this machine: it needs root; this machine runs no pods (run as root, or pass --disable-agent to silence this)")
				agent = false
			}
			ctrlCfg.ClusterCIDR = kubeletCfg.ClusterCIDR
			var kcfg *kubelet.Config
			var pcfg *proxy.Config
			if agent {
				// The proxy drops what goes to the service range the API
				// server allocates from.
				proxyCfg.ServiceCIDR = cfg.ServiceClusterIPRange
				pcfg = &proxyCfg
				if !cmd.Flags().Changed("root-dir") {
					// One state directory for the whole machine.
					kubeletCfg.RootDir = cfg.DataDir
				}
				kcfg = &kubeletCfg
			}
			return runComponents(cmd.Context(), schedCfg, ctrlCfg, kcfg, pcfg, addr)
		},
	}
	cfg.AddFlags(cmd.Flags())
	// The scheduler's flags, but not --server (it talks to this server)
	// nor the leader election ones, which the controllers' flags set for
	// both (see runComponents).
	schedFlags := pflag.NewFlagSet("scheduler", pflag.ContinueOnError)
	schedCfg.AddFlags(schedFlags)
	schedFlags.VisitAll(func(f *pflag.Flag) {
		if f.Name != "server" && !strings.HasPrefix(f.Name, "leader-elect") {
			cmd.Flags().AddFlag(f)
		}
	})
	// The controllers' flags, but not --server either, nor
	// --cluster-cidr: the kubelet's flag of that name sets both.
	ctrlFlags := pflag.NewFlagSet("controllers", pflag.ContinueOnError)
	ctrlCfg.AddFlags(ctrlFlags)
	ctrlFlags.VisitAll(func(f *pflag.Flag) {
		if f.Name != "server" && f.Name != "cluster-cidr" {
			cmd.Flags().AddFlag(f)
		}
	})
	// The kubelet's flags, and the proxy's.
	kubeletCfg.AddFlags(cmd.Flags())
	addProxyFlags(cmd, &proxyCfg, "service-cidr")
	cmd.Flags().BoolVar(&disableAgent, "disable-agent", disableAgent, "run only the control plane: no kubelet, so no pods run on this machine")
	cmd.Flags().StringSliceVar(&clientConfigs, "write-client-config", clientConfigs, "files to write skiffctl's config to (empty: none)")
	return cmd
}

// runComponents runs the scheduler, the controllers and (when kcfg and
// pcfg are not nil) the kubelet and proxy of "skiff server" until ctx
// ends. If one of them fails,
// the others are stopped and the failure returned.
func runComponents(ctx context.Context, schedCfg scheduler.Config, ctrlCfg controllers.Config, kcfg *kubelet.Config, pcfg *proxy.Config, addr string) error {
	// One set of --leader-elect flags serves both components; each keeps
	// its own Lease.
	lease := schedCfg.LeaderElection.LeaseName
	schedCfg.LeaderElection = ctrlCfg.LeaderElection
	schedCfg.LeaderElection.LeaseName = lease
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 3)
	n := 2
	go func() { errs <- runScheduler(ctx, schedCfg, addr) }()
	go func() { errs <- runControllers(ctx, ctrlCfg, addr) }()
	if kcfg != nil && pcfg != nil {
		n++
		go func() { errs <- runAgent(ctx, addr, *kcfg, *pcfg) }()
	}
	var first error
	for range n {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

// runControllers runs the controllers of "skiff server" against the
// server's own address until ctx ends, and fails if they fail.
func runControllers(ctx context.Context, cfg controllers.Config, addr string) error {
	cfg.Server = addr
	if err := controllers.Run(ctx, cfg); err != nil && ctx.Err() == nil {
		return fmt.Errorf("controllers: %w", err)
	}
	return nil
}

// runScheduler runs the scheduler of "skiff server" against the server's
// own address until ctx ends, and fails if the scheduler fails.
func runScheduler(ctx context.Context, cfg scheduler.Config, addr string) error {
	cfg.Server = addr
	if err := scheduler.Run(ctx, cfg); err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	return nil
}

// clientAddress is the address a client on this machine uses to reach a
// server listening on listen: a wildcard address becomes loopback.
func clientAddress(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
