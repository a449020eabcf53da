package nodestatus

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/logging"
)

// Backoff after a failed registration or Lease renewal: the first retry
// comes after minBackoff, each next one after twice as long, up to
// maxBackoff (and never later than the renew interval for the Lease).
const (
	minBackoff = 200 * time.Millisecond
	maxBackoff = 7 * time.Second
)

// Run registers the node and keeps its status and Lease up to date until
// ctx ends; then it returns nil. It returns an error only when the
// configuration is invalid, the machine cannot be read, or the API server
// rejects the Node itself (an invalid label, say); everything else is
// logged and retried.
//
// onNode, when not nil, is called with the Node as last read or written:
// after registration and after every status check. It runs on Run's
// goroutine, so it must not block for long; the Node is the caller's to
// keep but not to change.
//
// Run logs through the logger ctx carries, with part=nodestatus.
func Run(ctx context.Context, c *client.Client, cfg Config, onNode func(*corev1.Node)) error {
	ctx, _ = logging.With(ctx, "part", "nodestatus")
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("node status config: %w", err)
	}
	m, err := readMachine(&cfg)
	if err != nil {
		return fmt.Errorf("reading the machine's resources: %w", err)
	}
	if onNode == nil {
		onNode = func(*corev1.Node) {}
	}
	r := &reporter{
		client:  c,
		cfg:     cfg,
		machine: m,
		onNode:  onNode,
	}

	node, err := r.register(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	onNode(node)

	var wg sync.WaitGroup
	wg.Go(func() { r.renewLoop(ctx) })
	r.statusLoop(ctx)
	wg.Wait()
	return nil
}

// reporter holds the state of one Run.
type reporter struct {
	client  *client.Client
	cfg     Config
	machine machine
	onNode  func(*corev1.Node)

	// mu guards uid, the UID of the Node as last registered: the Lease's
	// owner. It changes when the Node is deleted and registered again.
	mu  sync.Mutex
	uid types.UID

	// lastReport is when the status was last written; only statusLoop
	// uses it.
	lastReport time.Time
}

func (r *reporter) nodeUID() types.UID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.uid
}

// register creates the Node or, when one of that name exists, takes it
// over. It retries until it succeeds, ctx ends, or the API server rejects
// the request as invalid.
func (r *reporter) register(ctx context.Context) (*corev1.Node, error) {
	delay := minBackoff
	for {
		node, created, err := r.registerOnce(ctx)
		if err == nil {
			r.mu.Lock()
			r.uid = node.UID
			r.mu.Unlock()
			if created {
				logging.From(ctx).Info("node registered")
			} else {
				logging.From(ctx).Info("existing node taken over")
			}
			return node, nil
		}
		if permanent(err) {
			return nil, fmt.Errorf("registering node %q: %w", r.cfg.NodeName, err)
		}
		logging.From(ctx).Warn("registering the node failed", "retryIn", delay, "err", err)
		if !r.sleep(ctx, delay) {
			return nil, ctx.Err()
		}
		delay = min(2*delay, maxBackoff)
	}
}

