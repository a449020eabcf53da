package client

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// ListWatch returns the cache.ListerWatcher that client-go's reflectors
// and informers use to fill a cache with this resource: List for the
// initial state, then Watch from the list's resourceVersion. tweak, if not
// nil, adjusts the options of every call, for example to set a field
// selector ("spec.nodeName=node-1").
//
// The reflector does the hard parts on its own: it re-watches from the
// last resourceVersion when a stream ends, lists again when the server
// answers 410 Gone, and backs off while the server is unreachable.
func (r *ResourceClient[T, L]) ListWatch(tweak func(*metav1.ListOptions)) cache.ListerWatcher {
	return &listWatch{u: r.u, tweak: tweak}
}

// listWatch implements cache.ListerWatcher and the context-aware
// cache.ListerWatcherWithContext that reflectors prefer.
type listWatch struct {
	u     *UntypedClient
	tweak func(*metav1.ListOptions)
}

var (
	_ cache.ListerWatcher            = (*listWatch)(nil)
	_ cache.ListerWatcherWithContext = (*listWatch)(nil)
)

func (lw *listWatch) options(opts metav1.ListOptions) metav1.ListOptions {
	if lw.tweak != nil {
		lw.tweak(&opts)
	}
	return opts
}

// ListWithContext lists the objects.
func (lw *listWatch) ListWithContext(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	return lw.u.List(ctx, lw.options(opts))
}

// WatchWithContext watches the objects, always with bookmarks: they let a
// reflector whose watch ends restart it from a recent resourceVersion
// even when the objects it watches have not changed for a long time.
func (lw *listWatch) WatchWithContext(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts = lw.options(opts)
	opts.AllowWatchBookmarks = true
	return lw.u.watch(ctx, opts)
}

// List lists the objects (for callers without a context).
func (lw *listWatch) List(opts metav1.ListOptions) (runtime.Object, error) {
	return lw.ListWithContext(context.Background(), opts)
}

// Watch watches the objects (for callers without a context).
func (lw *listWatch) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	return lw.WatchWithContext(context.Background(), opts)
}

// IsWatchListSemanticsUnSupported tells client-go's reflector not to use
// the "watch list" protocol (a watch that starts with the whole state and
// a bookmark marking its end, instead of a list) even though its
// WatchListClient feature gate is on by default: the Skiff API has no
// sendInitialEvents option, so the reflector must list, then watch.
func (lw *listWatch) IsWatchListSemanticsUnSupported() bool { return true }
