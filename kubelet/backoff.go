package kubelet

import (
	"time"
)

// backoff spaces out retries of something that keeps failing — a
// container that keeps crashing, an image that cannot be pulled — as
// Kubernetes does: the first retry comes at once, then the wait doubles
// from the initial delay up to the maximum, and an entry that has not
// failed for twice the maximum starts again from the beginning.
//
// Entries are keyed by container name or by image: each backoff belongs
// to one pod's podState, so only that pod's worker uses it, and it has
// no lock.
type backoff struct {
	initial, max time.Duration
	entries      map[string]*backoffEntry
}

type backoffEntry struct {
	delay time.Duration
	last  time.Time // when the failure that set delay happened
}

func newBackoff(initial, max time.Duration) *backoff {
	return &backoff{initial: initial, max: max, entries: map[string]*backoffEntry{}}
}

// next records a failure of key at time at and lengthens its delay.
func (b *backoff) next(key string, at time.Time) {
	e := b.entries[key]
	if e == nil || at.Sub(e.last) > 2*b.max {
		e = &backoffEntry{delay: b.initial}
		b.entries[key] = e
	} else {
		e.delay = min(2*e.delay, b.max)
	}
	e.last = at
}

// wait returns how much longer key must wait after a failure at since,
// and the current delay; zero wait means a retry may happen now.
func (b *backoff) wait(key string, since, now time.Time) (wait, delay time.Duration) {
	end, delay, ok := b.until(key, since)
	if !ok {
		return 0, 0
	}
	if now.Before(end) {
		return end.Sub(now), delay
	}
	return 0, delay
}

// until returns when a retry of key may come after a failure at since,
// and the current delay. ok is false when no wait applies: key never
// failed, or not for so long that its backoff has expired.
func (b *backoff) until(key string, since time.Time) (end time.Time, delay time.Duration, ok bool) {
	e := b.entries[key]
	if e == nil || since.Sub(e.last) > 2*b.max {
		return time.Time{}, 0, false
	}
	return since.Add(e.delay), e.delay, true
}

// forget drops the entry of key.
func (b *backoff) forget(key string) {
	delete(b.entries, key)
}
