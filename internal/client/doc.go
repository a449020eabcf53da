// Package client is the one way Skiff components and skiffctl talk to the
// API server.
//
// It speaks the gRPC API in proto/skiff/v1, but callers never see gRPC:
// they pass and receive the ordinary Kubernetes Go types (*corev1.Pod,
// *appsv1.Deployment, ...) and get Kubernetes API errors back.
//
// # Using it
//
// Create one Client per process with New, and close it on the way out. New
// does not dial; the first request does, and a broken connection is made
// again by the next request. The API is served only over TLS: a Config
// carries the cluster CA to trust and an identity (a client certificate,
// or a bearer token); binaries build it from a kubeconfig with
// internal/clientconfig.
//
//	c, err := client.New(client.Config{
//		Server: "https://127.0.0.1:6443",
//		TLS:    &tls.Config{RootCAs: clusterCA, Certificates: []tls.Certificate{mine}},
//	})
//	if err != nil {
//		return err
//	}
//	defer c.Close()
//
// Pick a typed client for a resource and a namespace. Every Skiff resource
// has an accessor (Pods, Nodes, Namespaces, Services, Deployments,
// ReplicaSets, EndpointSlices, Leases, Events); Resource builds the same
// for any served type.
//
//	pods := c.Pods("default")
//	deploys := client.Resource[*appsv1.Deployment, *appsv1.DeploymentList](c, "default")
//	pod, err := pods.Get(ctx, "web-0")
//
// Objects you pass in are never modified; objects you get back are yours
// to change.
//
// Test errors by category, never by message:
//
//	if apierrors.IsNotFound(err) { ... }
//	if apierrors.IsConflict(err) { ... } // read again, retry
//
// The server's errors arrive exactly as it made them (reason, message,
// field causes). Errors from the transport become the closest Kubernetes
// error: an unreachable server is a 503 ServiceUnavailable, an expired
// deadline a Timeout that also matches context.DeadlineExceeded. See
// package grpcerr.
//
// Controllers do not poll: they build informers (package
// internal/informers) on ListWatch and let client-go keep a cache.
//
// # Namespaces
//
// The namespace given to a typed client is used as is. For namespaced
// resources "" means all namespaces in List and Watch, and the object's
// own metadata.namespace in Create, Update and UpdateStatus. Get, Patch
// and Delete of a namespaced object need a namespace. Cluster-scoped
// resources (nodes, namespaces) ignore it.
//
// # Writes are compare-and-swap
//
// Update and UpdateStatus succeed only when the object's resourceVersion
// is still the stored one; otherwise they fail with a Conflict. The usual
// loop is: Get (or read the informer cache), copy, change, Update, and on
// Conflict start again. Status is written with UpdateStatus, the rest of
// the object with Update. Subresources: a pod is bound to a node with
// PodClient.Bind (the scheduler's only write); deployments and
// replicasets are scaled with GetScale and UpdateScale.
//
// # Watches
//
// Watch returns a k8s.io/apimachinery watch.Interface. Its channel closes
// after an ERROR event (410 Gone when the requested resourceVersion is too
// old: list again), when the context ends or Stop is called, and quietly
// when the connection drops (watch again from the last resourceVersion).
// Always call Stop.
//
// # Logs and exec
//
// Client.PodLogs copies a container's log to an io.Writer (with
// PodLogOptions: follow, previous, tail, since, timestamps, limit), and
// Client.PodExec runs a command in a container with optional stdin, a
// terminal and its resizes, returning the command's exit code. The API
// server relays both to the kubelet of the pod's node (streams.go). Like
// watches they are not bounded by Config.Timeout; cancel the context to
// end them.
//
// # Warnings
//
// The server may attach warnings to a response, for example for a
// Kubernetes field that Skiff accepts but does not implement yet. Each one
// goes to Config.WarningHandler, by default printed as "Warning: ..." on
// standard error like kubectl does.
//
// # Untyped access
//
// skiffctl knows resources only by name and objects only as manifests.
// Client.Untyped returns an UntypedClient for a schema.GroupResource whose
// Create and Update take JSON or YAML bytes as written and let the server
// decode them strictly, returning the stored object and the warnings.
package client
