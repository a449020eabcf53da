package controller

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Expectations remembers, per owner key (a ReplicaSet's, a Job's, a
// DaemonSet's), the pod creations and deletions its controller has made
// and its informer has not shown yet.
//
// The pod cache lags behind the controller's own writes: right after
// creating 5 pods, a Reconcile that counts pods in the cache would see
// too few and create 5 more. So before writing, the controller records
// what it expects to see (Expect); the pod
// event handlers tick the expectations off (CreationObserved,
// DeletionObserved); and Reconcile only creates or deletes pods for a key
// whose expectations are Satisfied.
//
// A record that is not satisfied within the TTL is given up on (an event
// can be lost, for example when a watch is re-listed and a pod came and
// went in between); the controller then trusts the cache again.
//
// A new process starts with no expectations, which is right: its
// informers list the pods first, so its cache already holds every pod
// the previous process created.
type Expectations struct {
	ttl   time.Duration
	clock clock.PassiveClock

	// mu guards records.
	mu sync.Mutex
	// records maps an owner key to what it still expects to see.
	records map[string]*expectation
}

// expectation is what one owner still waits for.
type expectation struct {
	// creates counts pods created but not yet seen by the informer. It
	// may go below zero when a create that reported an error did
	// happen after all; that is as satisfied as zero.
	creates int
	// deletes holds the keys ("namespace/name") of pods deleted but not
	// yet seen deleted. A set rather than a count, because one deletion
	// is seen twice: as an update that sets deletionTimestamp, and as
	// the delete event.
	deletes map[string]bool
	// set is when the record was made; it expires ttl later.
	set time.Time
}

// NewExpectations returns empty expectations whose records expire after
// ttl, as measured by clk.
func NewExpectations(ttl time.Duration, clk clock.PassiveClock) *Expectations {
	return &Expectations{ttl: ttl, clock: clk, records: map[string]*expectation{}}
}

// Expect records that creates pods of key are about to be created and
// the pods named by deletes ("namespace/name") deleted, replacing any
// earlier record of key. One record holds both, because one step of a
// rolling update may do both.
func (e *Expectations) Expect(key string, creates int, deletes []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	set := make(map[string]bool, len(deletes))
	for _, k := range deletes {
		set[k] = true
	}
	e.records[key] = &expectation{creates: creates, deletes: set, set: e.clock.Now()}
}

// CreationObserved ticks off one creation of key: the informer has shown
// a new pod of it, or a create failed and will never be shown.
func (e *Expectations) CreationObserved(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.records[key]; ok {
		r.creates--
	}
}

// DeletionObserved ticks off the deletion of podKey by key, if key
// expected it. Observing the same deletion again changes nothing.
func (e *Expectations) DeletionObserved(key, podKey string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.records[key]; ok {
		delete(r.deletes, podKey)
	}
}

// Satisfied reports whether key has seen everything it expected, or
// expects nothing, or its record has expired. When it has not, wait is
// how long until the record expires.
func (e *Expectations) Satisfied(key string) (ok bool, wait time.Duration) {
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

// Forget drops key's record, when its owner is deleted.
func (e *Expectations) Forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.records, key)
}
