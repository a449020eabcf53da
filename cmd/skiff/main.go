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
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/apiserver"
	"github.com/skiffdev/skiff/apiserver/auth"
	"github.com/skiffdev/skiff/controllers"
	"github.com/skiffdev/skiff/dns"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/clientconfig"
	"github.com/skiffdev/skiff/internal/events"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/pki"
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
	root.AddCommand(newDNSCommand())
	root.AddCommand(newAgentCommand())
	root.AddCommand(newImagesCommand())
	root.AddCommand(newTokenCommand())
	root.AddCommand(newCertificateCommand())
	root.AddCommand(newSecretsEncryptCommand())
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
	var conn connection
	cmd := &cobra.Command{
		Use:   "scheduler",
		Short: "Run the scheduler, which binds pending pods to nodes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := conn.resolve("scheduler")
			if err != nil {
				return err
			}
			cfg.Connection = c
			return scheduler.Run(cmd.Context(), cfg)
		},
	}
	cfg.AddFlags(cmd.Flags())
	conn.addFlags(cmd)
	return cmd
}

// newControllersCommand builds "skiff controllers": every controller in
// one process, connected to an API server.
func newControllersCommand() *cobra.Command {
	cfg := controllers.DefaultConfig()
	var conn connection
	cmd := &cobra.Command{
		Use:   "controllers",
		Short: "Run the controllers, which drive what runs towards what was declared",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := conn.resolve("controllers")
			if err != nil {
				return err
			}
			cfg.Connection = c
			return controllers.Run(cmd.Context(), cfg)
		},
	}
	cfg.AddFlags(cmd.Flags())
	conn.addFlags(cmd)
	return cmd
}

// newServerCommand builds "skiff server": a cluster's first machine. It
// runs the control plane — the API server with its embedded etcd, the
// scheduler and the controllers — and, unless --disable-agent, a kubelet
// and a proxy so that this machine is also a node. At the first start the
// API server makes the cluster CA and a join token (DATA-DIR/token); the
// command writes an admin kubeconfig, so that skiffctl on this machine
// needs no flags. Each component runs as its own identity, not as the
// admin: the scheduler and the controllers with certificates the CA signs
// for them in memory, the node agent by joining with the token as any
// other machine does.
func newServerCommand() *cobra.Command {
	cfg := apiserver.DefaultConfig()
	schedCfg := scheduler.DefaultConfig()
	ctrlCfg := controllers.DefaultConfig()
	// The server's own node gets its pod CIDR from the node IPAM
	// controller, like every other node.
	kubeletCfg := kubelet.DefaultConfig()
	proxyCfg := proxy.DefaultConfig()
	dnsCfg := dns.DefaultConfig()
	disableAgent, disableDNS := false, false
	kubeconfigs := []string{clientconfig.UserPath()}
	if os.Geteuid() == 0 {
		kubeconfigs = []string{clientconfig.AdminPath}
	}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a cluster's first machine: the API server with its embedded etcd, the scheduler, the controllers and a kubelet",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, err := apiserver.Start(ctx, cfg)
			if err != nil {
				return err
			}
			defer s.Stop()
			server := "https://" + clientAddress(s.Addr())
			if err := writeAdminKubeconfigs(ctx, s, server, kubeconfigs); err != nil {
				return err
			}
			agent := !disableAgent
			if agent && os.Geteuid() != 0 {
				slog.Warn("not running a kubelet on this machine: it needs root; this machine runs no pods (run as root, or pass --disable-agent to silence this)")
				agent = false
			}
			ctrlCfg.ClusterCIDR = kubeletCfg.ClusterCIDR
			if schedCfg.Connection, err = s.ClientConfig(auth.SchedulerUser); err != nil {
				return err
			}
			if ctrlCfg.Connection, err = s.ClientConfig(auth.ControllersUser); err != nil {
				return err
			}
			go warnCAExpiry(ctx, s, ctrlCfg.Connection)
			var node *nodeRun
			if agent {
				// The proxy drops what goes to the service range the API
				// server allocates from.
				proxyCfg.ServiceCIDR = cfg.ServiceClusterIPRange
				if !cmd.Flags().Changed("root-dir") {
					// One state directory for the whole machine.
					kubeletCfg.RootDir = cfg.DataDir
				}
				token, err := os.ReadFile(filepath.Join(cfg.DataDir, apiserver.TokenFile))
				if err != nil {
					return err
				}
				node = &nodeRun{join: joinFlags{server: server, token: strings.TrimSpace(string(token))}, kubelet: kubeletCfg, proxy: proxyCfg}
				if !disableDNS {
					node.dns = &dnsCfg
				}
			}
			return runComponents(ctx, schedCfg, ctrlCfg, node)
		},
	}
	cfg.AddFlags(cmd.Flags())
	// The scheduler's flags, but not the leader election ones, which the
	// controllers' flags set for both (see runComponents).
	schedFlags := pflag.NewFlagSet("scheduler", pflag.ContinueOnError)
	schedCfg.AddFlags(schedFlags)
	schedFlags.VisitAll(func(f *pflag.Flag) {
		if !strings.HasPrefix(f.Name, "leader-elect") {
			cmd.Flags().AddFlag(f)
		}
	})
	// The controllers' flags, but not --cluster-cidr: the kubelet's flag
	// of that name sets both.
	ctrlFlags := pflag.NewFlagSet("controllers", pflag.ContinueOnError)
	ctrlCfg.AddFlags(ctrlFlags)
	ctrlFlags.VisitAll(func(f *pflag.Flag) {
		if f.Name != "cluster-cidr" {
			cmd.Flags().AddFlag(f)
		}
	})
	// The kubelet's flags, the proxy's and the DNS server's.
	kubeletCfg.AddFlags(cmd.Flags())
	addProxyFlags(cmd, &proxyCfg, "service-cidr")
	addDNSFlags(cmd, &dnsCfg, &disableDNS)
	cmd.Flags().BoolVar(&disableAgent, "disable-agent", disableAgent, "run only the control plane: no kubelet, so no pods run on this machine")
	cmd.Flags().StringSliceVar(&kubeconfigs, "write-kubeconfig", kubeconfigs, "files to write the admin kubeconfig to, mode 0600 (empty: none)")
	return cmd
}

