package endpointslice

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/skiffdev/skiff/controllers/controller"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/events"
	"github.com/skiffdev/skiff/internal/informers"
	"github.com/skiffdev/skiff/internal/logging"
)

// Name is the controller's name in logs, in the queue and in the manager.
const Name = "endpointslice"

// Config configures the controller.
type Config struct {
	// Workers is how many Services are reconciled at once.
	Workers int
	// MaxEndpointsPerSlice caps the endpoints of one slice (Kubernetes:
	// 100). Smaller slices make each update that every proxy receives
	// smaller.
	MaxEndpointsPerSlice int
	// TrackerTTL is how long a Reconcile waits for the slice cache to
	// show the controller's own writes before it trusts the cache again.
	TrackerTTL time.Duration
	// WriteTimeout bounds each slice write. Writes also end with the
	// controller's context (its leadership).
	WriteTimeout time.Duration
}

// DefaultConfig returns Kubernetes' defaults where it has them.
func DefaultConfig() Config {
	return Config{
		Workers:              5,
		MaxEndpointsPerSlice: DefaultMaxEndpointsPerSlice,
		TrackerTTL:           time.Minute,
		WriteTimeout:         30 * time.Second,
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers: must be at least 1, got %d", c.Workers))
	}
	// The API server refuses slices of more than 1000 endpoints.
	if c.MaxEndpointsPerSlice < 1 || c.MaxEndpointsPerSlice > 1000 {
		errs = append(errs, fmt.Errorf("max endpoints per slice: must be between 1 and 1000, got %d", c.MaxEndpointsPerSlice))
	}
	if c.TrackerTTL <= 0 {
		errs = append(errs, fmt.Errorf("tracker TTL: must be positive, got %v", c.TrackerTTL))
	}
	if c.WriteTimeout <= 0 {
		errs = append(errs, fmt.Errorf("write timeout: must be positive, got %v", c.WriteTimeout))
	}
	return errors.Join(errs...)
}

// Controller is the EndpointSlice controller. Build it with New; Run it.
type Controller struct {
	*controller.Loop
	cfg      Config
	client   *client.Client
	recorder events.EventRecorder
	services cache.Indexer
	pods     cache.Indexer
	slices   cache.Indexer
	tracker  *Tracker
}

// New builds the controller and adds its event handlers to the Service,
// pod and EndpointSlice informers of deps. Start them after New.
func New(deps controller.Deps, cfg Config) (*Controller, error) {
	deps, err := deps.Complete()
	if err = errors.Join(err, cfg.Validate()); err != nil {
		return nil, err
	}
	svcInf, podInf, sliceInf := deps.Informers.Services(), deps.Informers.Pods(), deps.Informers.EndpointSlices()
	c := &Controller{
		cfg:      cfg,
		client:   deps.Client,
		recorder: deps.Recorder,
		services: svcInf.GetIndexer(),
		pods:     podInf.GetIndexer(),
		slices:   sliceInf.GetIndexer(),
		tracker:  NewTracker(cfg.TrackerTTL, deps.Clock),
	}
	c.Loop = controller.NewLoop(Name, cfg.Workers, c)
	// Pod events look up their Services by selector pair rather than
	// trying every Service of the namespace.
	if err := svcInf.AddIndexers(cache.Indexers{selectorIndex: selectorIndexFunc}); err != nil {
		return nil, fmt.Errorf("service informer: %w", err)
	}
	err = errors.Join(
		c.Watch(svcInf, controller.EnqueueHandler(c.Queue())),
		c.Watch(podInf, cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.enqueueServicesOf(obj) },
			UpdateFunc: c.updatePod,
			DeleteFunc: func(obj any) { c.enqueueServicesOf(obj) },
		}),
		c.Watch(sliceInf, cache.ResourceEventHandlerFuncs{
			AddFunc: func(obj any) { c.enqueueSliceService(obj) },
			UpdateFunc: func(oldObj, newObj any) {
				// A resync changes nothing: the Services resync themselves.
				if oldObj.(*discoveryv1.EndpointSlice).ResourceVersion != newObj.(*discoveryv1.EndpointSlice).ResourceVersion {
					c.enqueueSliceService(newObj)
				}
			},
			DeleteFunc: c.deleteSlice,
		}),
	)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Event handlers: they only enqueue Service keys.

