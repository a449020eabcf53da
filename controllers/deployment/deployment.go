package deployment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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

// Name is the controller's name in logs and in the queue.
const Name = "deployment"

// controllerKind is the kind of the ownerReferences this controller
// writes on ReplicaSets.
var controllerKind = appsv1.SchemeGroupVersion.WithKind("Deployment")

// Config configures the controller.
type Config struct {
	// Workers is how many Deployments are reconciled at once.
	Workers int
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{Workers: 5} }

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Workers < 1 {
		return errors.New("workers must be at least 1")
	}
	return nil
}

// Controller is the Deployment controller. Build it with New; Run it.
type Controller struct {
	*controller.Loop
	cfg        Config
	client     *client.Client
	recorder   events.EventRecorder
	clock      clock.PassiveClock
	dIndexer   cache.Indexer
	rsIndexer  cache.Indexer
	podIndexer cache.Indexer
}

// New builds the controller and adds its event handlers to the
// Deployment, ReplicaSet and pod informers of deps. Start them after New.
func New(deps controller.Deps, cfg Config) (*Controller, error) {
	deps, err := deps.Complete()
	if err = errors.Join(err, cfg.Validate()); err != nil {
		return nil, err
	}
	dInf, rsInf, podInf := deps.Informers.Deployments(), deps.Informers.ReplicaSets(), deps.Informers.Pods()
	c := &Controller{
		cfg: cfg, client: deps.Client, recorder: deps.Recorder, clock: deps.Clock,
		dIndexer: dInf.GetIndexer(), rsIndexer: rsInf.GetIndexer(), podIndexer: podInf.GetIndexer(),
	}
	c.Loop = controller.NewLoop(Name, cfg.Workers, c)
	err = errors.Join(
		c.Watch(dInf, controller.EnqueueHandler(c.Queue())),
		c.Watch(rsInf, cache.ResourceEventHandlerFuncs{
			AddFunc:    c.replicaSetChanged,
			UpdateFunc: func(old, cur any) { c.replicaSetChanged(old); c.replicaSetChanged(cur) },
			DeleteFunc: c.replicaSetChanged,
		}),
		// Recreate waits for old pods to be gone: their deletion matters.
		c.Watch(podInf, cache.ResourceEventHandlerFuncs{DeleteFunc: c.podDeleted}),
	)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Event handlers: they only enqueue Deployment keys.

// replicaSetChanged enqueues the Deployment controlling a ReplicaSet or,
// for an orphan, every Deployment whose selector matches it.
func (c *Controller) replicaSetChanged(obj any) {
	rs, ok := controller.Unwrap[*appsv1.ReplicaSet](obj)
	if !ok {
		return
	}
	if ref := metav1.GetControllerOf(rs); ref != nil {
		if d := c.resolveRef(rs.Namespace, ref); d != nil {
			c.Queue().Add(rs.Namespace + "/" + d.Name)
		}
		return
	}
	objs, _ := c.dIndexer.ByIndex(cache.NamespaceIndex, rs.Namespace)
	for _, o := range objs {
		d := o.(*appsv1.Deployment)
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(rs.Labels)) {
			c.Queue().Add(d.Namespace + "/" + d.Name)
		}
	}
}

// podDeleted enqueues the Deployment of a deleted pod's ReplicaSet.
func (c *Controller) podDeleted(obj any) {
	pod, ok := controller.Unwrap[*corev1.Pod](obj)
	if !ok {
		return
	}
	ref := metav1.GetControllerOf(pod)
	if ref == nil || ref.Kind != "ReplicaSet" {
		return
	}
	o, ok, _ := c.rsIndexer.GetByKey(pod.Namespace + "/" + ref.Name)
	if !ok {
		return
	}
	rs := o.(*appsv1.ReplicaSet)
	if dref := metav1.GetControllerOf(rs); rs.UID == ref.UID && dref != nil {
		if d := c.resolveRef(rs.Namespace, dref); d != nil {
			c.Queue().Add(d.Namespace + "/" + d.Name)
		}
	}
}

