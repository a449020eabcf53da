package events

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/testenv"
)

func TestEventAboutAPod(t *testing.T) {
	s := testenv.StartServer(t)
	c := testenv.NewClient(t, s)
	ctx := testenv.Context(t)

	pod, err := c.Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "default"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Objects from the API have no kind set, as in an informer's cache.
	pod.TypeMeta = metav1.TypeMeta{}

	rec := NewRecorder(ctx, c, "scheduler")
	rec.Eventf(pod, corev1.EventTypeNormal, "Scheduled", "Successfully assigned %s/%s to %s", "default", "web-1", "node-2")
	rec.Stop()

	list, err := c.Events("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 {
		t.Fatalf("got %d events, want 1", len(list.Items))
	}
	ev := list.Items[0]
	if !strings.HasPrefix(ev.Name, "web-1.") || len(ev.Name) <= len("web-1.") {
		t.Errorf("got name %q, want web-1.<suffix>", ev.Name)
	}
	want := corev1.ObjectReference{
		Kind: "Pod", APIVersion: "v1", Namespace: "default", Name: "web-1",
		UID: pod.UID, ResourceVersion: pod.ResourceVersion,
	}
	if ev.InvolvedObject != want {
		t.Errorf("got involvedObject %+v, want %+v", ev.InvolvedObject, want)
	}
	for _, c := range []struct{ field, got, want string }{
		{"type", ev.Type, corev1.EventTypeNormal},
		{"reason", ev.Reason, "Scheduled"},
		{"message", ev.Message, "Successfully assigned default/web-1 to node-2"},
		{"source.component", ev.Source.Component, "scheduler"},
		{"reportingController", ev.ReportingController, "scheduler"},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.field, c.got, c.want)
		}
	}
	if ev.Count != 1 {
		t.Errorf("count: got %d, want 1", ev.Count)
	}
	if ev.FirstTimestamp.IsZero() || !ev.FirstTimestamp.Equal(&ev.LastTimestamp) {
		t.Errorf("got firstTimestamp %v and lastTimestamp %v, want both set and equal", ev.FirstTimestamp, ev.LastTimestamp)
	}
}

func TestEventAboutANodeGoesToDefault(t *testing.T) {
	s := testenv.StartServer(t)
	c := testenv.NewClient(t, s)
	ctx := testenv.Context(t)

	node, err := c.Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}})
	if err != nil {
		t.Fatal(err)
	}
	rec := NewRecorder(ctx, c, "node-controller")
	rec.Eventf(node, corev1.EventTypeWarning, "NodeNotReady", "Node %s status is now: %s", node.Name, "NodeNotReady")
	rec.Stop()

	list, err := c.Events("default").List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("involvedObject.name", "node-a").String(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 {
		t.Fatalf("got %d events, want 1", len(list.Items))
	}
	ev := list.Items[0]
	if ev.InvolvedObject.Kind != "Node" || ev.InvolvedObject.Namespace != "" || ev.Type != corev1.EventTypeWarning {
		t.Errorf("got involvedObject %+v type %q, want a Node with no namespace and type Warning", ev.InvolvedObject, ev.Type)
	}
}

func TestManyEventsHaveDistinctNames(t *testing.T) {
	s := testenv.StartServer(t)
	c := testenv.NewClient(t, s)
	ctx := testenv.Context(t)

	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", UID: "1234"}}
	rec := NewRecorder(ctx, c, "test")
	const n = 200 // well under BufferSize: none is dropped
	for i := range n {
		rec.Eventf(node, corev1.EventTypeNormal, "Tick", "tick %d", i)
	}
	rec.Stop()
	if rec.Dropped() != 0 {
		t.Fatalf("got %d dropped events, want 0", rec.Dropped())
	}
	list, err := c.Events("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != n {
		t.Fatalf("got %d events, want %d", len(list.Items), n)
	}
}

// TestBurstDoesNotBlock writes to a server that accepts connections and
// never answers: Eventf must still return at once, dropping what does
// not fit, and Stop must give up after its deadline. The bounds are
// generous (a race-enabled build on a busy machine); a blocking Eventf
// would wait WriteTimeout (10 s) for each event beyond the buffer.
func TestBurstDoesNotBlock(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close() // hold it open, say nothing
		}
	}()
	// No certificates are needed: the TLS handshake never ends.
	c, err := client.New(client.Config{Server: "https://" + ln.Addr().String(), TLS: &tls.Config{}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	rec := NewRecorder(context.Background(), c, "test")
	rec.flushTimeout = 100 * time.Millisecond
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"}}
	extra := 50
	start := time.Now()
	for i := range BufferSize + Workers + extra {
		rec.Eventf(pod, corev1.EventTypeNormal, "Burst", "event %d", i)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("got %d Eventf calls taking %v, want under 1s: Eventf blocks", BufferSize+Workers+extra, elapsed)
	}
	if got := rec.Dropped(); got < int64(extra) {
		t.Errorf("got %d dropped events, want at least %d", got, extra)
	}
	start = time.Now()
	rec.Stop()
	if elapsed, limit := time.Since(start), rec.flushTimeout+2*time.Second; elapsed > limit {
		t.Errorf("got Stop taking %v, want under %v: it must give up after its flush timeout (%v)", elapsed, limit, rec.flushTimeout)
	}
	rec.Eventf(pod, corev1.EventTypeNormal, "Late", "after stop") // dropped, no panic
	rec.Stop()                                                    // again: nothing
}

func TestReferenceOfAnUnknownType(t *testing.T) {
	_, err := reference(&corev1.PodList{})
	if err == nil {
		t.Fatal("got no error for a list, want one")
	}
}

// TestOutlivesItsContext: a recorder keeps recording after the context
// it was made with ends, until Stop, which writes what is buffered: a
// component stops its recorder once its own context has ended.
func TestOutlivesItsContext(t *testing.T) {
	s := testenv.StartServer(t)
	c := testenv.NewClient(t, s)
	ctx := testenv.Context(t)

	recCtx, cancel := context.WithCancel(ctx)
	rec := NewRecorder(recCtx, c, "test")
	cancel()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", UID: "1234"}}
	rec.Eventf(node, corev1.EventTypeNormal, "Late", "after the component's context ended")
	rec.Stop()

	list, err := c.Events("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Reason != "Late" {
		t.Fatalf("got events %+v, want the one recorded after the context ended", list.Items)
	}
}

// TestLogsThroughTheComponentsLogger: a recorder logs through the logger
// of the context it was made with, not through slog.Default().
func TestLogsThroughTheComponentsLogger(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil)).With("component", "scheduler")
	rec := NewRecorder(logging.Into(context.Background(), log), nil, "scheduler")
	defer rec.Stop()
	rec.Eventf(&corev1.PodList{}, corev1.EventTypeNormal, "Nonsense", "about a list")
	if got := buf.String(); !strings.Contains(got, "cannot record an event") || !strings.Contains(got, "component=scheduler") {
		t.Errorf("got log %q, want the error logged through the given logger", got)
	}
}
