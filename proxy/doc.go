// Package proxy is Skiff's service proxy: it makes every Service address
// of the cluster work on one node, by writing one nftables table ("ip
// skiff") that translates a Service's address to one of its ready pods.
//
// # How a packet finds a pod
//
// A new connection to 10.96.0.10:80 enters the nat hook (prerouting for
// packets from pods and other machines, output for the node's own
// sockets) and jumps to the "services" chain, which looks the triple
// destination . protocol . port up in the verdict map "service-ips". The
// element sends it to the service port's chain "svc-HASH-ns/name/proto/port",
// whose one rule picks an endpoint at random and rewrites the destination
// to it: "dnat ip to numgen random mod N map @endpoints-HASH-…", where the
// named map "endpoints-HASH-ns/name/proto/port" holds 0 : 10.244.1.5 . 8080,
// 1 : … (a service port with one endpoint just has "dnat to
// 10.244.1.5:8080"). Conntrack remembers the translation, so only a
// connection's first packet goes through these chains, and replies are
// translated back.
//
// NodePorts go the same way through the map "service-nodeports", keyed by
// protocol . port, for packets to any address of the node ("fib daddr
// type local"), through an "ext-…" chain that marks them for masquerade.
//
// Masquerade: a packet marked with MasqueradeMark has its source rewritten
// in postrouting. Marked are: NodePort traffic (in the ext- chain),
// traffic to the service CIDR from outside the cluster CIDR (in the
// services chain; both so that the reply comes back through this node to
// be un-NATed), and hairpin traffic (a pod reaching itself through its
// Service, which would otherwise see a packet from itself): postrouting
// finds "ip saddr . ip daddr" in the set "hairpin", which holds
// "address . address" for every endpoint address.
//
// Why this shape: every object costs the kernel work in a transaction.
// One map per service port instead of a chain per endpoint keeps a full
// sync of 1,000 services × 10 endpoints to about 7,000 netlink messages;
// the maps are named, not anonymous, because the kernel walks the whole
// pending transaction for each anonymous set a rule binds, and they are
// per service port, not one shared map, because the kernel walks all of
// a map's elements for each rule that binds it.
//
// A service port without ready endpoints has its element in the same map
// go to the chain "no-endpoints" instead, which marks the packet with
// RejectMark; the filter hooks reject a new connection so marked (TCP
// reset, ICMP port unreachable), so clients fail at once. Any other new
// connection to the service CIDR is dropped. Translating and refusing are
// decided by one lookup, in the nat hook: a sync committed between a
// packet's nat and filter hooks (a transaction is atomic, a packet's walk
// through the hooks is not) would otherwise let the first packet to a
// service port that just got its first endpoint miss both, and be dropped.
//
// # The pieces
//
//   - Render is a pure function from Services and EndpointSlices to a
//     Ruleset, the whole table as data (Ruleset.String prints it in nft
//     syntax). Only ready endpoints count; when a service port has none,
//     endpoints that are terminating but still serving are used.
//   - Syncer writes a Ruleset into the kernel, each time in one nftables
//     transaction: the first time (and after an error) the table is
//     replaced as a whole, later only the difference with the previous
//     Ruleset is written (chains, map and set elements, endpoint maps).
//     After a change of endpoints it deletes the conntrack entries that
//     still point at removed ones: UDP flows, and TCP connections that
//     never got an answer (SYN_SENT) or were reset (CLOSE), whose entry
//     would otherwise send a new connection from the same source port to
//     the removed endpoint.
//   - Proxy (Run) feeds the Syncer from informers on Services and
//     EndpointSlices, batching changes into at most one sync per
//     MinSyncInterval.
//
// # Using it
//
//  1. Build a Config (DefaultConfig, AddFlags, Validate).
//  2. Run(ctx, client, cfg) as root; it logs through the logger ctx
//     carries (internal/logging), with component=proxy and the node's
//     name. It returns when ctx ends and leaves the table in place, so
//     traffic keeps flowing while a new proxy starts. The new proxy's
//     first sync replaces it without a gap.
//  3. Tests set Config.NetNSPath (or call NewSyncer with a namespace path)
//     to program a scratch network namespace instead of the machine's.
//
// The node's pod network must let the bridge send a frame back out of the
// port it came in on (hairpin mode on the pods' veths) when bridged
// traffic goes through netfilter, or hairpin connections are dropped.
package proxy
