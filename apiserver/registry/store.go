package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiffdev/skiff/apiserver/defaults"
	"github.com/skiffdev/skiff/apiserver/storage"
	"github.com/skiffdev/skiff/apiserver/validation"
	"github.com/skiffdev/skiff/internal/scheme"
)

// Store serves one resource: it applies the generic request steps (see the
// package doc) and the resource's strategy, and keeps the objects in
// storage.
type Store struct {
	info     *scheme.ResourceInfo
	strategy strategy
	storage  *storage.Store
	cache    *storage.Cacher
	registry *Registry
}

// Info describes the store's resource.
func (s *Store) Info() *scheme.ResourceInfo { return s.info }

// Storage is the etcd store underneath, for the maintenance that works on
// stored values as they are (re-encrypting them with a new key).
func (s *Store) Storage() *storage.Store { return s.storage }

func (s *Store) key(namespace, name string) string {
	if !s.info.Namespaced {
		namespace = ""
	}
	return s.storage.Key(namespace, name)
}

// objectKey is key for a request that names an existing object: the name
// (and, for namespaced resources, the namespace) must be given, and may not
// reach outside its own key with "/" or "..".
func (s *Store) objectKey(namespace, name string) (string, error) {
	if name == "" {
		return "", apierrors.NewBadRequest("a resource name is required")
	}
	if s.info.Namespaced && namespace == "" {
		return "", apierrors.NewBadRequest(fmt.Sprintf("a namespace is required for %s", s.info.GroupResource()))
	}
	for _, v := range []string{namespace, name} {
		if msgs := path.IsValidPathSegmentName(v); len(msgs) > 0 {
			return "", apierrors.NewBadRequest(fmt.Sprintf("invalid name %q: %s", v, strings.Join(msgs, "; ")))
		}
	}
	return s.key(namespace, name), nil
}

// invalid wraps validation errors as Kubernetes does:
// `Deployment.apps "web" is invalid: spec.replicas: ...`.
func (s *Store) invalid(name string, errs field.ErrorList) error {
	return apierrors.NewInvalid(s.info.GroupVersionKind().GroupKind(), name, errs)
}

// Create stores a new object in namespace (ignored for cluster-scoped
// resources). It returns the stored object and any warnings.
func (s *Store) Create(ctx context.Context, namespace string, obj runtime.Object, dryRun bool) (runtime.Object, []string, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(err.Error())
	}
	if err := s.checkNamespace(m, namespace); err != nil {
		return nil, nil, err
	}
	if m.GetName() == "" && m.GetGenerateName() != "" {
		m.SetName(m.GetGenerateName() + rand.String(5))
	}

	// Server-owned metadata.
	m.SetUID(uuid.NewUUID())
	m.SetCreationTimestamp(metav1.Now())
	m.SetGeneration(1)
	m.SetResourceVersion("")
	m.SetDeletionTimestamp(nil)
	m.SetDeletionGracePeriodSeconds(nil)
	if !s.strategy.keepStatusOnCreate {
		resetStatus(obj)
	}
	if s.strategy.prepareForCreate != nil {
		s.strategy.prepareForCreate(obj)
	}

	defaults.Default(obj)
	if errs := validation.ValidateObject(obj); len(errs) > 0 {
		return nil, nil, s.invalid(m.GetName(), errs)
	}
	if err := s.registry.admit(ctx, Admission{Resource: s.info.GroupResource(), Object: obj}); err != nil {
		return nil, nil, err
	}
	warnings := validation.Warnings(obj)
	if !s.info.Namespaced {
		if dryRun {
			return obj, warnings, nil
		}
		out, err := s.storage.Create(ctx, s.key("", m.GetName()), m.GetName(), obj)
		return out, warnings, err
	}
	// The namespace must exist and not be terminating. Admission reads the
	// namespace cache, and the create is guarded on the namespace being
	// exactly as admission saw it; if it changed in between (deleted, or
	// marked terminating), admission is repeated against etcd.
	fresh := false
	for {
		guard, err := s.registry.admitNamespace(ctx, s.info, m.GetName(), m.GetNamespace(), fresh)
		if err != nil {
			return nil, nil, err
		}
		if dryRun {
			return obj, warnings, nil
		}
		out, err := s.storage.Create(ctx, s.key(m.GetNamespace(), m.GetName()), m.GetName(), obj, guard)
		if errors.Is(err, storage.ErrGuardChanged) && !fresh {
			fresh = true
			continue
		}
		if errors.Is(err, storage.ErrGuardChanged) {
			// The namespace changed again between a fresh read and
			// the write: a real race with its deletion. Report it as
			// the conflict it is; the client may retry.
			return nil, nil, apierrors.NewConflict(s.info.GroupResource(), m.GetName(),
				fmt.Errorf("namespace %s changed during the request; please try again", m.GetNamespace()))
		}
		return out, warnings, err
	}
}

