// Package events records Kubernetes Events: the short notes components
// leave about the objects they act on ("Successfully assigned default/web-1
// to node-2"), which `skiffctl describe` shows under the object.
//
// Every component uses it the same way:
//
//	rec := events.NewRecorder(ctx, c, "scheduler")
//	defer rec.Stop()
//	rec.Eventf(pod, corev1.EventTypeNormal, "Scheduled", "Successfully assigned %s/%s to %s", ns, name, node)
//
// The recorder logs through the logger ctx carries (internal/logging),
// which names the component already; ctx does not bound its life, Stop
// does.
//
// Eventf never waits for the API server. Events go into a bounded buffer
// that a couple of workers write out; when the buffer is full (a burst of
// thousands of events), the new event is dropped with a debug log, because
// an event is a hint for people and must never slow a control loop down.
// Stop writes what is still buffered, for at most FlushTimeout, and then
// gives up.
//
// Each Eventf creates a new core/v1 Event named "<object name>.<unique
// suffix>" in the object's namespace ("default" for cluster-scoped
// objects such as nodes), with count 1. Repeated events are not merged
// into one with a higher count, as Kubernetes' event broadcaster does; the
// API server expires events after its --event-ttl instead.
package events

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/scheme"
)

const (
	// BufferSize is how many events may wait to be written; more are
	// dropped.
	BufferSize = 1000
	// Workers is how many events are written at the same time.
	Workers = 2
	// WriteTimeout bounds the write of one event.
	WriteTimeout = 10 * time.Second
	// FlushTimeout bounds how long Stop spends writing buffered events.
	FlushTimeout = 5 * time.Second
)

// EventRecorder records an event about an object. It is the one interface
// through which a controller leaves events; Recorder implements it, and a
// test may hand a controller a fake that keeps what it is given.
//
// Eventf records that something of type eventType (corev1.EventTypeNormal
// or corev1.EventTypeWarning) happened to obj, for the short CamelCase
// reason ("Scheduled", "FailedCreate"), with the message messageFmt
// formatted with args as by fmt.Sprintf. obj is an API object as read from
// the API server or a cache: the event names it by kind, namespace, name,
// UID and resourceVersion, so obj needs no apiVersion or kind set, and is
// not modified or retained. Eventf must be safe for concurrent use and must
// not block: it is called from reconciles and event handlers, and an event
// is a hint for people that must never slow a control loop down. It
// reports no error; an event that cannot be recorded is dropped.
type EventRecorder interface {
	Eventf(obj runtime.Object, eventType, reason, messageFmt string, args ...any)
}

// Recorder is the EventRecorder every component uses.
var _ EventRecorder = (*Recorder)(nil)

// Recorder writes events about objects on behalf of one component. It is
// safe for concurrent use. Create it with NewRecorder and Stop it when the
// component ends.
type Recorder struct {
	client    *client.Client
	component string
	host      string
	// log is the logger of the context NewRecorder was given, kept
	// because Eventf, called from event handlers too, takes no context.
	log *slog.Logger

	// events is the buffer the workers drain; it is closed by Stop.
	events chan *corev1.Event
	// ctx ends the writes in flight once Stop's deadline passes.
	ctx          context.Context
	cancel       context.CancelFunc
	wg           sync.WaitGroup
	flushTimeout time.Duration

	// mu guards stopped: Eventf must not send on the closed channel.
	mu      sync.RWMutex
	stopped bool

	// lastSuffix makes event names unique within the process even when
	// the clock does not move between two events.
	lastSuffix atomic.Int64
	dropped    atomic.Int64
}

// NewRecorder returns a recorder that writes events through c, signed by
// component ("scheduler", "kubelet"). It logs through the logger ctx
// carries. Its workers run until Stop, even once ctx has ended: a
// component stops its recorder after its context ends, and Stop still
// writes what is buffered.
func NewRecorder(ctx context.Context, c *client.Client, component string) *Recorder {
	host, _ := os.Hostname()
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &Recorder{
		client:       c,
		component:    component,
		host:         host,
		log:          logging.From(ctx),
		events:       make(chan *corev1.Event, BufferSize),
		ctx:          wctx,
		cancel:       cancel,
		flushTimeout: FlushTimeout,
	}
	for range Workers {
		r.wg.Add(1)
		go r.worker()
	}
	return r
}

