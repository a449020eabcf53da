package replicaset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/skiffdev/skiff/controllers/controller"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/events"
	"github.com/skiffdev/skiff/internal/logging"
)

// Name is the controller's name in logs, in the queue and in events.
const Name = "replicaset"

// controllerKind is the kind of the ownerReferences this controller
// writes.
var controllerKind = appsv1.SchemeGroupVersion.WithKind("ReplicaSet")

// Config configures the controller.
type Config struct {
	// Workers is how many ReplicaSets are reconciled at once.
	Workers int
	// BurstReplicas caps the pods one Reconcile creates or deletes;
	// the rest wait for the next Reconcile (Kubernetes: 500).
	BurstReplicas int
	// ExpectationsTTL is how long a Reconcile waits for its informer to
	// show the pods it created or deleted before it trusts the cache
	// again (Kubernetes: 5 minutes).
	ExpectationsTTL time.Duration
	// WriteTimeout bounds each pod write. Writes also end with the
	// controller's context (its leadership): a controller that lost its
	// Lease makes no further writes, and none of its writes outlive Run.
	WriteTimeout time.Duration
}

// DefaultConfig returns Kubernetes' defaults.
func DefaultConfig() Config {
	return Config{
		Workers:         5,
		BurstReplicas:   500,
		ExpectationsTTL: 5 * time.Minute,
		WriteTimeout:    30 * time.Second,
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.Workers < 1 {
		errs = append(errs, errors.New("workers must be at least 1"))
	}
	if c.BurstReplicas < 1 {
		errs = append(errs, errors.New("burst replicas must be at least 1"))
	}
	if c.ExpectationsTTL <= 0 {
		errs = append(errs, errors.New("expectations TTL must be positive"))
	}
	if c.WriteTimeout <= 0 {
		errs = append(errs, errors.New("write timeout must be positive"))
	}
	return errors.Join(errs...)
}

// Controller is the ReplicaSet controller. Build it with New; Run it.
type Controller struct {
	*controller.Loop
	cfg          Config
	client       *client.Client
	recorder     events.EventRecorder
	clock        clock.PassiveClock
	rsIndexer    cache.Indexer
	podIndexer   cache.Indexer
	expectations *controller.Expectations

	// beforeCreate, when set (only by tests), is called before each pod
	// create.
	beforeCreate func()
}

// New builds the controller and adds its event handlers to the
// ReplicaSet and pod informers of deps. Start them after New.
func New(deps controller.Deps, cfg Config) (*Controller, error) {
	deps, err := deps.Complete()
	if err = errors.Join(err, cfg.Validate()); err != nil {
		return nil, err
	}
	rsInformer, podInformer := deps.Informers.ReplicaSets(), deps.Informers.Pods()
	c := &Controller{
		cfg:          cfg,
		client:       deps.Client,
		recorder:     deps.Recorder,
		clock:        deps.Clock,
		rsIndexer:    rsInformer.GetIndexer(),
		podIndexer:   podInformer.GetIndexer(),
		expectations: controller.NewExpectations(cfg.ExpectationsTTL, deps.Clock),
	}
	c.Loop = controller.NewLoop(Name, cfg.Workers, c)
	err = errors.Join(
		c.Watch(rsInformer, cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { controller.Enqueue(c.Queue(), obj) },
			UpdateFunc: func(_, obj any) { controller.Enqueue(c.Queue(), obj) },
			DeleteFunc: c.deleteReplicaSet,
		}),
		c.Watch(podInformer, cache.ResourceEventHandlerFuncs{
			AddFunc:    c.addPod,
			UpdateFunc: c.updatePod,
			DeleteFunc: c.deletePod,
		}),
	)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Event handlers: they only tick off expectations and enqueue keys.

func (c *Controller) deleteReplicaSet(obj any) {
	if key, ok := controller.Key(obj); ok {
		c.expectations.Forget(key)
		c.Queue().Add(key)
	}
}

// addPod handles a new pod: a pod one of our ReplicaSets created, or an
// orphan some ReplicaSet may adopt.
func (c *Controller) addPod(obj any) {
	pod := obj.(*corev1.Pod)
	if pod.DeletionTimestamp != nil {
		// After a restart a pod being deleted shows up as added; it must
		// not count as a creation.
		c.deletePod(pod)
		return
	}
	if ref := metav1.GetControllerOf(pod); ref != nil {
		if rs := c.resolveRef(pod.Namespace, ref); rs != nil {
			key := pod.Namespace + "/" + rs.Name
			c.expectations.CreationObserved(key)
			c.Queue().Add(key)
		}
		return
	}
	c.enqueueMatching(pod)
}

// updatePod handles a changed pod: its owner's status may change, it may
// have started terminating, or its labels or owner may have changed.
func (c *Controller) updatePod(oldObj, newObj any) {
	old, cur := oldObj.(*corev1.Pod), newObj.(*corev1.Pod)
	if old.ResourceVersion == cur.ResourceVersion {
		// A resync: the ReplicaSets are resynced themselves.
		return
	}
	labelsChanged := !maps.Equal(old.Labels, cur.Labels)
	if cur.DeletionTimestamp != nil {
		// The pod is terminating: that is the deletion its owner waits
		// for, and a terminating pod is never adopted.
		c.deletePod(cur)
		if labelsChanged {
			c.deletePod(old)
		}
		return
	}
	curRef, oldRef := metav1.GetControllerOf(cur), metav1.GetControllerOf(old)
	refChanged := !equality.Semantic.DeepEqual(curRef, oldRef)
	if refChanged && oldRef != nil {
		if rs := c.resolveRef(old.Namespace, oldRef); rs != nil {
			c.Queue().Add(old.Namespace + "/" + rs.Name)
		}
	}
	if curRef != nil {
		if rs := c.resolveRef(cur.Namespace, curRef); rs != nil {
			c.Queue().Add(cur.Namespace + "/" + rs.Name)
		}
		return
	}
	if labelsChanged || refChanged {
		c.enqueueMatching(cur)
	}
}

// deletePod handles a pod that is gone or terminating.
func (c *Controller) deletePod(obj any) {
	pod, ok := controller.Unwrap[*corev1.Pod](obj)
	if !ok {
		return
	}
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return
	}
	if rs := c.resolveRef(pod.Namespace, ref); rs != nil {
		key := pod.Namespace + "/" + rs.Name
		c.expectations.DeletionObserved(key, pod.Namespace+"/"+pod.Name)
		c.Queue().Add(key)
	}
}

