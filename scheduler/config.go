package scheduler

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/leaderelection"
	"github.com/skiffdev/skiff/scheduler/algorithm"
)

// Config configures the scheduler.
type Config struct {
	// Connection says how to reach and authenticate to the API server;
	// the binary fills it from the kubeconfig or the connection flags.
	// Ignored when Client is set.
	Connection client.Config
	// Client, when not nil, is used instead of dialling Connection; Run
	// does not close it. `skiff server` and tests share one client this
	// way.
	Client *client.Client

	// SchedulerName is the spec.schedulerName of the pods this scheduler
	// places; pods with an empty schedulerName are placed too when it is
	// "default-scheduler".
	SchedulerName string

	// Weights weigh the scores of the decision (0 turns one off).
	Weights algorithm.Weights
	// PercentageOfNodesToScore bounds the search in large clusters; 0 is
	// the adaptive default. See algorithm.Config.
	PercentageOfNodesToScore int

	// BindWorkers is how many bindings (and status writes) are made at
	// the same time. Each binding waits for an etcd commit (an fsync);
	// many in flight let etcd commit them together, which is what makes
	// a burst of pods go fast (16 workers bind about half as many pods
	// per second as 64 on a 2-core machine).
	BindWorkers int

	// LeaderElection makes the scheduler schedule only while this copy
	// holds the kube-system/skiff-scheduler Lease (on by default).
	LeaderElection leaderelection.Options
}

// DefaultConfig returns the defaults: the default scheduler name,
// Kubernetes' weights and adaptive search, 64 bind workers.
func DefaultConfig() Config {
	return Config{
		SchedulerName: corev1.DefaultSchedulerName,
		Weights:       algorithm.DefaultWeights,
		BindWorkers:   64,
		// Several copies may run; the holder of this Lease schedules.
		LeaderElection: leaderelection.DefaultOptions("skiff-scheduler"),
	}
}

// AddFlags registers the flags of "skiff scheduler".
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.SchedulerName, "scheduler-name", c.SchedulerName, "spec.schedulerName of the pods to schedule")
	fs.Int64Var(&c.Weights.LeastAllocated, "weight-least-allocated", c.Weights.LeastAllocated, "weight of the score that prefers nodes with more free cpu and memory")
	fs.Int64Var(&c.Weights.BalancedAllocation, "weight-balanced-allocation", c.Weights.BalancedAllocation, "weight of the score that prefers nodes whose cpu and memory use stay balanced")
	fs.Int64Var(&c.Weights.Spread, "weight-spread", c.Weights.Spread, "weight of the score that spreads pods of one owner across nodes")
	fs.Int64Var(&c.Weights.NodeAffinity, "weight-node-affinity", c.Weights.NodeAffinity, "weight of preferred node affinity")
	fs.IntVar(&c.PercentageOfNodesToScore, "percentage-of-nodes-to-score", c.PercentageOfNodesToScore, "share of the nodes to find fitting before choosing among them (0: adaptive, 100: all)")
	fs.IntVar(&c.BindWorkers, "bind-workers", c.BindWorkers, "bindings written at the same time")
	c.LeaderElection.AddFlags(fs)
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.Client == nil && c.Connection.Server == "" {
		errs = append(errs, errors.New("no API server given (--kubeconfig or --server)"))
	}
	if c.SchedulerName == "" {
		errs = append(errs, errors.New("--scheduler-name must not be empty"))
	}
	// The decision's own rules (weights not negative, a percentage) live
	// with the decision.
	algo := algorithm.Config{Weights: c.Weights, PercentageOfNodesToScore: c.PercentageOfNodesToScore}
	if err := algo.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.BindWorkers < 1 {
		errs = append(errs, fmt.Errorf("--bind-workers %d: must be at least 1", c.BindWorkers))
	}
	if err := c.LeaderElection.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
