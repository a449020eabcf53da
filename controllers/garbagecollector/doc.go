// Package garbagecollector deletes objects whose owners are gone, and
// carries out the three propagation policies of a deletion, as
// Kubernetes' garbage collector does.
//
// An object names its owners in metadata.ownerReferences (kind, name and
// UID). The collector watches every resource that can own or be owned and
// indexes each cache by the UIDs its objects point to, so "who depends on
// X?" is one index lookup per resource, never a list of everything.
//
// Reconcile(key) looks at one object from both sides:
//
//  1. As an owner being deleted:
//     - with the "orphan" finalizer (propagationPolicy=Orphan), it removes
//     the reference to the owner from every dependent, then the finalizer;
//     - with the "foregroundDeletion" finalizer (Foreground), it has its
//     dependents deleted (step 2 does that for each of them) and removes
//     the finalizer once no dependent with blockOwnerDeletion=true is left;
//     - with neither (Background), the owner goes at once and its
//     dependents are handled by step 2 when the deletion is observed.
//  2. As a dependent: each owner reference is resolved (cache first, then
//     the API server, since a cache may lag) to one of
//     - solid: the owner exists with that UID and is not waiting for its
//     dependents;
//     - dangling: no object of that name, or one with another UID;
//     - waiting: the owner is being deleted in the foreground.
//     With no solid owner the dependent is deleted (in the foreground when
//     a waiting owner is blocked by it, so that the wait covers the whole
//     tree); with some solid owners, references to dangling and waiting
//     owners are removed instead.
//
// Every write is conditional: deletes carry a UID precondition, patches a
// resourceVersion, so a decision made on stale data fails and is retried.
//
// The caller's duties, in order: New (before the informer factory starts,
// since New adds indexes), start the factory, then Run, which waits for
// the caches.
package garbagecollector
