package kubelet

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/podrefs"
)

// objectKind is a kind of object the kubelet reads for its pods.
type objectKind string

const (
	kindConfigMap objectKind = "configmap"
	kindSecret    objectKind = "secret"
)

// objectRef names one ConfigMap or Secret.
type objectRef struct {
	kind            objectKind
	namespace, name string
}

func (r objectRef) String() string { return string(r.kind) + " " + r.namespace + "/" + r.name }

// podObjectRefs lists the ConfigMaps and Secrets pod refers to (see
// internal/podrefs; image pull secrets are not used by the kubelet).
func podObjectRefs(pod *corev1.Pod) []objectRef {
	var out []objectRef
	for _, n := range podrefs.ConfigMaps(&pod.Spec) {
		out = append(out, objectRef{kindConfigMap, pod.Namespace, n})
	}
	for _, n := range podrefs.Secrets(&pod.Spec) {
		out = append(out, objectRef{kindSecret, pod.Namespace, n})
	}
	return out
}

// objectWatcher keeps the ConfigMaps and Secrets that the node's pods
// refer to, and wakes a pod's worker when one of them changes, appears
// or goes away.
//
// It watches each object on its own — a list and watch with the field
// selector metadata.name=NAME in the object's namespace — for as long as
// some pod registered for it refers to it, as Kubernetes' kubelet does.
// It never lists every ConfigMap or Secret of the cluster: a node has no
// business reading the others, and the Node authorizer refuses it.
//
// A pod's worker registers the pod (register) before it reads the
// objects, and unregisters it when the pod stops or goes; the last pod
// to let go of an object stops its watch.
//
// An immutable object cannot change, only go: once one is seen, its
// watch stops and the copy is kept while pods use it, as Kubernetes'
// kubelet does (a deletion then goes unnoticed until the pods using it
// are gone).
type objectWatcher struct {
	client *client.Client
	// wake asks the worker of a pod to sync.
	wake func(types.UID)
	// ctx bounds every watch.
	ctx context.Context

	// mu guards pods and watches.
	mu sync.Mutex
	// pods holds what each registered pod refers to.
	pods map[types.UID][]objectRef
	// watches holds the watch of every object some registered pod
	// refers to.
	watches map[objectRef]*objectWatch
}

// objectWatch is the watch of one object and the pods that need it.
type objectWatch struct {
	store cache.Store
	// synced is closed once the watch has listed the object for the
	// first time.
	synced <-chan struct{}
	stop   context.CancelFunc
	pods   map[types.UID]struct{}
	// immutable is set once the object was seen immutable and its
	// watch stopped.
	immutable bool
}

func newObjectWatcher(ctx context.Context, c *client.Client, wake func(types.UID)) *objectWatcher {
	return &objectWatcher{client: c, wake: wake, ctx: ctx, pods: map[types.UID][]objectRef{}, watches: map[objectRef]*objectWatch{}}
}

// register records the objects pod refers to now, starting the watches
// that are new and stopping those no pod needs any more. Calling it again
// after the pod changed is how a changed reference is followed.
func (w *objectWatcher) register(pod *corev1.Pod) {
	w.set(pod.UID, podObjectRefs(pod))
}

// unregister forgets what the pod of uid refers to.
func (w *objectWatcher) unregister(uid types.UID) { w.set(uid, nil) }

func (w *objectWatcher) set(uid types.UID, refs []objectRef) {
	w.mu.Lock()
	defer w.mu.Unlock()
	old := w.pods[uid]
	if slices.Equal(old, refs) {
		return
	}
	for _, r := range refs {
		ow := w.watches[r]
		if ow == nil {
			ow = w.start(r)
			w.watches[r] = ow
		}
		ow.pods[uid] = struct{}{}
	}
	for _, r := range old {
		if slices.Contains(refs, r) {
			continue
		}
		if ow := w.watches[r]; ow != nil {
			delete(ow.pods, uid)
			if len(ow.pods) == 0 {
				logging.From(w.ctx).Debug("no pod uses an object any more", "object", r.String())
				ow.stop()
				delete(w.watches, r)
			}
		}
	}
	if len(refs) == 0 {
		delete(w.pods, uid)
	} else {
		w.pods[uid] = refs
	}
}

// start starts the watch of one object; w.mu is held.
func (w *objectWatcher) start(r objectRef) *objectWatch {
	tweak := func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", r.name).String()
	}
	var lw cache.ListerWatcher
	var typ runtime.Object
	switch r.kind {
	case kindConfigMap:
		lw, typ = w.client.ConfigMaps(r.namespace).ListWatch(tweak), &corev1.ConfigMap{}
	default:
		lw, typ = w.client.Secrets(r.namespace).ListWatch(tweak), &corev1.Secret{}
	}
	changed := func(obj any) { w.changed(r, obj) }
	store, ctrl := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: lw,
		ObjectType:    typ,
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    changed,
			UpdateFunc: func(_, obj any) { changed(obj) },
			DeleteFunc: changed,
		},
	})
	ctx, cancel := context.WithCancel(w.ctx)
	logging.From(ctx).Debug("watching an object for the pods", "object", r.String())
	go ctrl.Run(ctx.Done())
	return &objectWatch{store: store, synced: ctrl.HasSyncedChecker().Done(), stop: cancel, pods: map[types.UID]struct{}{}}
}

