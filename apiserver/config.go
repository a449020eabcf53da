package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"time"

	"github.com/spf13/pflag"
	utilnet "k8s.io/apimachinery/pkg/util/net"

	"github.com/skiffdev/skiff/apiserver/registry"
	"github.com/skiffdev/skiff/internal/pki"
)

// Config configures the API server.
type Config struct {
	// DataDir holds the embedded etcd's data (DataDir/etcd).
	DataDir string
	// Listen is the address the gRPC API is served on.
	Listen string
	// EtcdServers, when set, names an external etcd cluster to use instead
	// of the embedded one.
	EtcdServers []string
	// RequestTimeout bounds each etcd call; a request that cannot reach
	// etcd in time fails with ServiceUnavailable.
	RequestTimeout time.Duration
	// WatchWindow is how many recent events each resource's watch cache
	// keeps for watchers that resume.
	WatchWindow int
	// BookmarkInterval is how often watchers are sent bookmarks.
	BookmarkInterval time.Duration
	// EventTTL is how long an event is kept after it is created.
	EventTTL time.Duration
	// EtcdCompactionRetention is how much history the embedded etcd keeps;
	// watchers and paginated lists older than that get Gone.
	EtcdCompactionRetention time.Duration
	// DefaultTolerationSeconds is the tolerationSeconds of the
	// not-ready:NoExecute and unreachable:NoExecute tolerations that
	// admission adds to every new pod that does not tolerate those taints
	// already: how long a pod stays on a node that stopped reporting
	// before the node lifecycle controller evicts it (Kubernetes'
	// DefaultTolerationSeconds admission plugin).
	DefaultTolerationSeconds int64
	// KubeletDialer, when set, makes the connections to kubelets that
	// PodLogs and PodExec relay to; addr is the host:port taken from the
	// pod's Node (status.addresses and
	// status.daemonEndpoints.kubeletEndpoint). Nil dials TCP. Tests set it
	// to reach kubelets that live in network namespaces of their own
	// (internal/nsutil.Dial). Not a flag.
	KubeletDialer func(ctx context.Context, addr string) (net.Conn, error)
	// ServiceClusterIPRange is the CIDR that Services' cluster IPs are
	// allocated from (IPv4, /12 to /30). Its first address is the
	// kubernetes service's and is only given to a Service that asks for
	// it.
	ServiceClusterIPRange string
	// ServiceNodePortRange is the range NodePort and LoadBalancer
	// Services' node ports are allocated from, "first-last" inclusive.
	ServiceNodePortRange string
	// TLSSANs are names and addresses the serving certificate covers
	// besides this machine's own (a load balancer's, a DNS name).
	TLSSANs []string
	// CertLifetime is how long the leaf certificates the CA signs live
	// (a year); they are renewed once a third of it is left. Tests use
	// seconds.
	CertLifetime time.Duration
	// EtcdCAFile, EtcdCertFile and EtcdKeyFile secure the connection to
	// an external etcd: the CA its servers' certificates chain to, and
	// this server's client certificate.
	EtcdCAFile, EtcdCertFile, EtcdKeyFile string

	// noEncryption stores Secrets in the clear, for the benchmark that
	// measures what encryption at rest costs (export_test.go). Such a
	// server cannot read encrypted Secrets. Not a flag.
	noEncryption bool
}

// DefaultConfig returns the defaults: state under /var/lib/skiff, the API on
// 127.0.0.1:6443.
func DefaultConfig() Config {
	return Config{
		DataDir:                  "/var/lib/skiff",
		Listen:                   "127.0.0.1:6443",
		RequestTimeout:           10 * time.Second,
		WatchWindow:              10000,
		BookmarkInterval:         5 * time.Second,
		EventTTL:                 time.Hour,
		EtcdCompactionRetention:  10 * time.Minute,
		DefaultTolerationSeconds: 300,
		ServiceClusterIPRange:    registry.DefaultServiceIPRange.String(),
		ServiceNodePortRange:     registry.DefaultServiceNodePortRange.String(),
		CertLifetime:             pki.LeafLifetime,
	}
}

