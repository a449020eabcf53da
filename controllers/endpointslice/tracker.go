package endpointslice

import (
	"strconv"
	"sync"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/clock"
)

// Tracker remembers, per Service key, the slice writes the controller
// has made and its slice cache may not show yet.
//
// The cache lags behind the controller's own writes. A Reconcile that
// ran on a cache without the slice it just created would create a second
// slice holding the same endpoints; one that ran on a cache with an old
// copy of a slice would write from it and fail with a conflict. So after
// each write the controller records what the cache must show (Wrote,
// Deleted), and Reconcile only plans for a Service whose writes the cache
// shows (Satisfied). Satisfied looks at the cache itself rather than
// counting events: a record is met once the cache holds the slice at the
// resourceVersion written or a newer one, or no longer holds a deleted
// slice.
//
// resourceVersions are compared as numbers. Kubernetes asks clients to
// treat them as opaque; Skiff's are etcd revisions, which only grow.
//
// A record that is not met within the TTL is given up on (a slice
// written and then deleted by someone else before the cache saw it is
// never shown); the controller then trusts the cache again.
type Tracker struct {
	ttl   time.Duration
	clock clock.PassiveClock

	// mu guards records.
	mu sync.Mutex
	// records maps a Service key to the writes it waits to see.
	records map[string]*pending
}

// pending is what one Service still waits to see in the cache.
type pending struct {
	// written maps a slice name to the least resourceVersion the cache
	// must show for it.
	written map[string]uint64
	// deleted holds the names of slices the cache must no longer hold.
	deleted map[string]bool
	// set is when the record was made; it expires ttl later.
	set time.Time
}

// NewTracker returns an empty tracker whose records expire after ttl, as
// measured by clk.
func NewTracker(ttl time.Duration, clk clock.PassiveClock) *Tracker {
	return &Tracker{ttl: ttl, clock: clk, records: map[string]*pending{}}
}

func (t *Tracker) record(key string) *pending {
	r := t.records[key]
	if r == nil {
		r = &pending{written: map[string]uint64{}, deleted: map[string]bool{}, set: t.clock.Now()}
		t.records[key] = r
	}
	return r
}

// Wrote records that the slice was created or updated for the Service
// key; slice is what the API server returned.
func (t *Tracker) Wrote(key string, slice *discoveryv1.EndpointSlice) {
	rv, err := strconv.ParseUint(slice.ResourceVersion, 10, 64)
	if err != nil {
		return // cannot be compared; trust the cache
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.record(key).written[slice.Name] = rv
}

// Deleted records that the slice called name was deleted for key.
func (t *Tracker) Deleted(key, name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.record(key)
	delete(r.written, name)
	r.deleted[name] = true
}

// SawDeletion forgets what key waits to see of the slice called name:
// the cache has shown it deleted, whoever deleted it.
func (t *Tracker) SawDeletion(key, name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r := t.records[key]; r != nil {
		delete(r.written, name)
		delete(r.deleted, name)
	}
}

// Satisfied reports whether the cache shows every write recorded for
// key, or the record has expired; get reads a slice from the cache by
// name. When it is not, wait is how long until the record expires. Met
// records are forgotten.
func (t *Tracker) Satisfied(key string, get func(name string) (*discoveryv1.EndpointSlice, bool)) (ok bool, wait time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.records[key]
	if r == nil {
		return true, 0
	}
	for name, rv := range r.written {
		if s, found := get(name); found {
			if got, err := strconv.ParseUint(s.ResourceVersion, 10, 64); err != nil || got >= rv {
				delete(r.written, name)
			}
		}
	}
	for name := range r.deleted {
		if _, found := get(name); !found {
			delete(r.deleted, name)
		}
	}
	if len(r.written) == 0 && len(r.deleted) == 0 {
		delete(t.records, key)
		return true, 0
	}
	left := r.set.Add(t.ttl).Sub(t.clock.Now())
	if left <= 0 {
		delete(t.records, key)
		return true, 0
	}
	return false, left
}

// Forget drops every record of key, when its Service is gone.
func (t *Tracker) Forget(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.records, key)
}