// resolveRef returns the cached Deployment a controller reference names,
// or nil.
func (c *Controller) resolveRef(namespace string, ref *metav1.OwnerReference) *appsv1.Deployment {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil || ref.Kind != controllerKind.Kind || gv.Group != controllerKind.Group {
		return nil
	}
	o, ok, err := c.dIndexer.GetByKey(namespace + "/" + ref.Name)
	if err != nil || !ok {
		return nil
	}
	d := o.(*appsv1.Deployment)
	if d.UID != ref.UID {
		return nil
	}
	return d
}

// Reconcile converges the Deployment called key. See the package
// documentation for the steps.
func (c *Controller) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	o, exists, err := c.dIndexer.GetByKey(key)
	if err != nil {
		return controller.Result{}, fmt.Errorf("deployment %q: %w", key, err)
	}
	if !exists {
		return controller.Result{}, nil
	}
	ctx, _ = logging.With(ctx, "deployment", key)
	s := &pass{c: c, now: c.clock.Now()}
	res, err := s.run(ctx, o.(*appsv1.Deployment).DeepCopy())
	if err != nil {
		return controller.Result{}, fmt.Errorf("deployment %q: %w", key, err)
	}
	return res, nil
}

// pass is one Reconcile of one Deployment: the time it runs with. Its
// methods take the context, whose logger names the Deployment, and the
// Deployment d, a copy they may change; those that write it return what
// the API server returned (the new resourceVersion, the status written),
// and the caller goes on with that.
type pass struct {
	c   *Controller
	now time.Time
}

func (s *pass) run(ctx context.Context, d *appsv1.Deployment) (controller.Result, error) {
	selector, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || selector.Empty() {
		// Validation refuses these; a Deployment selecting everything
		// would fight every other controller.
		s.c.recorder.Eventf(d, corev1.EventTypeWarning, "SelectingAll", "This deployment is selecting all pods. A non-empty selector is required.")
		if d.Status.ObservedGeneration < d.Generation {
			d.Status.ObservedGeneration = d.Generation
			_, err := s.updateStatus(ctx, d)
			return controller.Result{}, err
		}
		return controller.Result{}, nil
	}
	rsList, err := s.claimReplicaSets(ctx, d, selector)
	if err != nil {
		return controller.Result{}, err
	}
	if d.DeletionTimestamp != nil {
		newRS, oldRSs := findNewAndOld(d, rsList)
		return controller.Result{}, s.syncStatus(ctx, d, append(oldRSs, newRS), newRS)
	}
	if d, err = s.checkPaused(ctx, d); err != nil {
		return controller.Result{}, err
	}
	if d.Spec.Paused || isScalingEvent(d, rsList) {
		return controller.Result{}, s.syncScale(ctx, d, rsList)
	}
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		return s.rolloutRecreate(ctx, d, rsList)
	}
	return s.rolloutRolling(ctx, d, rsList)
}

