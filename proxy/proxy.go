package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/informers"
	"github.com/skiffdev/skiff/internal/logging"
)

// ErrNotRoot is returned by Run when the process cannot program nftables.
var ErrNotRoot = errors.New("the proxy needs root (CAP_NET_ADMIN) to program nftables")

// Config configures a proxy.
type Config struct {
	// NodeName is this node's name, for logs.
	NodeName string
	// ClusterCIDR is the pod range; connections to a ClusterIP from
	// outside it are masqueraded. Empty: none are.
	ClusterCIDR string
	// ServiceCIDR is the ClusterIP range; new connections to an address
	// in it that no service port has are dropped.
	ServiceCIDR string
	// SyncPeriod is how often the table is checked against what the
	// proxy wrote (and everything re-rendered from the caches); when
	// chains were added or removed behind its back, the whole table is
	// rewritten.
	SyncPeriod time.Duration
	// MinSyncInterval is the shortest time between two syncs: changes
	// arriving closer together are written in one transaction.
	MinSyncInterval time.Duration
	// NetNSPath is the network namespace to program; empty means the
	// process's own. Tests use it; a node leaves it empty.
	NetNSPath string
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		ClusterCIDR:     "10.244.0.0/16",
		ServiceCIDR:     "10.96.0.0/16",
		SyncPeriod:      30 * time.Second,
		MinSyncInterval: 100 * time.Millisecond,
	}
}

// AddFlags registers the configuration's flags.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.NodeName, "node-name", c.NodeName, "name of this node (default: the host name)")
	fs.StringVar(&c.ClusterCIDR, "cluster-cidr", c.ClusterCIDR, "pod address range; connections to a Service from outside it are masqueraded")
	fs.StringVar(&c.ServiceCIDR, "service-cidr", c.ServiceCIDR, "ClusterIP range; connections to an unallocated address in it are dropped")
	fs.DurationVar(&c.SyncPeriod, "sync-period", c.SyncPeriod, "how often the nftables table is checked, and rewritten if it was changed behind the proxy's back")
	fs.DurationVar(&c.MinSyncInterval, "min-sync-interval", c.MinSyncInterval, "shortest time between two rule updates; changes in between are batched")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.ClusterCIDR != "" {
		if p, err := netip.ParsePrefix(c.ClusterCIDR); err != nil || !p.Addr().Is4() {
			errs = append(errs, fmt.Errorf("cluster-cidr: Invalid value: %q: must be an IPv4 CIDR", c.ClusterCIDR))
		}
	}
	if p, err := netip.ParsePrefix(c.ServiceCIDR); err != nil || !p.Addr().Is4() {
		errs = append(errs, fmt.Errorf("service-cidr: Invalid value: %q: must be an IPv4 CIDR", c.ServiceCIDR))
	}
	if c.SyncPeriod <= 0 {
		errs = append(errs, fmt.Errorf("sync-period: Invalid value: %v: must be greater than 0", c.SyncPeriod))
	}
	if c.MinSyncInterval < 0 {
		errs = append(errs, fmt.Errorf("min-sync-interval: Invalid value: %v: must be greater than or equal to 0", c.MinSyncInterval))
	}
	return errors.Join(errs...)
}

func (c *Config) renderConfig() RenderConfig {
	var rc RenderConfig
	if p, err := netip.ParsePrefix(c.ClusterCIDR); err == nil {
		rc.ClusterCIDR = p.Masked()
	}
	if p, err := netip.ParsePrefix(c.ServiceCIDR); err == nil {
		rc.ServiceCIDR = p.Masked()
	}
	return rc
}

// Proxy keeps one node's nftables table in step with the Services and
// EndpointSlices of the cluster.
type Proxy struct {
	cfg    Config
	syncer *Syncer

	factory          *informers.Factory
	services, slices cache.SharedIndexInformer
	// kick has room for one pending "something changed".
	kick chan struct{}
	// synced, when set, is called after every successful sync (tests).
	synced func(SyncStats)
}

// Run programs the table of this node until ctx ends: a full sync as soon
// as the caches are filled (replacing whatever an earlier proxy left),
// then one transaction per batch of changes, at most one per
// MinSyncInterval, and every SyncPeriod a check of the table (rewritten
// as a whole if its chains are not the ones written). The table is left
// in place when Run returns, so that traffic keeps flowing across a
// restart. It logs through the logger ctx carries, with component=proxy
// and the node's name.
func Run(ctx context.Context, c *client.Client, cfg Config) error {
	ctx, _ = logging.With(ctx, "component", "proxy", "node", cfg.NodeName)
	p, err := New(c, cfg)
	if err != nil {
		return err
	}
	defer p.syncer.Close()
	return p.Run(ctx)
}