// writeAdminKubeconfigs writes the admin's kubeconfig to each path, and
// writes it again with a renewed certificate whenever a third of its life
// is left, until ctx ends.
func writeAdminKubeconfigs(ctx context.Context, s *apiserver.Server, server string, paths []string) error {
	paths = slices.DeleteFunc(slices.Clone(paths), func(p string) bool { return p == "" })
	if len(paths) == 0 {
		return nil
	}
	write := func() (time.Time, error) {
		kp, err := s.IssueClientCertificate(auth.AdminUser, auth.MastersGroup)
		if err != nil {
			return time.Time{}, err
		}
		for _, path := range paths {
			err := clientconfig.WriteKubeconfig(path, clientconfig.Credentials{
				Server: server, CA: s.CA().CertPEM, CertPEM: kp.CertPEM, KeyPEM: kp.KeyPEM, User: "admin",
			})
			if err != nil {
				return time.Time{}, fmt.Errorf("writing the admin kubeconfig: %w", err)
			}
		}
		leaf, err := kp.Leaf()
		if err != nil {
			return time.Time{}, err
		}
		return pki.RenewAt(leaf), nil
	}
	renewAt, err := write()
	if err != nil {
		return err
	}
	slog.Info("wrote the admin kubeconfig", "paths", paths, "server", server)
	go func() {
		for {
			// At least a second between writes, whatever the certificate
			// says (a CA about to expire signs only certificates that are
			// due at once).
			t := time.NewTimer(max(time.Until(renewAt), time.Second))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			next, err := write()
			if err != nil {
				slog.Error("renewing the admin kubeconfig failed", "err", err)
				next = time.Now().Add(time.Minute)
			}
			renewAt = next
		}
	}()
	return nil
}

// warnCAExpiry checks the cluster CA once a day until ctx ends: the CA is
// the one certificate nothing renews, so from 30 days before it expires
// the server logs a warning and records a Warning event
// (CertificateExpiring, on the kube-system namespace) every day.
func warnCAExpiry(ctx context.Context, s *apiserver.Server, cfg client.Config) {
	c, err := client.New(cfg)
	if err != nil {
		slog.Error("checking the CA's expiry", "err", err)
		return
	}
	defer c.Close()
	recCtx, _ := logging.With(ctx, "component", "skiff-server")
	recorder := events.NewRecorder(recCtx, c, "skiff-server")
	defer recorder.Stop()
	tick := time.NewTicker(24 * time.Hour)
	defer tick.Stop()
	for {
		if left := time.Until(s.CA().Cert.NotAfter); left < expiryWarning {
			expires := s.CA().Cert.NotAfter.UTC().Format(time.RFC3339)
			slog.Warn("the cluster CA expires soon and is not renewed automatically", "expires", expires)
			recorder.Eventf(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: metav1.NamespaceSystem}}, corev1.EventTypeWarning, "CertificateExpiring",
				"the cluster CA expires at %s; every certificate of the cluster stops working then", expires)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// nodeRun is the node agent of "skiff server".
type nodeRun struct {
	join    joinFlags
	kubelet kubelet.Config
	proxy   proxy.Config
	dns     *dns.Config // nil: no node-local DNS server
}

// runComponents runs the scheduler, the controllers and (when node is
// not nil) the node agent of "skiff server" until ctx ends. If one of them
// fails, the others are stopped and the failure returned.
func runComponents(ctx context.Context, schedCfg scheduler.Config, ctrlCfg controllers.Config, node *nodeRun) error {
	// One set of --leader-elect flags serves both components; each keeps
	// its own Lease.
	lease := schedCfg.LeaderElection.LeaseName
	schedCfg.LeaderElection = ctrlCfg.LeaderElection
	schedCfg.LeaderElection.LeaseName = lease
	runs := []func(context.Context) error{
		func(ctx context.Context) error { return runScheduler(ctx, schedCfg) },
		func(ctx context.Context) error { return runControllers(ctx, ctrlCfg) },
	}
	if node != nil {
		runs = append(runs, func(ctx context.Context) error { return runNode(ctx, node.join, node.kubelet, &node.proxy, node.dns) })
	}
	return runAll(ctx, runs...)
}

// runAll runs each function in a goroutine of its own until ctx ends.
// When one fails, the others' context is cancelled; it returns the first
// failure once all have returned.
func runAll(ctx context.Context, runs ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(runs))
	for _, run := range runs {
		go func() { errs <- run(ctx) }()
	}
	var first error
	for range runs {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

// runControllers runs the controllers of "skiff server" until ctx ends,
// and fails if they fail.
func runControllers(ctx context.Context, cfg controllers.Config) error {
	if err := controllers.Run(ctx, cfg); err != nil && ctx.Err() == nil {
		return fmt.Errorf("controllers: %w", err)
	}
	return nil
}

// runScheduler runs the scheduler of "skiff server" until ctx ends, and
// fails if the scheduler fails.
func runScheduler(ctx context.Context, cfg scheduler.Config) error {
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