// checkNamespace makes the object's namespace agree with the request's.
func (s *Store) checkNamespace(m metav1.Object, namespace string) error {
	if !s.info.Namespaced {
		m.SetNamespace("")
		return nil
	}
	switch {
	case m.GetNamespace() == "":
		m.SetNamespace(namespace)
	case namespace != "" && m.GetNamespace() != namespace:
		return apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	if m.GetNamespace() == "" {
		return apierrors.NewBadRequest(fmt.Sprintf("a namespace is required to create %s", s.info.Resource))
	}
	return nil
}

// Cached returns an object from the watch cache, without a read of etcd;
// false when the cache does not hold it. The object is shared: callers
// must not modify it.
func (s *Store) Cached(namespace, name string) (runtime.Object, bool) {
	return s.cache.Get(namespace, name)
}

// Get reads one object from etcd.
func (s *Store) Get(ctx context.Context, namespace, name string) (runtime.Object, error) {
	key, err := s.objectKey(namespace, name)
	if err != nil {
		return nil, err
	}
	return s.storage.Get(ctx, key, name)
}

// ListOptions are the request's list and watch parameters.
type ListOptions struct {
	LabelSelector   string
	FieldSelector   string
	Limit           int64
	Continue        string
	ResourceVersion string
	AllowBookmarks  bool
}

// predicate parses the selectors, refusing fields the resource does not
// offer for selection.
func (s *Store) predicate(opts ListOptions) (storage.Predicate, error) {
	var p storage.Predicate
	var err error
	if opts.LabelSelector != "" {
		if p.Label, err = labels.Parse(opts.LabelSelector); err != nil {
			return p, apierrors.NewBadRequest(fmt.Sprintf("unable to parse requirement: %v", err))
		}
	}
	if opts.FieldSelector != "" {
		if p.Field, err = fields.ParseSelector(opts.FieldSelector); err != nil {
			return p, apierrors.NewBadRequest(fmt.Sprintf("invalid field selector: %v", err))
		}
		_, known := s.strategy.attrFunc()(s.info.New())
		for _, r := range p.Field.Requirements() {
			if _, ok := known[r.Field]; !ok {
				return p, apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s", r.Field))
			}
		}
	}
	return p, nil
}

// List returns the objects of a namespace ("" for all) that the selectors
// pick. resourceVersion "0" is served from the watch cache (fast, possibly
// a moment old); anything else reads etcd, with pagination.
func (s *Store) List(ctx context.Context, namespace string, opts ListOptions) (runtime.Object, error) {
	pred, err := s.predicate(opts)
	if err != nil {
		return nil, err
	}
	if !s.info.Namespaced {
		namespace = ""
	}
	if opts.ResourceVersion == "0" && opts.Continue == "" {
		return s.cache.List(ctx, namespace, pred)
	}
	return s.storage.List(ctx, storage.ListOptions{
		Namespace: namespace, Predicate: pred, Limit: opts.Limit, Continue: opts.Continue,
	})
}

// Watch follows changes from the watch cache.
func (s *Store) Watch(ctx context.Context, namespace string, opts ListOptions) (*storage.Watcher, error) {
	pred, err := s.predicate(opts)
	if err != nil {
		return nil, err
	}
	if s.info.Namespaced && namespace != "" {
		pred = withNamespace(pred, namespace)
	}
	rv, err := storage.ParseResourceVersion(opts.ResourceVersion)
	if err != nil {
		return nil, err
	}
	return s.cache.Watch(ctx, rv, pred, opts.AllowBookmarks)
}

func withNamespace(p storage.Predicate, namespace string) storage.Predicate {
	ns := fields.OneTermEqualSelector("metadata.namespace", namespace)
	if p.Field == nil || p.Field.Empty() {
		p.Field = ns
	} else {
		p.Field = fields.AndSelectors(p.Field, ns)
	}
	return p
}

// Update replaces an object. With status set it is the status subresource:
// only status changes; otherwise everything but status may change.
func (s *Store) Update(ctx context.Context, namespace, name string, obj runtime.Object, status, dryRun bool) (runtime.Object, []string, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(err.Error())
	}
	if err := s.checkNamespace(m, namespace); err != nil {
		return nil, nil, err
	}
	if m.GetName() != name {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", m.GetName(), name))
	}
	var warnings []string
	out, err := s.update(ctx, namespace, name, dryRun, func(current runtime.Object) (runtime.Object, error) {
		// Each try starts again from the request's object: a try that
		// lost a race must not leak into the next.
		prepared, w, err := s.prepareUpdate(ctx, current, obj.DeepCopyObject(), status)
		warnings = w
		return prepared, err
	})
	return out, warnings, err
}

