package scheduler

import (
	"container/heap"
	"context"
	"maps"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/utils/clock"
)

// The scheduling queue's timings.
const (
	// InitialBackoff is how long a pod waits after its first failed
	// attempt; each further failure doubles the wait, up to MaxBackoff.
	InitialBackoff = time.Second
	MaxBackoff     = 10 * time.Second
	// MaxUnschedulableWait is how long an unschedulable pod stays parked
	// when no event moves it: the safety net for an event the queue
	// missed or did not think relevant.
	MaxUnschedulableWait = 60 * time.Second
	// unschedulableFlushInterval is how often Run looks for pods parked
	// longer than MaxUnschedulableWait.
	unschedulableFlushInterval = 30 * time.Second
)

// Queue holds the pods waiting to be scheduled. Each pod is in exactly one
// of four places:
//
//   - active: ready to be tried, highest spec.priority first, then oldest
//     (creationTimestamp), then first come;
//   - backoff: failed recently, waiting out its backoff (1 s, doubling
//     with every attempt, at most 10 s) before it becomes active again;
//   - unschedulable: no node fits it, parked until something happens in
//     the cluster that could make one fit (MoveAllToActiveOrBackoff), or
//     for at most MaxUnschedulableWait;
//   - in flight: handed out by Pop and not yet given back with Done or
//     Requeue. Updates of an in-flight pod are remembered, so a pod is
//     never tried twice at once.
//
// Nothing polls: Pop sleeps until a pod is active, or until the first
// backoff ends. A Queue is safe for concurrent use.
type Queue struct {
	clock clock.WithTicker

	// mu guards everything below.
	mu            sync.Mutex
	entries       map[string]*entry // every pod in the queue, by namespace/name
	active        activeHeap
	backoff       backoffHeap
	unschedulable map[string]*entry // the parked pods, so a move need not scan all
	// changed is closed, and replaced, whenever a pod enters active or
	// backoff, to wake up Pop.
	changed chan struct{}
	// seq numbers arrivals, the last tie-break of the active order.
	seq uint64
	// cycle counts Pops; moveCycle is the cycle of the last
	// MoveAllToActiveOrBackoff. A pod requeued as unschedulable after a
	// move that happened while it was in flight may have missed the
	// event that would make it fit, so it goes to backoff instead.
	cycle, moveCycle uint64
}

// place is where a pod is in the queue.
type place int

const (
	inActive place = iota
	inBackoff
	inUnschedulable
	inFlight
)

// entry is one pod in the queue.
type entry struct {
	key      string
	pod      *corev1.Pod
	place    place
	attempts int    // Pops so far
	seq      uint64 // arrival order
	index    int    // position in the heap it is in

	backoffUntil time.Time // when a pod in backoff may be tried again
	parkedAt     time.Time // when the pod became unschedulable

	poppedCycle     uint64 // the cycle of the pod's last Pop
	updatedInFlight bool   // the pod changed while it was in flight
}

// QueuedPod is a pod handed out by Pop. Give it back with Done (it was
// scheduled and bound, or is no longer wanted) or Requeue (try again).
type QueuedPod struct {
	// Pod is the newest version of the pod the queue knew of at Pop.
	Pod *corev1.Pod
	// Attempts counts the Pops of this pod, this one included.
	Attempts int

	entry *entry
}

// NewQueue returns an empty queue that measures time with clk.
func NewQueue(clk clock.WithTicker) *Queue {
	return &Queue{
		clock:         clk,
		entries:       map[string]*entry{},
		unschedulable: map[string]*entry{},
		changed:       make(chan struct{}),
	}
}

// Add adds a pending pod. A pod already in the queue is updated instead.
func (q *Queue) Add(pod *corev1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	key := podKey(pod)
	if e, ok := q.entries[key]; ok {
		q.updateLocked(e, pod)
		return
	}
	q.seq++
	e := &entry{key: key, pod: pod, seq: q.seq}
	q.entries[key] = e
	q.pushActiveLocked(e)
}

// Update replaces a pending pod with its newer version. A parked
// unschedulable pod whose spec, labels or annotations changed is tried
// again (after its backoff): the change may make it fit. A pod not in the
// queue is added.
func (q *Queue) Update(pod *corev1.Pod) {
	q.Add(pod)
}

