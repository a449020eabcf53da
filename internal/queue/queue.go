// Package queue builds the work queue every Skiff control loop uses.
//
// It is client-go's util/workqueue, unchanged: event handlers Add a
// "namespace/name" key; workers Get a key, reconcile it, and call Done,
// then Forget on success or AddRateLimited on failure. The queue merges
// repeated adds of a key that is waiting, never hands one key to two
// workers at once, and delays a key that keeps failing.
//
// The only choice made here is the rate limiter; see RateLimiter.
package queue

import (
	"time"

	"golang.org/x/time/rate"
	"k8s.io/client-go/util/workqueue"
)

const (
	// BaseDelay is the wait before the first retry of a failed key; it
	// doubles with every further failure of that key.
	BaseDelay = 5 * time.Millisecond
	// MaxDelay caps the per-key wait. client-go's default is 1000 s
	// (almost 17 minutes), tuned to protect an API server with thousands
	// of nodes. Skiff clusters are small, and a user who fixes what made
	// a reconcile fail should see the fix taken up within a minute.
	MaxDelay = time.Minute
	// QPS and Burst bound the retries of all keys together, so that a
	// flood of failures cannot flood the API server.
	QPS   = 10
	Burst = 100
)

// RateLimiter returns the limiter of New's queues: per key, exponential
// backoff from BaseDelay to MaxDelay; overall, a token bucket of QPS with
// room for Burst. A key waits for whichever of the two is longer.
func RateLimiter() workqueue.TypedRateLimiter[string] {
	return workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](BaseDelay, MaxDelay),
		&workqueue.TypedBucketRateLimiter[string]{Limiter: rate.NewLimiter(rate.Limit(QPS), Burst)},
	)
}

// New returns a rate-limited queue of keys. name identifies the queue in
// metrics and logs ("replicaset", "scheduler"). Call ShutDown when the
// control loop ends; workers see it as Get returning shutdown=true.
func New(name string) workqueue.TypedRateLimitingInterface[string] {
	return workqueue.NewTypedRateLimitingQueueWithConfig(RateLimiter(),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: name})
}