// claimReplicaSets returns the ReplicaSets d controls, after adopting
// matching orphans and releasing owned ones that stopped matching.
func (s *pass) claimReplicaSets(ctx context.Context, d *appsv1.Deployment, selector labels.Selector) ([]*appsv1.ReplicaSet, error) {
	objs, err := s.c.rsIndexer.ByIndex(cache.NamespaceIndex, d.Namespace)
	if err != nil {
		return nil, err
	}
	var owned []*appsv1.ReplicaSet
	var errs []error
	checked := false
	for _, o := range objs {
		rs := o.(*appsv1.ReplicaSet)
		matches := selector.Matches(labels.Set(rs.Labels))
		ref := metav1.GetControllerOf(rs)
		switch {
		case ref != nil && ref.UID == d.UID:
			if matches {
				// A copy: scaling updates it in place.
				owned = append(owned, rs.DeepCopy())
			} else if d.DeletionTimestamp == nil {
				refs := slices.DeleteFunc(slices.Clone(rs.OwnerReferences), func(r metav1.OwnerReference) bool { return r.UID == d.UID })
				if err := s.patchOwners(ctx, rs, refs); err != nil && !apierrors.IsNotFound(err) {
					errs = append(errs, fmt.Errorf("releasing replicaset %q: %w", rs.Name, err))
				}
			}
		case ref == nil && matches && d.DeletionTimestamp == nil && rs.DeletionTimestamp == nil:
			if !checked {
				// The cache may not show yet that d is being deleted or
				// was replaced: ask the API server once.
				checked = true
				fresh, err := s.c.client.Deployments(d.Namespace).Get(ctx, d.Name)
				if err != nil {
					return nil, fmt.Errorf("rechecking before adoption: %w", err)
				}
				if fresh.UID != d.UID || fresh.DeletionTimestamp != nil {
					return nil, errors.New("gone or being deleted; adopting nothing")
				}
			}
			refs := append(slices.Clone(rs.OwnerReferences), *metav1.NewControllerRef(d, controllerKind))
			if err := s.patchOwners(ctx, rs, refs); err != nil {
				if !apierrors.IsNotFound(err) {
					errs = append(errs, fmt.Errorf("adopting replicaset %q: %w", rs.Name, err))
				}
				continue
			}
			logging.From(ctx).Info("adopted replicaset", "replicaset", rs.Name)
			owned = append(owned, rs.DeepCopy())
		}
	}
	return owned, errors.Join(errs...)
}

// patchOwners sets rs's ownerReferences with a merge patch conditional
// on its resourceVersion.
func (s *pass) patchOwners(ctx context.Context, rs *appsv1.ReplicaSet, refs []metav1.OwnerReference) error {
	type meta struct {
		ResourceVersion string                  `json:"resourceVersion"`
		OwnerReferences []metav1.OwnerReference `json:"ownerReferences"`
	}
	patch, err := json.Marshal(map[string]meta{"metadata": {rs.ResourceVersion, refs}})
	if err != nil {
		return err
	}
	_, err = s.c.client.ReplicaSets(rs.Namespace).Patch(ctx, rs.Name, types.MergePatchType, patch)
	return err
}

// findNewAndOld splits rsList into the ReplicaSet whose template is d's
// (the oldest, if several are) and the others.
func findNewAndOld(d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) (*appsv1.ReplicaSet, []*appsv1.ReplicaSet) {
	sorted := slices.Clone(rsList)
	byCreation(sorted)
	var newRS *appsv1.ReplicaSet
	var old []*appsv1.ReplicaSet
	for _, rs := range sorted {
		if newRS == nil && equalIgnoreHash(&rs.Spec.Template, &d.Spec.Template) {
			newRS = rs
			continue
		}
		old = append(old, rs)
	}
	return newRS, old
}