// updatePod enqueues the Services of a pod whose change could change its
// endpoint: with new labels, both the Services it left and those it
// joined.
func (c *Controller) updatePod(oldObj, newObj any) {
	old, cur := oldObj.(*corev1.Pod), newObj.(*corev1.Pod)
	if old.ResourceVersion == cur.ResourceVersion {
		return // a resync: the Services resync themselves
	}
	labelsChanged := !maps.Equal(old.Labels, cur.Labels)
	if labelsChanged {
		c.enqueueServicesOf(old)
	}
	if labelsChanged || endpointChanged(old, cur) {
		c.enqueueServicesOf(cur)
	}
}

// endpointChanged reports whether anything the pod's endpoint is made of
// changed.
func endpointChanged(old, cur *corev1.Pod) bool {
	return (old.DeletionTimestamp == nil) != (cur.DeletionTimestamp == nil) ||
		podReady(old) != podReady(cur) ||
		old.Status.Phase != cur.Status.Phase ||
		old.Status.PodIP != cur.Status.PodIP ||
		!slices.Equal(old.Status.PodIPs, cur.Status.PodIPs) ||
		old.Spec.NodeName != cur.Spec.NodeName ||
		old.Spec.Hostname != cur.Spec.Hostname ||
		old.Spec.Subdomain != cur.Spec.Subdomain
}

// selectorIndex indexes Services by each key=value pair of their
// selector, qualified by namespace ("namespace/key=value").
const selectorIndex = "endpointslice.selector"

func selectorIndexFunc(obj any) ([]string, error) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return nil, nil
	}
	out := make([]string, 0, len(svc.Spec.Selector))
	for k, v := range svc.Spec.Selector {
		out = append(out, selectorIndexValue(svc.Namespace, k, v))
	}
	return out, nil
}

func selectorIndexValue(namespace, key, value string) string {
	return namespace + "/" + informers.LabelIndexValue(key, value)
}

// enqueueServicesOf enqueues every Service in the pod's namespace whose
// selector matches the pod. A matching selector contains one of the
// pod's label pairs, so only the Services indexed under those pairs are
// tried.
func (c *Controller) enqueueServicesOf(obj any) {
	pod, ok := controller.Unwrap[*corev1.Pod](obj)
	if !ok {
		return
	}
	for k, v := range pod.Labels {
		svcs, _ := c.services.ByIndex(selectorIndex, selectorIndexValue(pod.Namespace, k, v))
		for _, o := range svcs {
			svc := o.(*corev1.Service)
			if SelectorMatches(svc.Spec.Selector, pod.Labels) {
				c.Queue().Add(svc.Namespace + "/" + svc.Name)
			}
		}
	}
}

// serviceKeyOf is the key of the Service a slice of this controller
// belongs to.
func serviceKeyOf(obj any) (*discoveryv1.EndpointSlice, string, bool) {
	s, ok := controller.Unwrap[*discoveryv1.EndpointSlice](obj)
	if !ok || s.Labels[discoveryv1.LabelManagedBy] != ManagedBy || s.Labels[discoveryv1.LabelServiceName] == "" {
		return nil, "", false
	}
	return s, s.Namespace + "/" + s.Labels[discoveryv1.LabelServiceName], true
}

// enqueueSliceService enqueues the Service of a slice that was added or
// changed: the change may be the controller's own write reaching the
// cache, or someone else's edit to undo.
func (c *Controller) enqueueSliceService(obj any) {
	if _, key, ok := serviceKeyOf(obj); ok {
		c.Queue().Add(key)
	}
}

func (c *Controller) deleteSlice(obj any) {
	if s, key, ok := serviceKeyOf(obj); ok {
		c.tracker.SawDeletion(key, s.Name)
		c.Queue().Add(key)
	}
}

// Reconcile converges the slices of the Service called key; see the
// package documentation.
func (c *Controller) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return controller.Result{}, nil // not a key this controller enqueues
	}
	obj, exists, err := c.services.GetByKey(key)
	if err != nil {
		return controller.Result{}, fmt.Errorf("service %q: %w", key, err)
	}
	existing := c.slicesOf(namespace, name)
	var svc *corev1.Service
	if exists {
		svc = obj.(*corev1.Service)
		// Plan only on a cache that shows this controller's own writes.
		ok, wait := c.tracker.Satisfied(key, func(n string) (*discoveryv1.EndpointSlice, bool) {
			o, found, _ := c.slices.GetByKey(namespace + "/" + n)
			if !found {
				return nil, false
			}
			return o.(*discoveryv1.EndpointSlice), true
		})
		if !ok {
			return controller.Result{RequeueAfter: wait}, nil
		}
	} else if len(existing) == 0 {
		c.tracker.Forget(key)
		return controller.Result{}, nil
	}

	var pods []*corev1.Pod
	if wantsSlices(svc) {
		pods = c.podsFor(svc)
	}
	plan := Compute(svc, pods, existing, c.cfg.MaxEndpointsPerSlice)
	if plan.Empty() {
		return controller.Result{}, nil
	}
	ctx, _ = logging.With(ctx, "service", key)
	err = c.apply(ctx, key, plan)
	if !exists {
		c.tracker.Forget(key)
	}
	if err != nil {
		if svc != nil {
			c.recorder.Eventf(svc, corev1.EventTypeWarning, "FailedToUpdateEndpointSlices",
				"Error updating Endpoint Slices for Service %s: %v", key, err)
		}
		return controller.Result{}, err
	}
	return controller.Result{}, nil
}

