package daemonset

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/utils/clock"

	"github.com/skiffdev/skiff/controllers/controller"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/events"
	"github.com/skiffdev/skiff/internal/logging"
)

// Name is the controller's name in logs, in the queue and in events.
const Name = "daemonset"

// controllerKind is the kind of the ownerReferences this controller
// writes.
var controllerKind = appsv1.SchemeGroupVersion.WithKind("DaemonSet")

// Config configures the controller.
type Config struct {
	// Workers is how many DaemonSets are reconciled at once.
	Workers int
	// BurstReplicas caps the pods one Reconcile creates or deletes; the
	// rest wait for the next Reconcile (Kubernetes: 250).
	BurstReplicas int
	// ExpectationsTTL is how long a Reconcile waits for its informer to
	// show the pods it created or deleted before it trusts the cache
	// again (Kubernetes: 5 minutes).
	ExpectationsTTL time.Duration
	// FailedPodBackoff and FailedPodMaxBackoff space out the deletions
	// of a node's failed daemon pods, so that a pod the node keeps
	// rejecting is not replaced in a hot loop (Kubernetes: 1s, 15m).
	FailedPodBackoff, FailedPodMaxBackoff time.Duration
	// WriteTimeout bounds each write. Writes also end with the
	// controller's context (its leadership).
	WriteTimeout time.Duration
}

