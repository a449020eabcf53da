package garbagecollector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/skiffdev/skiff/controllers/controller"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/informers"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/scheme"
)

// Name is the controller's name in logs and in the manager.
const Name = "garbagecollector"

// OwnerUIDIndex indexes objects by the UIDs of their owners. The
// collector adds it to the informer of every resource it watches.
const OwnerUIDIndex = "garbagecollector/ownerUID"

// OwnerUIDIndexFunc is the index function behind OwnerUIDIndex.
func OwnerUIDIndexFunc(obj any) ([]string, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	refs := m.GetOwnerReferences()
	uids := make([]string, 0, len(refs))
	for _, r := range refs {
		uids = append(uids, string(r.UID))
	}
	return uids, nil
}

// Resources are the resources the collector watches: everything that can
// own or be owned. Events are left out: they are many, short-lived (they
// expire with a lease) and never owners; namespaces are left out because
// deleting a namespace is the namespace controller's job.
var Resources = []schema.GroupResource{
	{Group: "apps", Resource: "deployments"},
	{Group: "apps", Resource: "replicasets"},
	{Group: "apps", Resource: "daemonsets"},
	{Group: "apps", Resource: "controllerrevisions"},
	{Group: "batch", Resource: "cronjobs"},
	{Group: "batch", Resource: "jobs"},
	{Resource: "pods"},
	{Resource: "services"},
	{Group: "discovery.k8s.io", Resource: "endpointslices"},
	{Group: "coordination.k8s.io", Resource: "leases"},
	{Resource: "nodes"},
}

// informerFor returns the factory's informer for gr.
func informerFor(f *informers.Factory, gr schema.GroupResource) (cache.SharedIndexInformer, error) {
	switch gr.String() {
	case "deployments.apps":
		return f.Deployments(), nil
	case "replicasets.apps":
		return f.ReplicaSets(), nil
	case "daemonsets.apps":
		return f.DaemonSets(), nil
	case "controllerrevisions.apps":
		return f.ControllerRevisions(), nil
	case "cronjobs.batch":
		return f.CronJobs(), nil
	case "jobs.batch":
		return f.Jobs(), nil
	case "pods":
		return f.Pods(), nil
	case "services":
		return f.Services(), nil
	case "endpointslices.discovery.k8s.io":
		return f.EndpointSlices(), nil
	case "leases.coordination.k8s.io":
		return f.Leases(), nil
	case "nodes":
		return f.Nodes(), nil
	}
	return nil, fmt.Errorf("resource %q: no informer", gr)
}

// Config configures the collector.
type Config struct {
	// Workers is how many objects are reconciled at once.
	Workers int
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Workers: 5}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Workers < 1 {
		return fmt.Errorf("workers: must be at least 1, got %d", c.Workers)
	}
	return nil
}

// Controller is the garbage collector.
type Controller struct {
	*controller.Loop
	client *client.Client
	// informers holds one cache per watched resource.
	informers map[schema.GroupResource]cache.SharedIndexInformer
}

// New builds the collector on the informers of deps, adding OwnerUIDIndex
// to them and its event handlers. Start them after New.
func New(deps controller.Deps, cfg Config) (*Controller, error) {
	deps, err := deps.Complete()
	if err = errors.Join(err, cfg.Validate()); err != nil {
		return nil, err
	}
	gc := &Controller{
		client:    deps.Client,
		informers: map[schema.GroupResource]cache.SharedIndexInformer{},
	}
	gc.Loop = controller.NewLoop(Name, cfg.Workers, gc)
	for _, gr := range Resources {
		inf, err := informerFor(deps.Informers, gr)
		if err != nil {
			return nil, err
		}
		if err := inf.AddIndexers(cache.Indexers{OwnerUIDIndex: OwnerUIDIndexFunc}); err != nil {
			return nil, fmt.Errorf("resource %q: add index: %w", gr, err)
		}
		if err := gc.Watch(inf, gc.handler(gr)); err != nil {
			return nil, fmt.Errorf("resource %q: %w", gr, err)
		}
		gc.informers[gr] = inf
	}
	return gc, nil
}

// objectKey names an object of any watched resource in the queue:
// "replicasets.apps/default/web-1", or "nodes/n1" when cluster-scoped.
func objectKey(gr schema.GroupResource, namespace, name string) string {
	if namespace == "" {
		return gr.String() + "/" + name
	}
	return gr.String() + "/" + namespace + "/" + name
}