// slicesOf returns the cached slices this controller manages for the
// Service namespace/name.
func (c *Controller) slicesOf(namespace, name string) []*discoveryv1.EndpointSlice {
	objs, _ := c.slices.ByIndex(informers.LabelIndex, informers.LabelIndexValue(discoveryv1.LabelServiceName, name))
	var out []*discoveryv1.EndpointSlice
	for _, o := range objs {
		s := o.(*discoveryv1.EndpointSlice)
		if s.Namespace == namespace && s.Labels[discoveryv1.LabelManagedBy] == ManagedBy {
			out = append(out, s)
		}
	}
	return out
}

// podsFor returns the cached pods svc's selector matches. It starts from
// the label index bucket of the selector's rarest key=value pair rather
// than from every pod of the namespace.
func (c *Controller) podsFor(svc *corev1.Service) []*corev1.Pod {
	var candidates []any
	first := true
	for k, v := range svc.Spec.Selector {
		objs, _ := c.pods.ByIndex(informers.LabelIndex, informers.LabelIndexValue(k, v))
		if first || len(objs) < len(candidates) {
			candidates, first = objs, false
		}
		if len(candidates) == 0 {
			break
		}
	}
	var pods []*corev1.Pod
	for _, o := range candidates {
		pod := o.(*corev1.Pod)
		if pod.Namespace == svc.Namespace && SelectorMatches(svc.Spec.Selector, pod.Labels) {
			pods = append(pods, pod)
		}
	}
	return pods
}

// apply makes the plan's writes: creates and updates first, deletes
// last, so that an endpoint moving from one slice to another is never
// missing from both. Each write is recorded in the tracker. It goes on
// after a failed write and returns every error.
func (c *Controller) apply(ctx context.Context, key string, plan Plan) error {
	var errs []error
	for _, s := range plan.Create {
		if err := c.write(ctx, key, func(ctx context.Context) (*discoveryv1.EndpointSlice, error) {
			return c.client.EndpointSlices(s.Namespace).Create(ctx, s)
		}); err != nil {
			errs = append(errs, fmt.Errorf("creating endpointslice for service %q: %w", key, err))
		}
	}
	for _, s := range plan.Update {
		if err := c.write(ctx, key, func(ctx context.Context) (*discoveryv1.EndpointSlice, error) {
			return c.client.EndpointSlices(s.Namespace).Update(ctx, s)
		}); err != nil {
			errs = append(errs, fmt.Errorf("updating endpointslice %q: %w", s.Name, err))
		}
	}
	for _, s := range plan.Delete {
		if err := c.deleteSliceOf(ctx, key, s); err != nil {
			errs = append(errs, fmt.Errorf("deleting endpointslice %q: %w", s.Name, err))
		}
	}
	logging.From(ctx).Info("endpointslices written", "created", len(plan.Create), "updated", len(plan.Update),
		"deleted", len(plan.Delete), "failed", len(errs))
	return errors.Join(errs...)
}

// write makes one create or update and records it in the tracker.
func (c *Controller) write(ctx context.Context, key string, do func(context.Context) (*discoveryv1.EndpointSlice, error)) error {
	// A controller stopped (or no longer leader) must not write.
	if err := ctx.Err(); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, c.cfg.WriteTimeout)
	defer cancel()
	got, err := do(wctx)
	if err != nil {
		return err
	}
	c.tracker.Wrote(key, got)
	return nil
}

// deleteSliceOf deletes one slice, on condition that it is still the
// slice that was read (its UID); one already gone is no error.
func (c *Controller) deleteSliceOf(ctx context.Context, key string, s *discoveryv1.EndpointSlice) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, c.cfg.WriteTimeout)
	defer cancel()
	err := c.client.EndpointSlices(s.Namespace).Delete(wctx, s.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &s.UID}})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	c.tracker.Deleted(key, s.Name)
	return nil
}