// New builds a proxy over c without starting it.
func New(c *client.Client, cfg Config) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	syncer, err := NewSyncer(cfg.NetNSPath)
	if err != nil {
		return nil, err
	}
	f := informers.NewFactory(c, 0)
	p := &Proxy{
		cfg:      cfg,
		syncer:   syncer,
		services: f.Services(),
		slices:   f.EndpointSlices(),
		kick:     make(chan struct{}, 1),
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { p.changed() },
		UpdateFunc: func(any, any) { p.changed() },
		DeleteFunc: func(any) { p.changed() },
	}
	if _, err := p.services.AddEventHandler(handler); err != nil {
		return nil, err
	}
	if _, err := p.slices.AddEventHandler(handler); err != nil {
		return nil, err
	}
	p.factory = f
	return p, nil
}

func (p *Proxy) changed() {
	select {
	case p.kick <- struct{}{}:
	default: // a sync is already due
	}
}

// Run runs the proxy until ctx ends, logging through the logger ctx
// carries.
func (p *Proxy) Run(ctx context.Context) error {
	log := logging.From(ctx)
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		p.factory.Wait()
	}()
	p.factory.Start(ctx)
	if !p.factory.WaitForCacheSync(ctx) {
		return nil // stopped before the caches filled: a normal shutdown
	}
	log.Info("proxy caches synced; writing the table", "table", TableName)

	full := true // the first sync replaces the table
	resync := time.NewTimer(p.cfg.SyncPeriod)
	defer resync.Stop()
	var retry <-chan time.Time
	backoff := p.cfg.MinSyncInterval
	for {
		started := time.Now()
		err := p.syncOnce(ctx, full)
		if err != nil {
			log.Error("proxy sync failed; retrying", "err", err, "in", backoff)
			retry = time.After(backoff)
			backoff = min(2*max(backoff, 100*time.Millisecond), 30*time.Second)
			full = true
		} else {
			retry = nil
			backoff = p.cfg.MinSyncInterval
			if full {
				resync.Reset(p.cfg.SyncPeriod)
			}
			full = false
		}

		// Wait for a reason to sync again...
		select {
		case <-ctx.Done():
			return nil
		case <-p.kick:
		case <-resync.C:
			// Rewriting a big table costs seconds of kernel time: only
			// when it is not what was written (someone changed it).
			full = p.syncer.Drifted()
			if !full {
				resync.Reset(p.cfg.SyncPeriod)
			}
		case <-retry:
		}
		// ...and no sooner than MinSyncInterval after the last one
		// started, so that a burst of changes is one transaction.
		if wait := p.cfg.MinSyncInterval - time.Since(started); wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
		select { // the changes seen while waiting are part of this sync
		case <-p.kick:
		default:
		}
	}
}

// syncOnce renders the caches and writes the result.
func (p *Proxy) syncOnce(ctx context.Context, full bool) error {
	svcObjs := p.services.GetStore().List()
	sliceObjs := p.slices.GetStore().List()
	svcs := make([]*corev1.Service, 0, len(svcObjs))
	for _, o := range svcObjs {
		if s, ok := o.(*corev1.Service); ok {
			svcs = append(svcs, s)
		}
	}
	slices := make([]*discoveryv1.EndpointSlice, 0, len(sliceObjs))
	for _, o := range sliceObjs {
		if s, ok := o.(*discoveryv1.EndpointSlice); ok {
			slices = append(slices, s)
		}
	}
	start := time.Now()
	rs := Render(p.cfg.renderConfig(), svcs, slices)
	st, err := p.syncer.Sync(rs, full)
	if err != nil {
		return err
	}
	if st.Messages > 0 {
		logging.From(ctx).Debug("proxy table synced", "full", st.Full, "messages", st.Messages,
			"chainsChanged", st.ChainsChanged, "conntrackDeleted", st.ConntrackDeleted,
			"services", len(svcs), "took", time.Since(start))
	}
	if p.synced != nil {
		p.synced(st)
	}
	return nil
}
