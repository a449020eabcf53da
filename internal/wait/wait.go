// Package wait is how tests wait: poll a condition until it holds, and
// fail the test, saying what was awaited and why it did not happen, when
// a deadline passes first. Tests never sleep to let things settle.
//
// It imports only the standard library, so that the tests of every
// package can use it, the API server's and the client's included, which
// internal/testenv (built on both) cannot serve without an import cycle.
// internal/archtest keeps it so.
package wait

import (
	"testing"
	"time"
)

// Interval is how often a condition is polled: often enough that a wait
// ends soon after its condition holds, rarely enough that a condition
// which asks the API server does not load it.
const Interval = 20 * time.Millisecond

// For polls cond every Interval until it reports true, and fails the
// test with t.Fatalf once timeout has passed without that. what names
// the awaited state in the failure ("pod web to run"); cond's last
// error, when it returned one, says why it was not reached. The error
// of a call that reports true is ignored, so a condition may return its
// explanation whatever it finds:
//
//	wait.For(t, 10*time.Second, "3 ready pods", func() (bool, error) {
//		n, err := readyPods()
//		return n == 3, fmt.Errorf("%d ready (%v)", n, err)
//	})
//
// cond runs on the test's goroutine, so it may call t.Fatal itself for
// states that can never turn into the awaited one.
func For(t testing.TB, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("timed out after %v waiting for %s (last error: %v)", timeout, what, err)
			}
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(Interval)
	}
}

// Until is For for a condition that has nothing to explain.
func Until(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	For(t, timeout, what, func() (bool, error) { return cond(), nil })
}