// parseKey splits an objectKey into its resource and its cache key.
func parseKey(key string) (schema.GroupResource, string, error) {
	grs, rest, ok := strings.Cut(key, "/")
	if !ok || rest == "" {
		return schema.GroupResource{}, "", fmt.Errorf("key %q: want resource/namespace/name", key)
	}
	return schema.ParseGroupResource(grs), rest, nil
}

// handler enqueues, for every change to an object of gr: the object
// itself when it has owners or is being deleted; its dependents when it
// is being deleted or gone (their owner may now be dangling); and its
// owners when it is being deleted, gone, or changed its owner references
// (a foreground owner may be waiting for it).
func (gc *Controller) handler(gr schema.GroupResource) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if m, err := meta.Accessor(obj); err == nil {
				gc.enqueueChanged(gr, nil, m)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			oldM, err1 := meta.Accessor(oldObj)
			newM, err2 := meta.Accessor(newObj)
			if err1 == nil && err2 == nil {
				gc.enqueueChanged(gr, oldM, newM)
			}
		},
		DeleteFunc: func(obj any) {
			m, ok := controller.Unwrap[metav1.Object](obj)
			if !ok {
				return
			}
			gc.enqueueDependents(m.GetUID())
			gc.enqueueOwners(m)
		},
	}
}

func (gc *Controller) enqueueChanged(gr schema.GroupResource, oldM, m metav1.Object) {
	deleting := m.GetDeletionTimestamp() != nil
	if deleting || len(m.GetOwnerReferences()) > 0 {
		gc.Queue().Add(objectKey(gr, m.GetNamespace(), m.GetName()))
	}
	if deleting {
		gc.enqueueDependents(m.GetUID())
		gc.enqueueOwners(m)
	}
	if oldM != nil && !slices.EqualFunc(oldM.GetOwnerReferences(), m.GetOwnerReferences(), sameRef) {
		gc.enqueueOwners(oldM)
	}
}

func sameRef(a, b metav1.OwnerReference) bool {
	return a.UID == b.UID && blocks(a) == blocks(b)
}

func blocks(r metav1.OwnerReference) bool {
	return r.BlockOwnerDeletion != nil && *r.BlockOwnerDeletion
}

// enqueueDependents enqueues every watched object that names uid as an
// owner.
func (gc *Controller) enqueueDependents(uid types.UID) {
	for _, d := range gc.dependents(uid) {
		gc.Queue().Add(objectKey(d.gr, d.m.GetNamespace(), d.m.GetName()))
	}
}

// enqueueOwners enqueues the owners m names that are of a watched
// resource.
func (gc *Controller) enqueueOwners(m metav1.Object) {
	for _, ref := range m.GetOwnerReferences() {
		if info, ok := ownerResource(ref); ok {
			if _, watched := gc.informers[info.GroupResource()]; watched {
				gc.Queue().Add(objectKey(info.GroupResource(), ownerNamespace(info, m), ref.Name))
			}
		}
	}
}

// dependent is a cached object that names some owner.
type dependent struct {
	gr  schema.GroupResource
	obj runtime.Object
	m   metav1.Object
}

// dependents returns the cached objects that name uid as an owner, from
// the OwnerUIDIndex of every watched resource.
func (gc *Controller) dependents(uid types.UID) []dependent {
	var out []dependent
	for gr, inf := range gc.informers {
		objs, err := inf.GetIndexer().ByIndex(OwnerUIDIndex, string(uid))
		if err != nil {
			continue
		}
		for _, o := range objs {
			ro, ok := o.(runtime.Object)
			if !ok {
				continue
			}
			if m, err := meta.Accessor(o); err == nil {
				out = append(out, dependent{gr: gr, obj: ro, m: m})
			}
		}
	}
	return out
}

// ownerResource finds the resource of the kind an owner reference names.
func ownerResource(ref metav1.OwnerReference) (*scheme.ResourceInfo, bool) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return nil, false
	}
	return scheme.ForKind(gv.WithKind(ref.Kind))
}

// ownerNamespace is where an owner of the dependent m lives: in m's
// namespace, or nowhere when the owner's kind is cluster-scoped.
func ownerNamespace(info *scheme.ResourceInfo, m metav1.Object) string {
	if info.Namespaced {
		return m.GetNamespace()
	}
	return ""
}

