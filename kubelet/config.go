package kubelet

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/skiffdev/skiff/kubelet/runtime"
)

// Config configures a kubelet.
type Config struct {
	// NodeName is the name of this node's Node object; the host name when
	// empty.
	NodeName string
	// NodeIP is the address other machines reach this node on; found from
	// the default route when empty.
	NodeIP string
	// RootDir holds the node's state: images, containers, pod directories.
	RootDir string
	// StateDir holds what needs to outlive a kubelet restart but not a
	// reboot: the runtime's container records and pinned namespaces. A
	// tmpfs (/run) makes starting and removing containers cheaper.
	StateDir string
	// PodCIDR is used for pod IPs when the Node has no spec.podCIDR.
	PodCIDR string
	// ClusterCIDR holds every node's pod CIDR: routes to other nodes' pods
	// are made inside it, the rest of it is unreachable, and pod traffic
	// leaving it is masqueraded.
	ClusterCIDR string
	// CgroupRoot is the cgroup under which every pod gets its own.
	CgroupRoot string
	// Listen is the address of the kubelet's API (logs and exec for the API
	// server); NodeIP:10250 when empty.
	Listen string
	// KubeletPort is the port advertised in the Node's daemonEndpoints.
	KubeletPort int32
	// InsecureRegistries are registries reached over plain HTTP.
	InsecureRegistries []string
	// MaxPods is the node's pod capacity.
	MaxPods int64
	// SystemReservedCPU and SystemReservedMemory are kept back from
	// allocatable for the system and Skiff itself.
	SystemReservedCPU    string
	SystemReservedMemory string
	// ContainerLogMaxSize caps one container's log file; the file is then
	// rotated and one older file kept.
	ContainerLogMaxSize string
	// Bridge is the node's pod bridge.
	Bridge string

	// ClusterDNS are the nameservers of pods with dnsPolicy ClusterFirst
	// (Kubernetes' --cluster-dns); empty, those pods fall back to the
	// Default policy, with a MissingClusterDNS event.
	ClusterDNS []string
	// ClusterDomain is the cluster's DNS domain; ClusterFirst pods search
	// NAMESPACE.svc.DOMAIN, svc.DOMAIN and DOMAIN before the node's own
	// search domains.
	ClusterDomain string
	// ResolvConf is the node's resolver configuration, the base of every
	// pod's: the whole of it with dnsPolicy Default, its search domains
	// with ClusterFirst.
	ResolvConf string
	// LocalDNS is the address of a DNS server that this node serves
	// itself (the agent's node-local DNS server), which the kubelet puts
	// on the pod bridge as a /32 so that pods reach it through their
	// gateway. Not a flag: skiff agent sets it to the first --cluster-dns
	// address when it runs that server.
	LocalDNS string

	// InitialBackoff and MaxBackoff bound how long a crashing container or
	// a failing image pull waits before the next try; the wait doubles
	// from the first to the second.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// SyncInterval is how often every pod is synced even when nothing
	// happened, and the runtime relisted: the safety net of the
	// level-triggered design.
	SyncInterval time.Duration

	// ServingTLS is the TLS of the kubelet API: the node's serving
	// certificate, signed by the cluster CA for this node
	// (GetCertificate, so that a renewed one is used at once), and the
	// cluster CA that callers' certificates must chain to (ClientCAs).
	// Required. Not a flag: skiff agent gets both when it joins the
	// cluster (internal/join).
	ServingTLS *tls.Config `json:"-"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		RootDir:              "/var/lib/skiff",
		StateDir:             "/run/skiff",
		ClusterCIDR:          "10.244.0.0/16",
		CgroupRoot:           "/skiff",
		KubeletPort:          10250,
		MaxPods:              110,
		SystemReservedCPU:    "100m",
		SystemReservedMemory: "256Mi",
		ContainerLogMaxSize:  "10Mi",
		Bridge:               "skiff0",
		ClusterDNS:           []string{"169.254.20.10"},
		ClusterDomain:        "cluster.local",
		ResolvConf:           "/etc/resolv.conf",
		InitialBackoff:       10 * time.Second,
		MaxBackoff:           5 * time.Minute,
		SyncInterval:         10 * time.Second,
	}
}

// AddFlags registers the kubelet's flags.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.NodeName, "node-name", c.NodeName, "name of this node (default: the host name)")
	fs.StringVar(&c.NodeIP, "node-ip", c.NodeIP, "address of this node (default: the address of the default route's interface)")
	fs.StringVar(&c.RootDir, "root-dir", c.RootDir, "directory for the node's state: images, containers, pod volumes and logs")
	fs.StringVar(&c.StateDir, "state-dir", c.StateDir, "directory for state that lasts until a reboot: container records and pinned pod namespaces (best on a tmpfs)")
	fs.StringVar(&c.PodCIDR, "pod-cidr", c.PodCIDR, "pod addresses to use while the Node has no spec.podCIDR, e.g. 10.244.0.0/24")
	fs.StringVar(&c.ClusterCIDR, "cluster-cidr", c.ClusterCIDR, "the CIDR all nodes' pod CIDRs come from")
	fs.StringVar(&c.CgroupRoot, "cgroup-root", c.CgroupRoot, "cgroup under which pods get their cgroups")
	fs.StringVar(&c.Listen, "kubelet-listen", c.Listen, "address of the kubelet API used by the API server for logs and exec (default NODE-IP:10250)")
	fs.StringSliceVar(&c.InsecureRegistries, "insecure-registry", c.InsecureRegistries, "registry host[:port] to pull from over plain HTTP (repeatable)")
	fs.Int64Var(&c.MaxPods, "max-pods", c.MaxPods, "how many pods this node runs at most")
	fs.StringVar(&c.SystemReservedCPU, "system-reserved-cpu", c.SystemReservedCPU, "CPU kept back from pods")
	fs.StringVar(&c.SystemReservedMemory, "system-reserved-memory", c.SystemReservedMemory, "memory kept back from pods")
	fs.StringVar(&c.ContainerLogMaxSize, "container-log-max-size", c.ContainerLogMaxSize, "size at which a container's log file is rotated")
	fs.DurationVar(&c.InitialBackoff, "restart-backoff", c.InitialBackoff, "first wait before restarting a crashed container or retrying an image pull")
	fs.DurationVar(&c.MaxBackoff, "max-restart-backoff", c.MaxBackoff, "longest wait before restarting a crashed container")
	fs.DurationVar(&c.SyncInterval, "sync-interval", c.SyncInterval, "how often every pod is checked even when nothing changed")
	fs.StringSliceVar(&c.ClusterDNS, "cluster-dns", c.ClusterDNS, "nameserver addresses of pods with dnsPolicy ClusterFirst, comma-separated (the node-local DNS server listens on the first); empty: those pods use the node's resolvers")
	fs.StringVar(&c.ClusterDomain, "cluster-domain", c.ClusterDomain, "DNS domain of the cluster: pods search NAMESPACE.svc.DOMAIN, svc.DOMAIN and DOMAIN")
	fs.StringVar(&c.ResolvConf, "resolv-conf", c.ResolvConf, "the node's resolver configuration: pods with dnsPolicy Default get it, ClusterFirst pods its search domains, and the node-local DNS server forwards to its nameservers")
}

// Complete validates the configuration and fills in what is found on
// the machine: NodeName (the host name) and NodeIP (the address of the
// default route's interface). The agent calls it before it joins, since
// the kubelet's certificate must name them.
func (c *Config) Complete() error {
	if err := c.Validate(); err != nil {
		return err
	}
	if c.NodeIP == "" {
		ip, err := defaultRouteIP()
		if err != nil {
			return fmt.Errorf("--node-ip not given and none found: %w", err)
		}
		c.NodeIP = ip.String()
	}
	return nil
}

// Validate checks the configuration and fills in NodeName.
func (c *Config) Validate() error {
	if c.NodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("--node-name not given and the host name is unknown: %w", err)
		}
		c.NodeName = strings.ToLower(h)
	}
	if c.RootDir == "" {
		return errors.New("--root-dir must not be empty")
	}
	if c.StateDir == "" {
		return errors.New("--state-dir must not be empty")
	}
	if c.PodCIDR != "" {
		p, err := netip.ParsePrefix(c.PodCIDR)
		if err != nil || !p.Addr().Is4() || p.Bits() > 29 {
			return fmt.Errorf("--pod-cidr %q: want an IPv4 CIDR of /29 or larger, e.g. 10.244.0.0/24", c.PodCIDR)
		}
	}
	if p, err := netip.ParsePrefix(c.ClusterCIDR); err != nil || !p.Addr().Is4() {
		return fmt.Errorf("--cluster-cidr %q: want an IPv4 CIDR, e.g. 10.244.0.0/16", c.ClusterCIDR)
	}
	if c.NodeIP != "" {
		if _, err := netip.ParseAddr(c.NodeIP); err != nil {
			return fmt.Errorf("--node-ip %q: not an IP address", c.NodeIP)
		}
	}
	for name, v := range map[string]string{"--system-reserved-cpu": c.SystemReservedCPU, "--system-reserved-memory": c.SystemReservedMemory, "--container-log-max-size": c.ContainerLogMaxSize} {
		if _, err := resource.ParseQuantity(v); err != nil {
			return fmt.Errorf("%s %q: %v", name, v, err)
		}
	}
	if c.InitialBackoff <= 0 || c.MaxBackoff < c.InitialBackoff {
		return fmt.Errorf("--restart-backoff %v and --max-restart-backoff %v: want 0 < first ≤ longest", c.InitialBackoff, c.MaxBackoff)
	}
	if c.SyncInterval <= 0 {
		return errors.New("--sync-interval must be positive")
	}
	for _, s := range c.ClusterDNS {
		if _, err := netip.ParseAddr(s); err != nil {
			return fmt.Errorf("--cluster-dns %q: not an IP address", s)
		}
	}
	if c.LocalDNS != "" {
		if a, err := netip.ParseAddr(c.LocalDNS); err != nil || !a.Is4() {
			return fmt.Errorf("node-local DNS address %q: not an IPv4 address", c.LocalDNS)
		}
	}
	return nil
}

// reserved is what the node keeps back from allocatable.
func (c *Config) reserved() corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(c.SystemReservedCPU),
		corev1.ResourceMemory: resource.MustParse(c.SystemReservedMemory),
	}
}

func (c *Config) logMaxBytes() int64 {
	q := resource.MustParse(c.ContainerLogMaxSize)
	return q.Value()
}

// runtimeOptions places the runtime's state in StateDir and the
// containers' writable layers in RootDir.
func (c *Config) runtimeOptions() runtime.Options {
	return runtime.Options{
		Root:         filepath.Join(c.StateDir, "runtime"),
		WritableRoot: filepath.Join(c.RootDir, "containers"),
		CgroupRoot:   c.CgroupRoot,
	}
}

// RuntimeOptions are the options of the container runtime this
// configuration gives, for tools that look at a node's containers.
func (c *Config) RuntimeOptions() runtime.Options { return c.runtimeOptions() }
