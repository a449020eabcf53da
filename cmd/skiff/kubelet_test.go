package main

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/skiffdev/skiff/dns"
)

// The node-local DNS server's address must be link-local unicast and not
// one the node has on another interface: an unspecified, loopback or
// multicast address, or the node's LAN address, would expose the server
// to the LAN or break the node's own traffic.
func TestCheckNodeDNSAddress(t *testing.T) {
	own := map[netip.Addr]string{
		netip.MustParseAddr("127.0.0.1"):     "lo",
		netip.MustParseAddr("192.168.1.20"):  "eth0",
		netip.MustParseAddr("169.254.7.7"):   "eth1", // a link-local address of the LAN's
		netip.MustParseAddr("169.254.20.10"): "skiff0",
		netip.MustParseAddr("10.244.0.1"):    "skiff0",
	}
	for _, tc := range []struct {
		addr string
		want string // in the error; "" for none
	}{
		{"169.254.20.10", ""}, // on the bridge already: the kubelet put it there
		{"169.254.53.53", ""},
		{"0.0.0.0", "link-local unicast"},
		{"127.0.0.1", "link-local unicast"},
		{"127.0.0.53", "link-local unicast"},
		{"224.0.0.251", "link-local unicast"},
		{"255.255.255.255", "link-local unicast"},
		{"192.168.1.20", "link-local unicast"}, // the node's LAN address
		{"10.244.0.1", "link-local unicast"},   // the pods' gateway
		{"169.254.7.7", "interface eth1"},
		{"169.254.169.254", "metadata"},
		{"10.96.0.10", "service range"},
		{"fd00::10", "IPv4"},
		{"fe80::1", "IPv4"},
	} {
		err := checkNodeDNSAddress(netip.MustParseAddr(tc.addr), "10.96.0.0/16", "skiff0", own)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v, want no error", tc.addr, err)
		case tc.want != "" && err == nil:
			t.Errorf("%s: no error, want one about %q", tc.addr, tc.want)
		case tc.want != "" && (!strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--cluster-dns "+tc.addr)):
			t.Errorf("%s: %v, want an error naming --cluster-dns %s and %q", tc.addr, err, tc.addr, tc.want)
		}
	}
}

func TestValidateNodeDNS(t *testing.T) {
	d := dns.DefaultConfig()
	if err := validateNodeDNS(d, ""); err != nil {
		t.Errorf("the defaults: %v", err)
	}
	d.Address = "0.0.0.0"
	if err := validateNodeDNS(d, ""); err == nil || !strings.Contains(err.Error(), "--cluster-dns 0.0.0.0") {
		t.Errorf("0.0.0.0: %v, want an error naming --cluster-dns", err)
	}
	d = dns.DefaultConfig()
	d.ClusterCIDR = ""
	if err := validateNodeDNS(d, ""); err == nil || !strings.Contains(err.Error(), "--cluster-cidr") {
		t.Errorf("without a cluster CIDR: %v, want an error naming --cluster-cidr", err)
	}
}