// Eventf records an event about obj: eventType is corev1.EventTypeNormal
// or corev1.EventTypeWarning, reason a short CamelCase word ("Scheduled",
// "FailedScheduling"), and the message is messageFmt formatted with args.
// It returns at once; the event is written in the background, or dropped
// if too many are waiting or the recorder is stopped.
func (r *Recorder) Eventf(obj runtime.Object, eventType, reason, messageFmt string, args ...any) {
	ev, err := r.makeEvent(obj, eventType, reason, fmt.Sprintf(messageFmt, args...))
	if err != nil {
		r.log.Error("cannot record an event", "reason", reason, "err", err)
		return
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.stopped {
		r.log.Debug("event dropped: recorder stopped", "event", ev.Name, "reason", reason)
		return
	}
	select {
	case r.events <- ev:
	default:
		n := r.dropped.Add(1)
		r.log.Debug("event dropped: buffer full", "event", ev.Name, "reason", reason, "dropped", n)
	}
}

// Dropped is how many events were dropped because the buffer was full.
func (r *Recorder) Dropped() int64 { return r.dropped.Load() }

// Stop stops accepting events, writes those still buffered for at most
// FlushTimeout, and returns when the workers have ended. Calling it again
// does nothing.
func (r *Recorder) Stop() {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return
	}
	r.stopped = true
	close(r.events)
	r.mu.Unlock()

	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	timer := time.NewTimer(r.flushTimeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		r.log.Warn("events not written before the deadline", "left", len(r.events))
		r.cancel()
		<-done
	}
	r.cancel()
}

// worker writes events until the buffer is closed and empty, or until
// Stop gives up on it.
func (r *Recorder) worker() {
	defer r.wg.Done()
	for ev := range r.events {
		if r.ctx.Err() != nil {
			continue // Stop's deadline passed: drain without writing
		}
		ctx, cancel := context.WithTimeout(r.ctx, WriteTimeout)
		_, err := r.client.Events(ev.Namespace).Create(ctx, ev)
		cancel()
		if err != nil {
			// Events are hints: a lost one is logged, never retried.
			r.log.Debug("cannot write an event", "event", ev.Namespace+"/"+ev.Name, "reason", ev.Reason, "err", err)
		}
	}
}

// makeEvent builds the Event about obj.
func (r *Recorder) makeEvent(obj runtime.Object, eventType, reason, message string) (*corev1.Event, error) {
	ref, err := reference(obj)
	if err != nil {
		return nil, err
	}
	namespace := ref.Namespace
	if namespace == "" {
		namespace = metav1.NamespaceDefault
	}
	now := metav1.Now()
	return &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      ref.Name + "." + r.suffix(now.Time),
			Namespace: namespace,
		},
		InvolvedObject:      ref,
		Reason:              reason,
		Message:             message,
		Type:                eventType,
		Source:              corev1.EventSource{Component: r.component, Host: r.host},
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
		ReportingController: r.component,
		ReportingInstance:   r.host,
	}, nil
}

// suffix is a hex number unique within the process and growing with
// time, as Kubernetes names its events: the clock in nanoseconds, or one
// more than the last suffix when the clock has not moved on.
func (r *Recorder) suffix(now time.Time) string {
	for {
		last := r.lastSuffix.Load()
		next := max(now.UnixNano(), last+1)
		if r.lastSuffix.CompareAndSwap(last, next) {
			return strconv.FormatInt(next, 16)
		}
	}
}

// reference is the involvedObject of an event about obj. Objects read
// from an informer usually have no apiVersion and kind set, so they come
// from the scheme.
func reference(obj runtime.Object) (corev1.ObjectReference, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return corev1.ObjectReference{}, err
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	if gvk.Kind == "" {
		info, err := scheme.ForObject(obj)
		if err != nil {
			return corev1.ObjectReference{}, err
		}
		gvk = info.GroupVersionKind()
	}
	apiVersion, kind := gvk.ToAPIVersionAndKind()
	return corev1.ObjectReference{
		Kind:            kind,
		APIVersion:      apiVersion,
		Namespace:       m.GetNamespace(),
		Name:            m.GetName(),
		UID:             m.GetUID(),
		ResourceVersion: m.GetResourceVersion(),
	}, nil
}
