package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/skiffdev/skiff/ctl/printers"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/scheme"
)

// This file holds what the verbs that act on manifests (apply, create,
// delete -f) share: the -f flags, where a document's object goes, and how
// an error names its document.

// lastAppliedAnnotation holds the configuration that apply last applied to
// an object. It is kubectl's key, so that kubectl apply and skiffctl apply
// can take turns on the same objects.
const lastAppliedAnnotation = corev1.LastAppliedConfigAnnotation

// fileFlags registers -f/--filename and -R/--recursive.
func fileFlags(cmd *cobra.Command, files *[]string, recursive *bool, what string) {
	cmd.Flags().StringSliceVarP(files, "filename", "f", nil, "a file, directory or - (standard input) "+what)
	cmd.Flags().BoolVarP(recursive, "recursive", "R", false, "read the directories given with -f recursively")
}

// readDocuments reads the manifests of -f for a verb that carries on
// after a failed object (apply, create). The documents of kinds Skiff does
// not serve, and a document that cannot be parsed (which ends the
// reading), are recorded in fails in the order of the files; the others
// are returned to act on. An error is returned only when nothing could be
// read at all.
func readDocuments(files []string, recursive bool, in io.Reader, fails *failures) ([]Document, error) {
	docs, readErr := ReadManifests(files, recursive, in)
	if len(docs) == 0 {
		return nil, readErr
	}
	docs = servedDocuments(docs, fails)
	if readErr != nil {
		fails.add(readErr)
	}
	return docs, nil
}

// eachDocument is the loop of every -f verb: read the documents, connect,
// and hand each served document to do in apply order. do returns what to
// print ("pod/web created") or an error, which is collected with the
// document's source; the command's error lists them all at the end.
func eachDocument(ctx context.Context, o *Options, files []string, recursive bool, verb string,
	do func(c *client.Client, doc *Document) (string, error)) error {
	if len(files) == 0 {
		return errors.New("must specify -f")
	}
	fails := &failures{}
	docs, err := readDocuments(files, recursive, o.In, fails)
	if err != nil {
		return err
	}
	if len(docs) == 0 {
		return fails.err()
	}
	c, err := o.Client()
	if err != nil {
		return err
	}
	for _, doc := range applyOrder(docs) {
		if err := ctx.Err(); err != nil {
			fails.add(err)
			break
		}
		line, err := do(c, &doc)
		if err != nil {
			if !fails.add(withSource(verb, &doc, err)) {
				break
			}
			continue
		}
		fmt.Fprintln(o.Out, line)
	}
	return fails.err()
}

// servedDocuments returns the documents whose kind Skiff serves and
// records the others in fails with kubectl's message:
//
//	resource mapping not found for name: "cfg" namespace: "" from "app.yaml" (document 2, line 9): no matches for kind "ConfigMap" in version "v1"
func servedDocuments(docs []Document, fails *failures) []Document {
	var served []Document
	for _, doc := range docs {
		if doc.Err == nil {
			served = append(served, doc)
			continue
		}
		fails.add(fmt.Errorf("resource mapping not found for name: %q namespace: %q from %s: %w",
			doc.Object.GetName(), doc.Object.GetNamespace(), doc.Where(), doc.Err))
	}
	return served
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
// An interruption or an unreachable server is not about the document and
// is returned as it is.
func withSource(verb string, doc *Document, err error) error {
	if stops(err) {
		return err
	}
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

// kindName is how kubectl names an object in delete's messages:
// `pod "web-1"`, `deployment.apps "web"`.
func kindName(r *scheme.ResourceInfo, name string) string {
	return fmt.Sprintf("%s %q", printers.QualifiedKind(r), name)
}
