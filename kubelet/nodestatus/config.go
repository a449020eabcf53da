package nodestatus

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"
)

// Defaults of Config's zero fields.
const (
	DefaultKubeletPort          = 10250
	DefaultMaxPods              = 110
	DefaultLeaseDuration        = 40 * time.Second
	DefaultRenewInterval        = 10 * time.Second
	DefaultStatusInterval       = 10 * time.Second
	DefaultStatusReportInterval = time.Minute
)

// Config says what the node reports about itself and how often. Zero
// fields take the defaults above; the flags that fill it belong to the
// kubelet, not to this package.
type Config struct {
	// NodeName is the name of the Node object (required).
	NodeName string
	// NodeIP is reported as the node's InternalIP address. Empty means the
	// node reports only its Hostname address.
	NodeIP string
	// KubeletPort is the port of the kubelet's API, reported in
	// status.daemonEndpoints.kubeletEndpoint (default 10250).
	KubeletPort int32

	// PodCIDR becomes spec.podCIDR(s) when the Node is created, or when an
	// existing Node has none. A Node's pod CIDR never changes once set.
	PodCIDR string

	// Reserved is subtracted from the machine's capacity to give the
	// allocatable resources (what the scheduler may hand to pods):
	// the share kept for the system and the kubelet itself.
	Reserved corev1.ResourceList
	// MaxPods is the pods capacity (default 110).
	MaxPods int64
	// Labels are added to the Node's labels, next to the well-known
	// kubernetes.io/hostname, kubernetes.io/os and kubernetes.io/arch.
	Labels map[string]string
	// RootDir, when set, is the directory whose filesystem is reported as
	// the ephemeral-storage capacity (the kubelet's --root-dir).
	RootDir string

	// RuntimeVersion is the container runtime's own version string,
	// e.g. "libcontainer 1.5.2"; see RuntimeVersionString.
	RuntimeVersion string

	// LeaseDuration is written into the Lease: how long after a renewal
	// the node still counts as alive (default 40s).
	LeaseDuration time.Duration
	// RenewInterval is how often the Lease is renewed (default 10s).
	RenewInterval time.Duration
	// StatusInterval is how often the status is recomputed and compared
	// with the Node's (default 10s).
	StatusInterval time.Duration
	// StatusReportInterval is how often the status is written even when
	// nothing changed, to move the conditions' lastHeartbeatTime
	// (default 1m).
	StatusReportInterval time.Duration

	// Health reports whether the kubelet works: nil means Ready, an error
	// makes the Ready condition False with the error's text as message.
	// It is called once per StatusInterval and must return quickly. Nil
	// Health means always healthy.
	Health func() error

	// Clock is the source of time (default the real clock); tests inject
	// a fake one.
	Clock clock.Clock
}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.KubeletPort == 0 {
		c.KubeletPort = DefaultKubeletPort
	}
	if c.MaxPods == 0 {
		c.MaxPods = DefaultMaxPods
	}
	if c.LeaseDuration == 0 {
		c.LeaseDuration = DefaultLeaseDuration
	}
	if c.RenewInterval == 0 {
		c.RenewInterval = DefaultRenewInterval
	}
	if c.StatusInterval == 0 {
		c.StatusInterval = DefaultStatusInterval
	}
	if c.StatusReportInterval == 0 {
		c.StatusReportInterval = DefaultStatusReportInterval
	}
	if c.Health == nil {
		c.Health = func() error { return nil }
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	return c
}

// Validate checks the fields a caller sets; zero values are fine where a
// default exists.
func (c *Config) Validate() error {
	var errs []error
	if c.NodeName == "" {
		errs = append(errs, errors.New("node name is required"))
	}
	if c.NodeIP != "" {
		if _, err := netip.ParseAddr(c.NodeIP); err != nil {
			errs = append(errs, fmt.Errorf("node IP %q: %w", c.NodeIP, err))
		}
	}
	if c.PodCIDR != "" {
		if _, err := netip.ParsePrefix(c.PodCIDR); err != nil {
			errs = append(errs, fmt.Errorf("pod CIDR %q: %w", c.PodCIDR, err))
		}
	}
	if c.KubeletPort < 0 || c.KubeletPort > 65535 {
		errs = append(errs, fmt.Errorf("kubelet port %d is out of range", c.KubeletPort))
	}
	if c.MaxPods < 0 {
		errs = append(errs, fmt.Errorf("max pods %d must not be negative", c.MaxPods))
	}
	for name, d := range map[string]time.Duration{
		"lease duration": c.LeaseDuration, "renew interval": c.RenewInterval,
		"status interval": c.StatusInterval, "status report interval": c.StatusReportInterval,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s %v must not be negative", name, d))
		}
	}
	if c.LeaseDuration > 0 && c.LeaseDuration < time.Second {
		errs = append(errs, fmt.Errorf("lease duration %v is shorter than a second", c.LeaseDuration))
	}
	for name, q := range c.Reserved {
		if q.Sign() < 0 {
			errs = append(errs, fmt.Errorf("reserved %s %s must not be negative", name, q.String()))
		}
	}
	return errors.Join(errs...)
}
