package client_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/skiffdev/skiff/internal/grpcerr"
	"github.com/skiffdev/skiff/internal/wait"
)

// waitTimeout bounds every wait in these tests. It is generous: the tests
// wait for events, never for time to pass.
const waitTimeout = 10 * time.Second

// next returns the next event, failing the test if none comes in time or
// the channel is closed.
func next(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatalf("watch closed, want an event")
		}
		return ev
	case <-time.After(waitTimeout):
		t.Fatalf("no watch event within %v", waitTimeout)
	}
	return watch.Event{}
}

// closed waits for the result channel to close and returns the events
// that came before.
func closed(t *testing.T, w watch.Interface) []watch.Event {
	t.Helper()
	var evs []watch.Event
	deadline := time.After(waitTimeout)
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return evs
			}
			evs = append(evs, ev)
		case <-deadline:
			t.Fatalf("watch not closed within %v; events so far: %v", waitTimeout, evs)
		}
	}
}

func podName(t *testing.T, ev watch.Event) string {
	t.Helper()
	p, ok := ev.Object.(*corev1.Pod)
	if !ok {
		t.Fatalf("%s event carries %T, want *corev1.Pod", ev.Type, ev.Object)
	}
	return p.Name
}

func TestWatchEvents(t *testing.T) {
	c, srv, _ := newClient(t)
	ctx := context.Background()
	pods := c.Pods("default")
	existing, err := pods.Create(ctx, pod("", "existing", nil))
	if err != nil {
		t.Fatal(err)
	}

	w, err := pods.Watch(ctx, metav1.ListOptions{ResourceVersion: "0", AllowWatchBookmarks: true})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	defer w.Stop()
	if ev := next(t, w); ev.Type != watch.Added || podName(t, ev) != "existing" {
		t.Fatalf("first event: got %s %v, want ADDED existing", ev.Type, ev.Object)
	}

	p, err := pods.Create(ctx, pod("", "web-1", nil))
	if err != nil {
		t.Fatal(err)
	}
	p.Labels = map[string]string{"x": "y"}
	if _, err := pods.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := pods.Delete(ctx, "web-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	srv.SendBookmark()

	tests := []struct {
		typ  watch.EventType
		name string
	}{
		{watch.Added, "web-1"},
		{watch.Modified, "web-1"},
		{watch.Deleted, "web-1"},
		{watch.Bookmark, ""},
	}
	lastRV := existing.ResourceVersion
	for _, tt := range tests {
		t.Run(string(tt.typ), func(t *testing.T) {
			ev := next(t, w)
			if ev.Type != tt.typ {
				t.Fatalf("type: got %s, want %s", ev.Type, tt.typ)
			}
			if got := podName(t, ev); got != tt.name {
				t.Errorf("name: got %q, want %q", got, tt.name)
			}
			rv := ev.Object.(*corev1.Pod).ResourceVersion
			if rv == "" || (tt.typ != watch.Bookmark && rv == lastRV) {
				t.Errorf("resourceVersion: got %q after %q", rv, lastRV)
			}
			lastRV = rv
		})
	}
	w.Stop()
	if evs := closed(t, w); len(evs) != 0 {
		t.Errorf("events after Stop: %v", evs)
	}
}

func TestWatchFromResourceVersion(t *testing.T) {
	c, _, _ := newClient(t)
	ctx := context.Background()
	pods := c.Pods("default")
	for _, name := range []string{"a", "b"} {
		if _, err := pods.Create(ctx, pod("", name, map[string]string{"name": name})); err != nil {
			t.Fatal(err)
		}
	}
	list, err := pods.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := pods.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion, LabelSelector: "name=c"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for _, name := range []string{"d", "c"} {
		if _, err := pods.Create(ctx, pod("", name, map[string]string{"name": name})); err != nil {
			t.Fatal(err)
		}
	}
	if ev := next(t, w); ev.Type != watch.Added || podName(t, ev) != "c" {
		t.Errorf("got %s %s, want only ADDED c", ev.Type, podName(t, ev))
	}
}

// TestWatchEnds covers every way a watch ends: with an ERROR event for
// errors the caller must act on, quietly otherwise.
func TestWatchEnds(t *testing.T) {
	expired := apierrors.NewResourceExpired("too old resource version: 1 (5)")
	tests := []struct {
		name string
		// end ends the watch from the server's side, or, when nil, the
		// test's own action does.
		end      func(*testing.T, watchFixture)
		wantCode int32 // 0: closes without an ERROR event
	}{
		{"error event", func(t *testing.T, f watchFixture) { f.srv.SendErrorEvent(expired) }, http.StatusGone},
		{"stream error", func(t *testing.T, f watchFixture) { f.srv.DropWatches(grpcerr.ToStatus(expired)) }, http.StatusGone},
		{"internal error", func(t *testing.T, f watchFixture) {
			f.srv.DropWatches(status.Error(codes.Internal, "boom"))
		}, http.StatusInternalServerError},
		{"connection dropped", func(t *testing.T, f watchFixture) { f.srv.DropWatches(nil) }, 0},
		{"stop", func(t *testing.T, f watchFixture) { f.w.Stop() }, 0},
		{"context canceled", func(t *testing.T, f watchFixture) { f.cancel() }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, srv, _ := newClient(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w, err := c.Pods("").Watch(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			wait.Until(t, waitTimeout, "watch registered", func() bool { return srv.Watchers() == 1 })

			tt.end(t, watchFixture{srv: srv, w: w, cancel: cancel})
			evs := closed(t, w)
			if tt.wantCode == 0 {
				if len(evs) != 0 {
					t.Errorf("got events %v, want a quiet close", evs)
				}
			} else {
				if len(evs) != 1 || evs[0].Type != watch.Error {
					t.Fatalf("got events %v, want one ERROR", evs)
				}
				s, ok := evs[0].Object.(*metav1.Status)
				if !ok {
					t.Fatalf("ERROR event carries %T, want *metav1.Status", evs[0].Object)
				}
				if s.Code != tt.wantCode {
					t.Errorf("code: got %d, want %d", s.Code, tt.wantCode)
				}
				if tt.wantCode == http.StatusGone && !apierrors.IsResourceExpired(apierrors.FromObject(s)) {
					t.Errorf("reason: got %q, want Expired", s.Reason)
				}
			}
			// The stream is released on the server too.
			wait.Until(t, waitTimeout, "server-side stream closed", func() bool { return srv.Watchers() == 0 })
		})
	}
}

type watchFixture struct {
	srv interface {
		SendErrorEvent(error)
		DropWatches(error) int
	}
	w      watch.Interface
	cancel context.CancelFunc
}

func TestWatchGoneAtStart(t *testing.T) {
	c, srv, _ := newClient(t)
	ctx := context.Background()
	if _, err := c.Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}); err != nil {
		t.Fatal(err)
	}
	n, err := c.Nodes().Get(ctx, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Nodes().Update(ctx, n); err != nil {
		t.Fatal(err)
	}
	srv.Compact()
	w, err := c.Nodes().Watch(ctx, metav1.ListOptions{ResourceVersion: n.ResourceVersion})
	if err != nil {
		// Equally acceptable: the error may arrive with the call.
		if !apierrors.IsResourceExpired(err) {
			t.Fatalf("got %v, want Expired", err)
		}
		return
	}
	defer w.Stop()
	evs := closed(t, w)
	if len(evs) != 1 || evs[0].Type != watch.Error || !apierrors.IsResourceExpired(apierrors.FromObject(evs[0].Object)) {
		t.Errorf("got %v, want one ERROR event with 410 Expired", evs)
	}
}

// TestWatchStopWithoutReading checks that Stop releases the watch even when
// the consumer never reads: the goroutine blocked on handing over an event
// must exit.
func TestWatchStopWithoutReading(t *testing.T) {
	c, srv, _ := newClient(t)
	ctx := context.Background()
	for _, name := range []string{"a", "b", "c"} {
		if _, err := c.Pods("default").Create(ctx, pod("", name, nil)); err != nil {
			t.Fatal(err)
		}
	}
	w, err := c.Pods("").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wait.Until(t, waitTimeout, "watch registered", func() bool { return srv.Watchers() == 1 })
	w.Stop()
	closed(t, w)
	wait.Until(t, waitTimeout, "server-side stream closed", func() bool { return srv.Watchers() == 0 })
}

func TestWatchTimeout(t *testing.T) {
	c, _, _ := newClient(t)
	w, err := c.Pods("").Watch(context.Background(), metav1.ListOptions{TimeoutSeconds: ptr.To[int64](1)})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if evs := closed(t, w); len(evs) != 0 {
		t.Errorf("got events %v, want a quiet close", evs)
	}
}
