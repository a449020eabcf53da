// Package skiffv1 is the generated Go code for the Skiff component API
// (api.proto next to this file): one generic gRPC service, API, that
// creates, reads, lists, updates, patches, deletes and watches any resource
// Skiff serves, with objects carried in the Kubernetes protobuf encoding.
// The same service streams container logs and exec sessions (PodLogs,
// PodExec; their messages are in streams.proto), which the API server
// relays to the Kubelet service (kubelet.proto) of the pod's node.
//
// Do not edit the *.pb.go files; change the .proto files and run `make proto`
// (proto/generate.sh). Components do not use this package directly: they
// use internal/client, which encodes objects, decodes answers and turns
// error statuses back into Kubernetes API errors.
package skiffv1
