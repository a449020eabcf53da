// Package skiffv1 is the generated Go code for the Skiff component API
// (api.proto next to this file): one generic gRPC service, API, that
// creates, reads, lists, updates, patches, deletes and watches any resource
// Skiff serves, with objects carried in the Kubernetes protobuf encoding.
//
// Do not edit the *.pb.go files; change api.proto and run `make proto`
// (proto/generate.sh). Components do not use this package directly: they
// use internal/client, which encodes objects, decodes answers and turns
// error statuses back into Kubernetes API errors.
package skiffv1
