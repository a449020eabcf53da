package wait_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/skiffdev/skiff/internal/wait"
)

// recorder is a testing.TB that keeps what Fatalf reports instead of
// ending the test, so that a failing wait can be examined.
type recorder struct {
	testing.TB
	failure string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failure = fmt.Sprintf(format, args...)
	// Fatalf never returns; neither may this one, or For would poll on.
	panic(r)
}

// run calls f with a recorder and returns what it reported.
func run(t *testing.T, f func(tb testing.TB)) (failure string) {
	r := &recorder{TB: t}
	defer func() {
		if p := recover(); p != nil && p != r {
			panic(p)
		}
		failure = r.failure
	}()
	f(r)
	return ""
}

func TestForReturnsOnceTheConditionHolds(t *testing.T) {
	calls := 0
	got := run(t, func(tb testing.TB) {
		wait.For(tb, time.Minute, "the third call", func() (bool, error) {
			calls++
			return calls == 3, errors.New("not yet")
		})
	})
	if got != "" || calls != 3 {
		t.Errorf("got failure %q after %d calls, want none after 3", got, calls)
	}
}

func TestForFailsWithTheLastError(t *testing.T) {
	calls := 0
	start := time.Now()
	got := run(t, func(tb testing.TB) {
		wait.For(tb, 100*time.Millisecond, "pod web to run", func() (bool, error) {
			calls++
			return false, errors.New("phase Pending")
		})
	})
	if want := "timed out after 100ms waiting for pod web to run (last error: phase Pending)"; got != want {
		t.Errorf("got failure %q, want %q", got, want)
	}
	if elapsed := time.Since(start); elapsed < 100*time.Millisecond {
		t.Errorf("failed after %v, before the deadline", elapsed)
	}
	// Polled every Interval, not in a busy loop.
	if max := int(100*time.Millisecond/wait.Interval) + 2; calls > max {
		t.Errorf("cond called %d times in 100ms, want at most %d", calls, max)
	}
}

func TestUntilFailsWithoutAnError(t *testing.T) {
	got := run(t, func(tb testing.TB) {
		wait.Until(tb, 50*time.Millisecond, "the watch to open", func() bool { return false })
	})
	if want := "timed out after 50ms waiting for the watch to open"; got != want {
		t.Errorf("got failure %q, want %q", got, want)
	}
	if strings.Contains(got, "last error") {
		t.Errorf("got failure %q, which mentions an error there never was", got)
	}
}
