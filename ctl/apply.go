package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"

	"github.com/skiffdev/skiff/ctl/printers"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/scheme"
)

// applyAttempts bounds how often apply recomputes its patch when the
// object changes under it (a Conflict), or appears just after apply found
// it missing (AlreadyExists).
const applyAttempts = 5

type applyOptions struct {
	*Options
	files     []string
	recursive bool
	dryRun    string
}

func newApplyCommand(o *Options) *cobra.Command {
	a := &applyOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "apply -f FILENAME",
		Short: "Apply a configuration to objects from files or standard input",
		Long: `Apply a configuration to objects from files or standard input.

Objects that do not exist are created. Objects that exist are patched with
a three-way merge of the configuration last applied (kept in the
kubectl.kubernetes.io/last-applied-configuration annotation), the new one,
and the object as it is: a field removed from the manifest is removed from
the object, while fields that the cluster or other clients set are kept.

Objects are applied namespaces first, then services, then workloads. When
one fails, the others are still applied and the command exits non-zero,
printing the errors at the end. A document of a kind Skiff does not serve
is reported and skipped. A document that is not valid YAML or JSON ends
the reading: the documents before it are applied, those after it are not.`,
		Example: `  # Apply a manifest
  skiffctl apply -f web.yaml

  # Apply every manifest under a directory
  skiffctl apply -R -f manifests/

  # Apply a manifest from standard input
  cat web.yaml | skiffctl apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.run(cmd.Context()) },
	}
	fileFlags(cmd, &a.files, &a.recursive, "that contains the configuration to apply")
	dryRunFlag(cmd, &a.dryRun)
	return cmd
}

func (a *applyOptions) run(ctx context.Context) error {
	mode, err := parseDryRun(a.dryRun)
	if err != nil {
		return err
	}
	return eachDocument(ctx, a.Options, a.files, a.recursive, "applying", func(c *client.Client, doc *Document) (string, error) {
		name, result, err := a.applyOne(ctx, c, doc, mode)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s %s%s", printers.QualifiedName(doc.Resource, name), result, mode.suffix()), nil
	})
}

// applyOne creates or patches the object of one document and says which
// it did: "created", "configured" or "unchanged".
func (a *applyOptions) applyOne(ctx context.Context, c *client.Client, doc *Document, mode dryRun) (name, result string, err error) {
	obj, uc, err := a.documentObject(c, doc)
	if err != nil {
		return "", "", err
	}
	name = obj.GetName()
	if name == "" {
		return "", "", errors.New("resource name may not be empty")
	}
	modified, err := withLastApplied(obj)
	if err != nil {
		return name, "", err
	}
	warned := false
	for attempt := 1; ; attempt++ {
		live, err := uc.Get(ctx, name)
		if apierrors.IsNotFound(err) {
			err = nil
			if mode != dryRunClient {
				_, _, err = uc.Create(ctx, modified, client.JSON, metav1.CreateOptions{DryRun: mode.serverOption()})
			}
			if apierrors.IsAlreadyExists(err) && attempt < applyAttempts {
				continue // someone else created it meanwhile: patch it instead
			}
			return name, "created", err
		}
		if err != nil {
			return name, "", err
		}
		original, ok := lastApplied(live)
		if !ok && !warned {
			warned = true
			fmt.Fprintf(a.ErrOut, "Warning: %s has no %s annotation, so it was not made by apply or create --save-config; "+
				"fields missing from the manifest are kept this time, and the annotation is added now\n",
				printers.QualifiedName(doc.Resource, name), lastAppliedAnnotation)
		}
		current, patch, err := threeWayPatch(doc.Resource, original, modified, live)
		if err != nil {
			return name, "", err
		}
		if string(patch) == "{}" {
			return name, "unchanged", nil
		}
		switch mode {
		case dryRunClient:
		case dryRunServer:
			err = dryRunPatch(ctx, uc, doc.Resource, current, patch)
		default:
			_, err = uc.Patch(ctx, name, types.StrategicMergePatchType, patch)
		}
		if apierrors.IsConflict(err) && attempt < applyAttempts {
			continue
		}
		return name, "configured", err
	}
}

// lastApplied returns the configuration that apply last applied to the
// object, from its annotation, and whether it has one.
func lastApplied(obj runtime.Object) ([]byte, bool) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, false
	}
	original, ok := m.GetAnnotations()[lastAppliedAnnotation]
	return []byte(original), ok
}

// threeWayPatch computes the strategic merge patch that turns the live
// object into the modified configuration: fields in the original
// (last-applied) configuration but no longer in modified are deleted,
// fields in modified are set, and fields only the live object has
// (status, defaults, other writers' changes) are left alone. It also
// returns the live object as JSON.
func threeWayPatch(r *scheme.ResourceInfo, original, modified []byte, live runtime.Object) (current, patch []byte, err error) {
	if err := scheme.SetTypeMeta(live); err != nil {
		return nil, nil, err
	}
	current, err = json.Marshal(live)
	if err != nil {
		return nil, nil, err
	}
	// The patch metadata (merge keys of lists such as containers, which
	// lists are replaced whole) comes from the Go type's struct tags.
	lookup, err := strategicpatch.NewPatchMetaFromStruct(r.New())
	if err != nil {
		return nil, nil, err
	}
	patch, err = strategicpatch.CreateThreeWayMergePatch(original, modified, current, lookup, true)
	if err != nil {
		// The diff fails on a manifest that does not fit the type (a
		// map where the type has a list); decoding it says where.
		if _, derr := scheme.DecodeStrictJSON(modified, r.New()); derr != nil {
			return nil, nil, derr
		}
		return nil, nil, fmt.Errorf("compute the patch: %w", err)
	}
	return current, patch, nil
}

// dryRunPatch lets the server check a patch without storing it. Patch
// requests have no dry-run mode, so the patch is applied here and the
// result sent as a dry-run update, conditional on the resourceVersion
// that the patch was computed against.
func dryRunPatch(ctx context.Context, uc *client.UntypedClient, r *scheme.ResourceInfo, current, patch []byte) error {
	patched, err := strategicpatch.StrategicMergePatch(current, patch, r.New())
	if err != nil {
		return fmt.Errorf("apply the patch: %w", err)
	}
	_, _, err = uc.Update(ctx, patched, client.JSON, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
	return err
}
