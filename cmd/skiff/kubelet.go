package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffdev/skiff/dns"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/events"
	"github.com/skiffdev/skiff/internal/join"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/version"
	"github.com/skiffdev/skiff/kubelet"
	"github.com/skiffdev/skiff/kubelet/network"
	"github.com/skiffdev/skiff/proxy"
)

// expiryWarning is how long before an expiry that cannot be avoided a
// warning event is recorded.
const expiryWarning = 30 * 24 * time.Hour

// joinFlags are how a node finds and joins its cluster.
type joinFlags struct {
	server    string
	token     string
	tokenFile string
}

func (j *joinFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&j.server, "server", "", "the API server, https://HOST:6443 (needed to join; later starts read it from ROOT-DIR/kubelet.kubeconfig)")
	fs.StringVar(&j.token, "token", "", "join token, K10<CA hash>::<id>.<secret> (from DATA-DIR/token on the server, or skiff token create); needed only to join")
	fs.StringVar(&j.tokenFile, "token-file", "", "file holding the join token (instead of --token, which other users can see in the process list)")
}

func (j *joinFlags) resolveToken() (string, error) {
	if j.tokenFile == "" {
		return j.token, nil
	}
	if j.token != "" {
		return "", errors.New("--token and --token-file: give one")
	}
	data, err := os.ReadFile(j.tokenFile)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}

// newKubeletCommand builds "skiff kubelet": the node agent that runs the
// pods bound to this machine, without the service proxy.
func newKubeletCommand() *cobra.Command {
	cfg := kubelet.DefaultConfig()
	var jf joinFlags
	cmd := &cobra.Command{
		Use:   "kubelet",
		Short: "Run the kubelet, which runs the containers of the pods bound to this node (needs root)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// A link-local --cluster-dns is a node-local server's (skiff
			// dns on this machine): keep it on the bridge for it.
			if len(cfg.ClusterDNS) > 0 {
				if a, err := netip.ParseAddr(cfg.ClusterDNS[0]); err == nil && a.Is4() && a.IsLinkLocalUnicast() {
					cfg.LocalDNS = a.String()
				}
			}
			return runNode(cmd.Context(), jf, cfg, nil, nil)
		},
	}
	jf.add(cmd.Flags())
	cfg.AddFlags(cmd.Flags())
	return cmd
}

// newAgentCommand builds "skiff agent": what joins a machine to a cluster
// as a node — the kubelet, the service proxy and the node-local DNS
// server, in one process.
func newAgentCommand() *cobra.Command {
	cfg := kubelet.DefaultConfig()
	pcfg := proxy.DefaultConfig()
	dcfg := dns.DefaultConfig()
	var jf joinFlags
	var disableDNS bool
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Join this machine to a cluster as a node: the kubelet, the service proxy and the DNS server for its pods (needs root)",
		Example: `  # the first start joins with the server's token (DATA-DIR/token on the server):
  skiff agent --server https://10.0.0.1:6443 --token K10...::abcdef.0123456789abcdef
  # later starts need neither:
  skiff agent`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d := &dcfg
			if disableDNS {
				d = nil
			}
			return runNode(cmd.Context(), jf, cfg, &pcfg, d)
		},
	}
	jf.add(cmd.Flags())
	cfg.AddFlags(cmd.Flags())
	addProxyFlags(cmd, &pcfg)
	addDNSFlags(cmd, &dcfg, &disableDNS)
	return cmd
}

// addDNSFlags adds the node-local DNS server's own flags to a command that
// also runs a kubelet and a proxy, whose --cluster-dns, --cluster-domain,
// --resolv-conf, --service-cidr, --cluster-cidr and --node-name set it
// too, and --disable-dns.
func addDNSFlags(cmd *cobra.Command, dcfg *dns.Config, disable *bool) {
	fs := pflag.NewFlagSet("dns", pflag.ContinueOnError)
	dcfg.AddFlags(fs)
	fs.VisitAll(func(f *pflag.Flag) {
		if cmd.Flags().Lookup(f.Name) == nil && f.Name != "service-cidr" {
			cmd.Flags().AddFlag(f)
		}
	})
	cmd.Flags().BoolVar(disable, "disable-dns", *disable, "run no node-local DNS server: ClusterFirst pods use the --cluster-dns addresses as they are (a DNS add-on's Service, say)")
}

