package kubelet

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	const initial, max = 10 * time.Second, 5 * time.Minute
	b := newBackoff(initial, max)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	// No failure yet: no wait.
	if w, _ := b.wait("k", at(0), at(0)); w != 0 {
		t.Fatalf("wait before any failure: %v", w)
	}
	// Each failure doubles the delay, up to max.
	var failedAt time.Duration
	for i, want := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 300 * time.Second, 300 * time.Second} {
		b.next("k", at(failedAt))
		next := failedAt + time.Second // the next crash, a second after its start
		w, delay := b.wait("k", at(next), at(next))
		if delay != want || w != want {
			t.Errorf("failure %d: delay %v wait %v, want %v", i+1, delay, w, want)
		}
		failedAt = next + w
	}
	// A crash long after the last one (more than twice the maximum) starts
	// over with no wait, and the next failure waits the initial delay.
	late := failedAt + 2*max + time.Second
	if w, _ := b.wait("k", at(late), at(late)); w != 0 {
		t.Errorf("wait after the backoff expired: %v, want 0", w)
	}
	b.next("k", at(late))
	if w, delay := b.wait("k", at(late+time.Second), at(late+time.Second)); delay != initial || w != initial {
		t.Errorf("after expiry: delay %v wait %v, want %v", delay, w, initial)
	}
	// Part of the wait already passed.
	if w, _ := b.wait("k", at(late+time.Second), at(late+4*time.Second)); w != initial-3*time.Second {
		t.Errorf("remaining wait: %v, want %v", w, initial-3*time.Second)
	}
	b.forget("k")
	if w, _ := b.wait("k", at(late), at(late)); w != 0 {
		t.Errorf("wait after forget: %v", w)
	}
}
