// Package validation decides whether an object may be stored, with
// Kubernetes' rules and Kubernetes' messages.
//
// The API server's registry calls it for every write, after defaulting
// (package defaults), and turns a non-empty result into a 422 Invalid error:
//
//	Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0
//
// The caller's duties, in order:
//
//  1. Decode the request into a typed object and run defaults.Default on it.
//  2. On create, call ValidateObject(obj).
//     On update, call ValidateObjectUpdate(obj, old) with the stored object;
//     it checks everything ValidateObject checks, plus the fields that may
//     not change (a Deployment's selector, a Service's cluster IP, most of a
//     Pod's spec) and the metadata rules for updates (same name, namespace
//     and uid, a resourceVersion present).
//     On a write to the status subresource, copy the stored spec into obj
//     and call ValidateStatusUpdate(obj, old); it checks only status and
//     metadata.
//  3. If the list is empty, store the object and send back Warnings(obj):
//     one message per Kubernetes field that Skiff accepts and stores but
//     does not act on yet, for example pod anti-affinity or a configMap
//     volume. An accepted field is never silently ignored.
//
// Every field path in a result is rooted at the object: "metadata.name",
// "spec.template.spec.containers[0].image". The rules and the wording follow
// Kubernetes (k8s.io/kubernetes pkg/apis/core/validation and friends), so
// that a manifest rejected by Kubernetes is rejected here with the same
// message. Where Skiff adds a rule of its own, the comment says so.
//
// The package is pure: no I/O, no global state, no clock. Each file holds
// one kind: pod.go (with container.go, volume.go and scheduling.go for the
// parts of a pod spec), deployment.go, replicaset.go, job.go (Jobs and
// CronJobs), service.go, node.go,
// namespace.go, endpointslice.go, lease.go, event.go and scale.go;
// meta.go holds the rules every kind shares and warnings.go the list of
// fields Skiff does not implement yet.
package validation
