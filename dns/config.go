package dns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	miekg "github.com/miekg/dns"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultAddress is where the node-local DNS server listens: a
// link-local address (169.254.0.0/16, as NodeLocal DNSCache's
// 169.254.20.10) put on the pod bridge as a /32. Pods reach it through
// their default gateway, the bridge; it is outside the service range, so
// the proxy, which drops traffic to service addresses no Service has,
// leaves it alone; and pods on other nodes have their own server at the
// same address, as a link-local address stays on its link. Another
// machine could still send the node a packet for it (Linux accepts a
// packet for any of its addresses on any interface), so the server
// refuses questions from anyone but the node itself and the pods of
// ClusterCIDR (see Clients).
const DefaultAddress = "169.254.20.10"

// Config configures a node-local DNS server.
type Config struct {
	// NodeName is this node's name, for logs.
	NodeName string
	// ClusterDomain is the domain of cluster names, "cluster.local".
	ClusterDomain string
	// Address is the IP address the server listens on (UDP and TCP).
	Address string
	// Port is the port it listens on: 53; tests use 0 (any free one).
	Port int
	// ResolvConf is the resolver configuration whose nameservers get the
	// questions outside the cluster domain (read again when it changes).
	ResolvConf string
	// TTL is the time to live of cluster records and of negative answers
	// for cluster names.
	TTL time.Duration
	// CacheSize is how many forwarded answers are cached at most.
	CacheSize int
	// UpstreamTimeout bounds one try of one upstream resolver.
	UpstreamTimeout time.Duration
	// ServiceCIDR and ClusterCIDR are the ranges whose reverse (PTR)
	// names the server answers itself, with NXDOMAIN for addresses no
	// Service or endpoint has; either may be empty.
	ServiceCIDR string
	// ClusterCIDR is also the pod network whose questions the server
	// answers: from any other address but the node's own (loopback, its
	// interfaces' addresses), questions get REFUSED. Empty, only the node
	// itself is answered.
	ClusterCIDR string

	// Listening, when set, is called with the server's UDP and TCP
	// addresses once its sockets are open (tests learn the port). Not a
	// flag.
	Listening func(udp, tcp net.Addr) `json:"-"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		ClusterDomain:   "cluster.local",
		Address:         DefaultAddress,
		Port:            53,
		ResolvConf:      "/etc/resolv.conf",
		TTL:             5 * time.Second,
		CacheSize:       10000,
		UpstreamTimeout: 2 * time.Second,
		ServiceCIDR:     "10.96.0.0/16",
		ClusterCIDR:     "10.244.0.0/16",
	}
}

// AddFlags registers the configuration's flags.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.NodeName, "node-name", c.NodeName, "name of this node (default: the host name)")
	fs.StringVar(&c.ClusterDomain, "cluster-domain", c.ClusterDomain, "domain of the cluster's names: pods find Services as NAME.NAMESPACE.svc.DOMAIN")
	fs.StringVar(&c.Address, "cluster-dns", c.Address, "address of the node-local DNS server, which pods use as their nameserver (a link-local address, put on the pod bridge)")
	fs.StringVar(&c.ResolvConf, "resolv-conf", c.ResolvConf, "resolver configuration whose nameservers answer names outside the cluster domain")
	fs.DurationVar(&c.TTL, "dns-ttl", c.TTL, "time to live of cluster DNS records and of negative answers for cluster names")
	fs.IntVar(&c.CacheSize, "dns-cache-size", c.CacheSize, "how many answers of the upstream resolvers the DNS server caches at most")
	fs.StringVar(&c.ServiceCIDR, "service-cidr", c.ServiceCIDR, "ClusterIP range, whose reverse names the DNS server answers")
	fs.StringVar(&c.ClusterCIDR, "cluster-cidr", c.ClusterCIDR, "pod address range: the pods whose questions the DNS server answers (besides the node itself; others get REFUSED), and whose reverse names it answers")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if msgs := validation.IsDNS1123Subdomain(strings.TrimSuffix(c.ClusterDomain, ".")); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("cluster-domain: Invalid value: %q: %s", c.ClusterDomain, strings.Join(msgs, "; ")))
	}
	if _, err := netip.ParseAddr(c.Address); err != nil {
		errs = append(errs, fmt.Errorf("cluster-dns: Invalid value: %q: must be a valid IP address", c.Address))
	}
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("dns port: Invalid value: %d: must be between 0 and 65535, inclusive", c.Port))
	}
	if c.ResolvConf == "" {
		errs = append(errs, errors.New("resolv-conf: Required value: the upstream resolvers come from it"))
	}
	if c.TTL < 0 || c.TTL > time.Hour {
		errs = append(errs, fmt.Errorf("dns-ttl: Invalid value: %v: must be between 0 and 1h", c.TTL))
	}
	if c.CacheSize < 0 {
		errs = append(errs, fmt.Errorf("dns-cache-size: Invalid value: %d: must be greater than or equal to 0", c.CacheSize))
	}
	if c.UpstreamTimeout <= 0 {
		errs = append(errs, fmt.Errorf("upstream timeout: Invalid value: %v: must be greater than 0", c.UpstreamTimeout))
	}
	for name, v := range map[string]string{"service-cidr": c.ServiceCIDR, "cluster-cidr": c.ClusterCIDR} {
		if v == "" {
			continue
		}
		if _, err := netip.ParsePrefix(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: Invalid value: %q: must be a CIDR", name, v))
		}
	}
	return errors.Join(errs...)
}

// domain is the cluster domain as a lower-case FQDN.
func (c *Config) domain() string {
	return miekg.Fqdn(strings.ToLower(c.ClusterDomain))
}

// clientNetworks is the parsed ClusterCIDR, whose pods the server answers.
func (c *Config) clientNetworks() []netip.Prefix {
	if p, err := netip.ParsePrefix(c.ClusterCIDR); err == nil {
		return []netip.Prefix{p.Masked()}
	}
	return nil
}

// reverseZones are the parsed ServiceCIDR and ClusterCIDR.
func (c *Config) reverseZones() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{c.ServiceCIDR, c.ClusterCIDR} {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}
