package nodestatus

import (
	"context"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffdev/skiff/internal/logging"
)

// renewLoop renews the node's Lease every RenewInterval until ctx ends,
// the first time at once. After a failure it tries again sooner, after a
// backoff that starts at minBackoff and doubles up to the renew interval
// (at most maxBackoff), and says in the log what failed.
func (r *reporter) renewLoop(ctx context.Context) {
	var lease *coordinationv1.Lease
	delay := minBackoff
	failing := false
	for {
		var err error
		lease, err = r.renewLease(ctx, lease)
		next := r.cfg.RenewInterval
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			logging.From(ctx).Warn("renewing the node lease failed", "lease", corev1.NamespaceNodeLease+"/"+r.cfg.NodeName, "retryIn", delay, "err", err)
			next = delay
			delay = min(2*delay, maxBackoff, r.cfg.RenewInterval)
			failing = true
		case failing:
			logging.From(ctx).Info("node lease renewed again")
			delay, failing = minBackoff, false
		}
		if !r.sleep(ctx, next) {
			return
		}
	}
}

// renewLease sets the Lease's renewTime to now and returns the Lease as
// written. last is the Lease as last written, or nil: updating it costs
// one request, and only a Conflict or NotFound makes renewLease read the
// Lease again or create it.
func (r *reporter) renewLease(ctx context.Context, last *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	leases := r.client.Leases(corev1.NamespaceNodeLease)
	if last != nil {
		l := last.DeepCopy()
		r.setLease(l)
		updated, err := leases.Update(ctx, l)
		if err == nil {
			return updated, nil
		}
		if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			return last, err
		}
	}
	l, err := leases.Get(ctx, r.cfg.NodeName)
	switch {
	case apierrors.IsNotFound(err):
		l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: r.cfg.NodeName, Namespace: corev1.NamespaceNodeLease}}
		r.setLease(l)
		return leases.Create(ctx, l)
	case err != nil:
		return nil, err
	}
	r.setLease(l)
	return leases.Update(ctx, l)
}

// setLease makes l say that this node holds it and renewed it now, and
// makes the Node its owner, so that the garbage collector deletes the
// Lease with the Node. A Lease left by an earlier Node of the same name
// gets the current Node's UID.
func (r *reporter) setLease(l *coordinationv1.Lease) {
	now := metav1.NewMicroTime(r.cfg.Clock.Now())
	l.Spec.HolderIdentity = ptr.To(r.cfg.NodeName)
	l.Spec.LeaseDurationSeconds = ptr.To(int32(r.cfg.LeaseDuration.Seconds()))
	l.Spec.RenewTime = &now

	uid := r.nodeUID()
	if uid == "" {
		return
	}
	owner := metav1.OwnerReference{APIVersion: "v1", Kind: "Node", Name: r.cfg.NodeName, UID: uid}
	refs := l.OwnerReferences[:0:0]
	for _, ref := range l.OwnerReferences {
		if ref.Kind != "Node" || ref.APIVersion != "v1" {
			refs = append(refs, ref)
		}
	}
	l.OwnerReferences = append(refs, owner)
}
