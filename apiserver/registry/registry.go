package registry

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilnet "k8s.io/apimachinery/pkg/util/net"

	"github.com/skiffdev/skiff/apiserver/storage"
	"github.com/skiffdev/skiff/internal/scheme"
)

// Config configures the registry.
type Config struct {
	// Client is the etcd client.
	Client *clientv3.Client
	// RequestTimeout bounds every etcd call.
	RequestTimeout time.Duration
	// WatchWindow is how many recent events each watch cache keeps.
	WatchWindow int
	// BookmarkInterval is how often watchers get bookmarks.
	BookmarkInterval time.Duration
	// EventTTL is how long events are kept.
	EventTTL time.Duration
	// DefaultTolerationSeconds, when not nil, makes pod creation add the
	// default not-ready and unreachable NoExecute tolerations with this
	// many seconds (see addDefaultTolerations). Nil adds none.
	DefaultTolerationSeconds *int64
	// ServiceIPRange is the CIDR cluster IPs are allocated from; the zero
	// value means DefaultServiceIPRange. Check it with
	// CheckServiceIPRange.
	ServiceIPRange netip.Prefix
	// ServiceNodePortRange is the range node ports are allocated from;
	// the zero value means DefaultServiceNodePortRange.
	ServiceNodePortRange utilnet.PortRange
	// Admit, when set, is asked about every create and update (a patch
	// once it is applied; a scale as the update it makes) after
	// validation, with the request's context: the place of validating
	// admission plugins such as NodeRestriction. Its error refuses the
	// request; nothing is stored.
	Admit func(ctx context.Context, a Admission) error
	// Transformers are the storage transformers of the resources whose
	// stored values are not the plain encoding: the Keyring that
	// encrypts Secrets at rest. A resource not in it is stored as it is.
	Transformers map[schema.GroupResource]storage.Transformer
}

// Admission is one write, as Config.Admit sees it.
type Admission struct {
	Resource schema.GroupResource
	// Subresource is "" or "status".
	Subresource string
	// Object is what would be stored; Old is the stored object, nil on
	// create. Neither may be modified.
	Object, Old runtime.Object
}

// Registry holds one Store per served resource.
type Registry struct {
	stores     map[schema.GroupResource]*Store
	namespaces *Store
	admitFunc  func(ctx context.Context, a Admission) error
}

// KeyPrefix is where a resource's objects live in etcd:
// /registry/<group>/<resource>/, with "core" for the core group.
func KeyPrefix(info *scheme.ResourceInfo) string {
	group := info.Group
	if group == "" {
		group = "core"
	}
	return "/registry/" + group + "/" + info.Resource + "/"
}

// New builds the stores. Run starts their watch caches.
func New(cfg Config) *Registry {
	r := &Registry{stores: map[schema.GroupResource]*Store{}, admitFunc: cfg.Admit}
	for i := range scheme.Resources {
		info := &scheme.Resources[i]
		st, ok := strategyFor(info.GroupResource(), cfg, KeyPrefix(info))
		if !ok {
			panic(fmt.Sprintf("registry: no strategy for %s", info.GroupResource()))
		}
		var ttl time.Duration
		if info.Resource == "events" {
			ttl = cfg.EventTTL
		}
		store := storage.NewStore(storage.Config{
			TTL:            ttl,
			Client:         cfg.Client,
			Resource:       info.GroupResource(),
			Prefix:         KeyPrefix(info),
			NewFunc:        info.New,
			NewListFunc:    info.NewList,
			Attrs:          st.attrFunc(),
			RequestTimeout: cfg.RequestTimeout,
			Companion:      st.companion,
			Transformer:    cfg.Transformers[info.GroupResource()],
		})
		r.stores[info.GroupResource()] = &Store{
			info:     info,
			strategy: st,
			storage:  store,
			cache: storage.NewCacher(storage.CacherConfig{
				Store:            store,
				WindowSize:       cfg.WatchWindow,
				BookmarkInterval: cfg.BookmarkInterval,
			}),
			registry: r,
		}
	}
	r.namespaces = r.stores[schema.GroupResource{Resource: "namespaces"}]
	return r
}

// Run runs every watch cache until ctx ends, and returns once they have
// all stopped.
func (r *Registry) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, s := range r.stores {
		wg.Go(func() { s.cache.Run(ctx) })
	}
	wg.Wait()
}

// WaitReady waits until every watch cache has made its first list.
func (r *Registry) WaitReady(ctx context.Context) error {
	for _, s := range r.stores {
		select {
		case <-s.cache.Ready():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Store returns the store of a resource.
func (r *Registry) Store(gr schema.GroupResource) (*Store, bool) {
	s, ok := r.stores[gr]
	return s, ok
}

// SystemNamespaces exist from the start and cannot be deleted.
var SystemNamespaces = []string{metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease}

// EnsureNamespaces creates the given namespaces unless they exist.
func (r *Registry) EnsureNamespaces(ctx context.Context, names ...string) error {
	for _, name := range names {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if _, _, err := r.namespaces.Create(ctx, "", ns, false); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating namespace %q: %w", name, err)
		}
	}
	return nil
}

func terminating(n *corev1.Namespace) bool {
	return n.DeletionTimestamp != nil || n.Status.Phase == corev1.NamespaceTerminating
}

// admitNamespace refuses new objects in a namespace that does not exist or
// is being deleted. It reads the namespace cache unless fresh is set (or
// the cache does not have it: the namespace may be brand new), and returns
// a guard that holds while the namespace stays as it was read.
func (r *Registry) admitNamespace(ctx context.Context, info *scheme.ResourceInfo, name, namespace string, fresh bool) (storage.Guard, error) {
	var ns runtime.Object
	var ok bool
	if !fresh {
		ns, ok = r.namespaces.cache.Get("", namespace)
	}
	if !ok {
		var err error
		if ns, err = r.namespaces.Get(ctx, "", namespace); err != nil {
			return storage.Guard{}, err
		}
	}
	n := ns.(*corev1.Namespace)
	if terminating(n) && !fresh && ok {
		// The cache may still hold a namespace that was since removed
		// and created anew: ask etcd before refusing.
		return r.admitNamespace(ctx, info, name, namespace, true)
	}
	if terminating(n) {
		// With Kubernetes' cause, so that a client (the service account
		// controller) can tell this refusal from a denied request.
		msg := fmt.Sprintf("unable to create new content in namespace %s because it is being terminated", namespace)
		err := apierrors.NewForbidden(info.GroupResource(), name, errors.New(msg))
		err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
			Type: corev1.NamespaceTerminatingCause, Message: msg, Field: "metadata.namespace",
		})
		return storage.Guard{}, err
	}
	rev, err := storage.ParseResourceVersion(n.ResourceVersion)
	if err != nil {
		return storage.Guard{}, err
	}
	return storage.Guard{Key: r.namespaces.key("", namespace), ModRevision: rev}, nil
}

// admit runs Config.Admit, when set.
func (r *Registry) admit(ctx context.Context, a Admission) error {
	if r.admitFunc == nil {
		return nil
	}
	return r.admitFunc(ctx, a)
}