// DefaultConfig returns Kubernetes' defaults.
func DefaultConfig() Config {
	return Config{
		Workers:             2,
		BurstReplicas:       250,
		ExpectationsTTL:     5 * time.Minute,
		FailedPodBackoff:    time.Second,
		FailedPodMaxBackoff: 15 * time.Minute,
		WriteTimeout:        30 * time.Second,
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
	if c.FailedPodBackoff <= 0 || c.FailedPodMaxBackoff < c.FailedPodBackoff {
		errs = append(errs, errors.New("failed pod backoff must be positive and at most the maximum backoff"))
	}
	if c.WriteTimeout <= 0 {
		errs = append(errs, errors.New("write timeout must be positive"))
	}
	return errors.Join(errs...)
}

// Controller is the DaemonSet controller. Build it with New; Run it.
type Controller struct {
	*controller.Loop
	cfg          Config
	client       *client.Client
	recorder     events.EventRecorder
	clock        clock.PassiveClock
	dsIndexer    cache.Indexer
	podIndexer   cache.Indexer
	nodeIndexer  cache.Indexer
	revIndexer   cache.Indexer
	expectations *controller.Expectations
	failedPods   *flowcontrol.Backoff
}

// New builds the controller and adds its event handlers to the
// DaemonSet, pod, node and ControllerRevision informers of deps. Start
// them after New.
func New(deps controller.Deps, cfg Config) (*Controller, error) {
	deps, err := deps.Complete()
	if err = errors.Join(err, cfg.Validate()); err != nil {
		return nil, err
	}
	f := deps.Informers
	dsInf, podInf, nodeInf, revInf := f.DaemonSets(), f.Pods(), f.Nodes(), f.ControllerRevisions()
	c := &Controller{
		cfg:          cfg,
		client:       deps.Client,
		recorder:     deps.Recorder,
		clock:        deps.Clock,
		dsIndexer:    dsInf.GetIndexer(),
		podIndexer:   podInf.GetIndexer(),
		nodeIndexer:  nodeInf.GetIndexer(),
		revIndexer:   revInf.GetIndexer(),
		expectations: controller.NewExpectations(cfg.ExpectationsTTL, deps.Clock),
		failedPods:   flowcontrol.NewBackOff(cfg.FailedPodBackoff, cfg.FailedPodMaxBackoff),
	}
	c.Loop = controller.NewLoop(Name, cfg.Workers, c)
	err = errors.Join(
		c.Watch(dsInf, cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { controller.Enqueue(c.Queue(), obj) },
			UpdateFunc: func(_, obj any) { controller.Enqueue(c.Queue(), obj) },
			DeleteFunc: func(obj any) {
				if key, ok := controller.Key(obj); ok {
					c.expectations.Forget(key)
					c.Queue().Add(key)
				}
			},
		}),
		c.Watch(podInf, cache.ResourceEventHandlerFuncs{
			AddFunc: func(obj any) { c.podChanged(obj, true, false) },
			UpdateFunc: func(oldObj, obj any) {
				if oldObj.(*corev1.Pod).ResourceVersion != obj.(*corev1.Pod).ResourceVersion {
					c.podChanged(obj, false, obj.(*corev1.Pod).DeletionTimestamp != nil)
				}
			},
			DeleteFunc: func(obj any) { c.podChanged(obj, false, true) },
		}),
		c.Watch(nodeInf, cache.ResourceEventHandlerFuncs{
			AddFunc: func(any) { c.enqueueAll() },
			UpdateFunc: func(oldObj, obj any) {
				if nodePlacementChanged(oldObj.(*corev1.Node), obj.(*corev1.Node)) {
					c.enqueueAll()
				}
			},
			DeleteFunc: func(any) { c.enqueueAll() },
		}),
		c.Watch(revInf, cache.ResourceEventHandlerFuncs{
			AddFunc:    c.revisionChanged,
			UpdateFunc: func(_, obj any) { c.revisionChanged(obj) },
			DeleteFunc: c.revisionChanged,
		}),
	)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Event handlers: they only tick off expectations and enqueue keys.

// podChanged enqueues the DaemonSet that controls a pod, ticking off a
// creation (added) or a deletion (gone) it was waiting for.
func (c *Controller) podChanged(obj any, added, gone bool) {
	pod, ok := controller.Unwrap[*corev1.Pod](obj)
	if !ok {
		return
	}
	ds := c.resolveRef(pod.Namespace, metav1.GetControllerOf(pod))
	if ds == nil {
		return
	}
	key := ds.Namespace + "/" + ds.Name
	switch {
	case gone:
		c.expectations.DeletionObserved(key, pod.Namespace+"/"+pod.Name)
	case added:
		c.expectations.CreationObserved(key)
	}
	c.Queue().Add(key)
}

func (c *Controller) revisionChanged(obj any) {
	rev, ok := controller.Unwrap[*appsv1.ControllerRevision](obj)
	if !ok {
		return
	}
	if ds := c.resolveRef(rev.Namespace, metav1.GetControllerOf(rev)); ds != nil {
		c.Queue().Add(ds.Namespace + "/" + ds.Name)
	}
}

// enqueueAll enqueues every DaemonSet: a node came, went, or changed in a
// way that may change which DaemonSets belong on it.
func (c *Controller) enqueueAll() {
	for _, key := range c.dsIndexer.ListKeys() {
		c.Queue().Add(key)
	}
}

// nodePlacementChanged reports whether a node update may change which
// daemon pods belong on it: its labels, taints or readiness (heartbeats
// change nothing here).
func nodePlacementChanged(old, cur *corev1.Node) bool {
	return !maps.Equal(old.Labels, cur.Labels) ||
		!equality.Semantic.DeepEqual(old.Spec.Taints, cur.Spec.Taints) ||
		old.Spec.Unschedulable != cur.Spec.Unschedulable
}

// resolveRef returns the cached DaemonSet a controller reference names,
// or nil when it names something else or a DaemonSet that is gone.
func (c *Controller) resolveRef(namespace string, ref *metav1.OwnerReference) *appsv1.DaemonSet {
	if ref == nil {
		return nil
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil || ref.Kind != controllerKind.Kind || gv.Group != controllerKind.Group {
		return nil
	}
	obj, ok, err := c.dsIndexer.GetByKey(namespace + "/" + ref.Name)
	if err != nil || !ok {
		return nil
	}
	ds := obj.(*appsv1.DaemonSet)
	if ds.UID != ref.UID {
		return nil
	}
	return ds
}

// Reconcile converges the DaemonSet called key: it makes sure its
// template has the newest ControllerRevision, decides (Decide) which
// nodes get a pod and which pods go, makes those writes, writes status,
// and deletes revisions beyond the history limit.
func (c *Controller) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	obj, exists, err := c.dsIndexer.GetByKey(key)
	if err != nil {
		return controller.Result{}, fmt.Errorf("daemonset %q: %w", key, err)
	}
	if !exists {
		c.expectations.Forget(key)
		return controller.Result{}, nil
	}
	ds := obj.(*appsv1.DaemonSet)
	if ds.DeletionTimestamp != nil {
		// Its pods go with it (the garbage collector); nothing to add.
		return controller.Result{}, nil
	}
	ctx, log := logging.With(ctx, "daemonset", key)

	// Read the expectations before the cache: an event that arrives in
	// between only makes this Reconcile more careful.
	satisfied, expectWait := c.expectations.Satisfied(key)
	pods := owned[*corev1.Pod](c.podIndexer, ds)
	revs := owned[*appsv1.ControllerRevision](c.revIndexer, ds)
	nodes := make([]*corev1.Node, 0, len(c.nodeIndexer.ListKeys()))
	for _, o := range c.nodeIndexer.List() {
		nodes = append(nodes, o.(*corev1.Node))
	}

	cur, err := c.syncHistory(ctx, ds, revs)
	if err != nil {
		return controller.Result{}, err
	}
	hash := cur.Labels[RevisionHashLabel]
	now := c.clock.Now()
	plan := Decide(Input{DaemonSet: ds, Hash: hash, Nodes: nodes, Pods: pods, Now: now})

	var res controller.Result
	requeue := func(d time.Duration) {
		if d > 0 && (res.RequeueAfter == 0 || d < res.RequeueAfter) {
			res.RequeueAfter = d
		}
	}
	requeue(plan.RecheckAfter)
	requeue(expectWait)
	var manageErr error
	if satisfied {
		var wait time.Duration
		wait, manageErr = c.execute(ctx, key, ds, hash, plan, now)
		requeue(wait)
		inUse := map[string]bool{}
		for _, p := range pods {
			inUse[p.Labels[RevisionHashLabel]] = true
		}
		manageErr = errors.Join(manageErr, c.cleanupHistory(ctx, ds, revs, cur, inUse))
	} else {
		log.Debug("waiting for the cache to show earlier writes")
	}

	if err := c.updateStatus(ctx, ds, plan.Status); err != nil {
		return controller.Result{}, errors.Join(manageErr, fmt.Errorf("daemonset %q: updating status: %w", key, err))
	}
	return res, manageErr
}

// owned returns the cached objects of ds's namespace that ds controls.
func owned[T metav1.Object](idx cache.Indexer, ds *appsv1.DaemonSet) []T {
	objs, _ := idx.ByIndex(cache.NamespaceIndex, ds.Namespace)
	var out []T
	for _, o := range objs {
		t := o.(T)
		if ref := metav1.GetControllerOf(t); ref != nil && ref.UID == ds.UID {
			out = append(out, t)
		}
	}
	return out
}

// execute makes the plan's creates and deletes, at most BurstReplicas of
// each; the rest wait for the next Reconcile, which the pods' events
// bring. A node's failed pod is deleted only once its backoff has
// passed; wait is then when to look again.
func (c *Controller) execute(ctx context.Context, key string, ds *appsv1.DaemonSet, hash string, plan Plan, now time.Time) (wait time.Duration, err error) {
	var victims []*corev1.Pod
	for _, p := range plan.Delete {
		if node, failed := plan.Failed[p.Name]; failed {
			backoffKey := string(ds.UID) + "/" + node
			if c.failedPods.IsInBackOffSinceUpdate(backoffKey, now) {
				left := c.failedPods.Get(backoffKey)
				if wait == 0 || left < wait {
					wait = left
				}
				continue
			}
			c.failedPods.Next(backoffKey, now)
			c.recorder.Eventf(ds, corev1.EventTypeWarning, "FailedDaemonPod", "Found failed daemon pod %s/%s on node %s, will try to kill it", p.Namespace, p.Name, node)
		}
		victims = append(victims, p)
	}
	victims = victims[:min(len(victims), c.cfg.BurstReplicas)]
	creates := plan.Create[:min(len(plan.Create), c.cfg.BurstReplicas)]
	if len(victims) == 0 && len(creates) == 0 {
		return wait, nil
	}
	podKeys := make([]string, len(victims))
	for i, p := range victims {
		podKeys[i] = p.Namespace + "/" + p.Name
	}
	// Expect before writing: the informer may show a write before it
	// returns.
	c.expectations.Expect(key, len(creates), podKeys)
	logging.From(ctx).Info("syncing nodes", "create", len(creates), "delete", len(victims))

	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, pod := range victims {
		wg.Go(func() {
			if err := c.deletePod(ctx, ds, pod); err != nil {
				c.expectations.DeletionObserved(key, podKeys[i])
				if !apierrors.IsNotFound(err) {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	// Creates in batches of 1, 2, 4, ...: a create that is doomed (a
	// quota, a webhook, a bad template) fails once, not once per node.
	for start, batch := 0, 1; start < len(creates); start, batch = start+batch, batch*2 {
		nodes := creates[start:min(start+batch, len(creates))]
		var failed bool
		var bwg sync.WaitGroup
		for _, node := range nodes {
			bwg.Go(func() {
				if err := c.createPod(ctx, ds, node, hash); err != nil {
					c.expectations.CreationObserved(key)
					mu.Lock()
					errs, failed = append(errs, err), true
					mu.Unlock()
				}
			})
		}
		bwg.Wait()
		if failed {
			for range creates[start+len(nodes):] {
				c.expectations.CreationObserved(key)
			}
			break
		}
	}
	wg.Wait()
	return wait, errors.Join(errs...)
}

// createPod creates ds's pod for node.
func (c *Controller) createPod(ctx context.Context, ds *appsv1.DaemonSet, node, hash string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("daemonset %s/%s: not creating pod for node %q: %w", ds.Namespace, ds.Name, node, err)
	}
	wctx, cancel := c.writeContext(ctx)
	defer cancel()
	pod, err := c.client.Pods(ds.Namespace).Create(wctx, newPod(ds, node, hash))
	if err != nil {
		if apierrors.IsTimeout(err) {
			// It may still happen; the expectations' TTL covers that.
			return nil
		}
		c.recorder.Eventf(ds, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
		return fmt.Errorf("daemonset %s/%s: creating pod for node %q: %w", ds.Namespace, ds.Name, node, err)
	}
	c.recorder.Eventf(ds, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %v", pod.Name)
	return nil
}

// deletePod deletes one of ds's pods.
func (c *Controller) deletePod(ctx context.Context, ds *appsv1.DaemonSet, pod *corev1.Pod) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("daemonset %s/%s: not deleting pod %q: %w", ds.Namespace, ds.Name, pod.Name, err)
	}
	wctx, cancel := c.writeContext(ctx)
	defer cancel()
	// The precondition keeps a pod that was replaced under the same name
	// (a new UID) from being deleted for the old one's sake.
	err := c.client.Pods(pod.Namespace).Delete(wctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pod.UID}})
	if err != nil {
		if !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			c.recorder.Eventf(ds, corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
		}
		return fmt.Errorf("daemonset %s/%s: deleting pod %q: %w", ds.Namespace, ds.Name, pod.Name, err)
	}
	c.recorder.Eventf(ds, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %v", pod.Name)
	return nil
}

// updateStatus writes status unless ds already has it, keeping the
// collisionCount the cache shows. On a conflict (the cache lags behind
// the previous write) it reads ds again and tries once more.
func (c *Controller) updateStatus(ctx context.Context, ds *appsv1.DaemonSet, status appsv1.DaemonSetStatus) error {
	dsClient := c.client.DaemonSets(ds.Namespace)
	for try := 0; ; try++ {
		status.CollisionCount = ds.Status.CollisionCount
		status.Conditions = ds.Status.Conditions
		if equality.Semantic.DeepEqual(ds.Status, status) {
			return nil
		}
		next := ds.DeepCopy()
		next.Status = status
		wctx, cancel := c.writeContext(ctx)
		_, err := dsClient.UpdateStatus(wctx, next)
		cancel()
		if err == nil || !apierrors.IsConflict(err) || try == 1 {
			return err
		}
		if ds, err = dsClient.Get(ctx, ds.Name); err != nil {
			return err
		}
		if ds.Generation != status.ObservedGeneration {
			// The spec changed meanwhile; the next Reconcile decides anew.
			return nil
		}
	}
}

// writeContext is the context of one write: ended by ctx (the
// controller's leadership) and bounded by WriteTimeout.
func (c *Controller) writeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.cfg.WriteTimeout)
}

// newPod returns ds's pod for node: named "<daemonset>-<5 random
// characters>" by the API server, with the template's labels plus the
// revision hash and template generation, the daemon tolerations, and a
// required node affinity for node alone, controlled by ds. The scheduler
// binds it.
func newPod(ds *appsv1.DaemonSet, node, hash string) *corev1.Pod {
	t := &ds.Spec.Template
	labels := maps.Clone(t.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[RevisionHashLabel] = hash
	labels[TemplateGenerationLabel] = strconv.FormatInt(ds.Generation, 10)
	spec := t.Spec.DeepCopy()
	spec.Tolerations = withDaemonTolerations(spec)
	spec.Affinity = pinnedTo(spec.Affinity, node)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    ds.Name + "-",
			Namespace:       ds.Namespace,
			Labels:          labels,
			Annotations:     maps.Clone(t.Annotations),
			Finalizers:      append([]string(nil), t.Finalizers...),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ds, controllerKind)},
		},
		Spec: *spec,
	}
}