// resolveRef returns the cached ReplicaSet a controller reference names,
// or nil when it names something else or a ReplicaSet that is gone (a
// new one with the same name has another UID).
func (c *Controller) resolveRef(namespace string, ref *metav1.OwnerReference) *appsv1.ReplicaSet {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil || ref.Kind != controllerKind.Kind || gv.Group != controllerKind.Group {
		return nil
	}
	obj, ok, err := c.rsIndexer.GetByKey(namespace + "/" + ref.Name)
	if err != nil || !ok {
		return nil
	}
	rs := obj.(*appsv1.ReplicaSet)
	if rs.UID != ref.UID {
		return nil
	}
	return rs
}

// enqueueMatching enqueues the ReplicaSets whose selector matches an
// orphan pod: one of them may adopt it.
func (c *Controller) enqueueMatching(pod *corev1.Pod) {
	for _, rs := range c.replicaSetsIn(pod.Namespace) {
		sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		c.Queue().Add(rs.Namespace + "/" + rs.Name)
	}
}

func (c *Controller) replicaSetsIn(namespace string) []*appsv1.ReplicaSet {
	objs, _ := c.rsIndexer.ByIndex(cache.NamespaceIndex, namespace)
	out := make([]*appsv1.ReplicaSet, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*appsv1.ReplicaSet))
	}
	return out
}

