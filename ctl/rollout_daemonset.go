package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"

	"github.com/skiffdev/skiff/internal/client"
)

// This file holds what `rollout status`, `history` and `undo` do for a
// DaemonSet. Its history is kept by the DaemonSet controller as
// ControllerRevisions that the DaemonSet controls, one per pod template
// it has had: each revision's data is a strategic merge patch that puts
// that template back, and its number says how recent it is.

// isDaemonSet reports whether t is a DaemonSet.
func (t objectTarget) isDaemonSet() bool {
	return t.info.Group == "apps" && t.info.Resource == "daemonsets"
}

// daemonSetRolloutStatus is kubectl's judgement of a DaemonSet's rollout:
// a line to print and whether it is done. Only a RollingUpdate has a
// rollout to watch.
func daemonSetRolloutStatus(ds *appsv1.DaemonSet) (string, bool, error) {
	if ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType {
		return "", true, fmt.Errorf("rollout status is only available for %s strategy type", appsv1.RollingUpdateDaemonSetStrategyType)
	}
	if ds.Generation > ds.Status.ObservedGeneration {
		return "Waiting for daemon set spec update to be observed...\n", false, nil
	}
	st := ds.Status
	if st.UpdatedNumberScheduled < st.DesiredNumberScheduled {
		return fmt.Sprintf("Waiting for daemon set %q rollout to finish: %d out of %d new pods have been updated...\n", ds.Name, st.UpdatedNumberScheduled, st.DesiredNumberScheduled), false, nil
	}
	if st.NumberAvailable < st.DesiredNumberScheduled {
		return fmt.Sprintf("Waiting for daemon set %q rollout to finish: %d of %d updated pods are available...\n", ds.Name, st.NumberAvailable, st.DesiredNumberScheduled), false, nil
	}
	return fmt.Sprintf("daemon set %q successfully rolled out\n", ds.Name), true, nil
}

// daemonSetRevisions returns the ControllerRevisions ds controls, by
// revision number.
func daemonSetRevisions(ctx context.Context, c *client.Client, ds *appsv1.DaemonSet) (map[int64]*appsv1.ControllerRevision, error) {
	sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil {
		return nil, err
	}
	list, err := c.ControllerRevisions(ds.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("failed to retrieve history from daemonset %s: %w", ds.Name, err)
	}
	byRevision := map[int64]*appsv1.ControllerRevision{}
	for i := range list.Items {
		if cr := &list.Items[i]; metav1.IsControlledBy(cr, ds) {
			byRevision[cr.Revision] = cr
		}
	}
	return byRevision, nil
}

// revisionTemplate is the pod template ds would have with revision cr
// applied: cr's data patched onto ds.
func revisionTemplate(ds *appsv1.DaemonSet, cr *appsv1.ControllerRevision) (*corev1.PodTemplateSpec, error) {
	current, err := json.Marshal(ds)
	if err != nil {
		return nil, err
	}
	patched, err := strategicpatch.StrategicMergePatch(current, cr.Data.Raw, &appsv1.DaemonSet{})
	if err != nil {
		return nil, fmt.Errorf("unable to parse history %s: %w", cr.Name, err)
	}
	var out appsv1.DaemonSet
	if err := json.Unmarshal(patched, &out); err != nil {
		return nil, fmt.Errorf("unable to parse history %s: %w", cr.Name, err)
	}
	return &out.Spec.Template, nil
}

// daemonSetHistoryText is kubectl's history of a DaemonSet: the REVISION
// and CHANGE-CAUSE table (the cause is an annotation the controller copies
// from the DaemonSet to the revision), or with revision > 0 that
// revision's pod template.
func daemonSetHistoryText(ds *appsv1.DaemonSet, byRevision map[int64]*appsv1.ControllerRevision, revision int64) (string, error) {
	if len(byRevision) == 0 {
		return "No rollout history found.", nil
	}
	if revision > 0 {
		cr, ok := byRevision[revision]
		if !ok {
			return "", errors.New("unable to find the specified revision")
		}
		t, err := revisionTemplate(ds, cr)
		if err != nil {
			return "", err
		}
		w := newDescribeWriter()
		w.podTemplate(t)
		return w.String(), nil
	}
	causes := map[int64]string{}
	for v, cr := range byRevision {
		causes[v] = cr.Annotations[changeCauseAnnotation]
	}
	return revisionTable(causes), nil
}

// undoDaemonSet applies the data of a revision to ds, as kubectl does: a
// strategic merge patch that replaces the pod template. toRevision 0 is
// the revision before the latest.
func undoDaemonSet(ctx context.Context, c *client.Client, ds *appsv1.DaemonSet, toRevision int64) (string, error) {
	byRevision, err := daemonSetRevisions(ctx, c, ds)
	if err != nil {
		return "", err
	}
	revs := make([]int64, 0, len(byRevision))
	for v := range byRevision {
		revs = append(revs, v)
	}
	slices.Sort(revs)
	var cr *appsv1.ControllerRevision
	switch {
	case toRevision > 0:
		cr = byRevision[toRevision]
		if cr == nil {
			return "", fmt.Errorf("unable to find specified revision %d in history", toRevision)
		}
	case len(revs) <= 1:
		return "", errors.New("no last revision to roll back to")
	default:
		cr = byRevision[revs[len(revs)-2]]
	}
	t, err := revisionTemplate(ds, cr)
	if err != nil {
		return "", err
	}
	if equality.Semantic.DeepEqual(t, &ds.Spec.Template) {
		return fmt.Sprintf("skipped rollback (current template already matches revision %d)", cr.Revision), nil
	}
	if _, err := c.DaemonSets(ds.Namespace).Patch(ctx, ds.Name, types.StrategicMergePatchType, cr.Data.Raw); err != nil {
		return "", fmt.Errorf("failed restoring revision %d: %w", cr.Revision, err)
	}
	return "rolled back", nil
}
