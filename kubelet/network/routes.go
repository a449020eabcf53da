package network

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// routeProtocol marks the routes the kubelet owns (the rtnetlink
// "protocol" of a route says who installed it), so that a sync removes
// its own stale routes and never anybody else's.
const routeProtocol netlink.RouteProtocol = 0x5c

// natTable is the nftables table that masquerades pod traffic leaving the
// cluster.
const natTable = "skiff-pods"

// SyncRoutes makes the node's routing table match the cluster: pods of
// another node are reached through that node (host-gw: a route to its pod
// CIDR via its address, which must be on a network this node is directly
// on), and the rest of the cluster CIDR is unreachable, so that nothing
// meant for a pod that does not exist is sent to the default gateway.
// nodes maps each other node's pod CIDR to its address. Routes the kubelet
// made before that are no longer wanted are removed.
//
// A route that cannot be made (a node whose address is not on a network
// this node is on) is reported in the error, but the others are made and
// stale ones removed all the same.
func (m *Manager) SyncRoutes(clusterCIDR netip.Prefix, nodes map[netip.Prefix]netip.Addr) error {
	if !clusterCIDR.IsValid() || !clusterCIDR.Addr().Is4() {
		return fmt.Errorf("network: cluster CIDR %s: want an IPv4 prefix", clusterCIDR)
	}
	clusterCIDR = clusterCIDR.Masked()
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("network: open netlink: %w", err)
	}
	defer h.Close()

	want := []netlink.Route{{
		Dst:      ipNet(clusterCIDR),
		Type:     unix.RTN_UNREACHABLE,
		Protocol: routeProtocol,
	}}
	m.mu.Lock()
	own := m.cidr
	m.mu.Unlock()
	for cidr, via := range nodes {
		cidr = cidr.Masked()
		// Only a block strictly inside the cluster CIDR, and not this
		// node's own: a route to either would replace the unreachable
		// route or the bridge's, and this node would lose its pods.
		if !clusterCIDR.Contains(cidr.Addr()) || cidr.Bits() <= clusterCIDR.Bits() || !via.Is4() ||
			(own.IsValid() && own.Overlaps(cidr)) {
			m.log.Warn("not routing a node's pod CIDR that is not a block of the cluster CIDR of its own", "podCIDR", cidr, "clusterCIDR", clusterCIDR, "ownPodCIDR", own, "via", via)
			continue
		}
		want = append(want, netlink.Route{
			Dst:      ipNet(cidr),
			Gw:       via.AsSlice(),
			Protocol: routeProtocol,
		})
	}
	var errs []error
	for i := range want {
		if err := h.RouteReplace(&want[i]); err != nil {
			errs = append(errs, fmt.Errorf("network: route to %s via %s: %w", want[i].Dst, want[i].Gw, err))
		}
	}
	have, err := retryDump(func() ([]netlink.Route, error) {
		return h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: routeProtocol, Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return fmt.Errorf("network: list routes: %w", err)
	}
	for _, r := range have {
		if r.Dst == nil || slices.ContainsFunc(want, func(w netlink.Route) bool { return w.Dst.String() == r.Dst.String() }) {
			continue
		}
		if err := h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("network: remove the route to %s: %w", r.Dst, err))
			continue
		}
		m.log.Debug("removed a route to a node that left", "dst", r.Dst)
	}
	return errors.Join(errs...)
}

// EnsureMasquerade makes traffic from this node's pods to anything
// outside the cluster CIDR leave with the node's address (the pods'
// addresses mean nothing outside the cluster). It replaces the whole
// table in one transaction, so there is never a moment without the rule.
func (m *Manager) EnsureMasquerade(podCIDR, clusterCIDR netip.Prefix) error {
	if !podCIDR.Addr().Is4() || !clusterCIDR.Addr().Is4() {
		return fmt.Errorf("network: masquerade needs IPv4 prefixes, got %s and %s", podCIDR, clusterCIDR)
	}
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("network: nftables: %w", err)
	}
	defer c.CloseLasting()
	table := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: natTable}
	// Adding then deleting an empty table makes the delete succeed whether
	// or not an earlier one exists; both, and the new table, go in one
	// batch.
	c.AddTable(table)
	c.DelTable(table)
	c.AddTable(table)
	chain := c.AddChain(&nftables.Chain{
		Name:     "postrouting",
		Table:    table,
		Type:     nftables.ChainTypeNAT,
		Hooknum:  nftables.ChainHookPostrouting,
		Priority: nftables.ChainPriorityNATSource,
	})
	// ip saddr <podCIDR> ip daddr != <clusterCIDR> masquerade
	c.AddRule(&nftables.Rule{
		Table: table,
		Chain: chain,
		Exprs: slices.Concat(
			matchPrefix(12, podCIDR, expr.CmpOpEq),
			matchPrefix(16, clusterCIDR, expr.CmpOpNeq),
			[]expr.Any{&expr.Masq{}},
		),
	})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("network: masquerade rule: %w", err)
	}
	return nil
}

// RemoveMasquerade deletes the table EnsureMasquerade made, if any.
func (m *Manager) RemoveMasquerade() error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("network: nftables: %w", err)
	}
	defer c.CloseLasting()
	table := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: natTable}
	c.AddTable(table)
	c.DelTable(table)
	return c.Flush()
}

// matchPrefix compares the IPv4 address at offset (12: source, 16:
// destination) of the network header with a prefix.
func matchPrefix(offset uint32, p netip.Prefix, op expr.CmpOp) []expr.Any {
	p = p.Masked()
	bits := net4Mask(p.Bits())
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: bits, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: op, Register: 1, Data: p.Addr().AsSlice()},
	}
}

// net4Mask is the 4-byte netmask of a prefix length.
func net4Mask(ones int) []byte {
	return binaryutil.BigEndian.PutUint32(^uint32(0) << (32 - ones))
}
