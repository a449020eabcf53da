// Package controller is the one worker driver every Skiff controller uses.
//
// A controller is a Reconciler plus the informers that feed it:
//
//  1. informer event handlers only enqueue keys ("namespace/name"), with
//     EnqueueHandler or Enqueue; a delete handler may be handed a
//     tombstone instead of the object, which Unwrap looks inside;
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
//
// Every controller package is built the same way, so that a reader who
// knows one knows them all:
//
//   - New(deps Deps, cfg Config) (*Controller, error) is its one
//     constructor: Deps are what all controllers share (client,
//     informers, event recorder, clock), Config is its own and has
//     DefaultConfig and Validate;
//   - its Controller embeds a *Loop (NewLoop), adds its event handlers to
//     the informers with Loop.Watch, and gets Loop.Run, which waits for
//     the caches those handlers read before the first Reconcile;
//   - none of the driver is written again in it: its file holds its
//     watches and its Reconcile.
//
// The logger is not among the Deps: it travels in the context
// (internal/logging). The manager attaches "component" to the context it
// runs the controllers with; Loop.Run adds "controller" (the loop's name)
// once, and each worker adds "key" to the context it hands Reconcile, so
// that a controller logs through logging.From(ctx) and every line says
// which controller wrote it, about which key. OnSynced functions are
// handed the controller's context too. Event handlers get no context and
// log nothing: they only enqueue.
package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/events"
	"github.com/skiffdev/skiff/internal/informers"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/queue"
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

// Deps are what every controller is built from, the same for all the
// controllers of a manager; each controller's own settings are its Config.
type Deps struct {
	// Client reads and writes through the API server.
	Client *client.Client
	// Informers provides the shared caches. New adds its event handlers
	// (and indexes) to them; the caller starts the factory after New.
	Informers *informers.Factory
	// Recorder records events about the objects the controller acts on.
	Recorder events.EventRecorder
	// Clock tells the time that waits are measured with: grace periods,
	// minReadySeconds, progress deadlines, how long to wait for the cache
	// to show a controller's own writes. Nil means the real clock; tests
	// inject a fake one.
	Clock clock.PassiveClock
}

// Complete returns d ready for a controller: the real clock for a nil
// Clock. It reports a missing Client, Informers or Recorder.
func (d Deps) Complete() (Deps, error) {
	var errs []error
	if d.Client == nil {
		errs = append(errs, errors.New("no client"))
	}
	if d.Informers == nil {
		errs = append(errs, errors.New("no informer factory"))
	}
	if d.Recorder == nil {
		errs = append(errs, errors.New("no event recorder"))
	}
	if err := errors.Join(errs...); err != nil {
		return Deps{}, err
	}
	if d.Clock == nil {
		d.Clock = clock.RealClock{}
	}
	return d, nil
}

// Loop is what every controller does the same way: the queue its event
// handlers fill, the caches it waits for, and the workers that hand keys
// to its Reconcile. A controller embeds the *Loop that NewLoop returns,
// adds its event handlers with Watch, and is run with Run.
type Loop struct {
	name       string
	workers    int
	reconciler Reconciler
	queue      workqueue.TypedRateLimitingInterface[string]
	// synced report whether the handlers added by Watch have been handed
	// everything their informers listed at start.
	synced []cache.InformerSynced
	// onSynced are called once the caches have synced, before the first
	// worker starts.
	onSynced []func(ctx context.Context)
}

// NewLoop returns the loop of the controller called name: its queue, and
// (once Run) workers workers that hand keys to r.
func NewLoop(name string, workers int, r Reconciler) *Loop {
	return &Loop{name: name, workers: workers, reconciler: r, queue: queue.New(name)}
}

// Queue is the loop's queue of keys, which the event handlers fill.
func (l *Loop) Queue() workqueue.TypedRateLimitingInterface[string] {
	return l.queue
}

// Watch adds the event handler h to the informer inf. Run waits until h
// has been handed every object inf listed at start, so that no Reconcile
// reads a cache that is still filling.
func (l *Loop) Watch(inf cache.SharedIndexInformer, h cache.ResourceEventHandler) error {
	reg, err := inf.AddEventHandler(h)
	if err != nil {
		return fmt.Errorf("add event handler: %w", err)
	}
	l.synced = append(l.synced, reg.HasSynced)
	return nil
}

// OnSynced has Run call f once the caches have synced and before the first
// Reconcile, to rebuild from them what the controller keeps in memory
// (which CIDRs the nodes hold, when each node was last heard from). f is
// handed Run's context, whose logger names the controller.
func (l *Loop) OnSynced(f func(ctx context.Context)) {
	l.onSynced = append(l.onSynced, f)
}

// Run waits for the caches of the handlers added with Watch, calls the
// OnSynced functions, then reconciles keys until ctx ends, and returns
// once every worker has stopped. If ctx ends first, it returns without
// reconciling anything. The informers must have been started (the
// caller's duty: New, start the factory, Run). It logs through the
// logger ctx carries, with "controller" (the loop's name) added, and so
// do the OnSynced functions and each Reconcile, whose logger also has
// the "key".
func (l *Loop) Run(ctx context.Context) {
	ctx, _ = logging.With(ctx, "controller", l.name)
	if !cache.WaitForCacheSync(ctx.Done(), l.synced...) {
		l.queue.ShutDown()
		return
	}
	for _, f := range l.onSynced {
		f(ctx)
	}
	run(ctx, l.workers, l.queue, l.reconciler)
}

// Run runs workers that reconcile keys from q until ctx ends, then shuts
// the queue down and waits for them. It logs through the logger ctx
// carries, with "controller", name added; each Reconcile is handed a
// context whose logger also has the "key". Loop.Run is this, after
// waiting for the caches.
func Run(ctx context.Context, name string, workers int, q workqueue.TypedRateLimitingInterface[string], r Reconciler) {
	ctx, _ = logging.With(ctx, "controller", name)
	run(ctx, workers, q, r)
}

// run is Run once ctx's logger names the controller.
func run(ctx context.Context, workers int, q workqueue.TypedRateLimitingInterface[string], r Reconciler) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for processNext(ctx, q, r) {
			}
		})
	}
	<-ctx.Done()
	q.ShutDown()
	wg.Wait()
}

// processNext handles one key; it reports false once the queue is shut
// down. Reconcile, and the line about its failure, log with the key.
func processNext(ctx context.Context, q workqueue.TypedRateLimitingInterface[string], r Reconciler) bool {
	key, shutdown := q.Get()
	if shutdown {
		return false
	}
	defer q.Done(key)
	kctx, log := logging.With(ctx, "key", key)
	res, err := r.Reconcile(kctx, key)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			log.Info("reconcile failed; retrying", "err", err, "retries", q.NumRequeues(key))
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

// Unwrap returns obj as a T. A delete handler may be handed a tombstone
// (cache.DeletedFinalStateUnknown) instead of the object, holding its last
// known state, when the informer missed the deletion and only found the
// object gone on a relist; Unwrap looks inside it. ok is false when obj is
// not a T.
func Unwrap[T any](obj any) (t T, ok bool) {
	if tomb, isTomb := obj.(cache.DeletedFinalStateUnknown); isTomb {
		obj = tomb.Obj
	}
	t, ok = obj.(T)
	return t, ok
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