func (q *Queue) updateLocked(e *entry, pod *corev1.Pod) {
	changed := podChanged(e.pod, pod)
	e.pod = pod
	switch e.place {
	case inActive:
		heap.Fix(&q.active, e.index)
	case inUnschedulable:
		if changed {
			q.moveLocked(e, q.clock.Now())
		}
	case inFlight:
		if changed {
			e.updatedInFlight = true
		}
	}
}

// Delete removes the pod with the given key (namespace/name) wherever it
// is. If it is in flight, its Done and Requeue do nothing.
func (q *Queue) Delete(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, ok := q.entries[key]
	if !ok {
		return
	}
	switch e.place {
	case inActive:
		heap.Remove(&q.active, e.index)
	case inBackoff:
		heap.Remove(&q.backoff, e.index)
	case inUnschedulable:
		delete(q.unschedulable, key)
	}
	delete(q.entries, key)
}

// Pop blocks until a pod is active and hands out the first one, or
// returns ctx.Err() when ctx ends.
func (q *Queue) Pop(ctx context.Context) (*QueuedPod, error) {
	for {
		qp, changed, wait := q.tryPop()
		if qp != nil {
			return qp, nil
		}
		var timer clock.Timer
		var timeout <-chan time.Time
		if wait > 0 {
			timer = q.clock.NewTimer(wait)
			timeout = timer.C()
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-timeout:
		}
		if timer != nil {
			timer.Stop()
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// tryPop hands out the first active pod, after moving the pods whose
// backoff has ended to active. With none active it returns what Pop waits
// for: the channel closed on the next change and how long until the
// first backoff ends (0 for no backoff).
func (q *Queue) tryPop() (qp *QueuedPod, changed <-chan struct{}, wait time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.clock.Now()
	q.flushBackoffLocked(now)
	if q.active.Len() == 0 {
		if q.backoff.Len() > 0 {
			wait = q.backoff[0].backoffUntil.Sub(now)
		}
		return nil, q.changed, wait
	}
	e := heap.Pop(&q.active).(*entry)
	e.place = inFlight
	e.attempts++
	q.cycle++
	e.poppedCycle = q.cycle
	e.updatedInFlight = false
	return &QueuedPod{Pod: e.pod, Attempts: e.attempts, entry: e}, nil, 0
}

// Done removes a pod handed out by Pop: it was bound, or needs no
// scheduling any more. It does nothing if the pod was deleted from the
// queue meanwhile.
func (q *Queue) Done(qp *QueuedPod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.entries[qp.entry.key] == qp.entry && qp.entry.place == inFlight {
		delete(q.entries, qp.entry.key)
	}
}

// Requeue gives back a pod handed out by Pop that must be tried again.
// An unschedulable pod (no node fits it) is parked until a cluster event
// moves it; any other failure (a bind that failed, an error) backs off.
// A pod that changed, or saw a move request, while in flight backs off
// too instead of being parked, since what it waits for may have happened
// already. Requeue does nothing if the pod was deleted from the queue
// meanwhile.
func (q *Queue) Requeue(qp *QueuedPod, unschedulable bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e := qp.entry
	if q.entries[e.key] != e || e.place != inFlight {
		return
	}
	now := q.clock.Now()
	e.backoffUntil = now.Add(backoffFor(e.attempts))
	if unschedulable && q.moveCycle < e.poppedCycle && !e.updatedInFlight {
		e.place = inUnschedulable
		e.parkedAt = now
		q.unschedulable[e.key] = e
		return
	}
	q.pushBackoffLocked(e)
}

// MoveAllToActiveOrBackoff is called on a cluster event that could make
// unschedulable pods fit (a node added or changed, a pod on a node gone):
// every parked pod becomes active, or backs off if its backoff has not
// ended yet. It returns how many pods moved.
func (q *Queue) MoveAllToActiveOrBackoff() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.moveCycle = q.cycle
	now := q.clock.Now()
	moved := len(q.unschedulable)
	for _, e := range q.unschedulable {
		q.moveLocked(e, now)
	}
	return moved
}

// Run moves the pods parked for longer than MaxUnschedulableWait, every
// 30 s, until ctx ends.
func (q *Queue) Run(ctx context.Context) {
	t := q.clock.NewTicker(unschedulableFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			q.flushUnschedulable()
		}
	}
}

// flushUnschedulable moves the pods parked for longer than
// MaxUnschedulableWait.
func (q *Queue) flushUnschedulable() {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.clock.Now()
	for _, e := range q.unschedulable {
		if now.Sub(e.parkedAt) >= MaxUnschedulableWait {
			q.moveLocked(e, now)
		}
	}
}

// QueueStats counts the pods in each place of a Queue.
type QueueStats struct {
	Active, Backoff, Unschedulable, InFlight int
}

// Stats counts the pods in each place.
func (q *Queue) Stats() QueueStats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return QueueStats{
		Active:        q.active.Len(),
		Backoff:       q.backoff.Len(),
		Unschedulable: len(q.unschedulable),
		InFlight:      len(q.entries) - q.active.Len() - q.backoff.Len() - len(q.unschedulable),
	}
}

