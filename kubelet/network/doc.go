// Package network gives each pod of a node its own IP address and wires
// it to the node, the way the "bridge" and "host-local" CNI plugins do.
//
// # The picture
//
//	 node network namespace                    pod network namespace
//	+----------------------------------+      +----------------------+
//	|  skiff0 (bridge) 10.244.0.1/24   |      |  eth0 10.244.0.7/24  |
//	|    |                             |      |  default via         |
//	|    +-- veth1a2b3c4d  <===== veth pair ====>  10.244.0.1        |
//	|    +-- veth9f8e7d6c  <=== (another pod)  |  lo (up)             |
//	+----------------------------------+      +----------------------+
//
// Every node gets a pod CIDR (say 10.244.0.0/24). The node holds one Linux
// bridge — a virtual switch — whose address is the first host address of
// the CIDR; that address is the pods' default gateway. Each pod gets a veth
// pair, a virtual cable: one end stays on the node and is plugged into the
// bridge, the other end lives in the pod's network namespace as eth0 and
// carries the pod's address. Pods of one node reach each other through
// the bridge at layer 2; everything else goes to the gateway, and the node
// routes it onward (IP forwarding is switched on for that).
//
// # Using a Manager, in order
//
//  1. New(ctx, Config{Root: ...}) reads the address book under Root/ips;
//     the Manager logs through the logger ctx carries.
//  2. EnsureNode(podCIDR) once at start-up: creates the bridge if needed,
//     sets its address, turns on forwarding. Safe to repeat.
//  3. Attach(ctx, podID, netnsPath) for each pod sandbox, after its
//     network namespace exists (see internal/nsutil). Returns the pod IP.
//     Safe to repeat: the same pod keeps its address and broken pieces are
//     rebuilt, so a kubelet that restarts mid-way simply calls it again.
//  4. Detach(podID, netnsPath) when the sandbox goes away — before or after
//     its namespace is removed. Safe to repeat.
//  5. After a restart, Allocated lists the addresses on record so that the
//     kubelet can Detach pods it no longer knows.
//
// # Where the changes happen
//
// Network namespaces belong to threads (see internal/nsutil). The Manager
// changes the node side — bridge, host veth ends, sysctls — in the
// namespace of the thread that calls it: the kubelet's own namespace in
// production, a scratch namespace entered with nsutil.Do in tests. The pod
// side is changed through a netlink socket opened inside the pod's
// namespace; the veth pair is created with its pod end placed directly in
// that namespace, so no interface ever appears on the node under the name
// eth0.
//
// # The address book
//
// Allocations are files: Root/ips/10.244.0.7 holds the pod ID. A new file
// is written under a temporary name and hard-linked into place, which
// fails if the name exists: two pods never get one address, and a file is
// never half written. Addresses are handed out round-robin (the search
// resumes after the last one given), so a freed address is not reused at
// once, which keeps stale connections to a deleted pod from reaching its
// successor. The network address, the gateway and the broadcast address
// are never handed out. Files are not fsynced: they survive a kubelet
// crash, not necessarily a power cut.
//
// MAC addresses are derived from IP addresses (0a:58 and the four address
// bytes), for the pods' eth0 and for the bridge alike. A pod whose veth is
// rebuilt, or a new pod that inherits a freed address, thus keeps the MAC
// its neighbours have cached; and the bridge's MAC does not drift as ports
// come and go (a bridge otherwise takes the lowest MAC of its ports).
//
// Host veth names are "veth" plus 8 hex digits of the SHA-256 of the pod
// ID, so the name of a pod's interface is known without any record.
package network