// changed wakes the workers of the pods that refer to r, which is now
// obj (or was, when obj is a deletion); an immutable obj ends the watch.
func (w *objectWatcher) changed(r objectRef, obj any) {
	w.mu.Lock()
	var uids []types.UID
	if ow := w.watches[r]; ow != nil {
		for uid := range ow.pods {
			uids = append(uids, uid)
		}
		if isImmutable(obj) && !ow.immutable {
			ow.immutable = true
			logging.From(w.ctx).Debug("an object is immutable: its watch stops", "object", r.String())
			ow.stop()
		}
	}
	w.mu.Unlock()
	for _, uid := range uids {
		w.wake(uid)
	}
}

func isImmutable(obj any) bool {
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		return o.Immutable != nil && *o.Immutable
	case *corev1.Secret:
		return o.Immutable != nil && *o.Immutable
	}
	return false
}

// syncWait bounds how long a pod's snapshot waits for the first lists
// of its objects' new watches, all of them together: a watch the API
// server refuses for now (the Node authorizer may not yet know the pod is
// bound here) would otherwise hold up the pod's worker.
const syncWait = 10 * time.Second

// get returns the object r as its watch has it: a NotFound error
// (`configmap "x" not found`, as Kubernetes words it) when it does not
// exist, another error when the watch could not list it before ctx was
// done. r must be registered by some pod.
func (w *objectWatcher) get(ctx context.Context, r objectRef) (runtime.Object, error) {
	w.mu.Lock()
	ow := w.watches[r]
	w.mu.Unlock()
	if ow == nil {
		return nil, fmt.Errorf("%s is not watched: no pod registered for it", r)
	}
	select {
	case <-ow.synced:
	default:
		select {
		case <-ow.synced:
		case <-ctx.Done():
			return nil, fmt.Errorf("could not read %s from the API server yet", r)
		}
	}
	obj, ok, err := ow.store.GetByKey(r.namespace + "/" + r.name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: string(r.kind)}, r.name)
	}
	return obj.(runtime.Object), nil
}

// watched lists the objects watched now, for tests and the README's
// promise that nothing else is.
func (w *objectWatcher) watched() []objectRef {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]objectRef, 0, len(w.watches))
	for r := range w.watches {
		out = append(out, r)
	}
	return out
}

// isWatching reports whether r's watch runs: it is registered and not
// stopped for being immutable.
func (w *objectWatcher) isWatching(r objectRef) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	ow := w.watches[r]
	return ow != nil && !ow.immutable
}

// podObjects are the ConfigMaps and Secrets one pod refers to, as its
// watches had them at one sync. What the env and the volumes of a sync
// are made from comes from one such snapshot.
type podObjects struct {
	objects map[objectRef]runtime.Object
	errs    map[objectRef]error
}

// snapshot reads every object pod refers to, waiting at most syncWait
// in all for the watches that have not listed their object yet.
func (w *objectWatcher) snapshot(ctx context.Context, pod *corev1.Pod) *podObjects {
	ctx, cancel := context.WithTimeout(ctx, syncWait)
	defer cancel()
	o := &podObjects{objects: map[objectRef]runtime.Object{}, errs: map[objectRef]error{}}
	for _, r := range podObjectRefs(pod) {
		obj, err := w.get(ctx, r)
		if err != nil {
			o.errs[r] = err
			continue
		}
		o.objects[r] = obj
	}
	return o
}

// configMap returns the ConfigMap called name in ns, or the error that
// kept it from being read (NotFound when it does not exist).
func (o *podObjects) configMap(ns, name string) (*corev1.ConfigMap, error) {
	r := objectRef{kindConfigMap, ns, name}
	if obj, ok := o.get(r); ok {
		return obj.(*corev1.ConfigMap), nil
	}
	return nil, o.err(r)
}

// secret returns the Secret called name in ns, or the error that kept it
// from being read.
func (o *podObjects) secret(ns, name string) (*corev1.Secret, error) {
	r := objectRef{kindSecret, ns, name}
	if obj, ok := o.get(r); ok {
		return obj.(*corev1.Secret), nil
	}
	return nil, o.err(r)
}

func (o *podObjects) get(r objectRef) (runtime.Object, bool) {
	if o == nil {
		return nil, false
	}
	obj, ok := o.objects[r]
	return obj, ok
}

func (o *podObjects) err(r objectRef) error {
	if o != nil {
		if err, ok := o.errs[r]; ok {
			return err
		}
	}
	return apierrors.NewNotFound(schema.GroupResource{Resource: string(r.kind)}, r.name)
}