// replicaSets returns the new ReplicaSet (creating it when create is
// set and there is none) and the old ones, and brings the new one's
// annotations and d's revision up to date. It returns d as last written.
func (s *pass) replicaSets(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet, create bool) (*appsv1.Deployment, *appsv1.ReplicaSet, []*appsv1.ReplicaSet, error) {
	existing, oldRSs := findNewAndOld(d, rsList)
	revision := maxRevision(oldRSs) + 1
	if existing != nil {
		rs := existing.DeepCopy()
		changed := setNewRSAnnotations(d, rs, revision, true)
		if changed || rs.Spec.MinReadySeconds != d.Spec.MinReadySeconds {
			rs.Spec.MinReadySeconds = d.Spec.MinReadySeconds
			updated, err := s.c.client.ReplicaSets(rs.Namespace).Update(ctx, rs)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("updating replicaset %q: %w", rs.Name, err)
			}
			return d, updated, oldRSs, nil
		}
		var err error
		if d, err = s.setRevision(ctx, d, rs.Annotations[RevisionAnnotation]); err != nil {
			return nil, nil, nil, err
		}
		if hasProgressDeadline(d) && getCondition(d.Status, appsv1.DeploymentProgressing) == nil {
			setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonFoundNewReplicaSet, fmt.Sprintf("Found new replica set %q", rs.Name), s.now))
			if d, err = s.updateStatus(ctx, d); err != nil {
				return nil, nil, nil, err
			}
		}
		return d, rs, oldRSs, nil
	}
	if !create {
		return d, nil, oldRSs, nil
	}

	hash := computeHash(&d.Spec.Template, d.Status.CollisionCount)
	size := newRSNewReplicas(d, oldRSs, nil)
	want := newReplicaSetFor(d, hash, revision, size)
	created, err := s.c.client.ReplicaSets(d.Namespace).Create(ctx, want)
	switch {
	case apierrors.IsAlreadyExists(err):
		// Ours with the same template (the cache is behind), or a hash
		// collision: then count it, so that the next hash differs.
		cur, gerr := s.c.client.ReplicaSets(d.Namespace).Get(ctx, want.Name)
		if gerr != nil {
			return nil, nil, nil, gerr
		}
		if ref := metav1.GetControllerOf(cur); ref != nil && ref.UID == d.UID && equalIgnoreHash(&cur.Spec.Template, &d.Spec.Template) {
			return d, cur, oldRSs, nil
		}
		d.Status.CollisionCount = new(ptrValue(d.Status.CollisionCount) + 1)
		if _, err := s.updateStatus(ctx, d); err != nil {
			return nil, nil, nil, err
		}
		return nil, nil, nil, fmt.Errorf("replicaset %q exists with another template (hash collision)", want.Name)
	case err != nil:
		if hasProgressDeadline(d) {
			setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, corev1.ConditionFalse, "ReplicaSetCreateError", fmt.Sprintf("Failed to create new replica set %q: %v", want.Name, err), s.now))
			_, _ = s.updateStatus(ctx, d) // the create's error is the one to report
		}
		s.c.recorder.Eventf(d, corev1.EventTypeWarning, "ReplicaSetCreateError", "Failed to create new replica set %q: %v", want.Name, err)
		return nil, nil, nil, fmt.Errorf("creating replicaset %q: %w", want.Name, err)
	}
	if size > 0 {
		s.c.recorder.Eventf(d, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled up replica set %s from 0 to %d", created.Name, size)
	}
	logging.From(ctx).Info("created replicaset", "replicaset", created.Name, "replicas", size)
	if d, err = s.setRevision(ctx, d, created.Annotations[RevisionAnnotation]); err != nil {
		return nil, nil, nil, err
	}
	if hasProgressDeadline(d) {
		setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonNewReplicaSetCreated, fmt.Sprintf("Created new replica set %q", created.Name), s.now))
		if d, err = s.updateStatus(ctx, d); err != nil {
			return nil, nil, nil, err
		}
	}
	return d, created, oldRSs, nil
}

func ptrValue(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

// setRevision puts the new ReplicaSet's revision on d and returns the
// patched Deployment, with d's status as it stands in this pass.
// Kubernetes writes the revision with the status; here the status
// subresource changes only status, so it is a patch of the Deployment's
// metadata.
func (s *pass) setRevision(ctx context.Context, d *appsv1.Deployment, revision string) (*appsv1.Deployment, error) {
	if revision == "" || d.Annotations[RevisionAnnotation] == revision {
		return d, nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"resourceVersion": d.ResourceVersion,
		"annotations":     map[string]string{RevisionAnnotation: revision},
	}})
	if err != nil {
		return nil, err
	}
	updated, err := s.c.client.Deployments(d.Namespace).Patch(ctx, d.Name, types.MergePatchType, patch)
	if err != nil {
		return nil, fmt.Errorf("setting revision: %w", err)
	}
	updated.Status = d.Status
	return updated, nil
}