// Reconcile handles the object named by key as an owner being deleted
// and as a dependent; see the package documentation.
func (gc *Controller) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	gr, cacheKey, err := parseKey(key)
	if err != nil {
		return controller.Result{}, nil // a bad key never becomes good
	}
	inf, ok := gc.informers[gr]
	if !ok {
		return controller.Result{}, nil
	}
	item, exists, err := inf.GetIndexer().GetByKey(cacheKey)
	if err != nil || !exists {
		// Gone: its dependents were enqueued by the delete handler.
		return controller.Result{}, err
	}
	obj := item.(runtime.Object)
	m, err := meta.Accessor(obj)
	if err != nil {
		return controller.Result{}, nil
	}
	ctx, _ = logging.With(ctx, "object", key)

	if m.GetDeletionTimestamp() != nil {
		finalizers := m.GetFinalizers()
		switch {
		case slices.Contains(finalizers, metav1.FinalizerOrphanDependents):
			return controller.Result{}, gc.orphanDependents(ctx, gr, m)
		case slices.Contains(finalizers, metav1.FinalizerDeleteDependents):
			if err := gc.deleteDependentsInForeground(ctx, gr, m); err != nil {
				return controller.Result{}, err
			}
		}
	}
	return controller.Result{}, gc.checkOwners(ctx, gr, m)
}

// orphanDependents removes the owner's reference from each dependent,
// then the owner's "orphan" finalizer.
func (gc *Controller) orphanDependents(ctx context.Context, gr schema.GroupResource, owner metav1.Object) error {
	for _, d := range gc.dependents(owner.GetUID()) {
		if err := gc.removeOwnerRefs(ctx, d.gr, d.m, map[types.UID]bool{owner.GetUID(): true}); err != nil {
			return err
		}
	}
	if err := gc.removeFinalizer(ctx, gr, owner, metav1.FinalizerOrphanDependents); err != nil {
		return err
	}
	logging.From(ctx).Info("dependents orphaned")
	return nil
}

// deleteDependentsInForeground has every dependent of the owner
// reconciled (checkOwners deletes them, since their owner is waiting), and
// removes the "foregroundDeletion" finalizer once no dependent blocks the
// owner's deletion any more.
func (gc *Controller) deleteDependentsInForeground(ctx context.Context, gr schema.GroupResource, owner metav1.Object) error {
	blocking := 0
	for _, d := range gc.dependents(owner.GetUID()) {
		gc.Queue().Add(objectKey(d.gr, d.m.GetNamespace(), d.m.GetName()))
		for _, ref := range d.m.GetOwnerReferences() {
			if ref.UID == owner.GetUID() && blocks(ref) {
				blocking++
				break
			}
		}
	}
	if blocking > 0 {
		// Their deletion (or release) enqueues this owner again.
		return nil
	}
	if err := gc.removeFinalizer(ctx, gr, owner, metav1.FinalizerDeleteDependents); err != nil {
		return err
	}
	logging.From(ctx).Info("dependents deleted")
	return nil
}

// ownerState is what an owner reference points at.
type ownerState int

const (
	solid    ownerState = iota // exists, and is not waiting for its dependents
	dangling                   // gone, or replaced by an object with another UID
	waiting                    // being deleted in the foreground
)