// update runs an update function under compare-and-swap. An object whose
// deletion is no longer held back (last finalizer removed) is removed.
func (s *Store) update(ctx context.Context, namespace, name string, dryRun bool, fn storage.UpdateFunc) (runtime.Object, error) {
	if dryRun {
		current, err := s.Get(ctx, namespace, name)
		if err != nil {
			return nil, err
		}
		return fn(current)
	}
	key, err := s.objectKey(namespace, name)
	if err != nil {
		return nil, err
	}
	out, _, err := s.storage.GuaranteedUpdate(ctx, key, name, nil, fn, s.readyToRemove)
	return out, err
}

// prepareUpdate builds the object to store from the current one and the
// requested one, and validates it.
func (s *Store) prepareUpdate(ctx context.Context, current, obj runtime.Object, status bool) (runtime.Object, []string, error) {
	cm, _ := meta.Accessor(current)
	m, _ := meta.Accessor(obj)
	if rv := m.GetResourceVersion(); rv != "" && rv != cm.GetResourceVersion() {
		return nil, nil, apierrors.NewConflict(s.info.GroupResource(), m.GetName(),
			fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again"))
	}
	if status {
		// The status subresource changes status and nothing else.
		next := current.DeepCopyObject()
		copyStatus(next, obj)
		obj = next
		m, _ = meta.Accessor(obj)
	} else {
		// Status belongs to the controllers and kubelets that report it;
		// the main resource never changes it.
		copyStatus(obj, current)
	}
	// Server-owned metadata always comes from the stored object.
	m.SetUID(cm.GetUID())
	m.SetCreationTimestamp(cm.GetCreationTimestamp())
	m.SetDeletionTimestamp(cm.GetDeletionTimestamp())
	m.SetDeletionGracePeriodSeconds(cm.GetDeletionGracePeriodSeconds())
	m.SetResourceVersion(cm.GetResourceVersion())
	m.SetGeneration(cm.GetGeneration())

	if !status && s.strategy.prepareForUpdate != nil {
		s.strategy.prepareForUpdate(obj, current)
	}
	defaults.Default(obj)
	if !status && specChanged(current, obj) {
		m.SetGeneration(cm.GetGeneration() + 1)
	}
	var errs field.ErrorList
	if status {
		errs = validation.ValidateStatusUpdate(obj, current)
	} else {
		errs = validation.ValidateObjectUpdate(obj, current)
	}
	if len(errs) > 0 {
		return nil, nil, s.invalid(m.GetName(), errs)
	}
	a := Admission{Resource: s.info.GroupResource(), Object: obj, Old: current}
	if status {
		a.Subresource = "status"
	}
	if err := s.registry.admit(ctx, a); err != nil {
		return nil, nil, err
	}
	if status {
		// Warnings are about what a user wrote in the spec; a kubelet's
		// status report would only repeat them.
		return obj, nil, nil
	}
	return obj, validation.Warnings(obj), nil
}

// Patch applies a JSON merge, strategic merge or JSON patch to the current
// object and stores the result as an update. The patch is applied afresh
// to the current object each time a compare-and-swap loses a race.
func (s *Store) Patch(ctx context.Context, namespace, name string, pt types.PatchType, patch []byte, status, dryRun bool) (runtime.Object, []string, error) {
	var warnings []string
	out, err := s.update(ctx, namespace, name, dryRun, func(current runtime.Object) (runtime.Object, error) {
		patched, err := s.applyPatch(current, pt, patch)
		if err != nil {
			return nil, err
		}
		m, _ := meta.Accessor(patched)
		if m.GetName() != name {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", m.GetName(), name))
		}
		obj, w, err := s.prepareUpdate(ctx, current, patched, status)
		warnings = w
		return obj, err
	})
	return out, warnings, err
}

// applyPatch returns current with the patch applied, decoded strictly.
func (s *Store) applyPatch(current runtime.Object, pt types.PatchType, patch []byte) (runtime.Object, error) {
	doc, err := json.Marshal(current)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	patched, err := ApplyPatch(doc, pt, patch, s.info.New())
	if err != nil {
		return nil, err
	}
	obj, err := scheme.DecodeStrictJSON(patched, s.info.New())
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: %v", s.info.Kind, s.info.Version, s.info.Kind, err))
	}
	// A patch may rewrite apiVersion and kind; the result must still be
	// the resource's own type.
	if reflect.TypeOf(obj) != reflect.TypeOf(current) {
		gvk := obj.GetObjectKind().GroupVersionKind()
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the patch turns the %s into a %s (%s); kind and apiVersion may not change", s.info.Kind, gvk.Kind, gvk.GroupVersion()))
	}
	return obj, nil
}