// updateStatus writes d.Status, conditional on d's resourceVersion, and
// returns the Deployment written.
func (s *pass) updateStatus(ctx context.Context, d *appsv1.Deployment) (*appsv1.Deployment, error) {
	updated, err := s.c.client.Deployments(d.Namespace).UpdateStatus(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("updating status: %w", err)
	}
	return updated, nil
}

// checkPaused sets Progressing=Unknown DeploymentPaused when d is
// paused, and DeploymentResumed when it is resumed, and returns d as
// last written.
func (s *pass) checkPaused(ctx context.Context, d *appsv1.Deployment) (*appsv1.Deployment, error) {
	if !hasProgressDeadline(d) {
		return d, nil
	}
	cur := getCondition(d.Status, appsv1.DeploymentProgressing)
	if cur != nil && cur.Reason == ReasonProgressDeadlineExceeded {
		return d, nil
	}
	pausedCond := cur != nil && cur.Reason == ReasonDeploymentPaused
	switch {
	case d.Spec.Paused && !pausedCond:
		setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, ReasonDeploymentPaused, "Deployment is paused", s.now))
	case !d.Spec.Paused && pausedCond:
		setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, ReasonDeploymentResumed, "Deployment is resumed", s.now))
	default:
		return d, nil
	}
	return s.updateStatus(ctx, d)
}

// isScalingEvent reports whether spec.replicas changed since the active
// ReplicaSets were last scaled (their desired-replicas annotation).
func isScalingEvent(d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) bool {
	for _, rs := range rsList {
		if replicas(rs.Spec.Replicas) == 0 {
			continue
		}
		if desired, ok := intAnnotation(rs, DesiredReplicasAnnotation); ok && desired != replicas(d.Spec.Replicas) {
			return true
		}
	}
	return false
}

// syncScale handles a paused Deployment and a change of spec.replicas:
// the current ReplicaSets are resized (proportionally during a rolling
// update), no rollout step is taken, and status is written.
func (s *pass) syncScale(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	d, newRS, oldRSs, err := s.replicaSets(ctx, d, rsList, false)
	if err != nil {
		return err
	}
	if err := s.scale(ctx, d, newRS, oldRSs); err != nil {
		return err
	}
	if d.Spec.Paused {
		if err := s.cleanup(ctx, d, oldRSs); err != nil {
			return err
		}
	}
	return s.syncStatus(ctx, d, append(oldRSs, newRS), newRS)
}

// scale resizes the ReplicaSets to a new spec.replicas, as Kubernetes'
// proportional scaling does.
func (s *pass) scale(ctx context.Context, d *appsv1.Deployment, newRS *appsv1.ReplicaSet, oldRSs []*appsv1.ReplicaSet) error {
	want := replicas(d.Spec.Replicas)
	active := activeRSs(append(slices.Clone(oldRSs), newRS))
	// One active ReplicaSet (or none): it takes all the replicas.
	if len(active) <= 1 {
		target := newRS
		if len(active) == 1 {
			target = active[0]
		} else if target == nil && len(oldRSs) > 0 {
			latest := slices.Clone(oldRSs)
			byCreation(latest)
			target = latest[len(latest)-1]
		}
		if target == nil {
			return nil
		}
		return s.scaleRS(ctx, d, target, want)
	}
	// The new ReplicaSet is saturated: the old ones go.
	if newRS != nil && replicas(newRS.Spec.Replicas) == want && newRS.Status.AvailableReplicas == want {
		if desired, ok := intAnnotation(newRS, DesiredReplicasAnnotation); ok && desired == want {
			for _, rs := range activeRSs(oldRSs) {
				if err := s.scaleRS(ctx, d, rs, 0); err != nil {
					return err
				}
			}
			return nil
		}
	}
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		return nil
	}
	sizes := proportionalSizes(d, active)
	for _, rs := range active {
		if err := s.scaleRS(ctx, d, rs, sizes[rs.Name]); err != nil {
			return err
		}
	}
	return nil
}

