package leaderelection

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/internal/client"
)

// Options are a component's leader election settings, with Kubernetes'
// flag names and defaults.
type Options struct {
	// LeaderElect runs the component only while it holds the Lease.
	LeaderElect bool
	// LeaseName names the Lease in kube-system.
	LeaseName string
	// Identity names this copy; empty means DefaultIdentity().
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod: see Config.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// DefaultOptions returns Kubernetes' defaults (15 s, 10 s, 2 s) with
// election on, for the Lease called name.
func DefaultOptions(name string) Options {
	return Options{
		LeaderElect:   true,
		LeaseName:     name,
		LeaseDuration: 15 * time.Second,
		RenewDeadline: 10 * time.Second,
		RetryPeriod:   2 * time.Second,
	}
}

// AddFlags registers the --leader-elect flags.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "run only while holding the leader Lease, so that several copies can run and one acts")
	fs.StringVar(&o.LeaseName, "leader-elect-resource-name", o.LeaseName, "name of the leader Lease in kube-system")
	fs.StringVar(&o.Identity, "leader-elect-identity", o.Identity, "this copy's name in the Lease (default: host_pid_random)")
	fs.DurationVar(&o.LeaseDuration, "leader-elect-lease-duration", o.LeaseDuration, "how long a candidate waits after the Lease last changed before taking it over")
	fs.DurationVar(&o.RenewDeadline, "leader-elect-renew-deadline", o.RenewDeadline, "how long the leader tries to renew the Lease before it stops acting")
	fs.DurationVar(&o.RetryPeriod, "leader-elect-retry-period", o.RetryPeriod, "how often candidates try to take, and the leader to renew, the Lease")
}

// Validate checks the options when election is on.
func (o *Options) Validate() error {
	if !o.LeaderElect {
		return nil
	}
	if o.LeaseName == "" {
		return errors.New("--leader-elect-resource-name must not be empty")
	}
	if o.RetryPeriod <= 0 || o.RenewDeadline <= o.RetryPeriod || o.LeaseDuration <= o.RenewDeadline {
		return errors.New("want 0 < --leader-elect-retry-period < --leader-elect-renew-deadline < --leader-elect-lease-duration")
	}
	return nil
}

// Config is the elector configuration for these options.
func (o *Options) Config(c *client.Client) Config {
	id := o.Identity
	if id == "" {
		id = DefaultIdentity()
	}
	return Config{
		Client: c, Namespace: metav1.NamespaceSystem, Name: o.LeaseName, Identity: id,
		LeaseDuration: o.LeaseDuration, RenewDeadline: o.RenewDeadline, RetryPeriod: o.RetryPeriod,
	}
}

// RunOrLead runs run(ctx) directly when election is off, and otherwise
// only while holding the Lease, as often as leadership is won again.
func (o *Options) RunOrLead(ctx context.Context, c *client.Client, run func(ctx context.Context)) error {
	return o.RunOrLeadE(ctx, c, func(ctx context.Context) error {
		run(ctx)
		return nil
	})
}

// RunOrLeadE is RunOrLead with a run that can fail: its error is
// returned, directly when election is off and, when it is on, from a
// term that failed while ctx had not ended (see RunE), after the Lease
// was given up.
func (o *Options) RunOrLeadE(ctx context.Context, c *client.Client, run func(ctx context.Context) error) error {
	if !o.LeaderElect {
		return run(ctx)
	}
	return RunE(ctx, o.Config(c), run, nil)
}
