package ctl

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/scheme"
)

// This file holds what the verbs that act on manifests (apply, create,
// delete -f) share: the -f flags, where a document's object goes, how an
// error names its document, and how a command that carries on after a
// failed object reports its errors.

// lastAppliedAnnotation holds the configuration that apply last applied to
// an object. It is kubectl's key, so that kubectl apply and skiffctl apply
// can take turns on the same objects.
const lastAppliedAnnotation = corev1.LastAppliedConfigAnnotation

// fileFlags registers -f/--filename and -R/--recursive.
func fileFlags(cmd *cobra.Command, files *[]string, recursive *bool, what string) {
	cmd.Flags().StringSliceVarP(files, "filename", "f", nil, "a file, directory or - (standard input) "+what)
	cmd.Flags().BoolVarP(recursive, "recursive", "R", false, "read the directories given with -f recursively")
}

// documentNamespace is the namespace a document's object belongs in: its
// own metadata.namespace, else -n, else "default". A document whose
// namespace differs from an explicit -n is refused rather than sent to
// either of the two. Cluster-scoped objects have no namespace.
func (o *Options) documentNamespace(doc *Document) (string, error) {
	if !doc.Resource.Namespaced {
		return "", nil
	}
	ns := doc.Object.GetNamespace()
	switch {
	case ns == "":
		return o.EffectiveNamespace(), nil
	case o.Namespace != "" && ns != o.Namespace:
		return "", fmt.Errorf("the namespace from the provided object %q does not match the namespace %q. You must pass '--namespace=%s' to perform this operation", ns, o.Namespace, ns)
	}
	return ns, nil
}

// documentObject returns a copy of the document's object with its
// namespace filled in, and a client for its resource in that namespace.
func (o *Options) documentObject(c *client.Client, doc *Document) (*unstructured.Unstructured, *client.UntypedClient, error) {
	ns, err := o.documentNamespace(doc)
	if err != nil {
		return nil, nil, err
	}
	obj := doc.Object.DeepCopy()
	if doc.Resource.Namespaced {
		obj.SetNamespace(ns)
	}
	uc, err := c.Untyped(doc.Resource.GroupResource(), ns)
	if err != nil {
		return nil, nil, err
	}
	return obj, uc, nil
}

// withLastApplied returns the object as JSON carrying the last-applied
// annotation, whose value is the object itself as JSON without that
// annotation (kubectl's format, so the two tools read each other's).
func withLastApplied(obj *unstructured.Unstructured) ([]byte, error) {
	obj = obj.DeepCopy()
	annotations := obj.GetAnnotations()
	delete(annotations, lastAppliedAnnotation)
	if len(annotations) == 0 {
		annotations = nil
	}
	obj.SetAnnotations(annotations)
	config, err := obj.MarshalJSON()
	if err != nil {
		return nil, err
	}
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[lastAppliedAnnotation] = string(config)
	obj.SetAnnotations(annotations)
	return obj.MarshalJSON()
}

// withSource says which document an error is about, as kubectl does:
// `error when applying "web.yaml" (document 2, line 14): ...`. An error
// from the server stays one (same reason and code), with the document
// named in its message, so that it still prints as "Error from server".
func withSource(verb string, doc *Document, err error) error {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		s := status.Status()
		s.Message = fmt.Sprintf("error when %s %s: %s", verb, doc.Where(), s.Message)
		return &apierrors.StatusError{ErrStatus: s}
	}
	return fmt.Errorf("error when %s %s: %w", verb, doc.Where(), err)
}

// dryRun is the --dry-run mode of a command that writes.
type dryRun int

const (
	dryRunNone   dryRun = iota
	dryRunClient        // compute and print, send nothing
	dryRunServer        // send, and let the server check without storing
)

// dryRunFlag registers --dry-run; a bare --dry-run means "client", as in
// kubectl.
func dryRunFlag(cmd *cobra.Command, value *string) {
	cmd.Flags().StringVar(value, "dry-run", "none", `"none", "client" (print what would be done, send nothing) or "server" (the server checks the request but stores nothing)`)
	cmd.Flags().Lookup("dry-run").NoOptDefVal = "client"
}

func parseDryRun(s string) (dryRun, error) {
	switch s {
	case "", "none":
		return dryRunNone, nil
	case "client":
		return dryRunClient, nil
	case "server":
		return dryRunServer, nil
	}
	return dryRunNone, fmt.Errorf(`invalid dry-run value (%s). Must be "none", "server", or "client"`, s)
}

// suffix is what the mode adds to each printed line.
func (d dryRun) suffix() string {
	switch d {
	case dryRunClient:
		return " (dry run)"
	case dryRunServer:
		return " (server dry run)"
	}
	return ""
}

// serverOption is the dryRun value of create and update options.
func (d dryRun) serverOption() []string {
	if d == dryRunServer {
		return []string{metav1.DryRunAll}
	}
	return nil
}

// failures collects the errors of a command that carries on after one
// object fails, as kubectl's apply, create and delete do. Each error is
// shown once: every one but the last goes to errOut as soon as the next
// one arrives, and the last is returned for skiffctl's main to print,
// which also makes the command exit non-zero.
type failures struct {
	errOut io.Writer
	last   error
}

func (f *failures) add(err error) {
	if f.last != nil {
		fmt.Fprintln(f.errOut, FormatError(f.last))
	}
	f.last = err
}

func (f *failures) err() error { return f.last }

// kindName is how kubectl names an object in delete's messages:
// `pod "web-1"`, `deployment.apps "web"`.
func kindName(r *scheme.ResourceInfo, name string) string {
	kind := r.Singular
	if r.Group != "" {
		kind += "." + r.Group
	}
	return fmt.Sprintf("%s %q", kind, name)
}