// MaxJSONPatchOperations bounds the operations of one JSON patch, as in
// Kubernetes.
const MaxJSONPatchOperations = 10000

func init() {
	// Bound what "copy" operations may add to a document, so that a short
	// patch cannot make the server build a huge one. The library keeps
	// this limit in a package variable.
	jsonpatch.AccumulatedCopySizeLimit = 3 * 1024 * 1024
}

// ApplyPatch applies a patch of type pt to a JSON document. dataStruct is
// an empty object of the document's type; strategic merge patches read
// their merge keys from its struct tags.
func ApplyPatch(doc []byte, pt types.PatchType, patch []byte, dataStruct runtime.Object) ([]byte, error) {
	var out []byte
	var err error
	switch pt {
	case types.MergePatchType:
		out, err = jsonpatch.MergePatch(doc, patch)
	case types.StrategicMergePatchType:
		out, err = strategicpatch.StrategicMergePatch(doc, patch, dataStruct)
	case types.JSONPatchType:
		var p jsonpatch.Patch
		if p, err = jsonpatch.DecodePatch(patch); err == nil {
			if len(p) > MaxJSONPatchOperations {
				return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("the JSON patch has %d operations, the limit is %d", len(p), MaxJSONPatchOperations))
			}
			out, err = p.Apply(doc)
		}
	default:
		return nil, &apierrors.StatusError{ErrStatus: metav1.Status{
			Status: metav1.StatusFailure, Code: 415, Reason: metav1.StatusReasonUnsupportedMediaType,
			Message: fmt.Sprintf("the patch type %q is not supported; use %q, %q or %q", pt, types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType),
		}}
	}
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the patch could not be applied: %v", err))
	}
	return out, nil
}

