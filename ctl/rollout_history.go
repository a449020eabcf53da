package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffdev/skiff/ctl/printers"
	"github.com/skiffdev/skiff/internal/client"
)

// This file holds `rollout history` and `rollout undo`: both read a
// Deployment's revisions from the replica sets it controls, each of which
// carries its revision in the deployment.kubernetes.io/revision
// annotation; a DaemonSet's come from its ControllerRevisions
// (rollout_daemonset.go).

// changeCauseAnnotation is the cause of a change that kubectl's --record
// wrote on an object and the controller copies to the replica set.
const changeCauseAnnotation = "kubernetes.io/change-cause"

// undoSkippedAnnotations are the Deployment annotations that undo keeps
// as they are rather than take from the replica set, as kubectl does.
var undoSkippedAnnotations = map[string]bool{
	corev1.LastAppliedConfigAnnotation:                  true,
	revisionAnnotation:                                  true,
	"deployment.kubernetes.io/revision-history":         true,
	"deployment.kubernetes.io/desired-replicas":         true,
	"deployment.kubernetes.io/max-replicas":             true,
	"deprecated.deployment.rollback.to":                 true,
	"deployment.kubernetes.io/last-applied-rollback-to": true,
}

// revisions returns the replica sets the Deployment controls by their
// revision. Replica sets without a valid revision are left out.
func revisions(ctx context.Context, c *client.Client, d *appsv1.Deployment) (map[int64]*appsv1.ReplicaSet, error) {
	old, newRS, err := deploymentReplicaSets(ctx, c, d)
	if err != nil {
		return nil, fmt.Errorf("failed to retrieve replica sets from deployment %s: %w", d.Name, err)
	}
	if newRS != nil {
		old = append(old, newRS)
	}
	byRevision := map[int64]*appsv1.ReplicaSet{}
	for _, rs := range old {
		v, err := strconv.ParseInt(rs.Annotations[revisionAnnotation], 10, 64)
		if err != nil {
			continue
		}
		byRevision[v] = rs
	}
	return byRevision, nil
}

func newRolloutHistoryCommand(o *Options) *cobra.Command {
	var f fileOptions
	var revision int64
	cmd := &cobra.Command{
		Use:   "history RESOURCE",
		Short: "View rollout history",
		Long: `View the rollout history of a deployment or a daemon set: its revisions,
from the replica sets a deployment controls or the controller revisions of
a daemon set, with the cause of each change (the
kubernetes.io/change-cause annotation). With --revision, the pod template
of that revision.`,
		Example: `  # The revisions of a deployment
  skiffctl rollout history deployment/web

  # The pod template of revision 3
  skiffctl rollout history deployment/web --revision=3`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if revision < 0 {
				return fmt.Errorf("revision must be a positive integer: %v", revision)
			}
			ts, err := o.targets(args, f, "rollout history")
			if err != nil {
				return err
			}
			for _, t := range ts {
				if !t.isDeployment() && !t.isDaemonSet() {
					return fmt.Errorf("no history viewer has been implemented for %q", kindOf(t.info))
				}
			}
			return o.eachRolloutTarget(cmd.Context(), ts, func(c *client.Client, t objectTarget) error {
				text, err := o.historyOf(cmd.Context(), c, t, revision)
				if err != nil {
					return err
				}
				with := ""
				if revision > 0 {
					with = fmt.Sprintf("with revision #%d", revision)
				}
				fmt.Fprintf(o.Out, "%s %s\n%s\n", t.qualifiedName(), with, text)
				return nil
			})
		},
	}
	cmd.Flags().Int64Var(&revision, "revision", 0, "see the details, including the pod template, of the revision given")
	rolloutFlags(cmd, &f, "naming the resources whose history to view")
	return cmd
}

// historyText is kubectl's history of a deployment: the REVISION and
// CHANGE-CAUSE table, or with revision > 0 that revision's pod template.
func historyText(byRevision map[int64]*appsv1.ReplicaSet, revision int64) (string, error) {
	if revision > 0 {
		rs, ok := byRevision[revision]
		if !ok {
			return "", errors.New("unable to find the specified revision")
		}
		t := rs.Spec.Template.DeepCopy()
		if cause := rs.Annotations[changeCauseAnnotation]; cause != "" {
			if t.Annotations == nil {
				t.Annotations = map[string]string{}
			}
			t.Annotations[changeCauseAnnotation] = cause
		}
		w := newDescribeWriter()
		w.podTemplate(t)
		return w.String(), nil
	}
	if len(byRevision) == 0 {
		return "No rollout history found.", nil
	}
	causes := map[int64]string{}
	for v, rs := range byRevision {
		causes[v] = rs.Annotations[changeCauseAnnotation]
	}
	return revisionTable(causes), nil
}

// revisionTable is the REVISION and CHANGE-CAUSE table of a history, by
// revision number.
func revisionTable(causes map[int64]string) string {
	revs := make([]int64, 0, len(causes))
	for v := range causes {
		revs = append(revs, v)
	}
	slices.Sort(revs)
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "REVISION\tCHANGE-CAUSE\n")
	for _, v := range revs {
		fmt.Fprintf(tw, "%d\t%s\n", v, terminalEscaper.Replace(printers.OrNone(causes[v])))
	}
	tw.Flush()
	return buf.String()
}

