// Package endpointslice is the EndpointSlice controller: for every
// Service with a selector it keeps discovery.k8s.io/v1 EndpointSlices
// that list the Service's pods, their addresses, whether each is ready,
// and the port numbers to reach them on. The proxy on every node reads
// these slices to load-balance the Service's address.
//
// It watches Services, pods and EndpointSlices (through shared
// informers) and writes EndpointSlices and events. Event handlers only
// enqueue Service keys ("namespace/name"): a Service's own changes; a
// pod's, for every Service whose selector matches the pod before or after
// the change (and only when labels, readiness, phase, IP, node, hostname
// or deletion changed); a slice's, for the Service named by its
// kubernetes.io/service-name label, if this controller manages it.
//
// Reconcile(ctx, key) does the work, in this order:
//
//  1. Read the Service from the cache, and the slices labelled
//     kubernetes.io/service-name=<service> and
//     endpointslice.kubernetes.io/managed-by=endpointslice-controller.skiff.dev.
//     Slices managed by anyone else are never read or written.
//  2. Unless the Service is gone, wait until the slice cache shows this
//     controller's earlier writes for it (see Tracker); otherwise the
//     plan could be made from a cache that lacks a slice just created,
//     and create it twice.
//  3. Plan with Compute, a pure function of the Service, its pods and its
//     slices (see its documentation for the rules): each pod with an IPv4
//     address that has not finished becomes an endpoint (addresses
//     [podIP]; conditions ready, serving, terminating; nodeName;
//     targetRef to the pod); its ports are the Service's ports resolved
//     for that pod (a named targetPort looked up in its containers);
//     endpoints are grouped by port set, at most MaxEndpointsPerSlice
//     per slice. Slices are labelled as in step 1 plus the Service's own
//     labels, and owned by the Service (controller reference, so the
//     garbage collector deletes them with it too).
//  4. Write the plan: creates (named "<service>-<5 random characters>"
//     by the API server), then updates (conditional on the cached
//     resourceVersion; a conflict is retried with backoff), then deletes
//     (conditional on the slice's UID). Nothing is written when the
//     slices already say what they should, whatever the order of their
//     endpoints and ports. A failure is recorded as a
//     FailedToUpdateEndpointSlices event on the Service and retried.
//
// A Service that is gone, has no selector, is of type ExternalName or is
// being deleted has this controller's slices deleted; slices that users
// write for Services without a selector carry no managed-by label of this
// controller and are left alone.
//
// A caller builds the controller with New (which adds the handlers to a
// Factory's informers), starts the Factory, and calls Run, which waits
// for the caches and returns after ctx ends and every worker has
// stopped. ctx is the controller's leadership: no write starts after it
// ends.
package endpointslice