// moveLocked makes a parked pod active, or puts it in backoff until its
// backoff ends.
func (q *Queue) moveLocked(e *entry, now time.Time) {
	delete(q.unschedulable, e.key)
	if now.Before(e.backoffUntil) {
		q.pushBackoffLocked(e)
	} else {
		q.pushActiveLocked(e)
	}
}

// flushBackoffLocked makes the pods whose backoff has ended active.
func (q *Queue) flushBackoffLocked(now time.Time) {
	for q.backoff.Len() > 0 && !now.Before(q.backoff[0].backoffUntil) {
		q.pushActiveLocked(heap.Pop(&q.backoff).(*entry))
	}
}

func (q *Queue) pushActiveLocked(e *entry) {
	e.place = inActive
	heap.Push(&q.active, e)
	q.wakeLocked()
}

func (q *Queue) pushBackoffLocked(e *entry) {
	e.place = inBackoff
	heap.Push(&q.backoff, e)
	q.wakeLocked()
}

// wakeLocked wakes every Pop waiting on the queue.
func (q *Queue) wakeLocked() {
	close(q.changed)
	q.changed = make(chan struct{})
}

// backoffFor is the wait after the given number of failed attempts.
func backoffFor(attempts int) time.Duration {
	d := InitialBackoff
	for i := 1; i < attempts && d < MaxBackoff; i++ {
		d *= 2
	}
	return min(d, MaxBackoff)
}

// podChanged reports whether a pending pod changed in a way that could
// change where it fits. Status changes (among them the scheduler's own
// PodScheduled condition) and metadata bookkeeping do not count.
func podChanged(old, pod *corev1.Pod) bool {
	if old == pod {
		return false
	}
	return !maps.Equal(old.Labels, pod.Labels) ||
		!maps.Equal(old.Annotations, pod.Annotations) ||
		!equality.Semantic.DeepEqual(&old.Spec, &pod.Spec)
}

// podKey is the queue and cache key of a pod: namespace/name.
func podKey(pod *corev1.Pod) string {
	return pod.Namespace + "/" + pod.Name
}

// podPriority is spec.priority, 0 when unset.
func podPriority(pod *corev1.Pod) int32 {
	if pod.Spec.Priority != nil {
		return *pod.Spec.Priority
	}
	return 0
}

// activeHeap orders the active pods: higher priority first, then older
// creationTimestamp, then earlier arrival in the queue.
type activeHeap []*entry

func (h activeHeap) Len() int { return len(h) }

func (h activeHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	if pa, pb := podPriority(a.pod), podPriority(b.pod); pa != pb {
		return pa > pb
	}
	ta, tb := a.pod.CreationTimestamp.Time, b.pod.CreationTimestamp.Time
	if !ta.Equal(tb) {
		return ta.Before(tb)
	}
	return a.seq < b.seq
}

func (h activeHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *activeHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}

func (h *activeHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

// backoffHeap orders the pods in backoff by the end of their backoff.
type backoffHeap []*entry

func (h backoffHeap) Len() int { return len(h) }

func (h backoffHeap) Less(i, j int) bool {
	if !h[i].backoffUntil.Equal(h[j].backoffUntil) {
		return h[i].backoffUntil.Before(h[j].backoffUntil)
	}
	return h[i].seq < h[j].seq
}

func (h backoffHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *backoffHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}

func (h *backoffHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
