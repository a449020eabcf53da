// Package dns is Skiff's cluster DNS: a DNS server that every node agent
// runs for the pods of its node (a node-local server, as NodeLocal
// DNSCache is, but answering cluster names itself). It answers names of
// the cluster domain from informer caches of Services and EndpointSlices,
// following the Kubernetes DNS specification (version SpecVersion), and
// forwards every other question to the node's own resolvers, with a cache.
//
// # What it answers
//
// For a cluster domain "cluster.local":
//
//	web.default.svc.cluster.local           A/AAAA: the ClusterIPs of Service default/web;
//	                                        for a headless Service, its ready endpoints' addresses;
//	                                        CNAME for an ExternalName Service (followed, for stub resolvers)
//	_http._tcp.web.default.svc.cluster.local  SRV: port "http"/TCP → web.default.svc.cluster.local
//	                                        (headless: one per endpoint → HOST.web.default.svc.cluster.local)
//	HOST.db.default.svc.cluster.local       A/AAAA of a headless Service's endpoint: HOST is the
//	                                        endpoint's hostname (a pod with spec.hostname and
//	                                        spec.subdomain=db) or its address with dashes (10-244-1-5)
//	10.0.96.10.in-addr.arpa                 PTR: the Service with that ClusterIP, or the headless
//	                                        endpoint with that address
//	dns-version.cluster.local               TXT "1.1.0"
//
// A name that exists without records of the asked type (a Service asked
// for AAAA, default.svc.cluster.local, _tcp.web...) is NODATA: NOERROR
// with an empty answer; a name that does not exist is NXDOMAIN. Both carry
// the zone's SOA, whose minimum (the TTL, Config.TTL) tells resolvers how
// long to remember them. Reverse names in the service and cluster CIDRs
// are answered with authority too (NXDOMAIN for an unknown address);
// other reverse names go upstream unless a Service or endpoint has them.
// Pod records (1-2-3-4.ns.pod.cluster.local), optional in the
// specification, are not served.
//
// # Where it listens
//
// On Config.Address, by default the link-local 169.254.20.10 (see
// DefaultAddress for why not an address of the service range), port 53,
// UDP and TCP. The kubelet puts the address on the pod bridge as a /32,
// so pods reach it through their default gateway; the server binds with
// IP_FREEBIND and so starts before or after the bridge exists. The
// kubelet writes the same address as the nameserver of ClusterFirst pods.
// Only the node itself and the pods of Config.ClusterCIDR are answered;
// anyone else (a LAN neighbour routing the address through the node) gets
// REFUSED (see Clients).
//
// # The pieces
//
//   - Records is the pure core: Lookup(name, type) answers from the
//     caches it is given, never blocking and never forwarding.
//   - Forwarder sends the other questions to the nameservers of the
//     node's resolv.conf (read again when the file changes; never a
//     hard-coded resolver), one after the other, over UDP (then TCP when
//     truncated) or over TCP when the client used TCP, and keeps their
//     answers in a Cache: bounded, least recently used out first, for the
//     answers' TTLs, negative answers for their SOA's minimum.
//   - Handler is the miekg/dns handler over both: authority and SOA
//     records, EDNS0 (the client's buffer size, at least 512 bytes,
//     decides when a UDP answer is truncated with TC set), SERVFAIL for
//     cluster names until the caches are filled.
//   - Run wires informers, the handler and the sockets together.
//
// # Using it
//
//  1. Build a Config (DefaultConfig, AddFlags, Validate).
//  2. Run(ctx, client, cfg), with a client that may list and watch
//     Services and EndpointSlices (a node's identity may). It listens at
//     once, answers cluster names once the caches are filled, and keeps
//     answering from its caches while the API server is away. It returns
//     when ctx ends, logging through the logger ctx carries with
//     component=dns and the node's name.
//  3. Tests use NewHandler over caches they fill and Listen on
//     127.0.0.1:0, or run a whole node in a network namespace.
package dns