// Reconcile converges the ReplicaSet called key: it claims its pods
// (adopting matching orphans, releasing pods that stopped matching),
// creates or deletes pods until the active ones number spec.replicas,
// and writes status.
func (c *Controller) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	obj, exists, err := c.rsIndexer.GetByKey(key)
	if err != nil {
		return controller.Result{}, fmt.Errorf("replicaset %q: %w", key, err)
	}
	if !exists {
		c.expectations.Forget(key)
		return controller.Result{}, nil
	}
	rs := obj.(*appsv1.ReplicaSet)
	// Everything below logs with replicaset=key (adopt and release
	// too: key is rs's namespace/name).
	ctx, log := logging.With(ctx, "replicaset", key)
	selector, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
	if err != nil {
		// Validation refuses such selectors; retrying cannot help.
		log.Error("invalid selector", "err", err)
		return controller.Result{}, nil
	}

	// Read the expectations before the cache: an event that arrives in
	// between then only makes this Reconcile more careful, never less.
	satisfied, expectWait := c.expectations.Satisfied(key)
	var active []*corev1.Pod
	objs, err := c.podIndexer.ByIndex(cache.NamespaceIndex, rs.Namespace)
	if err != nil {
		return controller.Result{}, fmt.Errorf("replicaset %q: listing pods: %w", key, err)
	}
	for _, o := range objs {
		if pod := o.(*corev1.Pod); isActive(pod) {
			active = append(active, pod)
		}
	}
	owned, err := c.claimPods(ctx, rs, selector, active)
	if err != nil {
		return controller.Result{}, err
	}

	var manageErr error
	if satisfied && rs.DeletionTimestamp == nil {
		manageErr = c.manageReplicas(ctx, key, rs, owned)
	}

	status, availableWait := calculateStatus(rs, owned, c.clock.Now())
	if err := c.updateStatus(ctx, rs, status); err != nil {
		return controller.Result{}, errors.Join(manageErr, fmt.Errorf("replicaset %q: updating status: %w", key, err))
	}
	if manageErr != nil {
		return controller.Result{}, manageErr
	}
	var res controller.Result
	for _, d := range []time.Duration{availableWait, expectWait} {
		if d > 0 && (res.RequeueAfter == 0 || d < res.RequeueAfter) {
			res.RequeueAfter = d
		}
	}
	return res, nil
}

// updateStatus writes status to rs unless it already has it. The write
// is conditional on rs's resourceVersion. The cache often lags behind
// this controller's previous status write, so on a conflict it reads rs
// again and tries once more, as Kubernetes does; a second conflict is
// left to the caller's retry.
func (c *Controller) updateStatus(ctx context.Context, rs *appsv1.ReplicaSet, status appsv1.ReplicaSetStatus) error {
	rsClient := c.client.ReplicaSets(rs.Namespace)
	for try := 0; ; try++ {
		if equality.Semantic.DeepEqual(rs.Status, status) {
			return nil
		}
		next := rs.DeepCopy()
		next.Status = status
		_, err := rsClient.UpdateStatus(ctx, next)
		if err == nil || !apierrors.IsConflict(err) || try == 1 {
			return err
		}
		if rs, err = rsClient.Get(ctx, rs.Name); err != nil {
			return err
		}
	}
}