// addProxyFlags adds the proxy's flags to a command that also runs a
// kubelet: --node-name and --cluster-cidr are the kubelet's, and set both;
// the flags in skip are set from another component's too.
func addProxyFlags(cmd *cobra.Command, pcfg *proxy.Config, skip ...string) {
	fs := pflag.NewFlagSet("proxy", pflag.ContinueOnError)
	pcfg.AddFlags(fs)
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name != "node-name" && f.Name != "cluster-cidr" && !slices.Contains(skip, f.Name) {
			cmd.Flags().AddFlag(f)
		}
	})
}

// runNode joins the cluster (or reads the node's credentials from an
// earlier join) and runs a kubelet, a proxy when pcfg is not nil and a
// node-local DNS server when dcfg is not nil (and the kubelet has a
// --cluster-dns address, where it listens), as the node's identity until
// ctx ends; when one fails, the others are stopped.
func runNode(ctx context.Context, jf joinFlags, cfg kubelet.Config, pcfg *proxy.Config, dcfg *dns.Config) error {
	if os.Geteuid() != 0 {
		return kubelet.ErrNotRoot
	}
	if err := cfg.Complete(); err != nil {
		return err
	}
	var d dns.Config
	runDNS := dcfg != nil && len(cfg.ClusterDNS) > 0
	if runDNS {
		d = *dcfg
		d.NodeName, d.ClusterCIDR, d.ClusterDomain, d.ResolvConf, d.Address = cfg.NodeName, cfg.ClusterCIDR, cfg.ClusterDomain, cfg.ResolvConf, cfg.ClusterDNS[0]
		if pcfg != nil {
			d.ServiceCIDR = pcfg.ServiceCIDR
		}
		if err := validateNodeDNS(d, cfg.Bridge); err != nil {
			return err
		}
		cfg.LocalDNS = d.Address
	}
	token, err := jf.resolveToken()
	if err != nil {
		return err
	}
	names := []string{cfg.NodeName}
	if h, err := os.Hostname(); err == nil && !slices.Contains(names, strings.ToLower(h)) {
		names = append(names, strings.ToLower(h))
	}
	creds, err := join.Join(ctx, join.Config{
		Server:   jf.server,
		Token:    token,
		RootDir:  cfg.RootDir,
		NodeName: cfg.NodeName,
		IPs:      []net.IP{net.ParseIP(cfg.NodeIP)},
		DNSNames: names,
	})
	if err != nil {
		return err
	}
	c, err := client.New(creds.ClientConfig("kubelet/" + version.Get().GitVersion))
	if err != nil {
		return err
	}
	defer c.Close()
	cfg.ServingTLS = creds.ServingTLS()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A certificate that cannot be renewed is an event on the Node once
	// its expiry is within expiryWarning, for `skiffctl get events` and
	// describe to show before the node is locked out.
	recCtx, _ := logging.With(ctx, "component", "kubelet")
	recorder := events.NewRecorder(recCtx, c, "kubelet")
	defer recorder.Stop()
	nodeRef := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: cfg.NodeName, UID: types.UID(cfg.NodeName)}}
	go creds.Run(ctx, func(what string, err error, expires time.Time) {
		if time.Until(expires) < expiryWarning {
			recorder.Eventf(nodeRef, corev1.EventTypeWarning, "CertificateRenewalFailed", "the node's %s certificate expires at %s and could not be renewed: %v", what, expires.UTC().Format(time.RFC3339), err)
		}
	})
	runs := []func(context.Context) error{func(ctx context.Context) error {
		err := kubelet.Run(ctx, c, cfg)
		if err != nil && !errors.Is(err, kubelet.ErrNotRoot) {
			err = fmt.Errorf("kubelet: %w", err)
		}
		return err
	}}
	if pcfg != nil {
		p := *pcfg
		p.NodeName, p.ClusterCIDR = cfg.NodeName, cfg.ClusterCIDR
		runs = append(runs, func(ctx context.Context) error { return runProxy(ctx, c, p) })
	}
	if runDNS {
		runs = append(runs, func(ctx context.Context) error {
			if err := dns.Run(ctx, c, d); err != nil {
				return fmt.Errorf("dns: %w", err)
			}
			return nil
		})
	}
	return runAll(ctx, runs...)
}

