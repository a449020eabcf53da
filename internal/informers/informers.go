// Package informers gives every component the same shared, indexed caches
// of API objects, built from client-go's cache package over the Skiff
// client.
//
// An informer lists a resource once, then watches it, and keeps an
// in-memory copy that handlers and listers read without asking the API
// server. client-go's reflector does the hard parts: it resumes a watch
// that ended from the last resourceVersion it saw, lists again when the
// server answers 410 Gone, and backs off while the server is unreachable.
// This package only wires it to internal/client and adds the indexes Skiff
// components look objects up by.
//
// A component uses a Factory like this, in this order:
//
//  1. NewFactory(c, resync) once per process (or once per set of list
//     options: a kubelet watches only its own node's pods).
//  2. Ask for the informers it needs (Pods, Nodes, ...) and add event
//     handlers to them. Asking twice returns the same informer.
//  3. Start(ctx): every informer asked for so far begins to list and watch.
//  4. WaitForCacheSync(ctx) before reading the caches or starting workers.
//  5. Cancel ctx to stop, then Wait for the informers to return.
//
// Objects in the caches are shared: never modify them, DeepCopy first.
package informers

import (
	"context"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"

	"github.com/skiffdev/skiff/internal/client"
)

const (
	// LabelIndex indexes objects by each of their labels; the index value
	// of label key k with value v is LabelIndexValue(k, v) ("k=v"). Every
	// informer of a Factory has it.
	LabelIndex = "label"
	// NodeNameIndex indexes pods by spec.nodeName; pods not yet
	// scheduled have the value "". Only the pod informer has it.
	NodeNameIndex = "spec.nodeName"
)

// LabelIndexValue is the LabelIndex value for label key=value.
func LabelIndexValue(key, value string) string { return key + "=" + value }

// LabelIndexFunc is the index function behind LabelIndex.
func LabelIndexFunc(obj any) ([]string, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	values := make([]string, 0, len(m.GetLabels()))
	for k, v := range m.GetLabels() {
		values = append(values, LabelIndexValue(k, v))
	}
	return values, nil
}

// NodeNameIndexFunc is the index function behind NodeNameIndex.
func NodeNameIndexFunc(obj any) ([]string, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, nil
	}
	return []string{pod.Spec.NodeName}, nil
}

// Option changes what a Factory's informers watch.
type Option func(*Factory)

// WithNamespace limits every informer of the factory to one namespace.
// Cluster-scoped resources ignore it.
func WithNamespace(namespace string) Option {
	return func(f *Factory) { f.namespace = namespace }
}

// WithTweakListOptions adjusts the options of every list and watch the
// factory's informers make, for example to add a field selector. It
// applies to every resource, so a factory with a pod-only selector should
// be asked for pods only.
func WithTweakListOptions(tweak func(*metav1.ListOptions)) Option {
	return func(f *Factory) { f.tweak = tweak }
}

// Factory creates shared informers, one per resource type.
type Factory struct {
	client    *client.Client
	resync    time.Duration
	namespace string
	tweak     func(*metav1.ListOptions)

	// mu guards informers and started.
	mu        sync.Mutex
	informers map[schema.GroupResource]cache.SharedIndexInformer
	started   map[schema.GroupResource]bool

	// wg counts the informers that are running.
	wg sync.WaitGroup
}

// NewFactory returns a factory whose informers read through c. resync is
// how often every handler is handed every cached object again as an
// update, the safety net of level-based controllers; zero disables it.
func NewFactory(c *client.Client, resync time.Duration, opts ...Option) *Factory {
	f := &Factory{
		client:    c,
		resync:    resync,
		informers: map[schema.GroupResource]cache.SharedIndexInformer{},
		started:   map[schema.GroupResource]bool{},
	}
	for _, opt := range opts {
		opt(f)
	}
	return f
}

// Pods returns the shared pod informer, which also has NodeNameIndex.
func (f *Factory) Pods() cache.SharedIndexInformer {
	return informerFor(f, cache.Indexers{NodeNameIndex: NodeNameIndexFunc},
		client.Resource[*corev1.Pod, *corev1.PodList])
}

// Nodes returns the shared node informer.
func (f *Factory) Nodes() cache.SharedIndexInformer {
	return informerFor(f, nil, client.Resource[*corev1.Node, *corev1.NodeList])
}

// Namespaces returns the shared namespace informer.
func (f *Factory) Namespaces() cache.SharedIndexInformer {
	return informerFor(f, nil, client.Resource[*corev1.Namespace, *corev1.NamespaceList])
}