func activeRSs(rss []*appsv1.ReplicaSet) []*appsv1.ReplicaSet {
	var out []*appsv1.ReplicaSet
	for _, rs := range rss {
		if rs != nil && replicas(rs.Spec.Replicas) > 0 {
			out = append(out, rs)
		}
	}
	return out
}

// scaleRS sets rs's replicas to size and its replicas annotations to d's
// current ones, recording a ScalingReplicaSet event when the size
// changes. rs is this pass's copy: it becomes what the API server
// returned, so that the status computed from the ReplicaSets afterwards
// counts the new size.
func (s *pass) scaleRS(ctx context.Context, d *appsv1.Deployment, rs *appsv1.ReplicaSet, size int32) error {
	from := replicas(rs.Spec.Replicas)
	next := rs.DeepCopy()
	annotated := setReplicasAnnotations(next, replicas(d.Spec.Replicas), replicas(d.Spec.Replicas)+maxSurge(d))
	if from == size && !annotated {
		return nil
	}
	next.Spec.Replicas = new(size)
	updated, err := s.c.client.ReplicaSets(rs.Namespace).Update(ctx, next)
	if err != nil {
		return fmt.Errorf("scaling replicaset %q to %d: %w", rs.Name, size, err)
	}
	*rs = *updated
	if from != size {
		op := "up"
		if size < from {
			op = "down"
		}
		s.c.recorder.Eventf(d, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled %s replica set %s from %d to %d", op, rs.Name, from, size)
		logging.From(ctx).Info("scaled replicaset", "replicaset", rs.Name, "from", from, "to", size)
	}
	return nil
}

// rolloutRolling takes one step of a rolling update: scale the new
// ReplicaSet up within the surge budget, or else the old ones down
// within the availability budget; once complete, clean up history.
func (s *pass) rolloutRolling(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) (controller.Result, error) {
	d, newRS, oldRSs, err := s.replicaSets(ctx, d, rsList, true)
	if err != nil {
		return controller.Result{}, err
	}
	allRSs := append(slices.Clone(oldRSs), newRS)

	if want := replicas(d.Spec.Replicas); replicas(newRS.Spec.Replicas) != want {
		size := want
		if replicas(newRS.Spec.Replicas) < want {
			size = newRSNewReplicas(d, allRSs, newRS)
		}
		if size != replicas(newRS.Spec.Replicas) {
			if err := s.scaleRS(ctx, d, newRS, size); err != nil {
				return controller.Result{}, err
			}
			return s.syncRolloutStatus(ctx, d, allRSs, newRS)
		}
	}

	if specReplicas(oldRSs) > 0 {
		if maxDown := maxScaledDown(d, allRSs, newRS); maxDown > 0 {
			old := activeRSs(oldRSs)
			byCreation(old)
			sizes := oldScaleDowns(d, old, newRS, maxDown)
			scaled := false
			for _, rs := range old {
				if size, ok := sizes[rs.Name]; ok && size != replicas(rs.Spec.Replicas) {
					if err := s.scaleRS(ctx, d, rs, size); err != nil {
						return controller.Result{}, err
					}
					scaled = true
				}
			}
			if scaled {
				return s.syncRolloutStatus(ctx, d, allRSs, newRS)
			}
		}
	}

	if complete(d, &d.Status) {
		if err := s.cleanup(ctx, d, oldRSs); err != nil {
			return controller.Result{}, err
		}
	}
	return s.syncRolloutStatus(ctx, d, allRSs, newRS)
}

// rolloutRecreate scales every old ReplicaSet to 0, waits until their
// pods are gone, then creates or scales up the new one.
func (s *pass) rolloutRecreate(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) (controller.Result, error) {
	d, newRS, oldRSs, err := s.replicaSets(ctx, d, rsList, false)
	if err != nil {
		return controller.Result{}, err
	}
	all := func() []*appsv1.ReplicaSet { return append(slices.Clone(oldRSs), newRS) }
	scaled := false
	for _, rs := range activeRSs(oldRSs) {
		if err := s.scaleRS(ctx, d, rs, 0); err != nil {
			return controller.Result{}, err
		}
		scaled = true
	}
	if scaled || s.oldPodsRunning(d, oldRSs) {
		return s.syncRolloutStatus(ctx, d, all(), newRS)
	}
	if newRS == nil {
		if d, newRS, oldRSs, err = s.replicaSets(ctx, d, rsList, true); err != nil {
			return controller.Result{}, err
		}
	}
	if err := s.scaleRS(ctx, d, newRS, replicas(d.Spec.Replicas)); err != nil {
		return controller.Result{}, err
	}
	if complete(d, &d.Status) {
		if err := s.cleanup(ctx, d, oldRSs); err != nil {
			return controller.Result{}, err
		}
	}
	return s.syncRolloutStatus(ctx, d, all(), newRS)
}

// oldPodsRunning reports whether any pod of the old ReplicaSets still
// exists and has not finished, terminating ones included.
func (s *pass) oldPodsRunning(d *appsv1.Deployment, oldRSs []*appsv1.ReplicaSet) bool {
	if total, _, _ := statusReplicas(oldRSs); total > 0 {
		return true
	}
	uids := map[types.UID]bool{}
	for _, rs := range oldRSs {
		uids[rs.UID] = true
	}
	objs, _ := s.c.podIndexer.ByIndex(cache.NamespaceIndex, d.Namespace)
	for _, o := range objs {
		pod := o.(*corev1.Pod)
		ref := metav1.GetControllerOf(pod)
		if ref == nil || !uids[ref.UID] {
			continue
		}
		if pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
			return true
		}
	}
	return false
}

