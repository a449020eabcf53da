package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/scheme"
)

// Event is one change seen by the cache. Its object carries the event's
// resourceVersion; the encoded bytes are made once and shared by every
// watcher the event goes to.
type Event struct {
	Type   watch.EventType
	Object runtime.Object
	Rev    int64

	key string // the object's etcd key

	labels labels.Set
	fields fields.Set
	// prev* describe the object before a MODIFIED event, so that a
	// filtered watcher can tell an object entering or leaving its
	// selection.
	hasPrev    bool
	prevLabels labels.Set
	prevFields fields.Set

	encOnce sync.Once
	enc     []byte
	encErr  error
}

// Encoded returns the event's object in the Kubernetes protobuf encoding.
func (e *Event) Encoded() ([]byte, error) {
	e.encOnce.Do(func() { e.enc, e.encErr = scheme.EncodeProtobuf(e.Object) })
	return e.enc, e.encErr
}

// WatchEvent is what a watcher receives: an event, with the type as this
// watcher sees it (an object leaving a watcher's selection is DELETED for
// that watcher even though it was MODIFIED in etcd).
type WatchEvent struct {
	Type  watch.EventType
	Event *Event
}

// CacherConfig configures a watch cache.
type CacherConfig struct {
	Store *Store
	// WindowSize is how many recent events are kept for watchers that
	// resume from an older resourceVersion.
	WindowSize int
	// BookmarkInterval is how often watchers that allow bookmarks are told
	// the cache's current resourceVersion.
	BookmarkInterval time.Duration
	// WatcherBuffer is how many events may wait for a slow watcher before
	// the cache ends its watch (the client then resumes from the last
	// resourceVersion it saw).
	WatcherBuffer int
}

// Cacher is the watch cache of one resource: one etcd watch feeds any
// number of watchers.
type Cacher struct {
	cfg   CacherConfig
	store *Store

	ready     chan struct{}
	readyOnce sync.Once

	// mu guards everything below.
	mu       sync.RWMutex
	objects  map[string]*Event // key → the event that last wrote the object
	rev      int64             // the revision the cache reflects
	window   []*Event
	head     int   // index of the oldest event in window (a ring)
	count    int   // number of events in window
	oldest   int64 // every event after this revision is in the window
	watchers map[*Watcher]struct{}
}

// NewCacher returns a cache for the store's resource. Run starts it.
func NewCacher(cfg CacherConfig) *Cacher {
	if cfg.WindowSize <= 0 {
		cfg.WindowSize = 10000
	}
	if cfg.BookmarkInterval <= 0 {
		cfg.BookmarkInterval = 5 * time.Second
	}
	if cfg.WatcherBuffer <= 0 {
		cfg.WatcherBuffer = 512
	}
	return &Cacher{
		cfg:      cfg,
		store:    cfg.Store,
		ready:    make(chan struct{}),
		objects:  map[string]*Event{},
		window:   make([]*Event, cfg.WindowSize),
		watchers: map[*Watcher]struct{}{},
	}
}