// claimPods returns the active pods rs owns once it has adopted the
// matching orphans and released its pods that no longer match. A
// ReplicaSet being deleted adopts and releases nothing.
func (c *Controller) claimPods(ctx context.Context, rs *appsv1.ReplicaSet, selector labels.Selector, pods []*corev1.Pod) ([]*corev1.Pod, error) {
	var owned []*corev1.Pod
	var errs []error
	// recheck reads rs from the API server once, before the first
	// adoption: the cache may not show yet that rs is being deleted, or
	// was replaced by a new ReplicaSet of the same name.
	var checked bool
	var checkErr error
	recheck := func() error {
		if !checked {
			checked = true
			fresh, err := c.client.ReplicaSets(rs.Namespace).Get(ctx, rs.Name)
			switch {
			case err != nil:
				checkErr = fmt.Errorf("replicaset %s/%s: rechecking before adoption: %w", rs.Namespace, rs.Name, err)
			case fresh.UID != rs.UID:
				checkErr = fmt.Errorf("replicaset %s/%s: gone (uid %s, wanted %s)", rs.Namespace, rs.Name, fresh.UID, rs.UID)
			case fresh.DeletionTimestamp != nil:
				checkErr = fmt.Errorf("replicaset %s/%s: being deleted", rs.Namespace, rs.Name)
			}
		}
		return checkErr
	}
	for _, pod := range pods {
		matches := selector.Matches(labels.Set(pod.Labels))
		ref := metav1.GetControllerOf(pod)
		switch {
		case ref != nil && ref.UID == rs.UID:
			if matches {
				owned = append(owned, pod)
			} else if rs.DeletionTimestamp == nil {
				if err := c.release(ctx, rs, pod); err != nil {
					errs = append(errs, err)
				}
			}
		case ref != nil:
			// Another controller's pod.
		case matches && rs.DeletionTimestamp == nil:
			if err := recheck(); err != nil {
				errs = append(errs, err)
				continue
			}
			if err := c.adopt(ctx, rs, pod); err != nil {
				if !apierrors.IsNotFound(err) {
					errs = append(errs, err)
				}
				continue
			}
			owned = append(owned, pod)
		}
	}
	if checkErr != nil {
		// Adopting would be wrong; the ReplicaSet is gone or going.
		return owned, checkErr
	}
	return owned, errors.Join(errs...)
}

