// Package controller is the one worker driver every Skiff controller uses.
//
// A controller is a Reconciler plus the informers that feed it:
//
//  1. informer event handlers only enqueue keys ("namespace/name"), with
//     EnqueueHandler or Enqueue;
//  2. the queue (internal/queue) de-duplicates keys, never hands one key
//     to two workers, and backs off per key;
//  3. Run's workers pop a key and call Reconcile(ctx, key), which reads
//     the desired state from the informers' caches, observes the actual
//     state, converges, and writes status. It is level-based: it must be
//     safe to call again with the same key at any time.
//
// Reconcile's answer decides what happens to the key: an error retries it
// with backoff, Result.RequeueAfter brings it back after a timed wait, and
// neither forgets it until an informer enqueues it again.
package controller

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Result tells the driver when to look at a key again.
type Result struct {
	// RequeueAfter, when positive, reconciles the key again after this
	// long (for waits such as a grace period or minReadySeconds).
	RequeueAfter time.Duration
}

// Reconciler converges one object, named by its key.
type Reconciler interface {
	Reconcile(ctx context.Context, key string) (Result, error)
}

// ReconcilerFunc adapts a function to Reconciler.
type ReconcilerFunc func(ctx context.Context, key string) (Result, error)

// Reconcile calls f.
func (f ReconcilerFunc) Reconcile(ctx context.Context, key string) (Result, error) {
	return f(ctx, key)
}

// Run runs workers that reconcile keys from q until ctx ends, then shuts
// the queue down and waits for them. name labels the logs.
func Run(ctx context.Context, name string, workers int, q workqueue.TypedRateLimitingInterface[string], r Reconciler) {
	log := slog.With("controller", name)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for processNext(ctx, log, q, r) {
			}
		})
	}
	<-ctx.Done()
	q.ShutDown()
	wg.Wait()
}

// processNext handles one key; it reports false once the queue is shut
// down.
func processNext(ctx context.Context, log *slog.Logger, q workqueue.TypedRateLimitingInterface[string], r Reconciler) bool {
	key, shutdown := q.Get()
	if shutdown {
		return false
	}
	defer q.Done(key)
	res, err := r.Reconcile(ctx, key)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			log.Info("reconcile failed; retrying", "key", key, "err", err, "retries", q.NumRequeues(key))
		}
		q.AddRateLimited(key)
	case res.RequeueAfter > 0:
		q.Forget(key)
		q.AddAfter(key, res.RequeueAfter)
	default:
		q.Forget(key)
	}
	return true
}

// Key returns the queue key of an object: "namespace/name", or "name" for
// cluster-scoped objects. It accepts the tombstones informers hand to
// delete handlers.
func Key(obj any) (string, bool) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	return key, err == nil
}

// Enqueue adds an object's key to q.
func Enqueue(q workqueue.TypedInterface[string], obj any) {
	if key, ok := Key(obj); ok {
		q.Add(key)
	}
}

// EnqueueHandler is an informer event handler that enqueues the key of
// every object added, updated or deleted. An update that does not change
// the resourceVersion (a periodic resync) is enqueued too: the resync is
// the safety net that makes missed events harmless.
func EnqueueHandler(q workqueue.TypedInterface[string]) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { Enqueue(q, obj) },
		UpdateFunc: func(_, obj any) { Enqueue(q, obj) },
		DeleteFunc: func(obj any) { Enqueue(q, obj) },
	}
}
