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
package registry