// checkOwners deletes the dependent m when none of its owners is solid,
// and otherwise drops its references to owners that are not.
func (gc *Controller) checkOwners(ctx context.Context, gr schema.GroupResource, m metav1.Object) error {
	refs := m.GetOwnerReferences()
	if len(refs) == 0 {
		return nil
	}
	notSolid := map[types.UID]bool{}
	solidOwners, blockedWaiting := 0, false
	for _, ref := range refs {
		state, err := gc.ownerState(ctx, m, ref)
		if err != nil {
			return err
		}
		switch state {
		case solid:
			solidOwners++
		case dangling:
			notSolid[ref.UID] = true
		case waiting:
			notSolid[ref.UID] = true
			blockedWaiting = blockedWaiting || blocks(ref)
		}
	}
	switch {
	case len(notSolid) == 0:
		return nil
	case solidOwners > 0:
		return gc.removeOwnerRefs(ctx, gr, m, notSolid)
	}
	policy := metav1.DeletePropagationBackground
	if blockedWaiting {
		policy = metav1.DeletePropagationForeground
	}
	if m.GetDeletionTimestamp() != nil {
		// Already going, under the policy it was deleted with.
		return nil
	}
	uc, err := gc.client.Untyped(gr, m.GetNamespace())
	if err != nil {
		return err
	}
	uid := m.GetUID()
	err = uc.Delete(ctx, m.GetName(), metav1.DeleteOptions{
		PropagationPolicy: &policy,
		Preconditions:     &metav1.Preconditions{UID: &uid},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		// Gone, or replaced by another object of the same name (the
		// UID precondition failed): that one is reconciled on its own.
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete %s %q in namespace %q: %w", gr, m.GetName(), m.GetNamespace(), err)
	}
	logging.From(ctx).Info("dependent deleted", "propagationPolicy", policy)
	return nil
}

// ownerState resolves one owner reference of the dependent m, from the
// cache when it confirms the owner, and otherwise from the API server: a
// cache may not have seen an owner that was just created.
func (gc *Controller) ownerState(ctx context.Context, m metav1.Object, ref metav1.OwnerReference) (ownerState, error) {
	info, ok := ownerResource(ref)
	if !ok {
		// A kind Skiff does not serve: it cannot be verified, so it is
		// never taken for gone.
		return solid, nil
	}
	gr, ns := info.GroupResource(), ownerNamespace(info, m)
	if inf, ok := gc.informers[gr]; ok {
		cacheKey := ref.Name
		if ns != "" {
			cacheKey = ns + "/" + ref.Name
		}
		if item, exists, _ := inf.GetIndexer().GetByKey(cacheKey); exists {
			if om, err := meta.Accessor(item); err == nil && om.GetUID() == ref.UID {
				return stateOf(om), nil
			}
		}
	}
	uc, err := gc.client.Untyped(gr, ns)
	if err != nil {
		return solid, nil
	}
	obj, err := uc.Get(ctx, ref.Name)
	if apierrors.IsNotFound(err) {
		return dangling, nil
	}
	if err != nil {
		return solid, fmt.Errorf("get owner %s %q in namespace %q: %w", gr, ref.Name, ns, err)
	}
	om, err := meta.Accessor(obj)
	if err != nil || om.GetUID() != ref.UID {
		return dangling, nil
	}
	return stateOf(om), nil
}

func stateOf(owner metav1.Object) ownerState {
	if owner.GetDeletionTimestamp() != nil && slices.Contains(owner.GetFinalizers(), metav1.FinalizerDeleteDependents) {
		return waiting
	}
	return solid
}

// removeOwnerRefs drops m's references to the given owner UIDs with a
// merge patch conditional on m's resourceVersion.
func (gc *Controller) removeOwnerRefs(ctx context.Context, gr schema.GroupResource, m metav1.Object, uids map[types.UID]bool) error {
	refs := slices.DeleteFunc(slices.Clone(m.GetOwnerReferences()), func(r metav1.OwnerReference) bool { return uids[r.UID] })
	if len(refs) == len(m.GetOwnerReferences()) {
		return nil
	}
	if err := gc.patchMetadata(ctx, gr, m, map[string]any{"ownerReferences": refs}); err != nil {
		return fmt.Errorf("remove owner references from %s %q in namespace %q: %w", gr, m.GetName(), m.GetNamespace(), err)
	}
	logging.From(ctx).Info("owner references removed", "dependent", objectKey(gr, m.GetNamespace(), m.GetName()))
	return nil
}

// removeFinalizer drops one finalizer from m, conditional on m's
// resourceVersion.
func (gc *Controller) removeFinalizer(ctx context.Context, gr schema.GroupResource, m metav1.Object, finalizer string) error {
	fs := slices.DeleteFunc(slices.Clone(m.GetFinalizers()), func(f string) bool { return f == finalizer })
	if len(fs) == len(m.GetFinalizers()) {
		return nil
	}
	if err := gc.patchMetadata(ctx, gr, m, map[string]any{"finalizers": fs}); err != nil {
		return fmt.Errorf("remove finalizer %q from %s %q in namespace %q: %w", finalizer, gr, m.GetName(), m.GetNamespace(), err)
	}
	return nil
}

// patchMetadata merge-patches fields of m's metadata. The patch carries
// m's resourceVersion, so it fails with a conflict (and is retried from
// fresh data) when m changed since it was read. An object that is gone
// needs no patch.
func (gc *Controller) patchMetadata(ctx context.Context, gr schema.GroupResource, m metav1.Object, fields map[string]any) error {
	md := map[string]any{"resourceVersion": m.GetResourceVersion()}
	for k, v := range fields {
		md[k] = v
	}
	data, err := json.Marshal(map[string]any{"metadata": md})
	if err != nil {
		return err
	}
	uc, err := gc.client.Untyped(gr, m.GetNamespace())
	if err != nil {
		return err
	}
	_, err = uc.Patch(ctx, m.GetName(), types.MergePatchType, data)
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