// registerOnce creates the Node with its labels, pod CIDR and a first
// status. When it exists already, the node adds its labels to those
// there, and sets the pod CIDR if the Node has none; the rest of the spec
// (taints, unschedulable) is left to whoever set it. The status is taken
// over by the first status check.
func (r *reporter) registerOnce(ctx context.Context) (node *corev1.Node, created bool, err error) {
	nodes := r.client.Nodes()
	now := metav1.NewTime(r.cfg.Clock.Now())
	want := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: r.cfg.NodeName, Labels: nodeLabels(&r.cfg)},
		Spec:       corev1.NodeSpec{PodCIDR: r.cfg.PodCIDR},
	}
	if r.cfg.PodCIDR != "" {
		want.Spec.PodCIDRs = []string{r.cfg.PodCIDR}
	}
	want.Status = desiredStatus(&r.cfg, r.machine, r.cfg.Health(), now, &corev1.NodeStatus{})
	node, err = nodes.Create(ctx, want)
	if err == nil {
		r.lastReport = now.Time
		return node, true, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return nil, false, err
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err = nodes.Get(ctx, r.cfg.NodeName)
		if err != nil {
			return err
		}
		changed := false
		for k, v := range want.Labels {
			if have, ok := node.Labels[k]; !ok || have != v {
				changed = true
			}
		}
		if changed {
			if node.Labels == nil {
				node.Labels = map[string]string{}
			}
			maps.Copy(node.Labels, want.Labels)
		}
		if node.Spec.PodCIDR == "" && len(node.Spec.PodCIDRs) == 0 && r.cfg.PodCIDR != "" {
			node.Spec.PodCIDR, node.Spec.PodCIDRs = want.Spec.PodCIDR, want.Spec.PodCIDRs
			changed = true
		}
		if !changed {
			return nil
		}
		node, err = nodes.Update(ctx, node)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	// Whatever the old status says was written by someone else: report
	// ours at the first check even if it happens to be equal.
	r.lastReport = time.Time{}
	return node, false, nil
}

// statusLoop checks the node's status every StatusInterval until ctx
// ends, the first time at once.
func (r *reporter) statusLoop(ctx context.Context) {
	for {
		r.syncStatus(ctx)
		if !r.sleep(ctx, r.cfg.StatusInterval) {
			return
		}
	}
}

// syncStatus reads the Node, computes the status it should have, and
// writes it through the status subresource when it differs or when
// StatusReportInterval has passed since the last write. A conflict (the
// node lifecycle controller or an admin wrote the Node meanwhile) reads
// it again and recomputes. A Node deleted behind the kubelet's back is
// registered again.
func (r *reporter) syncStatus(ctx context.Context) {
	healthErr := r.cfg.Health()
	nodes := r.client.Nodes()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := nodes.Get(ctx, r.cfg.NodeName)
		if apierrors.IsNotFound(err) {
			logging.From(ctx).Warn("the node was deleted; registering it again")
			node, err = r.register(ctx)
		}
		if err != nil {
			return err
		}
		now := r.cfg.Clock.Now()
		mnow := metav1.NewTime(now)
		want := desiredStatus(&r.cfg, r.machine, healthErr, mnow, &node.Status)
		if !statusChanged(&want, &node.Status) && now.Sub(r.lastReport) < r.cfg.StatusReportInterval {
			r.onNode(node)
			return nil
		}
		touchHeartbeats(&want, mnow)
		before := readyCondition(&node.Status)
		node.Status = want
		updated, err := nodes.UpdateStatus(ctx, node)
		if err != nil {
			return err
		}
		r.lastReport = now
		r.logReadiness(ctx, before, readyCondition(&updated.Status))
		r.onNode(updated)
		return nil
	})
	if err != nil && ctx.Err() == nil {
		logging.From(ctx).Warn("updating the node status failed", "retryIn", r.cfg.StatusInterval, "err", err)
	}
}

// logReadiness logs a change of the Ready condition.
func (r *reporter) logReadiness(ctx context.Context, before, after *corev1.NodeCondition) {
	if after == nil || (before != nil && before.Status == after.Status && before.Message == after.Message) {
		return
	}
	if after.Status == corev1.ConditionTrue {
		logging.From(ctx).Info("node is ready")
	} else {
		logging.From(ctx).Warn("node is not ready", "reason", after.Reason, "message", after.Message)
	}
}

// sleep waits d on the configured clock. It reports false when ctx ended
// first.
func (r *reporter) sleep(ctx context.Context, d time.Duration) bool {
	t := r.cfg.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}

// permanent reports whether err says the request itself was wrong, so
// that sending it again cannot help.
func permanent(err error) bool {
	return apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) || apierrors.IsForbidden(err) ||
		apierrors.IsUnauthorized(err) || apierrors.IsMethodNotSupported(err)
}
