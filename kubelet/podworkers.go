package kubelet

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffdev/skiff/internal/logging"
)

// syncResult tells a pod worker what to do after a sync.
type syncResult struct {
	// after asks for another sync after this long even if nothing wakes
	// the worker (a backoff ending, a grace period running out); zero
	// means only when woken.
	after time.Duration
	// done means the pod is gone from the node and the API: the worker
	// ends.
	done bool
}

// syncFunc brings one pod to its desired state. pod is the latest object
// seen for uid, nil when only the runtime knows of it; state is the pod's
// own, kept by its worker from one sync to the next.
type syncFunc func(ctx context.Context, uid types.UID, pod *corev1.Pod, state *podState) (syncResult, error)

// podWorkers runs one goroutine per pod, so a slow pod (an image pull, a
// grace period) never holds up another, and a pod's syncs never overlap.
// Each worker syncs when woken — by a change of the pod, an exited
// container, a probe result — and on a timer it asks for.
//
// Each worker owns its pod's podState: it makes one with newState when it
// starts, hands it to every sync, and makes a new one after a sync that
// reports the pod gone.
//
// A worker is the driver of its pod: the context of each sync carries the
// logger of the context passed to start with the pod added (its
// namespace/name, or its UID when only the runtime knows of it).
type podWorkers struct {
	sync     syncFunc
	newState func() *podState

	// mu guards ctx and workers, and is held while a worker is poked or
	// removed.
	mu      sync.Mutex
	ctx     context.Context // nil until start
	workers map[types.UID]*podWorker
	wg      sync.WaitGroup
}

type podWorker struct {
	wakeup chan struct{} // capacity 1: a pending wake-up is never lost nor doubled

	// mu guards pod and cancel, which update and the worker's goroutine
	// share.
	mu  sync.Mutex
	pod *corev1.Pod
	// cancel interrupts the sync under way, when the pod is being deleted
	// meanwhile: an image pull or a grace period of the old plan must not
	// hold up the deletion.
	cancel context.CancelFunc
}

func newPodWorkers(fn syncFunc, newState func() *podState) *podWorkers {
	return &podWorkers{sync: fn, newState: newState, workers: map[types.UID]*podWorker{}}
}

// start starts the workers of the pods seen so far, and lets later ones
// start at once.
func (p *podWorkers) start(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ctx = ctx
	for uid, w := range p.workers {
		p.run(uid, w)
	}
}

// wait waits for every worker to end after the context passed to start.
func (p *podWorkers) wait() { p.wg.Wait() }

// update records the latest pod object and wakes its worker.
func (p *podWorkers) update(pod *corev1.Pod) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.getLocked(pod.UID)
	w.mu.Lock()
	if interrupts(w.pod, pod) && w.cancel != nil {
		w.cancel()
	}
	w.pod = pod
	w.mu.Unlock()
	w.poke()
}

// ensure makes sure a worker runs for uid, which the runtime knows of.
func (p *podWorkers) ensure(uid types.UID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.getLocked(uid).poke()
}

// wake asks the worker of uid, if any, to sync.
func (p *podWorkers) wake(uid types.UID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if w := p.workers[uid]; w != nil {
		w.poke()
	}
}

// getLocked returns the worker of uid, starting one if needed; p.mu is
// held. Pokes happen under p.mu too, so remove never drops a worker that
// was just woken.
func (p *podWorkers) getLocked(uid types.UID) *podWorker {
	w, ok := p.workers[uid]
	if !ok {
		w = &podWorker{wakeup: make(chan struct{}, 1)}
		p.workers[uid] = w
		if p.ctx != nil {
			p.run(uid, w)
		}
	}
	return w
}

func (w *podWorker) poke() {
	select {
	case w.wakeup <- struct{}{}:
	default:
	}
}

// run starts the goroutine of one worker; p.mu is held.
func (p *podWorkers) run(uid types.UID, w *podWorker) {
	ctx := p.ctx
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		// The pod's state is this goroutine's alone.
		state := p.newState()
		retry := time.Duration(0)
		var timer *time.Timer
		for {
			var timerC <-chan time.Time
			if timer != nil {
				timerC = timer.C
			}
			select {
			case <-ctx.Done():
				return
			case <-w.wakeup:
			case <-timerC:
			}
			if timer != nil {
				timer.Stop()
				timer = nil
			}
			syncCtx, cancel := context.WithCancel(ctx)
			w.mu.Lock()
			pod := w.pod
			w.cancel = cancel
			w.mu.Unlock()
			name := string(uid)
			if pod != nil {
				name = pod.Namespace + "/" + pod.Name
			}
			syncCtx, log := logging.With(syncCtx, "pod", name)
			res, err := p.sync(syncCtx, uid, pod, state)
			w.mu.Lock()
			w.cancel = nil
			w.mu.Unlock()
			interrupted := syncCtx.Err() != nil
			cancel()
			if ctx.Err() != nil {
				return
			}
			switch {
			case err != nil && interrupted:
				// Interrupted by the pod's deletion: the wake-up that came
				// with it starts the next sync at once.
			case err != nil:
				retry = min(max(2*retry, 500*time.Millisecond), 30*time.Second)
				log.Warn("pod sync failed; retrying", "in", retry, "err", err)
				timer = time.NewTimer(retry)
			case res.done:
				if p.remove(uid, w) {
					return
				}
				// Woken again while finishing: a pod of the same UID came
				// back, or the runtime still reports something. What was
				// kept of the pod that is gone does not apply to it.
				state = p.newState()
			default:
				retry = 0
				if res.after > 0 {
					timer = time.NewTimer(res.after)
				}
			}
		}
	}()
}

// interrupts reports whether the change from old to pod is one that must
// interrupt a sync under way: the pod's deletion began, or its grace
// period got shorter.
func interrupts(old, pod *corev1.Pod) bool {
	if old == nil || pod.DeletionTimestamp == nil {
		return false
	}
	if old.DeletionTimestamp == nil {
		return true
	}
	g, og := pod.DeletionGracePeriodSeconds, old.DeletionGracePeriodSeconds
	return g != nil && og != nil && *g < *og
}

// remove forgets a finished worker unless a wake-up is pending.
func (p *podWorkers) remove(uid types.UID, w *podWorker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-w.wakeup:
		w.poke()
		return false
	default:
	}
	delete(p.workers, uid)
	return true
}
