// Package ctl is skiffctl: the command-line client of a Skiff cluster,
// with kubectl's verbs, flags and output shapes.
//
// Each verb is one file holding one constructor, newXxxCommand(o *Options),
// that returns a cobra command. Options holds what every verb shares: the
// output streams, the namespace flags, and a lazily made API client.
// The client connects over TLS with the credentials of a kubeconfig
// (--kubeconfig, else $KUBECONFIG, else ~/.skiff/config, else
// /etc/skiff/admin.kubeconfig) and kubectl's connection flags laid over
// it (--server, --certificate-authority, --client-certificate,
// --client-key, --token, --insecure-skip-tls-verify); see
// internal/clientconfig.
// Resource names (pods, po, deployment.apps, ...) are resolved by
// resources.go; manifests (-f FILE|DIR|-) are read by manifest.go. A verb
// that acts on several objects carries on after one fails and returns the
// errors together at the end; FormatError (errors.go) words them as
// kubectl does, for skiffctl's main to print.
package ctl
