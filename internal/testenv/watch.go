package testenv

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiffdev/skiff/internal/client"
)

// WatchUntil watches the object called name through rc from
// resourceVersion until done reports true, for at most timeout, and
// returns the object with the resourceVersion reached; a watch that ends
// is resumed. It fails tb after the timeout, saying what it waited for and
// how describe tells the last state seen. For benchmarks that time a
// whole rollout: a watch sees every state, a poll would add its interval.
func WatchUntil[T interface {
	runtime.Object
	metav1.Object
}, L runtime.Object](tb testing.TB, ctx context.Context, rc *client.ResourceClient[T, L], name, resourceVersion, what string, timeout time.Duration, describe func(T) string, done func(T) bool) (T, string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last T
	seen := false
	fail := func(format string, args ...any) {
		tb.Helper()
		state := "nothing seen"
		if seen {
			state = describe(last)
		}
		tb.Fatalf("waiting for %s: %s (last: %s)", what, fmt.Sprintf(format, args...), state)
	}
	for {
		w, err := rc.Watch(ctx, metav1.ListOptions{ResourceVersion: resourceVersion, AllowWatchBookmarks: true})
		if err != nil {
			if ctx.Err() != nil {
				fail("timed out after %v", timeout)
			}
			fail("watch: %v", err)
		}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				w.Stop()
				fail("watch error: %v", ev.Object)
			}
			obj, ok := ev.Object.(T)
			if !ok {
				continue
			}
			resourceVersion = obj.GetResourceVersion()
			if ev.Type == watch.Bookmark || obj.GetName() != name {
				continue
			}
			last, seen = obj, true
			if done(obj) {
				w.Stop()
				return obj, resourceVersion
			}
		}
		w.Stop()
		if ctx.Err() != nil {
			fail("timed out after %v", timeout)
		}
	}
}
