package controllers

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/skiffdev/skiff/controllers/controller"
	"github.com/skiffdev/skiff/controllers/nodeipam"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/events"
	"github.com/skiffdev/skiff/internal/informers"
	"github.com/skiffdev/skiff/internal/leaderelection"
	"github.com/skiffdev/skiff/internal/logging"
)

// Config configures the controller manager.
type Config struct {
	// Connection says how to reach and authenticate to the API server;
	// the binary fills it from the kubeconfig or the connection flags.
	// Ignored when Client is set.
	Connection client.Config
	// Client, when not nil, is used instead of dialling Connection; Run
	// does not close it (tests, and `skiff server`).
	Client *client.Client
	// Workers is how many keys each controller reconciles at once.
	Workers int
	// Resync is how often informers replay their whole cache, the safety
	// net of every control loop.
	Resync time.Duration
	// NodeMonitorGracePeriod is how long a node's Lease may go unrenewed
	// before the node is marked not ready (node lifecycle controller).
	NodeMonitorGracePeriod time.Duration
	// ClusterCIDR is the range the node IPAM controller cuts the nodes'
	// pod CIDRs from.
	ClusterCIDR string
	// NodeCIDRMaskSize is the prefix length of each node's pod CIDR.
	NodeCIDRMaskSize int
	// Disabled names controllers not to run.
	Disabled []string
	// LeaderElection makes the controllers run only while this copy
	// holds the kube-system/skiff-controllers Lease (on by default), so
	// that several copies can run and one acts.
	LeaderElection leaderelection.Options
}

// DefaultConfig returns Kubernetes' defaults where Kubernetes has them.
func DefaultConfig() Config {
	return Config{
		Workers:                5,
		Resync:                 5 * time.Minute,
		NodeMonitorGracePeriod: 40 * time.Second,
		ClusterCIDR:            nodeipam.DefaultClusterCIDR,
		NodeCIDRMaskSize:       nodeipam.DefaultNodeCIDRMaskSize,
		LeaderElection:         leaderelection.DefaultOptions("skiff-controllers"),
	}
}

// AddFlags registers the manager's flags.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	fs.IntVar(&c.Workers, "workers", c.Workers, "keys each controller reconciles at once")
	fs.DurationVar(&c.Resync, "resync", c.Resync, "how often informers replay their cache to every controller")
	fs.DurationVar(&c.NodeMonitorGracePeriod, "node-monitor-grace-period", c.NodeMonitorGracePeriod, "how long a node may go without renewing its Lease before it is marked not ready")
	fs.StringVar(&c.ClusterCIDR, "cluster-cidr", c.ClusterCIDR, "IPv4 range the nodes' pod CIDRs are cut from")
	fs.IntVar(&c.NodeCIDRMaskSize, "node-cidr-mask-size", c.NodeCIDRMaskSize, "prefix length of each node's pod CIDR")
	fs.StringSliceVar(&c.Disabled, "disable", c.Disabled, "controllers not to run (comma-separated names)")
	c.LeaderElection.AddFlags(fs)
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.Client == nil && c.Connection.Server == "" {
		errs = append(errs, errors.New("no API server given (--kubeconfig or --server)"))
	}
	if c.Workers < 1 {
		errs = append(errs, errors.New("--workers must be at least 1"))
	}
	if c.Resync <= 0 {
		errs = append(errs, errors.New("--resync must be positive"))
	}
	if c.NodeMonitorGracePeriod <= 0 {
		errs = append(errs, errors.New("--node-monitor-grace-period must be positive"))
	}
	if cluster, err := netip.ParsePrefix(c.ClusterCIDR); err != nil {
		errs = append(errs, fmt.Errorf("--cluster-cidr %q: must be an IPv4 CIDR such as %s", c.ClusterCIDR, nodeipam.DefaultClusterCIDR))
	} else if err := nodeipam.ValidateRange(cluster, c.NodeCIDRMaskSize); err != nil {
		errs = append(errs, fmt.Errorf("--cluster-cidr, --node-cidr-mask-size: %w", err))
	}
	for _, d := range c.Disabled {
		if !slices.ContainsFunc(all, func(e entry) bool { return e.name == d }) {
			errs = append(errs, fmt.Errorf("--disable: no controller called %q", d))
		}
	}
	if err := c.LeaderElection.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Controller is a built controller; Run waits for its caches, then works
// until ctx ends.
type Controller interface {
	Run(ctx context.Context)
}

// Run runs the controllers until ctx ends; with leader election, only
// while this copy holds the Lease, each term with fresh informers and
// controllers. It logs through the logger ctx carries, with
// component=controllers; each controller adds controller=<its name>.
func Run(ctx context.Context, cfg Config) error {
	ctx, _ = logging.With(ctx, "component", "controllers")
	if err := cfg.Validate(); err != nil {
		return err
	}
	c := cfg.Client
	if c == nil {
		var err error
		conn := cfg.Connection
		if conn.UserAgent == "" {
			conn.UserAgent = "controllers"
		}
		if c, err = client.New(conn); err != nil {
			return err
		}
		defer c.Close()
	}
	// A term that fails (a controller that cannot be built) ends Run with
	// its error, the Lease given up, instead of being retried in a loop.
	return cfg.LeaderElection.RunOrLeadE(ctx, c, func(ctx context.Context) error {
		return runControllers(ctx, cfg, c)
	})
}

// runControllers builds every enabled controller, starts the informers,
// and runs the controllers until ctx ends.
func runControllers(ctx context.Context, cfg Config, c *client.Client) error {
	rec := events.NewRecorder(ctx, c, "controllers")
	defer rec.Stop()
	deps := controller.Deps{Client: c, Informers: informers.NewFactory(c, cfg.Resync), Recorder: rec}

	var ctrls []Controller
	var names []string
	for _, e := range all {
		if slices.Contains(cfg.Disabled, e.name) {
			continue
		}
		ctrl, err := e.new(deps, &cfg)
		if err != nil {
			return fmt.Errorf("controller %s: %w", e.name, err)
		}
		ctrls, names = append(ctrls, ctrl), append(names, e.name)
	}
	deps.Informers.Start(ctx)
	defer deps.Informers.Wait()
	if !deps.Informers.WaitForCacheSync(ctx) {
		return ctx.Err()
	}
	logging.From(ctx).Info("controllers started", "controllers", names)
	var wg sync.WaitGroup
	for _, ctrl := range ctrls {
		wg.Go(func() { ctrl.Run(ctx) })
	}
	wg.Wait()
	return nil
}
