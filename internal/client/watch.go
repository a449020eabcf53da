package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiffdev/skiff/internal/grpcerr"
	"github.com/skiffdev/skiff/internal/scheme"
	skiffv1 "github.com/skiffdev/skiff/proto/skiff/v1"
)

// watch opens a Watch stream and returns a watch.Interface that decodes
// it. The contract is documented on ResourceClient.Watch.
func (u *UntypedClient) watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	var cancel context.CancelFunc
	if opts.TimeoutSeconds != nil && *opts.TimeoutSeconds > 0 {
		// The protocol has no server-side timeout; ending the stream
		// here has the same effect for the caller.
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*opts.TimeoutSeconds)*time.Second)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	stream, err := u.c.api.Watch(ctx, &skiffv1.WatchRequest{
		Resource:        u.resource(),
		Namespace:       u.namespace,
		LabelSelector:   opts.LabelSelector,
		FieldSelector:   opts.FieldSelector,
		ResourceVersion: opts.ResourceVersion,
		AllowBookmarks:  opts.AllowWatchBookmarks,
	})
	if err != nil {
		cancel()
		return nil, grpcerr.FromStatus(err)
	}
	w := &streamWatcher{
		u:      u,
		ctx:    ctx,
		cancel: cancel,
		result: make(chan watch.Event),
	}
	go w.receive(stream)
	return w, nil
}

// streamWatcher turns a gRPC Watch stream into a watch.Interface.
//
// One goroutine, receive, owns the stream and the result channel: it
// decodes each event, hands it over, and closes the channel when the
// stream ends. Stop cancels the stream's context, which makes both the
// pending Recv and a pending hand-over return, so the goroutine always
// exits once Stop is called, even if nobody reads the channel any more.
type streamWatcher struct {
	u      *UntypedClient
	ctx    context.Context
	cancel context.CancelFunc
	result chan watch.Event
}

// Stop ends the watch. The result channel closes soon after.
func (w *streamWatcher) Stop() { w.cancel() }

// ResultChan returns the events.
func (w *streamWatcher) ResultChan() <-chan watch.Event { return w.result }

func (w *streamWatcher) receive(stream skiffv1.API_WatchClient) {
	defer close(w.result)
	defer w.cancel()
	for {
		msg, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) || w.ctx.Err() != nil || droppedStream(err) {
				// The server ended the watch, the caller stopped
				// it, its timeout passed, or the connection broke:
				// all cases in which the caller watches again
				// from the last resourceVersion it saw.
				return
			}
			w.send(watch.Event{Type: watch.Error, Object: grpcerr.StatusFor(err)})
			return
		}
		ev, err := w.decode(msg)
		if err != nil {
			w.send(watch.Event{Type: watch.Error, Object: grpcerr.StatusFor(apierrors.NewInternalError(err))})
			return
		}
		if !w.send(ev) || ev.Type == watch.Error {
			return
		}
	}
}

// send hands ev to the consumer unless the watch is stopped first.
func (w *streamWatcher) send(ev watch.Event) bool {
	select {
	case w.result <- ev:
		return true
	case <-w.ctx.Done():
		return false
	}
}

// droppedStream reports whether err means the connection was lost or
// closed rather than that the server refused the watch. Like client-go's
// HTTP watch, which closes quietly on an unexpected EOF, such a watch ends
// without an ERROR event, so that a reflector resumes from its last
// resourceVersion instead of listing everything again.
func droppedStream(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.Canceled:
		return true
	case codes.DeadlineExceeded:
		// The only deadline on a watch stream is the caller's
		// TimeoutSeconds; the server may notice it a moment before
		// this side's timer fires.
		return true
	}
	return false
}

// decode turns one WatchEvent into a watch.Event with a typed object.
func (w *streamWatcher) decode(msg *skiffv1.WatchEvent) (watch.Event, error) {
	typ := watch.EventType(msg.GetType())
	switch typ {
	case watch.Added, watch.Modified, watch.Deleted, watch.Bookmark:
		obj, err := w.u.decode(msg.GetObject(), w.u.info.New())
		if err != nil {
			return watch.Event{}, fmt.Errorf("watch event %s: %w", typ, err)
		}
		return watch.Event{Type: typ, Object: obj}, nil
	case watch.Error:
		return watch.Event{Type: watch.Error, Object: decodeStatus(msg.GetObject())}, nil
	}
	return watch.Event{}, fmt.Errorf("unknown watch event type %q", msg.GetType())
}

// decodeStatus reads the metav1.Status of an ERROR event. A Status that
// cannot be read still ends the watch, as an internal error.
func decodeStatus(data []byte) runtime.Object {
	obj, err := scheme.DecodeProtobuf(data, &metav1.Status{})
	if err == nil {
		if st, ok := obj.(*metav1.Status); ok {
			return st
		}
	}
	// Also accept the bare message, as in error details.
	if bare := (&metav1.Status{}); bare.Unmarshal(data) == nil && bare.Code != 0 {
		return bare
	}
	return grpcerr.StatusFor(apierrors.NewInternalError(errors.New("watch error event without a readable status")))
}
