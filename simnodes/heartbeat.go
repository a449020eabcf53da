package simnodes

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffdev/skiff/internal/logging"
)

const (
	// LeaseDurationSeconds is written into every node Lease: how long
	// after its last renewal the node counts as alive.
	LeaseDurationSeconds = 40

	// heartbeatWorkers bounds how many heartbeat requests are in flight.
	heartbeatWorkers = 16
	// minTick is the shortest pause between two batches of heartbeats:
	// 5,000 nodes every 10 s are sent as 5 nodes every 10 ms rather than
	// one node every 2 ms.
	minTick = 10 * time.Millisecond
)

// heartbeatStats counts heartbeats between two reports.
type heartbeatStats struct {
	renewed, failed atomic.Int64

	// mu guards lastErr.
	mu      sync.Mutex
	lastErr error
}

func (h *heartbeatStats) fail(err error) {
	h.failed.Add(1)
	h.mu.Lock()
	h.lastErr = err
	h.mu.Unlock()
}

// heartbeats renews every node's Lease once per HeartbeatInterval until
// ctx ends. Node i's turn comes at i/Count of the way through each
// interval, so the requests are spread evenly over it instead of sent in
// one burst. The dispatcher hands due nodes to heartbeatWorkers workers;
// when they fall behind it waits for them, and a node whose previous
// heartbeat is still queued or running skips its turn.
func (s *sim) heartbeats(ctx context.Context) {
	count := len(s.nodes)
	interval := s.cfg.HeartbeatInterval
	now := time.Now()
	for i, n := range s.nodes {
		// Registration just wrote every node's status; spread the next
		// writes over NodeStatusInterval as well.
		n.nextStatus = now.Add(s.cfg.NodeStatusInterval * time.Duration(i+1) / time.Duration(count))
	}

	work := make(chan *simNode, heartbeatWorkers)
	var wg sync.WaitGroup
	for range min(heartbeatWorkers, count) {
		wg.Go(func() {
			for n := range work {
				s.heartbeat(ctx, n)
				n.busy.Store(false)
			}
		})
	}
	defer func() {
		close(work)
		wg.Wait()
	}()

	tick := max(interval/time.Duration(count), minTick)
	slots := max(int(interval/tick), 1)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	// A round normally takes slots ticks, at most the interval. The
	// ticker drops ticks while the dispatcher waits for busy workers, so
	// a round that takes longer means Leases are renewed less often than
	// HeartbeatInterval; one tick of slack absorbs the ticker's jitter.
	roundStart, late := time.Now(), interval+tick
	next, slot, skipped := 0, 0, 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		slot++
		for end := slot * count / slots; next < end; next++ {
			n := s.nodes[next]
			if !n.busy.CompareAndSwap(false, true) {
				skipped++
				continue
			}
			select {
			case work <- n:
			case <-ctx.Done():
				return
			}
		}
		if slot == slots {
			now := time.Now()
			s.reportHeartbeats(ctx, skipped, now.Sub(roundStart), late)
			roundStart = now
			next, slot, skipped = 0, 0, 0
		}
	}
}

// heartbeat renews node n's Lease and, when it is due, its status.
func (s *sim) heartbeat(ctx context.Context, n *simNode) {
	if n.gone {
		return
	}
	if err := s.renewLease(ctx, n); err != nil {
		s.stats.fail(err)
	} else {
		s.stats.renewed.Add(1)
	}
	if time.Now().Before(n.nextStatus) {
		return
	}
	switch err := s.refreshStatus(ctx, n); {
	case apierrors.IsNotFound(err):
		n.gone = true
		logging.From(ctx).Warn("simulated node was deleted; it stops heartbeating", "node", n.name)
	case err != nil:
		s.stats.fail(err)
	default:
		n.nextStatus = time.Now().Add(s.cfg.NodeStatusInterval)
	}
}

// reportHeartbeats logs how the last round of heartbeats went: a warning
// when some failed or were skipped, or when the round took longer than
// late, else a debug line.
func (s *sim) reportHeartbeats(ctx context.Context, skipped int, took, late time.Duration) {
	log := logging.From(ctx)
	renewed, failed := s.stats.renewed.Swap(0), s.stats.failed.Swap(0)
	s.stats.mu.Lock()
	lastErr := s.stats.lastErr
	s.stats.lastErr = nil
	s.stats.mu.Unlock()
	switch {
	case failed > 0:
		log.Warn("heartbeats failed", "failed", failed, "renewed", renewed, "skipped", skipped, "took", took, "err", lastErr)
	case skipped > 0:
		log.Warn("heartbeats fell behind", "skipped", skipped, "renewed", renewed, "took", took)
	case took > late:
		log.Warn("heartbeat round took longer than the heartbeat interval", "took", took, "interval", s.cfg.HeartbeatInterval, "renewed", renewed)
	default:
		log.Debug("heartbeat round", "renewed", renewed, "took", took)
	}
}

// renewLease sets node n's Lease's renewTime to now. It updates the
// Lease as last written, which costs one request; only when that fails
// with a Conflict (someone else wrote it) or NotFound does it read the
// Lease again, or create it.
func (s *sim) renewLease(ctx context.Context, n *simNode) error {
	leases := s.client.Leases(corev1.NamespaceNodeLease)
	if n.lease != nil {
		s.setLeaseSpec(n, n.lease)
		l, err := leases.Update(ctx, n.lease)
		if err == nil {
			n.lease = l
			return nil
		}
		if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			return err
		}
		n.lease = nil
	}
	l, err := leases.Get(ctx, n.name)
	switch {
	case apierrors.IsNotFound(err):
		l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: n.name, Namespace: corev1.NamespaceNodeLease}}
		if n.uid != "" {
			// Like a kubelet's, the Lease goes when its Node goes.
			l.OwnerReferences = []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "Node", Name: n.name, UID: n.uid,
			}}
		}
		s.setLeaseSpec(n, l)
		l, err = leases.Create(ctx, l)
	case err == nil:
		s.setLeaseSpec(n, l)
		l, err = leases.Update(ctx, l)
	}
	if err != nil {
		return err
	}
	n.lease = l
	return nil
}

// setLeaseSpec makes l say that node n renewed it just now.
func (s *sim) setLeaseSpec(n *simNode, l *coordinationv1.Lease) {
	now := metav1.NowMicro()
	l.Spec.HolderIdentity = ptr.To(n.name)
	l.Spec.LeaseDurationSeconds = ptr.To[int32](LeaseDurationSeconds)
	l.Spec.RenewTime = &now
}
