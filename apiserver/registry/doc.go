// Package registry is the API server's generic resource logic: one Store
// serves every resource, and a small strategy per resource says what is
// special about it.
//
// A request passes through the same steps for every resource:
//
//	create: namespace admission → name (generateName) → server-owned
//	        metadata (uid, creationTimestamp, generation) → status reset →
//	        defaults → validation → warnings → etcd create
//	update: read current → resourceVersion check (Conflict) → keep what the
//	        request may not change (status for the main resource, everything
//	        but status for the status subresource) → defaults → bump
//	        generation when the spec changed → validation → etcd
//	        compare-and-swap (retried with a fresh read on a race)
//	patch:  like update, with the new object made by applying the patch to
//	        the current one on every try
//	delete: preconditions → record the propagation policy as a finalizer →
//	        set deletionTimestamp → remove from etcd once nothing holds the
//	        object back (finalizers, a bound pod's grace period)
//
// The per-resource strategy (strategy.go) names the fields a field selector
// may use, whether status is kept on create, and the deletion grace period.
// Validation and defaulting live in the validation and defaults packages.
//
// # Service IPs and node ports
//
// A Service of type ClusterIP, NodePort or LoadBalancer gets a cluster IP
// from the service CIDR (--service-cluster-ip-range, 10.96.0.0/16), unless
// it is headless (clusterIP None); NodePort and LoadBalancer services also
// get a node port per port (--service-node-port-range, 30000-32767). What is
// taken is kept in two bitmaps in etcd, one bit per address or port:
// /registry/ranges/serviceips and /registry/ranges/servicenodeports
// (Kubernetes' RangeAllocation as JSON: the range and the bits). The first
// address of the CIDR belongs to the kubernetes service, as in Kubernetes:
// it is only given to a Service that asks for it.
//
// The bitmaps change in the same etcd transaction as the Service that
// takes or gives back the values (service.go, through the storage
// package's companion hook): the transaction writes the Service and the
// new bitmap, on condition that both are still as they were read. So:
//
//   - two API servers can never hand out one address twice: the second
//     transaction finds the bitmap changed, fails, and is tried again
//     with a fresh read;
//   - nothing leaks: a create that fails (validation, a taken address, a
//     lost race, a crash) wrote neither the Service nor its bits, and a
//     removal clears the bits in the very write that removes the Service;
//   - no repair loop is needed. Kubernetes instead writes the allocation
//     first and the Service second, and runs a repair loop that frees
//     what no Service holds; one transaction makes that unnecessary.
//
// The price is that every allocating write contends for one key. Within
// one server, allocating writes are serialized (a lock held from reading
// the bitmap to the end of the transaction) and the bitmap is cached with
// its revision, so that they do not fail each other's compare-and-swap;
// only writes from other API servers make a transaction fail. Writes that
// change no allocation (most updates) take no lock and touch no bitmap.
//
// On update a client may leave clusterIP and node ports out (a manifest
// applied again): the stored values are kept. clusterIP is immutable;
// a node port may move to a free port; a change of type allocates or
// releases. A bitmap that is missing, or made for another range (the flag
// changed), is rebuilt from the stored Services, on condition that no
// Service changed since they were read.
package registry