// validateNodeDNS checks the node-local DNS server's configuration and
// that its address is one the node can serve: an IPv4 link-local unicast
// address, which the kubelet puts on the pod bridge (bridge) as a /32,
// and not one the node already has on another interface.
func validateNodeDNS(d dns.Config, bridge string) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("dns: %w", err)
	}
	if d.ClusterCIDR == "" {
		return errors.New("dns: --cluster-cidr is required: the node-local DNS server answers only the node itself and the pods of the cluster CIDR")
	}
	if bridge == "" {
		bridge = network.DefaultBridge
	}
	own, err := interfaceAddrs()
	if err != nil {
		return fmt.Errorf("dns: listing the node's addresses: %w", err)
	}
	return checkNodeDNSAddress(netip.MustParseAddr(d.Address), d.ServiceCIDR, bridge, own)
}

// metadataAddress is the cloud instance metadata service, which the node
// must keep reaching.
var metadataAddress = netip.MustParseAddr("169.254.169.254")

// checkNodeDNSAddress checks the node-local DNS server's address against
// the service range and the node's own addresses (address → interface).
// Unspecified, loopback and multicast addresses, and the node's own, would
// expose the server to the LAN or break the node's traffic; only a
// link-local unicast address (169.254.0.0/16) stays on the pod bridge.
func checkNodeDNSAddress(a netip.Addr, serviceCIDR, bridge string, own map[netip.Addr]string) error {
	if !a.Is4() {
		return fmt.Errorf("--cluster-dns %s: the node-local DNS server needs an IPv4 link-local address, such as %s", a, dns.DefaultAddress)
	}
	if p, err := netip.ParsePrefix(serviceCIDR); err == nil && p.Contains(a) {
		return fmt.Errorf("--cluster-dns %s is in the service range %s, where the proxy drops what no Service has: use a link-local address such as %s, or --disable-dns to use a DNS Service at that address", a, p, dns.DefaultAddress)
	}
	if !a.IsLinkLocalUnicast() {
		return fmt.Errorf("--cluster-dns %s: the node-local DNS server needs a link-local unicast address (169.254.0.0/16), such as %s, which stays on the pod bridge; or --disable-dns to use a DNS server elsewhere at that address", a, dns.DefaultAddress)
	}
	if a == metadataAddress {
		return fmt.Errorf("--cluster-dns %s is the cloud metadata service's address, which the node and its pods would no longer reach: use another, such as %s", a, dns.DefaultAddress)
	}
	if ifName, ok := own[a]; ok && ifName != bridge {
		return fmt.Errorf("--cluster-dns %s is an address of this node's interface %s: use one the node does not have, such as %s", a, ifName, dns.DefaultAddress)
	}
	return nil
}

// interfaceAddrs maps the node's addresses to their interfaces' names.
func interfaceAddrs() (map[netip.Addr]string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	out := map[netip.Addr]string{}
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			return nil, err
		}
		for _, ia := range addrs {
			if n, ok := ia.(*net.IPNet); ok {
				if a, ok := netip.AddrFromSlice(n.IP); ok {
					out[a.Unmap()] = ifc.Name
				}
			}
		}
	}
	return out, nil
}
