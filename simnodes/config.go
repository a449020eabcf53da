package simnodes

import (
	"errors"
	"fmt"
	"maps"
	"math/bits"
	"net/netip"
	"slices"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/skiffdev/skiff/internal/client"
)

// Config configures a set of simulated nodes.
type Config struct {
	// Connection says how to reach and authenticate to the API server;
	// the binary fills it from the kubeconfig or the connection flags.
	// Ignored when Client is set.
	Connection client.Config
	// Client, when not nil, is used instead of dialling Connection; Run
	// does not close it. Tests share one client this way.
	Client *client.Client

	// Count is how many nodes to simulate.
	Count int
	// NamePrefix starts every node's name; the nodes are called
	// NamePrefix+"0" to NamePrefix+(Count-1).
	NamePrefix string

	// CPU, Memory and Pods are each node's capacity, all of it
	// allocatable.
	CPU, Memory, Pods resource.Quantity
	// Labels are added to every node, beside the ones simnodes always
	// sets (see NodeLabels).
	Labels map[string]string

	// StartDelay is how long after a pod is bound to a simulated node it
	// is reported Running.
	StartDelay time.Duration
	// HeartbeatInterval is how often each node's Lease is renewed.
	HeartbeatInterval time.Duration
	// NodeStatusInterval is how often each node's status (its Ready
	// condition's lastHeartbeatTime) is written when nothing changes;
	// Kubernetes' kubelet uses 5 minutes, the Lease being the frequent
	// heartbeat.
	NodeStatusInterval time.Duration

	// PodCIDR is the IPv4 range the fake node and pod addresses come
	// from. Each node gets its own block of it: the block's first host
	// address is the node's InternalIP, the rest go to its pods. The
	// addresses are only written into status; nothing routes them, so
	// pick a range no real network uses.
	PodCIDR string
}

// DefaultConfig returns the defaults: one node called sim-0 with 8 CPUs,
// 32Gi of memory and room for 110 pods, heartbeats every 10 s, and
// addresses from 10.128.0.0/10.
func DefaultConfig() Config {
	return Config{
		Count:              1,
		NamePrefix:         "sim-",
		CPU:                resource.MustParse("8"),
		Memory:             resource.MustParse("32Gi"),
		Pods:               resource.MustParse("110"),
		HeartbeatInterval:  10 * time.Second,
		NodeStatusInterval: 5 * time.Minute,
		PodCIDR:            "10.128.0.0/10",
	}
}

