package daemonset

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// expectations remembers, per DaemonSet key, the pod creations and
// deletions the controller has made and its informer has not shown yet,
// as the ReplicaSet controller's do (see its Expectations): a Reconcile
// that counted pods in a cache lagging behind its own writes would create
// a node's pod twice. One record holds creations and deletions together,
// because one rolling-update step may do both.
type expectations struct {
	ttl   time.Duration
	clock clock.PassiveClock

	// mu guards records.
	mu      sync.Mutex
	records map[string]*expectation
}

type expectation struct {
	creates int             // pods created, not yet seen
	deletes map[string]bool // keys of pods deleted, not yet seen gone
	set     time.Time       // the record expires ttl after
}

func newExpectations(ttl time.Duration, clk clock.PassiveClock) *expectations {
	return &expectations{ttl: ttl, clock: clk, records: map[string]*expectation{}}
}

// expect records that creates pods of key are about to be created and
// the pods podKeys deleted, replacing any earlier record.
func (e *expectations) expect(key string, creates int, podKeys []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	deletes := make(map[string]bool, len(podKeys))
	for _, k := range podKeys {
		deletes[k] = true
	}
	e.records[key] = &expectation{creates: creates, deletes: deletes, set: e.clock.Now()}
}

// creationObserved ticks off one creation of key.
func (e *expectations) creationObserved(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.records[key]; ok {
		r.creates--
	}
}

// deletionObserved ticks off the deletion of podKey by key; seeing it
// again (as terminating, then gone) changes nothing.
func (e *expectations) deletionObserved(key, podKey string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.records[key]; ok {
		delete(r.deletes, podKey)
	}
}

// satisfied reports whether key has seen all it expected (or its record
// expired); if not, wait is how long until the record expires.
func (e *expectations) satisfied(key string) (ok bool, wait time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, found := e.records[key]
	if !found || (r.creates <= 0 && len(r.deletes) == 0) {
		return true, 0
	}
	left := r.set.Add(e.ttl).Sub(e.clock.Now())
	if left <= 0 {
		return true, 0
	}
	return false, left
}

// forget drops key's record, when its DaemonSet is deleted.
func (e *expectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.records, key)
}