// historyOf is the history text of a Deployment or a DaemonSet, read
// from the server.
func (o *Options) historyOf(ctx context.Context, c *client.Client, t objectTarget, revision int64) (string, error) {
	if t.isDaemonSet() {
		ds, err := c.DaemonSets(t.namespace).Get(ctx, t.name)
		if err != nil {
			return "", err
		}
		byRevision, err := daemonSetRevisions(ctx, c, ds)
		if err != nil {
			return "", err
		}
		return daemonSetHistoryText(ds, byRevision, revision)
	}
	d, err := c.Deployments(t.namespace).Get(ctx, t.name)
	if err != nil {
		return "", err
	}
	byRevision, err := revisions(ctx, c, d)
	if err != nil {
		return "", err
	}
	return historyText(byRevision, revision)
}

func newRolloutUndoCommand(o *Options) *cobra.Command {
	var f fileOptions
	var toRevision int64
	cmd := &cobra.Command{
		Use:   "undo RESOURCE",
		Short: "Undo a previous rollout",
		Long: `Roll back to a previous rollout: the pod template of the revision given
with --to-revision, by default the revision before the latest, is put back
in the deployment or daemon set, which rolls it out again as a new
revision. A daemon set's revision is applied as the strategic merge patch
its controller revision holds.`,
		Example: `  # Roll back to the previous revision
  skiffctl rollout undo deployment/web

  # Roll back to revision 3
  skiffctl rollout undo deployment/web --to-revision=3`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if toRevision < 0 {
				return fmt.Errorf("revision must be a positive integer: %v", toRevision)
			}
			ts, err := o.targets(args, f, "rollout undo")
			if err != nil {
				return err
			}
			for _, t := range ts {
				if !t.isDeployment() && !t.isDaemonSet() {
					return fmt.Errorf("no rollbacker has been implemented for %q", kindOf(t.info))
				}
			}
			return o.eachRolloutTarget(cmd.Context(), ts, func(c *client.Client, t objectTarget) error {
				var msg string
				if t.isDaemonSet() {
					ds, err := c.DaemonSets(t.namespace).Get(cmd.Context(), t.name)
					if err != nil {
						return err
					}
					msg, err = undoDaemonSet(cmd.Context(), c, ds, toRevision)
					if err != nil {
						return err
					}
				} else {
					d, err := c.Deployments(t.namespace).Get(cmd.Context(), t.name)
					if err != nil {
						return err
					}
					msg, err = undo(cmd.Context(), c, d, toRevision)
					if err != nil {
						return err
					}
				}
				fmt.Fprintf(o.Out, "%s %s\n", t.qualifiedName(), msg)
				return nil
			})
		},
	}
	cmd.Flags().Int64Var(&toRevision, "to-revision", 0, "the revision to roll back to; 0 means the one before the latest")
	rolloutFlags(cmd, &f, "naming the resources to roll back")
	return cmd
}

// undo puts the pod template of a revision back into the Deployment and
// says what it did: "rolled back", or "skipped rollback (...)" when the
// template is already that revision's.
func undo(ctx context.Context, c *client.Client, d *appsv1.Deployment, toRevision int64) (string, error) {
	if d.Spec.Paused {
		return "", errors.New("you cannot rollback a paused deployment; resume it first with 'skiffctl rollout resume' and try again")
	}
	byRevision, err := revisions(ctx, c, d)
	if err != nil {
		return "", err
	}
	rs, err := revisionToRestore(d, byRevision, toRevision)
	if err != nil {
		return "", err
	}
	if sameTemplate(&rs.Spec.Template, &d.Spec.Template) {
		rev, _ := strconv.ParseInt(rs.Annotations[revisionAnnotation], 10, 64)
		return fmt.Sprintf("skipped rollback (current template already matches revision %d)", rev), nil
	}
	template := rs.Spec.Template.DeepCopy()
	delete(template.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	if len(template.Labels) == 0 {
		template.Labels = nil
	}
	// The Deployment takes the replica set's annotations (its change
	// cause among them), but keeps its own bookkeeping ones.
	annotations := map[string]string{}
	for k, v := range d.Annotations {
		if undoSkippedAnnotations[k] {
			annotations[k] = v
		}
	}
	for k, v := range rs.Annotations {
		if !undoSkippedAnnotations[k] {
			annotations[k] = v
		}
	}
	// A JSON patch, tested against the resourceVersion read, so that
	// the template is not put over a change made in between.
	patch, err := json.Marshal([]map[string]any{
		{"op": "test", "path": "/metadata/resourceVersion", "value": d.ResourceVersion},
		{"op": "replace", "path": "/spec/template", "value": template},
		{"op": "add", "path": "/metadata/annotations", "value": annotations},
	})
	if err != nil {
		return "", err
	}
	if _, err := c.Deployments(d.Namespace).Patch(ctx, d.Name, types.JSONPatchType, patch); err != nil {
		return "", err
	}
	return "rolled back", nil
}

// revisionToRestore finds the replica set of toRevision, or with 0 the
// one of the revision before the latest.
func revisionToRestore(d *appsv1.Deployment, byRevision map[int64]*appsv1.ReplicaSet, toRevision int64) (*appsv1.ReplicaSet, error) {
	if toRevision > 0 {
		rs, ok := byRevision[toRevision]
		if !ok {
			return nil, fmt.Errorf("unable to find specified revision %d in history", toRevision)
		}
		return rs, nil
	}
	var revs []int64
	for v := range byRevision {
		revs = append(revs, v)
	}
	if len(revs) < 2 {
		return nil, fmt.Errorf("no rollout history found for deployment %q", d.Name)
	}
	slices.Sort(revs)
	return byRevision[revs[len(revs)-2]], nil
}