// Services returns the shared service informer.
func (f *Factory) Services() cache.SharedIndexInformer {
	return informerFor(f, nil, client.Resource[*corev1.Service, *corev1.ServiceList])
}

// ServiceAccounts returns the shared serviceaccount informer.
func (f *Factory) ServiceAccounts() cache.SharedIndexInformer {
	return informerFor(f, nil, client.Resource[*corev1.ServiceAccount, *corev1.ServiceAccountList])
}

// Deployments returns the shared deployment informer.
func (f *Factory) Deployments() cache.SharedIndexInformer {
	return informerFor(f, nil, client.Resource[*appsv1.Deployment, *appsv1.DeploymentList])
}

// ReplicaSets returns the shared replicaset informer.
func (f *Factory) ReplicaSets() cache.SharedIndexInformer {
	return informerFor(f, nil, client.Resource[*appsv1.ReplicaSet, *appsv1.ReplicaSetList])
}

// DaemonSets returns the shared daemonset informer.
func (f *Factory) DaemonSets() cache.SharedIndexInformer {
	return informerFor(f, nil, client.Resource[*appsv1.DaemonSet, *appsv1.DaemonSetList])
}

// ControllerRevisions returns the shared controllerrevision informer.
func (f *Factory) ControllerRevisions() cache.SharedIndexInformer {
	return informerFor(f, nil, client.Resource[*appsv1.ControllerRevision, *appsv1.ControllerRevisionList])
}

// Jobs returns the shared job informer.
func (f *Factory) Jobs() cache.SharedIndexInformer {
	return informerFor(f, nil, client.Resource[*batchv1.Job, *batchv1.JobList])
}

// CronJobs returns the shared cronjob informer.
func (f *Factory) CronJobs() cache.SharedIndexInformer {
	return informerFor(f, nil, client.Resource[*batchv1.CronJob, *batchv1.CronJobList])
}

// EndpointSlices returns the shared endpointslice informer.
func (f *Factory) EndpointSlices() cache.SharedIndexInformer {
	return informerFor(f, nil, client.Resource[*discoveryv1.EndpointSlice, *discoveryv1.EndpointSliceList])
}

// Leases returns the shared lease informer.
func (f *Factory) Leases() cache.SharedIndexInformer {
	return informerFor(f, nil, client.Resource[*coordinationv1.Lease, *coordinationv1.LeaseList])
}

// Events returns the shared event informer.
func (f *Factory) Events() cache.SharedIndexInformer {
	return informerFor(f, nil, client.Resource[*corev1.Event, *corev1.EventList])
}

// informerFor returns the factory's informer for the resource of newClient,
// creating it on first use with the common indexes plus extra.
func informerFor[T, L runtime.Object](f *Factory, extra cache.Indexers,
	newClient func(*client.Client, string) *client.ResourceClient[T, L]) cache.SharedIndexInformer {
	rc := newClient(f.client, f.namespace)
	gr := rc.Untyped().Resource().GroupResource()

	f.mu.Lock()
	defer f.mu.Unlock()
	if inf, ok := f.informers[gr]; ok {
		return inf
	}
	indexers := cache.Indexers{
		cache.NamespaceIndex: cache.MetaNamespaceIndexFunc,
		LabelIndex:           LabelIndexFunc,
	}
	for name, fn := range extra {
		indexers[name] = fn
	}
	inf := cache.NewSharedIndexInformerWithOptions(rc.ListWatch(f.tweak), rc.Untyped().Resource().New(),
		cache.SharedIndexInformerOptions{
			ResyncPeriod:      f.resync,
			Indexers:          indexers,
			ObjectDescription: gr.String(),
		})
	f.informers[gr] = inf
	return inf
}

// Start starts every informer asked for so far that is not running yet.
// They run until ctx ends. Start may be called again after asking for
// more informers.
func (f *Factory) Start(ctx context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for gr, inf := range f.informers {
		if f.started[gr] {
			continue
		}
		f.started[gr] = true
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			inf.RunWithContext(ctx)
		}()
	}
}

// WaitForCacheSync waits until every started informer has listed its
// resource once and reports whether they all did before ctx ended.
func (f *Factory) WaitForCacheSync(ctx context.Context) bool {
	f.mu.Lock()
	var synced []cache.InformerSynced
	for gr, inf := range f.informers {
		if f.started[gr] {
			synced = append(synced, inf.HasSynced)
		}
	}
	f.mu.Unlock()
	return cache.WaitForCacheSync(ctx.Done(), synced...)
}

// Wait blocks until every informer started by Start has returned, which
// happens soon after their context ends.
func (f *Factory) Wait() {
	f.wg.Wait()
}
