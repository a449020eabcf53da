package controller

import (
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func TestExpectations(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Unix(0, 0))
	e := NewExpectations(time.Minute, clk)
	const key = "default/web"
	satisfied := func(want bool) {
		t.Helper()
		if got, _ := e.Satisfied(key); got != want {
			t.Fatalf("satisfied: got %v, want %v", got, want)
		}
	}
	satisfied(true) // nothing expected

	e.Expect(key, 2, nil)
	satisfied(false)
	e.CreationObserved(key)
	satisfied(false)
	e.CreationObserved(key)
	satisfied(true)

	e.Expect(key, 0, []string{"default/a", "default/b"})
	satisfied(false)
	e.DeletionObserved(key, "default/a")
	e.DeletionObserved(key, "default/a") // the delete event after the update
	satisfied(false)
	e.DeletionObserved(key, "default/other")
	satisfied(false)
	e.DeletionObserved(key, "default/b")
	satisfied(true)

	// A record never satisfied expires after its TTL.
	e.Expect(key, 1, nil)
	clk.SetTime(clk.Now().Add(40 * time.Second))
	if ok, wait := e.Satisfied(key); ok || wait != 20*time.Second {
		t.Fatalf("got %v, %v; want false, 20s", ok, wait)
	}
	clk.SetTime(clk.Now().Add(21 * time.Second))
	satisfied(true)

	e.Expect(key, 1, nil)
	e.Forget(key)
	satisfied(true)
	// Observations of a key with no record change nothing.
	e.CreationObserved(key)
	e.DeletionObserved(key, "default/a")
	satisfied(true)
}

// One record holds creations and deletions together: satisfied only when
// both are seen.
func TestExpectationsBoth(t *testing.T) {
	e := NewExpectations(time.Minute, clocktesting.NewFakePassiveClock(time.Unix(0, 0)))
	const key = "default/agent"
	e.Expect(key, 1, []string{"default/old"})
	e.CreationObserved(key)
	if ok, _ := e.Satisfied(key); ok {
		t.Fatal("satisfied with a deletion not seen")
	}
	e.DeletionObserved(key, "default/old")
	if ok, _ := e.Satisfied(key); !ok {
		t.Fatal("not satisfied with both seen")
	}
}
