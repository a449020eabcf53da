package storage

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiffdev/skiff/internal/wait"
)

// startEtcd runs a real single-member etcd for the test, on a unix socket.
func startEtcd(t *testing.T) *clientv3.Client {
	t.Helper()
	dir, err := os.MkdirTemp("", "skiff-st-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg := embed.NewConfig()
	cfg.Dir = filepath.Join(dir, "data")
	cfg.LogLevel = "fatal"
	cu := url.URL{Scheme: "unix", Path: filepath.Join(dir, "c.sock")}
	pu := url.URL{Scheme: "unix", Path: filepath.Join(dir, "p.sock")}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	cfg.ListenMetricsUrls = nil
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(time.Minute):
		t.Fatal("etcd did not start within a minute")
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{cu.String()}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func podAttrs(obj runtime.Object) (labels.Set, fields.Set) {
	p := obj.(*corev1.Pod)
	return labels.Set(p.Labels), fields.Set{"metadata.name": p.Name, "metadata.namespace": p.Namespace}
}

func newPodStore(t *testing.T, buffer int) (*Store, *Cacher) {
	t.Helper()
	st := NewStore(Config{
		Client:      startEtcd(t),
		Resource:    schema.GroupResource{Resource: "pods"},
		Prefix:      "/registry/core/pods/",
		NewFunc:     func() runtime.Object { return &corev1.Pod{} },
		NewListFunc: func() runtime.Object { return &corev1.PodList{} },
		Attrs:       podAttrs,
	})
	c := NewCacher(CacherConfig{Store: st, WindowSize: 1000, WatcherBuffer: buffer, BookmarkInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return st, c
}

func pod(name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
}

// collect reads a watcher until it has n events or closes.
func collect(t *testing.T, w *Watcher, n int) []WatchEvent {
	t.Helper()
	var got []WatchEvent
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for len(got) < n {
		ev, ok := w.Next(ctx)
		if !ok {
			select {
			case <-ctx.Done():
				t.Fatalf("got %d of %d events within 20s", len(got), n)
			default:
				return got // the cache ended the watch
			}
		}
		got = append(got, ev)
	}
	return got
}

// TestWatchersSeeOneHistory: concurrent writers, many watchers; every
// watcher sees the same events in the same strictly increasing order.
func TestWatchersSeeOneHistory(t *testing.T) {
	st, c := newPodStore(t, 1024)
	ctx := context.Background()
	var watchers []*Watcher
	for range 20 {
		w, err := c.Watch(ctx, 0, Predicate{}, false)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		watchers = append(watchers, w)
	}
	// 4 writers × 25 objects, each created, updated once and deleted.
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 25 {
				name := fmt.Sprintf("p-%d-%d", g, i)
				key := st.Key("default", name)
				if _, err := st.Create(ctx, key, name, pod(name)); err != nil {
					t.Error(err)
					return
				}
				if _, _, err := st.GuaranteedUpdate(ctx, key, name, nil, func(cur runtime.Object) (runtime.Object, error) {
					cur.(*corev1.Pod).Labels = map[string]string{"v": "2"}
					return cur, nil
				}, nil); err != nil {
					t.Error(err)
					return
				}
				if _, _, err := st.GuaranteedUpdate(ctx, key, name, nil, func(cur runtime.Object) (runtime.Object, error) {
					return cur, nil
				}, func(runtime.Object) bool { return true }); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	var first []string
	for i, w := range watchers {
		evs := collect(t, w, 300)
		var seq []string
		var last int64
		for _, ev := range evs {
			if ev.Event.Rev <= last {
				t.Fatalf("watcher %d: revision %d after %d", i, ev.Event.Rev, last)
			}
			last = ev.Event.Rev
			m, _ := meta.Accessor(ev.Event.Object)
			if m.GetResourceVersion() != fmt.Sprint(ev.Event.Rev) {
				t.Fatalf("watcher %d: object resourceVersion %s, event revision %d", i, m.GetResourceVersion(), ev.Event.Rev)
			}
			seq = append(seq, fmt.Sprintf("%s %s %d", ev.Type, m.GetName(), ev.Event.Rev))
		}
		if len(seq) != 300 {
			t.Fatalf("watcher %d saw %d events, want 300", i, len(seq))
		}
		if first == nil {
			first = seq
			continue
		}
		for j := range seq {
			if seq[j] != first[j] {
				t.Fatalf("watcher %d event %d: %s, watcher 0 saw %s", i, j, seq[j], first[j])
			}
		}
	}
}

// TestSlowWatcherEndsAndResumes: a watcher that does not read is ended
// once its buffer is full, and resuming from the last event it got misses
// nothing.
func TestSlowWatcherEndsAndResumes(t *testing.T) {
	st, c := newPodStore(t, 4)
	ctx := context.Background()
	w, err := c.Watch(ctx, 0, Predicate{}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var lastRV string
	for i := range 20 {
		name := fmt.Sprintf("p-%02d", i)
		out, err := st.Create(ctx, st.Key("default", name), name, pod(name))
		if err != nil {
			t.Fatal(err)
		}
		lastRV = out.(*corev1.Pod).ResourceVersion
	}
	// Let the cache take in every event before anyone reads.
	wait.Until(t, 20*time.Second, "the cache to reach the last write", func() bool {
		c.mu.RLock()
		defer c.mu.RUnlock()
		return fmt.Sprint(c.rev) == lastRV
	})
	got := collect(t, w, 20) // returns early when the watcher is ended
	if len(got) >= 20 {
		t.Fatalf("a watcher with a buffer of 4 kept up with 20 unread events")
	}
	last := got[len(got)-1].Event.Rev
	w2, err := c.Watch(ctx, last, Predicate{}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Stop()
	rest := collect(t, w2, 20-len(got))
	names := map[string]bool{}
	for _, ev := range append(got, rest...) {
		names[ev.Event.Object.(*corev1.Pod).Name] = true
	}
	if len(names) != 20 {
		t.Fatalf("after resuming, saw %d distinct pods, want 20", len(names))
	}
}
