package informers_test

import (
	"context"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/client/clienttest"
	"github.com/skiffdev/skiff/internal/grpcerr"
	"github.com/skiffdev/skiff/internal/informers"
	"github.com/skiffdev/skiff/internal/wait"
)

const waitTimeout = 10 * time.Second

type fixture struct {
	srv     *clienttest.Server
	client  *client.Client
	factory *informers.Factory
}

// start runs a fake server holding pods, and a factory whose pod informer
// has synced.
func start(t *testing.T, pods []*corev1.Pod, opts ...informers.Option) fixture {
	t.Helper()
	srv := clienttest.Start(t)
	c, err := client.New(client.Config{Server: srv.Addr, Plaintext: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	for _, p := range pods {
		if _, err := c.Pods("").Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}

	f := informers.NewFactory(c, 0, opts...)
	f.Pods()
	runCtx, cancel := context.WithCancel(ctx)
	f.Start(runCtx)
	t.Cleanup(func() {
		cancel()
		waitDone(t, f)
	})
	syncCtx, syncCancel := context.WithTimeout(ctx, waitTimeout)
	defer syncCancel()
	if !f.WaitForCacheSync(syncCtx) {
		t.Fatalf("caches did not sync")
	}
	return fixture{srv: srv, client: c, factory: f}
}

// waitDone waits for the factory's informers to return.
func waitDone(t *testing.T, f *informers.Factory) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		f.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Errorf("informers still running %v after their context ended", waitTimeout)
	}
}

func pod(ns, name, node string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:       corev1.PodSpec{NodeName: node},
	}
}

func keys(t *testing.T, objs []any) []string {
	t.Helper()
	var ks []string
	for _, o := range objs {
		k, err := cache.MetaNamespaceKeyFunc(o)
		if err != nil {
			t.Fatal(err)
		}
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func TestIndexes(t *testing.T) {
	f := start(t, []*corev1.Pod{
		pod("a", "web-1", "node-1", map[string]string{"app": "web", "tier": "front"}),
		pod("a", "web-2", "node-2", map[string]string{"app": "web"}),
		pod("b", "db-1", "node-1", map[string]string{"app": "db"}),
		pod("b", "pending", "", nil),
	})
	indexer := f.factory.Pods().GetIndexer()

	tests := []struct {
		index, value string
		want         []string
	}{
		{cache.NamespaceIndex, "a", []string{"a/web-1", "a/web-2"}},
		{cache.NamespaceIndex, "c", nil},
		{informers.LabelIndex, informers.LabelIndexValue("app", "web"), []string{"a/web-1", "a/web-2"}},
		{informers.LabelIndex, "tier=front", []string{"a/web-1"}},
		{informers.NodeNameIndex, "node-1", []string{"a/web-1", "b/db-1"}},
		{informers.NodeNameIndex, "", []string{"b/pending"}},
	}
	for _, tt := range tests {
		t.Run(tt.index+" "+tt.value, func(t *testing.T) {
			objs, err := indexer.ByIndex(tt.index, tt.value)
			if err != nil {
				t.Fatal(err)
			}
			if got := keys(t, objs); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestShared(t *testing.T) {
	f := informers.NewFactory(nil, 0)
	tests := []struct {
		name string
		get  func() cache.SharedIndexInformer
	}{
		{"pods", f.Pods},
		{"nodes", f.Nodes},
		{"namespaces", f.Namespaces},
		{"services", f.Services},
		{"deployments", f.Deployments},
		{"replicasets", f.ReplicaSets},
		{"endpointslices", f.EndpointSlices},
		{"leases", f.Leases},
		{"events", f.Events},
	}
	seen := map[cache.SharedIndexInformer]string{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inf := tt.get()
			if tt.get() != inf {
				t.Errorf("second call returned another informer")
			}
			if other, ok := seen[inf]; ok {
				t.Errorf("same informer as %s", other)
			}
			seen[inf] = tt.name
			if _, ok := inf.GetIndexer().GetIndexers()[informers.LabelIndex]; !ok {
				t.Errorf("no label index")
			}
		})
	}
}

// TestFollowsChanges checks that the cache follows writes, and that a
// watch that fails is recovered by client-go's reflector: a dropped
// connection resumes the watch where it stopped, a 410 from the server
// makes it list again.
func TestFollowsChanges(t *testing.T) {
	f := start(t, []*corev1.Pod{pod("a", "web-1", "", nil)})
	ctx := context.Background()
	store := f.factory.Pods().GetStore()
	has := func(key string) func() bool {
		return func() bool {
			_, ok, _ := store.GetByKey(key)
			return ok
		}
	}
	count := func(prefix string) int {
		n := 0
		for _, r := range f.srv.Requests() {
			if strings.HasPrefix(r, prefix) {
				n++
			}
		}
		return n
	}

	if _, err := f.client.Pods("a").Create(ctx, pod("", "web-2", "", nil)); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, waitTimeout, "web-2 in cache", has("a/web-2"))
	for _, r := range f.srv.Requests() {
		if strings.HasPrefix(r, "Watch") && !strings.HasSuffix(r, " bookmarks") {
			t.Errorf("watch without bookmarks: %q", r)
		}
	}

	t.Run("dropped connection resumes", func(t *testing.T) {
		lists := count("List pods")
		wait.Until(t, waitTimeout, "watch open", func() bool { return f.srv.Watchers() == 1 })
		f.srv.DropWatches(nil)
		if _, err := f.client.Pods("a").Create(ctx, pod("", "web-3", "", nil)); err != nil {
			t.Fatal(err)
		}
		wait.Until(t, waitTimeout, "web-3 in cache", has("a/web-3"))
		if got := count("List pods"); got != lists {
			t.Errorf("lists: got %d, want %d (no relist)", got, lists)
		}
	})

	t.Run("gone relists", func(t *testing.T) {
		lists := count("List pods")
		wait.Until(t, waitTimeout, "watch open", func() bool { return f.srv.Watchers() == 1 })
		f.srv.DropWatches(grpcerr.ToStatus(apierrors.NewResourceExpired("too old resource version")))
		wait.Until(t, waitTimeout, "relist", func() bool { return count("List pods") > lists })
		if err := f.client.Pods("a").Delete(ctx, "web-1", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		wait.Until(t, waitTimeout, "web-1 gone from cache", func() bool { return !has("a/web-1")() })
	})

	t.Run("error event relists", func(t *testing.T) {
		lists := count("List pods")
		wait.Until(t, waitTimeout, "watch open", func() bool { return f.srv.Watchers() == 1 })
		f.srv.SendErrorEvent(apierrors.NewResourceExpired("too old resource version"))
		wait.Until(t, waitTimeout, "relist", func() bool { return count("List pods") > lists })
	})
}

func TestTweakListOptions(t *testing.T) {
	f := start(t, []*corev1.Pod{
		pod("a", "mine", "node-1", nil),
		pod("a", "theirs", "node-2", nil),
	}, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = "spec.nodeName=node-1"
	}))
	if got := keys(t, f.factory.Pods().GetStore().List()); !slices.Equal(got, []string{"a/mine"}) {
		t.Errorf("got %v, want only a/mine", got)
	}
}