// AddFlags registers the server's flags.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for the server's state (the embedded etcd lives in DATA-DIR/etcd)")
	fs.StringVar(&c.Listen, "listen", c.Listen, "address to serve the API on (host:port); use 0.0.0.0:6443 to reach it from other machines")
	fs.StringSliceVar(&c.EtcdServers, "etcd-servers", c.EtcdServers, "external etcd endpoints (comma-separated URLs); empty runs an embedded etcd")
	fs.DurationVar(&c.RequestTimeout, "etcd-request-timeout", c.RequestTimeout, "how long one etcd call may take before the request fails with ServiceUnavailable")
	fs.IntVar(&c.WatchWindow, "watch-cache-size", c.WatchWindow, "recent events kept per resource for watchers that resume")
	fs.DurationVar(&c.BookmarkInterval, "watch-bookmark-interval", c.BookmarkInterval, "how often watchers that allow bookmarks are sent one")
	fs.DurationVar(&c.EventTTL, "event-ttl", c.EventTTL, "how long events are kept")
	fs.Int64Var(&c.DefaultTolerationSeconds, "default-toleration-seconds", c.DefaultTolerationSeconds, "tolerationSeconds of the not-ready:NoExecute and unreachable:NoExecute tolerations added to every pod that has none")
	fs.DurationVar(&c.EtcdCompactionRetention, "etcd-compaction-retention", c.EtcdCompactionRetention, "history the embedded etcd keeps before compacting it")
	fs.StringVar(&c.ServiceClusterIPRange, "service-cluster-ip-range", c.ServiceClusterIPRange, "IPv4 CIDR that Services' cluster IPs are allocated from (its first address is kept for the kubernetes service)")
	fs.StringVar(&c.ServiceNodePortRange, "service-node-port-range", c.ServiceNodePortRange, "ports that NodePort Services' node ports are allocated from, FIRST-LAST inclusive")
	fs.StringSliceVar(&c.TLSSANs, "tls-san", c.TLSSANs, "extra host names or IP addresses the API server's certificate covers (comma-separated)")
	fs.DurationVar(&c.CertLifetime, "cert-lifetime", c.CertLifetime, "lifetime of the certificates the cluster CA signs (for testing rotation; renewal starts when a third is left)")
	_ = fs.MarkHidden("cert-lifetime")
	fs.StringVar(&c.EtcdCAFile, "etcd-cafile", c.EtcdCAFile, "CA certificate file that an external etcd's servers are checked against")
	fs.StringVar(&c.EtcdCertFile, "etcd-certfile", c.EtcdCertFile, "client certificate file for an external etcd")
	fs.StringVar(&c.EtcdKeyFile, "etcd-keyfile", c.EtcdKeyFile, "client key file for an external etcd")
}

// serviceRanges parses the service IP and node port ranges.
func (c *Config) serviceRanges() (netip.Prefix, utilnet.PortRange, error) {
	var errs []error
	ipRange, portRange := c.ServiceClusterIPRange, c.ServiceNodePortRange
	if ipRange == "" {
		ipRange = registry.DefaultServiceIPRange.String()
	}
	if portRange == "" {
		portRange = registry.DefaultServiceNodePortRange.String()
	}
	prefix, err := netip.ParsePrefix(ipRange)
	if err == nil {
		err = registry.CheckServiceIPRange(prefix)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("--service-cluster-ip-range %q: %w", c.ServiceClusterIPRange, err))
	} else if prefix != prefix.Masked() {
		errs = append(errs, fmt.Errorf("--service-cluster-ip-range %q: not a network address (did you mean %s?)", c.ServiceClusterIPRange, prefix.Masked()))
	}
	var ports utilnet.PortRange
	if err := ports.Set(portRange); err != nil {
		errs = append(errs, fmt.Errorf("--service-node-port-range %q: %w", c.ServiceNodePortRange, err))
	} else if ports.Base < 1 || ports.Base+ports.Size-1 > 65535 || ports.Size < 1 {
		errs = append(errs, fmt.Errorf("--service-node-port-range %q: ports must be between 1 and 65535", c.ServiceNodePortRange))
	}
	return prefix, ports, errors.Join(errs...)
}

// checkEtcdEndpoint refuses an external etcd reached in plaintext over
// the network: whoever reaches it reads and writes every object. Plain
// http:// is accepted on loopback only (an etcd on the same machine, as
// tests run one).
func checkEtcdEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return fmt.Errorf("--etcd-servers %q: not a URL (https://HOST:2379)", endpoint)
	}
	switch u.Scheme {
	case "unix", "unixs":
		return nil // a socket on this machine
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
		return fmt.Errorf("--etcd-servers %q: plaintext etcd over the network is refused; use https:// with --etcd-cafile, --etcd-certfile and --etcd-keyfile", endpoint)
	}
	return fmt.Errorf("--etcd-servers %q: unknown scheme %q (https://HOST:2379)", endpoint, u.Scheme)
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir is required: it holds the cluster CA (and the embedded etcd)"))
	}
	if c.CertLifetime < time.Second {
		errs = append(errs, errors.New("--cert-lifetime must be at least 1s"))
	}
	if (c.EtcdCertFile == "") != (c.EtcdKeyFile == "") {
		errs = append(errs, errors.New("--etcd-certfile and --etcd-keyfile go together"))
	}
	for _, e := range c.EtcdServers {
		if err := checkEtcdEndpoint(e); err != nil {
			errs = append(errs, err)
		}
	}
	if len(c.EtcdServers) == 0 && (c.EtcdCAFile != "" || c.EtcdCertFile != "") {
		errs = append(errs, errors.New("--etcd-cafile, --etcd-certfile and --etcd-keyfile are for an external etcd (--etcd-servers)"))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("--listen %q: %w", c.Listen, err))
	}
	if c.RequestTimeout <= 0 {
		errs = append(errs, errors.New("--etcd-request-timeout must be positive"))
	}
	if c.WatchWindow < 100 {
		errs = append(errs, errors.New("--watch-cache-size must be at least 100"))
	}
	if c.EventTTL < time.Second {
		errs = append(errs, errors.New("--event-ttl must be at least 1s"))
	}
	if c.BookmarkInterval <= 0 {
		errs = append(errs, errors.New("--watch-bookmark-interval must be positive"))
	}
	if c.DefaultTolerationSeconds < 0 {
		errs = append(errs, errors.New("--default-toleration-seconds must not be negative"))
	}
	if _, _, err := c.serviceRanges(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