// AddFlags registers the flags of "skiff simnodes".
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	fs.IntVar(&c.Count, "count", c.Count, "number of simulated nodes")
	fs.StringVar(&c.NamePrefix, "name-prefix", c.NamePrefix, "prefix of the node names, followed by 0, 1, 2, ...")
	fs.Var(quantityValue{&c.CPU}, "cpu", "CPU capacity of each node")
	fs.Var(quantityValue{&c.Memory}, "memory", "memory capacity of each node")
	fs.Var(quantityValue{&c.Pods}, "pods", "pod capacity of each node")
	fs.StringToStringVar(&c.Labels, "node-labels", c.Labels, "extra labels for every node (key=value,...)")
	fs.DurationVar(&c.StartDelay, "start-delay", c.StartDelay, "how long after binding a pod is reported Running")
	fs.DurationVar(&c.HeartbeatInterval, "heartbeat-interval", c.HeartbeatInterval, "how often each node renews its Lease")
	fs.DurationVar(&c.NodeStatusInterval, "node-status-interval", c.NodeStatusInterval, "how often each node rewrites its status when nothing changed")
	fs.StringVar(&c.PodCIDR, "pod-cidr", c.PodCIDR, "IPv4 range the fake node and pod addresses are taken from")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.Client == nil && c.Connection.Server == "" {
		errs = append(errs, errors.New("no API server given (--kubeconfig or --server)"))
	}
	if c.Count < 1 {
		errs = append(errs, fmt.Errorf("--count %d: must be at least 1", c.Count))
	}
	if c.Count >= 1 {
		last := nodeName(c.NamePrefix, c.Count-1)
		for _, msg := range validation.IsDNS1123Subdomain(last) {
			errs = append(errs, fmt.Errorf("--name-prefix %q: node name %q: %s", c.NamePrefix, last, msg))
		}
	}
	for _, q := range []struct {
		flag string
		q    resource.Quantity
	}{{"cpu", c.CPU}, {"memory", c.Memory}, {"pods", c.Pods}} {
		if q.q.Sign() <= 0 {
			errs = append(errs, fmt.Errorf("--%s %s: must be positive", q.flag, q.q.String()))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.Labels)) {
		v := c.Labels[k]
		for _, msg := range validation.IsQualifiedName(k) {
			errs = append(errs, fmt.Errorf("--node-labels: key %q: %s", k, msg))
		}
		for _, msg := range validation.IsValidLabelValue(v) {
			errs = append(errs, fmt.Errorf("--node-labels: value %q of %q: %s", v, k, msg))
		}
	}
	if c.StartDelay < 0 {
		errs = append(errs, errors.New("--start-delay must not be negative"))
	}
	if c.HeartbeatInterval <= 0 {
		errs = append(errs, errors.New("--heartbeat-interval must be positive"))
	}
	if c.NodeStatusInterval <= 0 {
		errs = append(errs, errors.New("--node-status-interval must be positive"))
	}
	if c.Count >= 1 && c.Pods.Sign() > 0 {
		if _, err := newAddressPlan(c.PodCIDR, c.Count, c.Pods.Value()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// addressPlan divides PodCIDR into one block per node.
type addressPlan struct {
	base      uint32 // first address of the range
	blockBits int    // host bits of each node's block
}

// newAddressPlan checks that count blocks, each with room for the node's
// address and pods pod addresses, fit into cidr.
func newAddressPlan(cidr string, count int, pods int64) (addressPlan, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return addressPlan{}, fmt.Errorf("--pod-cidr %q: %w", cidr, err)
	}
	if !p.Addr().Is4() {
		return addressPlan{}, fmt.Errorf("--pod-cidr %q: only IPv4 ranges are supported", cidr)
	}
	p = p.Masked()
	// A block holds its network address, the node's address, the pods'
	// and a broadcast address; at least a /24, which is easy to read.
	blockBits := max(8, bits.Len64(uint64(pods)+2))
	rangeBits := 32 - p.Bits()
	if blockBits > rangeBits || uint64(count) > 1<<(rangeBits-blockBits) {
		have := uint64(0)
		if blockBits <= rangeBits {
			have = 1 << (rangeBits - blockBits)
		}
		return addressPlan{}, fmt.Errorf("--pod-cidr %q holds %d blocks of /%d (one per node for %d pods), fewer than --count %d",
			cidr, have, 32-blockBits, pods, count)
	}
	a := p.Addr().As4()
	return addressPlan{base: uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]), blockBits: blockBits}, nil
}

// block returns node i's range.
func (p addressPlan) block(i int) netip.Prefix {
	return netip.PrefixFrom(p.addr(i, 0), 32-p.blockBits)
}

// nodeIP is node i's InternalIP: the first host address of its block.
func (p addressPlan) nodeIP(i int) netip.Addr { return p.addr(i, 1) }

// podIPs is how many pod addresses a block has: all but the network,
// node and broadcast addresses.
func (p addressPlan) podIPs() int { return 1<<p.blockBits - 3 }

// podIP returns the n-th pod address (0 ≤ n < podIPs) of node i.
func (p addressPlan) podIP(i, n int) netip.Addr { return p.addr(i, 2+n) }

// podIndex is the inverse of podIP: which pod address of node i ip is.
func (p addressPlan) podIndex(i int, ip netip.Addr) (int, bool) {
	if !ip.Is4() || !p.block(i).Contains(ip) {
		return 0, false
	}
	n := int(toUint32(ip)-toUint32(p.block(i).Addr())) - 2
	return n, n >= 0 && n < p.podIPs()
}

func (p addressPlan) addr(i, offset int) netip.Addr {
	v := p.base + uint32(i)<<p.blockBits + uint32(offset)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func toUint32(ip netip.Addr) uint32 {
	a := ip.As4()
	return uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
}

// quantityValue makes a resource.Quantity a pflag.Value.
type quantityValue struct{ q *resource.Quantity }

func (v quantityValue) String() string { return v.q.String() }
func (v quantityValue) Type() string   { return "quantity" }

func (v quantityValue) Set(s string) error {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return err
	}
	*v.q = q
	return nil
}
