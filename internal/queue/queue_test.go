package queue

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	rl := RateLimiter()
	tests := []struct {
		failures int
		want     time.Duration
	}{
		{1, BaseDelay},
		{2, 2 * BaseDelay},
		{3, 4 * BaseDelay},
		{40, MaxDelay},
	}
	for _, tt := range tests {
		t.Run(tt.want.String(), func(t *testing.T) {
			rl.Forget("k")
			var got time.Duration
			for range tt.failures {
				got = rl.When("k")
			}
			// The overall bucket may add a little on top, never less.
			if got < tt.want || got > tt.want+time.Second {
				t.Errorf("after %d failures: got %v, want %v", tt.failures, got, tt.want)
			}
		})
	}
}

func TestQueue(t *testing.T) {
	q := New("test")
	defer q.ShutDown()
	q.Add("default/web")
	q.Add("default/web")
	if got := q.Len(); got != 1 {
		t.Fatalf("len after adding one key twice: got %d, want 1", got)
	}
	key, shutdown := q.Get()
	if shutdown || key != "default/web" {
		t.Fatalf("got %q shutdown=%v, want default/web", key, shutdown)
	}
	q.AddRateLimited(key)
	if got := q.NumRequeues(key); got != 1 {
		t.Errorf("requeues: got %d, want 1", got)
	}
	q.Forget(key)
	q.Done(key)
	if got := q.NumRequeues(key); got != 0 {
		t.Errorf("requeues after Forget: got %d, want 0", got)
	}
}