// Run lists and watches the resource until ctx ends. When the etcd watch
// breaks, the cache watches again from where it was; when the revision it
// needs has been compacted, it lists again, and its watchers are ended to
// resume from where they were (or get Gone if that is now too far back).
func (c *Cacher) Run(ctx context.Context) {
	go c.bookmarks(ctx)
	listed := false
	for ctx.Err() == nil {
		var err error
		if !listed {
			err = c.list(ctx)
			listed = err == nil
		}
		if listed {
			// Follow etcd from where the cache is. A watch that breaks
			// (etcd restarted, leader lost) resumes from the same point with
			// nothing lost; only a compacted revision needs a new list.
			c.mu.RLock()
			from := c.rev + 1
			c.mu.RUnlock()
			err = c.watch(ctx, from)
			if errors.Is(err, rpctypes.ErrCompacted) || errors.Is(err, errRelist) {
				listed = false
			}
		}
		if ctx.Err() != nil {
			break
		}
		logging.From(ctx).Warn("watch cache interrupted; retrying", "resource", c.store.cfg.Resource.String(), "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	c.mu.Lock()
	for w := range c.watchers {
		c.stopLocked(w)
	}
	c.mu.Unlock()
}

// Ready is closed once the cache has listed its resource the first time.
func (c *Cacher) Ready() <-chan struct{} { return c.ready }

// list reads the whole prefix and makes it the cache's state. Watchers that
// were following the previous state may have missed events; they are ended
// so that they resume (and get Gone if they are now too far back).
func (c *Cacher) list(ctx context.Context) error {
	prefix := c.store.cfg.Prefix
	var resp *clientv3.GetResponse
	err := c.store.call(ctx, func(ctx context.Context) error {
		var err error
		resp, err = c.store.cfg.Client.Get(ctx, prefix, clientv3.WithPrefix())
		return err
	})
	if err != nil {
		return err
	}
	objects := make(map[string]*Event, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		obj, err := c.store.decode(string(kv.Key), kv.Value, kv.ModRevision)
		if err != nil {
			return err
		}
		e := &Event{Type: watch.Added, Object: obj, Rev: kv.ModRevision, key: string(kv.Key)}
		e.labels, e.fields = c.store.cfg.Attrs(obj)
		objects[string(kv.Key)] = e
	}
	rev := resp.Header.Revision

	c.mu.Lock()
	c.objects = objects
	c.rev, c.oldest = rev, rev
	c.head, c.count = 0, 0
	clear(c.window)
	for w := range c.watchers {
		c.stopLocked(w)
	}
	c.mu.Unlock()
	c.readyOnce.Do(func() { close(c.ready) })
	return nil
}

// watch applies etcd's events from revision from on, until the watch fails
// or ctx ends.
func (c *Cacher) watch(ctx context.Context, from int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := c.store.cfg.Client.Watch(wctx, c.store.cfg.Prefix, clientv3.WithPrefix(), clientv3.WithRev(from),
		clientv3.WithPrevKV(), clientv3.WithProgressNotify())
	for wr := range wch {
		if err := wr.Err(); err != nil {
			return err
		}
		if wr.IsProgressNotify() {
			c.mu.Lock()
			if wr.Header.Revision > c.rev {
				c.rev = wr.Header.Revision
			}
			c.mu.Unlock()
			continue
		}
		for _, ev := range wr.Events {
			e, err := c.toEvent(ev)
			if err != nil {
				// Skipping the event would leave the cache wrong for
				// good; start over from a fresh list instead.
				return fmt.Errorf("%w: key %s: %v", errRelist, ev.Kv.Key, err)
			}
			c.process(ctx, string(ev.Kv.Key), e)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.New("etcd watch closed")
}

// toEvent turns an etcd event into a cache event.
func (c *Cacher) toEvent(ev *clientv3.Event) (*Event, error) {
	e := &Event{Rev: ev.Kv.ModRevision, key: string(ev.Kv.Key)}
	switch {
	case ev.Type == clientv3.EventTypeDelete:
		e.Type = watch.Deleted
		var obj runtime.Object
		if ev.PrevKv != nil {
			var err error
			if obj, err = c.store.decode(string(ev.Kv.Key), ev.PrevKv.Value, ev.Kv.ModRevision); err != nil {
				return nil, err
			}
		} else if cached, ok := c.cachedObject(string(ev.Kv.Key)); ok {
			// etcd could not find the previous value (it was just
			// compacted away); the cache still has the object.
			if err := setResourceVersion(cached, ev.Kv.ModRevision); err != nil {
				return nil, err
			}
			obj = cached
		} else {
			return nil, errors.New("delete event without the previous value")
		}
		e.Object = obj
	default:
		obj, err := c.store.decode(string(ev.Kv.Key), ev.Kv.Value, ev.Kv.ModRevision)
		if err != nil {
			return nil, err
		}
		e.Object = obj
		e.Type = watch.Modified
		if ev.IsCreate() {
			e.Type = watch.Added
		}
	}
	e.labels, e.fields = c.store.cfg.Attrs(e.Object)
	return e, nil
}

// errRelist ends a watch whose events the cache could not apply.
var errRelist = errors.New("the watch cache must list again")

// cachedObject returns a copy of a cached object.
func (c *Cacher) cachedObject(key string) (runtime.Object, bool) {
	c.mu.RLock()
	e, ok := c.objects[key]
	c.mu.RUnlock()
	if !ok {
		return nil, false
	}
	return e.Object.DeepCopyObject(), true
}

// process applies one event to the cache and hands it to the watchers.
func (c *Cacher) process(ctx context.Context, key string, e *Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.objects[key]; ok && e.Type == watch.Modified {
		e.hasPrev, e.prevLabels, e.prevFields = true, prev.labels, prev.fields
	}
	if e.Type == watch.Deleted {
		delete(c.objects, key)
	} else {
		c.objects[key] = e
	}
	if e.Rev > c.rev {
		c.rev = e.Rev
	}
	// Append to the ring, dropping the oldest event when it is full.
	if c.count == len(c.window) {
		c.oldest = c.window[c.head].Rev
		c.window[c.head] = nil
		c.head = (c.head + 1) % len(c.window)
		c.count--
	}
	c.window[(c.head+c.count)%len(c.window)] = e
	c.count++

	for w := range c.watchers {
		if e.Rev <= w.minRev {
			continue
		}
		if t, ok := w.filter(e); ok {
			c.sendLocked(ctx, w, WatchEvent{Type: t, Event: e})
		}
	}
}

// sendLocked hands an event to a watcher without blocking; a watcher whose
// buffer is full is ended (and that logged through ctx's logger).
func (c *Cacher) sendLocked(ctx context.Context, w *Watcher, we WatchEvent) {
	select {
	case w.input <- we:
	default:
		logging.From(ctx).Info("ending a watcher that fell behind", "resource", c.store.cfg.Resource.String())
		c.stopLocked(w)
	}
}

func (c *Cacher) stopLocked(w *Watcher) {
	if _, ok := c.watchers[w]; !ok {
		return
	}
	delete(c.watchers, w)
	close(w.input)
}

// bookmarks periodically tells watchers that allow it how far the cache
// has got, so that they can resume from a recent resourceVersion.
func (c *Cacher) bookmarks(ctx context.Context) {
	t := time.NewTicker(c.cfg.BookmarkInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Ask etcd for a progress notification so that the cache's
		// revision moves on even when this resource does not change. The
		// context carries the same metadata as the watch's, which is how
		// the etcd client picks the watch stream to ask on.
		_ = c.store.cfg.Client.RequestProgress(clientv3.WithRequireLeader(ctx))
		c.mu.Lock()
		if len(c.watchers) > 0 {
			obj := c.store.cfg.NewFunc()
			_ = setResourceVersion(obj, c.rev)
			_ = scheme.SetTypeMeta(obj)
			e := &Event{Type: watch.Bookmark, Object: obj, Rev: c.rev}
			for w := range c.watchers {
				if !w.bookmarks || c.rev <= w.minRev || len(w.input) > cap(w.input)/2 {
					continue // a busy watcher needs no bookmark
				}
				select {
				case w.input <- WatchEvent{Type: watch.Bookmark, Event: e}:
				default:
				}
			}
		}
		c.mu.Unlock()
	}
}

// Watcher is one client's watch on the cache.
type Watcher struct {
	c         *Cacher
	pred      Predicate
	bookmarks bool
	minRev    int64 // events at or before this revision are not sent
	// initial holds the events owed from before the watch started (the
	// current objects, or the window's events after the requested
	// revision); Next hands them out first.
	initial []WatchEvent
	// input receives live events from the cache. The cache closes it when
	// it ends the watch.
	input    chan WatchEvent
	stopOnce sync.Once
}

// filter decides how an event looks to this watcher: ADDED, MODIFIED or
// DELETED, or not at all.
func (w *Watcher) filter(e *Event) (watch.EventType, bool) {
	if w.pred.Empty() {
		return e.Type, true
	}
	cur := w.pred.MatchesAttrs(e.labels, e.fields)
	switch e.Type {
	case watch.Added, watch.Deleted:
		return e.Type, cur
	}
	prev := e.hasPrev && w.pred.MatchesAttrs(e.prevLabels, e.prevFields)
	switch {
	case cur && prev:
		return watch.Modified, true
	case cur:
		return watch.Added, true
	case prev:
		return watch.Deleted, true
	}
	return "", false
}

// Next returns the watch's next event, waiting for one until ctx ends. It reports false when the watch has ended: after Stop, when the
// cache restarts, or when the watcher fell too far behind. A client
// resumes by watching again from the last resourceVersion it received.
// Next is called from one goroutine only.
func (w *Watcher) Next(ctx context.Context) (WatchEvent, bool) {
	if len(w.initial) > 0 {
		e := w.initial[0]
		w.initial[0] = WatchEvent{}
		w.initial = w.initial[1:]
		return e, true
	}
	select {
	case e, ok := <-w.input:
		return e, ok
	case <-ctx.Done():
		return WatchEvent{}, false
	}
}

// Stop ends the watch.
func (w *Watcher) Stop() {
	w.stopOnce.Do(func() {
		w.c.mu.Lock()
		w.c.stopLocked(w)
		w.c.mu.Unlock()
	})
}

// Watch starts a watch. With rv 0 the watcher first receives an ADDED event
// for every current object it selects, then every later change. With rv > 0
// it receives the changes after rv; if rv is older than the cache's window
// the error is Gone (410) and the client must list again.
func (c *Cacher) Watch(ctx context.Context, rv int64, pred Predicate, allowBookmarks bool) (*Watcher, error) {
	if err := c.waitReady(ctx); err != nil {
		return nil, err
	}
	w := &Watcher{
		c:         c,
		pred:      pred,
		bookmarks: allowBookmarks,
		input:     make(chan WatchEvent, c.cfg.WatcherBuffer),
	}
	sortInitial := false
	c.mu.Lock()
	switch {
	case rv == 0:
		for _, e := range c.objects {
			if pred.MatchesAttrs(e.labels, e.fields) {
				w.initial = append(w.initial, WatchEvent{Type: watch.Added, Event: e})
			}
		}
		w.minRev = c.rev
		sortInitial = true
	case rv < c.oldest:
		oldest := c.oldest
		c.mu.Unlock()
		return nil, &apierrors.StatusError{ErrStatus: *statusGone(rv, oldest)}
	default:
		for i := 0; i < c.count; i++ {
			e := c.window[(c.head+i)%len(c.window)]
			if e.Rev <= rv {
				continue
			}
			if t, ok := w.filter(e); ok {
				w.initial = append(w.initial, WatchEvent{Type: t, Event: e})
			}
		}
		w.minRev = max(rv, c.rev)
	}
	c.watchers[w] = struct{}{}
	c.mu.Unlock()
	if sortInitial {
		// Sorted outside the lock: writers need not wait for it.
		slices.SortFunc(w.initial, func(a, b WatchEvent) int { return strings.Compare(a.Event.key, b.Event.key) })
	}
	return w, nil
}

func (c *Cacher) waitReady(ctx context.Context) error {
	select {
	case <-c.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// List returns the cached objects of a namespace ("" for all) that the
// predicate selects, sorted by key, with the cache's revision as the list's
// resourceVersion. It is what a list with resourceVersion "0" gets.
func (c *Cacher) List(ctx context.Context, namespace string, pred Predicate) (runtime.Object, error) {
	if err := c.waitReady(ctx); err != nil {
		return nil, err
	}
	prefix := c.store.Prefix(namespace)
	c.mu.RLock()
	var matched []*Event
	for key, e := range c.objects {
		if strings.HasPrefix(key, prefix) && pred.MatchesAttrs(e.labels, e.fields) {
			matched = append(matched, e)
		}
	}
	rev := c.rev
	c.mu.RUnlock()

	slices.SortFunc(matched, func(a, b *Event) int { return strings.Compare(a.key, b.key) })
	items := make([]runtime.Object, len(matched))
	for i, e := range matched {
		// The list's items share maps and slices with the cache: the
		// caller encodes them and must not modify them.
		items[i] = e.Object
	}
	return c.store.newList(items, rev, "")
}

// Get returns a cached object, or false when the cache does not hold it.
// The object is shared: callers must not modify it.
func (c *Cacher) Get(namespace, name string) (runtime.Object, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	en, ok := c.objects[c.store.Key(namespace, name)]
	if !ok {
		return nil, false
	}
	return en.Object, true
}