// cleanup deletes the oldest old ReplicaSets beyond revisionHistoryLimit
// that have no replicas left.
func (s *pass) cleanup(ctx context.Context, d *appsv1.Deployment, oldRSs []*appsv1.ReplicaSet) error {
	if d.Spec.RevisionHistoryLimit == nil {
		return nil
	}
	victims := historyToDelete(oldRSs, *d.Spec.RevisionHistoryLimit)
	for _, rs := range victims {
		err := s.c.client.ReplicaSets(rs.Namespace).Delete(ctx, rs.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &rs.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting old replicaset %q: %w", rs.Name, err)
		}
		logging.From(ctx).Info("deleted old replicaset", "replicaset", rs.Name, "revision", revisionOf(rs))
	}
	return nil
}

// syncStatus writes the status computed from the ReplicaSets, without
// touching Progressing (paused, scaling, being deleted).
func (s *pass) syncStatus(ctx context.Context, d *appsv1.Deployment, allRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) error {
	st := calculateStatus(d, allRSs, newRS, s.now)
	if equality.Semantic.DeepEqual(d.Status, st) {
		return nil
	}
	d.Status = st
	_, err := s.updateStatus(ctx, d)
	return err
}

// syncRolloutStatus writes the status with the Progressing condition
// and asks to be called again when the progress deadline would pass.
func (s *pass) syncRolloutStatus(ctx context.Context, d *appsv1.Deployment, allRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) (controller.Result, error) {
	st := rolloutStatus(d, allRSs, newRS, s.now)
	if !equality.Semantic.DeepEqual(d.Status, st) {
		d.Status = st
		var err error
		if d, err = s.updateStatus(ctx, d); err != nil {
			return controller.Result{}, err
		}
	}
	return controller.Result{RequeueAfter: recheckAfter(d, &st, s.now)}, nil
}