// adopt makes rs the controller of the orphan pod. The patch carries the
// pod's resourceVersion, so it fails (Conflict) if the pod changed since
// the cache saw it, for example if another ReplicaSet adopted it first.
// It logs through ctx's logger, which Reconcile made name rs.
func (c *Controller) adopt(ctx context.Context, rs *appsv1.ReplicaSet, pod *corev1.Pod) error {
	refs := append(slices.Clone(pod.OwnerReferences), *metav1.NewControllerRef(rs, controllerKind))
	if err := c.patchOwners(ctx, pod, refs); err != nil {
		return fmt.Errorf("adopting pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	logging.From(ctx).Info("adopted pod", "pod", pod.Name)
	return nil
}

// release removes rs's ownerReference from pod, which no longer matches
// rs's selector. A pod that is gone needs no release. It logs through
// ctx's logger, which Reconcile made name rs.
func (c *Controller) release(ctx context.Context, rs *appsv1.ReplicaSet, pod *corev1.Pod) error {
	refs := slices.DeleteFunc(slices.Clone(pod.OwnerReferences), func(r metav1.OwnerReference) bool { return r.UID == rs.UID })
	err := c.patchOwners(ctx, pod, refs)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("releasing pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	logging.From(ctx).Info("released pod", "pod", pod.Name)
	return nil
}

// patchOwners sets pod's ownerReferences to refs with a merge patch
// conditional on the pod's resourceVersion.
func (c *Controller) patchOwners(ctx context.Context, pod *corev1.Pod, refs []metav1.OwnerReference) error {
	type meta struct {
		ResourceVersion string                  `json:"resourceVersion"`
		OwnerReferences []metav1.OwnerReference `json:"ownerReferences"`
	}
	patch, err := json.Marshal(map[string]meta{"metadata": {pod.ResourceVersion, refs}})
	if err != nil {
		return err
	}
	ctx, cancel := c.writeContext(ctx)
	defer cancel()
	_, err = c.client.Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, patch)
	return err
}

// manageReplicas creates or deletes pods so that owned, rs's active pods,
// number spec.replicas. The caller has checked that rs's expectations are
// satisfied: the cache shows all of this controller's earlier writes.
func (c *Controller) manageReplicas(ctx context.Context, key string, rs *appsv1.ReplicaSet, owned []*corev1.Pod) error {
	want := int32(1)
	if rs.Spec.Replicas != nil {
		want = *rs.Spec.Replicas
	}
	diff := len(owned) - int(want)
	switch {
	case diff < 0:
		n := min(-diff, c.cfg.BurstReplicas)
		// Expect before writing: the informer may show a new pod before
		// Create returns.
		c.expectations.Expect(key, n, nil)
		logging.From(ctx).Info("creating pods", "count", n, "want", want, "have", len(owned))
		created, err := slowStartBatch(ctx, n, 1, func() error { return c.createPod(ctx, rs) })
		// Pods not created will never be observed.
		for range n - created {
			c.expectations.CreationObserved(key)
		}
		return err
	case diff > 0:
		n := min(diff, c.cfg.BurstReplicas)
		victims := podsToDelete(owned, n)
		podKeys := make([]string, len(victims))
		for i, p := range victims {
			podKeys[i] = p.Namespace + "/" + p.Name
		}
		c.expectations.Expect(key, 0, podKeys)
		logging.From(ctx).Info("deleting pods", "count", n, "want", want, "have", len(owned))
		var wg sync.WaitGroup
		errs := make([]error, len(victims))
		for i, pod := range victims {
			wg.Go(func() {
				if err := c.deletePodOf(ctx, rs, pod); err != nil {
					// A failed delete will never be observed.
					c.expectations.DeletionObserved(key, podKeys[i])
					if !apierrors.IsNotFound(err) {
						errs[i] = err
					}
				}
			})
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	return nil
}

// createPod creates one pod from rs's template.
func (c *Controller) createPod(ctx context.Context, rs *appsv1.ReplicaSet) error {
	if c.beforeCreate != nil {
		c.beforeCreate()
	}
	// A controller stopped (or no longer leader) must not write: a new
	// leader may already be creating the same pods.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("replicaset %s/%s: not creating pod: %w", rs.Namespace, rs.Name, err)
	}
	ctx, cancel := c.writeContext(ctx)
	defer cancel()
	pod, err := c.client.Pods(rs.Namespace).Create(ctx, newPod(rs))
	if err != nil {
		c.recorder.Eventf(rs, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
		return fmt.Errorf("replicaset %s/%s: creating pod: %w", rs.Namespace, rs.Name, err)
	}
	c.recorder.Eventf(rs, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %v", pod.Name)
	return nil
}

// deletePodOf deletes one of rs's pods.
func (c *Controller) deletePodOf(ctx context.Context, rs *appsv1.ReplicaSet, pod *corev1.Pod) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("replicaset %s/%s: not deleting pod %q: %w", rs.Namespace, rs.Name, pod.Name, err)
	}
	ctx, cancel := c.writeContext(ctx)
	defer cancel()
	if err := c.client.Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{}); err != nil {
		if !apierrors.IsNotFound(err) {
			c.recorder.Eventf(rs, corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
		}
		return fmt.Errorf("replicaset %s/%s: deleting pod %q: %w", rs.Namespace, rs.Name, pod.Name, err)
	}
	c.recorder.Eventf(rs, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %v", pod.Name)
	return nil
}

// writeContext is the context of one write: ended by ctx, the
// controller's context, which ends when the controller stops or loses
// its leadership (so that a deposed leader's writes do not race a new
// leader's), and bounded by WriteTimeout.
func (c *Controller) writeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.cfg.WriteTimeout)
}

// newPod returns a pod to create from rs's template: named
// "<rs>-<5 random characters>" by the API server, with the template's
// labels, annotations, finalizers and spec, controlled by rs.
func newPod(rs *appsv1.ReplicaSet) *corev1.Pod {
	t := &rs.Spec.Template
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    rs.Name + "-",
			Namespace:       rs.Namespace,
			Labels:          maps.Clone(t.Labels),
			Annotations:     maps.Clone(t.Annotations),
			Finalizers:      slices.Clone(t.Finalizers),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(rs, controllerKind)},
		},
		Spec: *t.Spec.DeepCopy(),
	}
}