// Delete marks an object deleted and removes it once nothing holds it
// back. It returns the object as last seen, and whether it is gone from
// storage (false while finalizers or a grace period keep it).
func (s *Store) Delete(ctx context.Context, namespace, name string, opts *metav1.DeleteOptions) (runtime.Object, bool, error) {
	if opts == nil {
		opts = &metav1.DeleteOptions{}
	}
	if s.info.Resource == "namespaces" && slices.Contains(SystemNamespaces, name) {
		return nil, false, apierrors.NewForbidden(s.info.GroupResource(), name, errors.New("this namespace may not be deleted"))
	}
	var pre *storage.Preconditions
	if p := opts.Preconditions; p != nil {
		pre = &storage.Preconditions{UID: p.UID, ResourceVersion: p.ResourceVersion}
	}
	dryRun := len(opts.DryRun) > 0
	mark := func(current runtime.Object) (runtime.Object, error) {
		if err := s.validatePropagation(opts); err != nil {
			return nil, err
		}
		obj := current.DeepCopyObject()
		m, _ := meta.Accessor(obj)
		m.SetFinalizers(finalizersFor(m.GetFinalizers(), opts))
		var grace int64
		if s.strategy.gracePeriod != nil {
			grace = s.strategy.gracePeriod(obj, opts)
		}
		now := time.Now()
		deadline := metav1.NewTime(now.Add(time.Duration(grace) * time.Second))
		switch old := m.GetDeletionTimestamp(); {
		case old == nil:
			m.SetDeletionTimestamp(&deadline)
			m.SetDeletionGracePeriodSeconds(&grace)
		case m.GetDeletionGracePeriodSeconds() != nil && grace < *m.GetDeletionGracePeriodSeconds():
			// A second delete may shorten the grace period, never lengthen it.
			if deadline.Before(old) {
				m.SetDeletionTimestamp(&deadline)
			}
			m.SetDeletionGracePeriodSeconds(&grace)
		}
		if s.strategy.onDelete != nil {
			s.strategy.onDelete(obj)
		}
		return obj, nil
	}
	if dryRun {
		current, err := s.Get(ctx, namespace, name)
		if err != nil {
			return nil, false, err
		}
		if err := pre.Check(s.info.GroupResource(), name, current); err != nil {
			return nil, false, err
		}
		obj, err := mark(current)
		return obj, err == nil && s.readyToRemove(obj), err
	}
	key, err := s.objectKey(namespace, name)
	if err != nil {
		return nil, false, err
	}
	return s.storage.GuaranteedUpdate(ctx, key, name, pre, mark, s.readyToRemove)
}

// readyToRemove reports whether a deleted object may leave storage: it has
// a deletionTimestamp, no finalizers, no grace period left to wait for, and
// nothing resource-specific holding it.
func (s *Store) readyToRemove(obj runtime.Object) bool {
	m, err := meta.Accessor(obj)
	if err != nil || m.GetDeletionTimestamp() == nil || len(m.GetFinalizers()) > 0 {
		return false
	}
	if g := m.GetDeletionGracePeriodSeconds(); g != nil && *g > 0 {
		return false
	}
	return s.strategy.holdsDeletion == nil || !s.strategy.holdsDeletion(obj)
}

func (s *Store) validatePropagation(opts *metav1.DeleteOptions) error {
	if opts.PropagationPolicy == nil {
		return nil
	}
	switch *opts.PropagationPolicy {
	case metav1.DeletePropagationBackground, metav1.DeletePropagationForeground, metav1.DeletePropagationOrphan:
	default:
		return apierrors.NewBadRequest(fmt.Sprintf("propagationPolicy: Unsupported value: %q: supported values: \"Foreground\", \"Background\", \"Orphan\"", *opts.PropagationPolicy))
	}
	if opts.OrphanDependents != nil {
		return apierrors.NewBadRequest("propagationPolicy: Invalid value: orphanDependents and propagationPolicy may not both be set")
	}
	return nil
}

// finalizersFor records the deletion's propagation policy as Kubernetes
// does, for the garbage collector: Orphan adds the "orphan" finalizer,
// Foreground adds "foregroundDeletion", Background adds nothing.
func finalizersFor(current []string, opts *metav1.DeleteOptions) []string {
	policy := metav1.DeletePropagationBackground
	if opts.PropagationPolicy != nil {
		policy = *opts.PropagationPolicy
	} else if opts.OrphanDependents != nil && *opts.OrphanDependents {
		policy = metav1.DeletePropagationOrphan
	}
	add := ""
	switch policy {
	case metav1.DeletePropagationOrphan:
		add = metav1.FinalizerOrphanDependents
	case metav1.DeletePropagationForeground:
		add = metav1.FinalizerDeleteDependents
	}
	if add == "" {
		return current
	}
	for _, f := range current {
		if f == add {
			return current
		}
	}
	return append(current, add)
}
