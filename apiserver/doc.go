// Package apiserver is Skiff's API server: it keeps every object in etcd and
// serves them over the gRPC API defined in proto/skiff/v1.
//
// Start brings up, in order: etcd (embedded in the data directory unless
// external servers are configured), the registry with one watch cache per
// resource, the system namespaces, and the gRPC listener. See README.md in
// this directory for the request path and the design.
package apiserver
