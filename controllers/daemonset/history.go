package daemonset

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/skiffdev/skiff/internal/logging"
)

// A DaemonSet's history is a ControllerRevision per pod template it has
// had. Each holds the template as a strategic merge patch that replaces
// spec.template whole (what `rollout undo` applies to go back), and a
// revision number: the newest template has the highest. The revision's
// hash (of that patch) names it "<daemonset>-<hash>" and labels the pods
// made from it.

// revisionData is the data of ds's ControllerRevision:
// {"spec":{"template":{..., "$patch":"replace"}}}.
func revisionData(ds *appsv1.DaemonSet) ([]byte, error) {
	raw, err := json.Marshal(ds.Spec.Template)
	if err != nil {
		return nil, err
	}
	var template map[string]any
	if err := json.Unmarshal(raw, &template); err != nil {
		return nil, err
	}
	template["$patch"] = "replace"
	return json.Marshal(map[string]any{"spec": map[string]any{"template": template}})
}

// revisionHash is the FNV-32a hash of data (and collisionCount, when
// set), in the alphabet Kubernetes uses for generated names.
func revisionHash(data []byte, collisionCount *int32) string {
	h := fnv.New32a()
	h.Write(data)
	if collisionCount != nil {
		h.Write([]byte(strconv.FormatInt(int64(*collisionCount), 10)))
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// maxRevision is the highest revision number among revs, 0 for none.
func maxRevision(revs []*appsv1.ControllerRevision) int64 {
	var m int64
	for _, r := range revs {
		m = max(m, r.Revision)
	}
	return m
}

// historyToDelete returns the old revisions beyond limit, oldest first,
// leaving alone current and any revision a live pod was made from.
func historyToDelete(revs []*appsv1.ControllerRevision, current *appsv1.ControllerRevision, inUse map[string]bool, limit int32) []*appsv1.ControllerRevision {
	var old []*appsv1.ControllerRevision
	for _, r := range revs {
		if r.Name != current.Name && !inUse[r.Labels[RevisionHashLabel]] {
			old = append(old, r)
		}
	}
	if len(old) <= int(limit) {
		return nil
	}
	slices.SortFunc(old, func(a, b *appsv1.ControllerRevision) int {
		return cmp.Or(cmp.Compare(a.Revision, b.Revision), cmp.Compare(a.Name, b.Name))
	})
	return old[:len(old)-int(limit)]
}

// syncHistory makes sure ds's current template has the highest-numbered
// ControllerRevision and returns it: it finds the revision with the same
// data (renumbering it when a rollback brought an old template back) or
// creates one. revs are ds's revisions, as cached. A name taken by a
// revision with other data is a hash collision: collisionCount goes up
// in ds's status and the next Reconcile tries the next name.
func (c *Controller) syncHistory(ctx context.Context, ds *appsv1.DaemonSet, revs []*appsv1.ControllerRevision) (*appsv1.ControllerRevision, error) {
	data, err := revisionData(ds)
	if err != nil {
		return nil, fmt.Errorf("daemonset %s/%s: encoding template: %w", ds.Namespace, ds.Name, err)
	}
	next := maxRevision(revs) + 1
	var match *appsv1.ControllerRevision
	for _, r := range revs {
		if bytes.Equal(r.Data.Raw, data) && (match == nil || r.Revision > match.Revision) {
			match = r
		}
	}
	crClient := c.client.ControllerRevisions(ds.Namespace)
	wctx, cancel := c.writeContext(ctx)
	defer cancel()
	if match != nil {
		if match.Revision == next-1 {
			return match, nil
		}
		up := match.DeepCopy()
		up.Revision = next
		out, err := crClient.Update(wctx, up)
		if err != nil {
			return nil, fmt.Errorf("daemonset %s/%s: renumbering revision %q: %w", ds.Namespace, ds.Name, match.Name, err)
		}
		logging.From(ctx).Info("template brought back", "revision", out.Name, "number", next)
		return out, nil
	}

	hash := revisionHash(data, ds.Status.CollisionCount)
	labels := maps.Clone(ds.Spec.Template.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[RevisionHashLabel] = hash
	cr := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name:            revisionName(ds.Name, hash),
			Namespace:       ds.Namespace,
			Labels:          labels,
			Annotations:     maps.Clone(ds.Annotations),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ds, controllerKind)},
		},
		Data:     runtime.RawExtension{Raw: data},
		Revision: next,
	}
	delete(cr.Annotations, "kubectl.kubernetes.io/last-applied-configuration")
	out, err := crClient.Create(wctx, cr)
	if err == nil {
		return out, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("daemonset %s/%s: creating revision %q: %w", ds.Namespace, ds.Name, cr.Name, err)
	}
	existing, getErr := crClient.Get(wctx, cr.Name)
	if getErr != nil {
		return nil, fmt.Errorf("daemonset %s/%s: reading revision %q: %w", ds.Namespace, ds.Name, cr.Name, getErr)
	}
	if ref := metav1.GetControllerOf(existing); ref != nil && ref.UID == ds.UID && bytes.Equal(existing.Data.Raw, data) {
		// Ours, not yet in the cache.
		return existing, nil
	}
	// A collision: bump collisionCount so the next hash differs.
	up := ds.DeepCopy()
	up.Status.CollisionCount = new(int32(0))
	if ds.Status.CollisionCount != nil {
		*up.Status.CollisionCount = *ds.Status.CollisionCount + 1
	}
	if _, err := c.client.DaemonSets(ds.Namespace).UpdateStatus(wctx, up); err != nil {
		return nil, fmt.Errorf("daemonset %s/%s: raising collisionCount: %w", ds.Namespace, ds.Name, err)
	}
	return nil, fmt.Errorf("daemonset %s/%s: revision name %q is taken by another template; collisionCount raised", ds.Namespace, ds.Name, cr.Name)
}

// revisionName is "<daemonset>-<hash>", the daemonset's name cut so that
// the whole fits a name (253 characters).
func revisionName(name, hash string) string {
	if len(name) > 223 {
		name = name[:223]
	}
	return name + "-" + hash
}

// cleanupHistory deletes the revisions beyond spec.revisionHistoryLimit.
func (c *Controller) cleanupHistory(ctx context.Context, ds *appsv1.DaemonSet, revs []*appsv1.ControllerRevision, current *appsv1.ControllerRevision, inUse map[string]bool) error {
	limit := int32(10)
	if ds.Spec.RevisionHistoryLimit != nil {
		limit = *ds.Spec.RevisionHistoryLimit
	}
	var errs []error
	for _, r := range historyToDelete(revs, current, inUse, limit) {
		wctx, cancel := c.writeContext(ctx)
		err := c.client.ControllerRevisions(r.Namespace).Delete(wctx, r.Name, metav1.DeleteOptions{})
		cancel()
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("daemonset %s/%s: deleting old revision %q: %w", ds.Namespace, ds.Name, r.Name, err))
		}
	}
	return errors.Join(errs...)
}
