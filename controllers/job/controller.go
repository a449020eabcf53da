package job

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/skiffdev/skiff/controllers/controller"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/events"
	"github.com/skiffdev/skiff/internal/logging"
)

// Name is the controller's name in logs, in the queue and in events.
const Name = "job"

// controllerKind is the kind of the ownerReferences this controller
// writes on pods.
var controllerKind = batchv1.SchemeGroupVersion.WithKind("Job")

// ownerIndex indexes pods by the UID of the Job that controls them.
const ownerIndex = "job.batch/controller-uid"

// Config configures the controller.
type Config struct {
	// Workers is how many Jobs are reconciled at once.
	Workers int
	// PodFailureBackoff is the wait before replacing a failed pod; it
	// doubles with each failure since the last success, up to
	// MaxPodFailureBackoff (Kubernetes: 10 s and 6 min).
	PodFailureBackoff, MaxPodFailureBackoff time.Duration
	// BurstPods caps the pods one Reconcile creates; the rest wait for
	// the next Reconcile (Kubernetes: 500).
	BurstPods int
	// ExpectationsTTL is how long a Reconcile waits for its informer to
	// show the pods it created or deleted before it trusts the cache
	// again (Kubernetes: 5 minutes).
	ExpectationsTTL time.Duration
	// WriteTimeout bounds each write.
	WriteTimeout time.Duration
}

// DefaultConfig returns Kubernetes' defaults.
func DefaultConfig() Config {
	return Config{
		Workers:              5,
		PodFailureBackoff:    10 * time.Second,
		MaxPodFailureBackoff: 6 * time.Minute,
		BurstPods:            500,
		ExpectationsTTL:      5 * time.Minute,
		WriteTimeout:         30 * time.Second,
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.Workers < 1 {
		errs = append(errs, errors.New("workers must be at least 1"))
	}
	if c.PodFailureBackoff <= 0 {
		errs = append(errs, errors.New("pod failure backoff must be positive"))
	}
	if c.MaxPodFailureBackoff < c.PodFailureBackoff {
		errs = append(errs, errors.New("max pod failure backoff must be at least the pod failure backoff"))
	}
	if c.BurstPods < 1 {
		errs = append(errs, errors.New("burst pods must be at least 1"))
	}
	if c.ExpectationsTTL <= 0 {
		errs = append(errs, errors.New("expectations TTL must be positive"))
	}
	if c.WriteTimeout <= 0 {
		errs = append(errs, errors.New("write timeout must be positive"))
	}
	return errors.Join(errs...)
}

// Controller is the Job controller. Build it with New; Run it.
type Controller struct {
	*controller.Loop
	cfg          Config
	client       *client.Client
	recorder     events.EventRecorder
	clock        clock.PassiveClock
	jobIndexer   cache.Indexer
	podIndexer   cache.Indexer
	expectations *controller.Expectations
	removed      *removals

	// afterStatus, when set (only by tests), is called after each
	// status write.
	afterStatus func(batchv1.JobStatus)
}

// New builds the controller and adds its event handlers (and the pod
// index by owning Job) to the Job and pod informers of deps. Start them
// after New.
func New(deps controller.Deps, cfg Config) (*Controller, error) {
	deps, err := deps.Complete()
	if err = errors.Join(err, cfg.Validate()); err != nil {
		return nil, err
	}
	jobInformer, podInformer := deps.Informers.Jobs(), deps.Informers.Pods()
	if _, exists := podInformer.GetIndexer().GetIndexers()[ownerIndex]; !exists {
		if err := podInformer.AddIndexers(cache.Indexers{ownerIndex: ownerIndexFunc}); err != nil {
			return nil, fmt.Errorf("pod index %q: %w", ownerIndex, err)
		}
	}
	c := &Controller{
		cfg:          cfg,
		client:       deps.Client,
		recorder:     deps.Recorder,
		clock:        deps.Clock,
		jobIndexer:   jobInformer.GetIndexer(),
		podIndexer:   podInformer.GetIndexer(),
		expectations: controller.NewExpectations(cfg.ExpectationsTTL, deps.Clock),
		removed:      &removals{uids: map[types.UID]bool{}},
	}
	c.Loop = controller.NewLoop(Name, cfg.Workers, c)
	err = errors.Join(
		c.Watch(jobInformer, cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { controller.Enqueue(c.Queue(), obj) },
			UpdateFunc: func(_, obj any) { controller.Enqueue(c.Queue(), obj) },
			DeleteFunc: func(obj any) {
				if key, ok := controller.Key(obj); ok {
					c.expectations.Forget(key)
					c.Queue().Add(key)
				}
			},
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

// ownerIndexFunc indexes a pod by the UID of its controlling Job.
func ownerIndexFunc(obj any) ([]string, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, nil
	}
	if ref := jobRef(pod); ref != nil {
		return []string{string(ref.UID)}, nil
	}
	return nil, nil
}

// jobRef returns a pod's controller reference when it names a Job.
func jobRef(pod *corev1.Pod) *metav1.OwnerReference {
	ref := metav1.GetControllerOf(pod)
	if ref == nil || ref.Kind != controllerKind.Kind || ref.APIVersion != controllerKind.GroupVersion().String() {
		return nil
	}
	return ref
}

// Event handlers: they only tick off expectations and removals, and
// enqueue the owning Job's key.

// orphanPrefix starts the queue key of a pod that has the tracking
// finalizer but no Job as controller any more ("pod:namespace/name"):
// orphaned by a deletion with propagation Orphan, or released by hand.
const orphanPrefix = "pod:"

// enqueueOrphan queues a pod that holds the tracking finalizer without
// a Job controlling it, for the finalizer to be removed.
func (c *Controller) enqueueOrphan(pod *corev1.Pod) {
	if hasFinalizer(pod) {
		c.Queue().Add(orphanPrefix + pod.Namespace + "/" + pod.Name)
	}
}

func (c *Controller) addPod(obj any) {
	pod := obj.(*corev1.Pod)
	ref := jobRef(pod)
	if ref == nil {
		c.enqueueOrphan(pod)
		return
	}
	key := pod.Namespace + "/" + ref.Name
	if pod.DeletionTimestamp != nil {
		c.deletePod(pod)
		return
	}
	c.expectations.CreationObserved(key)
	c.Queue().Add(key)
}

func (c *Controller) updatePod(oldObj, obj any) {
	pod := obj.(*corev1.Pod)
	ref := jobRef(pod)
	if old := jobRef(oldObj.(*corev1.Pod)); old != nil && (ref == nil || ref.UID != old.UID) {
		// Released: its Job has one pod less.
		c.Queue().Add(pod.Namespace + "/" + old.Name)
	}
	if ref == nil {
		c.enqueueOrphan(pod)
		return
	}
	key := pod.Namespace + "/" + ref.Name
	if !hasFinalizer(pod) {
		c.removed.observed(pod.UID)
	}
	if pod.DeletionTimestamp != nil {
		c.expectations.DeletionObserved(key, pod.Namespace+"/"+pod.Name)
	}
	c.Queue().Add(key)
}

func (c *Controller) deletePod(obj any) {
	pod, ok := controller.Unwrap[*corev1.Pod](obj)
	if !ok {
		return
	}
	ref := jobRef(pod)
	if ref == nil {
		return
	}
	key := pod.Namespace + "/" + ref.Name
	if pod.DeletionTimestamp == nil || !hasFinalizer(pod) {
		// Gone from the store (not just terminating): nothing to wait for.
		c.removed.observed(pod.UID)
	}
	c.expectations.DeletionObserved(key, pod.Namespace+"/"+pod.Name)
	c.Queue().Add(key)
}

// Reconcile converges the Job called key: it reads the Job and its pods
// from the caches, decides (Decide), and carries the plan out in the
// order its documentation gives.
func (c *Controller) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	if podKey, ok := strings.CutPrefix(key, orphanPrefix); ok {
		return controller.Result{}, c.releaseOrphan(ctx, podKey)
	}
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return controller.Result{}, nil
	}
	obj, exists, err := c.jobIndexer.GetByKey(key)
	if err != nil {
		return controller.Result{}, fmt.Errorf("job %q: %w", key, err)
	}
	if !exists {
		c.expectations.Forget(key)
		return controller.Result{}, c.releaseOrphans(ctx, namespace, name, "")
	}
	job := obj.(*batchv1.Job)
	ctx, _ = logging.With(ctx, "job", key)
	// Pods of an earlier Job of the same name lose their finalizer.
	if err := c.releaseOrphans(ctx, namespace, name, job.UID); err != nil {
		return controller.Result{}, err
	}

	// Expectations before the cache: an event in between only makes
	// this Reconcile more careful.
	satisfied, expectWait := c.expectations.Satisfied(key)
	pods := c.podsOf(job)
	plan := Decide(Input{
		Job: job, Pods: pods, Removed: c.removed.of(pods), Now: c.clock.Now(),
		Backoff: c.cfg.PodFailureBackoff, MaxBackoff: c.cfg.MaxPodFailureBackoff,
	})
	if !satisfied {
		plan.Create, plan.Delete = nil, nil
		plan.requeue(expectWait)
	}

	if !equality.Semantic.DeepEqual(job.Status, plan.Status) {
		next := job.DeepCopy()
		next.Status = plan.Status
		wctx, cancel := context.WithTimeout(ctx, c.cfg.WriteTimeout)
		_, err := c.client.Jobs(job.Namespace).UpdateStatus(wctx, next)
		cancel()
		if err != nil {
			// A conflict means the cache was behind: decide again.
			return controller.Result{}, fmt.Errorf("job %q: updating status: %w", key, err)
		}
		if c.afterStatus != nil {
			c.afterStatus(plan.Status)
		}
	}
	for _, e := range plan.Events {
		c.recorder.Eventf(job, e.Type, e.Reason, "%s", e.Message)
	}
	errs := []error{c.removeFinalizers(ctx, plan.RemoveFinalizers)}
	if len(plan.Create) > 0 {
		errs = append(errs, c.createPods(ctx, key, job, plan.Create))
	}
	if len(plan.Delete) > 0 {
		errs = append(errs, c.deletePods(ctx, key, job, plan.Delete))
	}
	if plan.DeleteJob {
		errs = append(errs, c.expire(ctx, job))
	}
	return controller.Result{RequeueAfter: plan.RequeueAfter}, errors.Join(errs...)
}

// podsOf returns the cached pods job controls.
func (c *Controller) podsOf(job *batchv1.Job) []*corev1.Pod {
	objs, _ := c.podIndexer.ByIndex(ownerIndex, string(job.UID))
	pods := make([]*corev1.Pod, 0, len(objs))
	for _, o := range objs {
		pods = append(pods, o.(*corev1.Pod))
	}
	return pods
}

// releaseOrphans removes the tracking finalizer from the pods of a Job
// called name that is gone: its pods must not stay forever. Pods of the
// Job with UID keep are left alone.
func (c *Controller) releaseOrphans(ctx context.Context, namespace, name string, keep types.UID) error {
	objs, err := c.podIndexer.ByIndex(cache.NamespaceIndex, namespace)
	if err != nil {
		return err
	}
	var orphans []*corev1.Pod
	for _, o := range objs {
		pod := o.(*corev1.Pod)
		if ref := jobRef(pod); ref != nil && ref.Name == name && ref.UID != keep && hasFinalizer(pod) && !c.removed.has(pod.UID) {
			orphans = append(orphans, pod)
		}
	}
	return c.removeFinalizers(ctx, orphans)
}

// releaseOrphan removes the tracking finalizer from the pod called key
// if no Job controls it: no Job will ever count it.
func (c *Controller) releaseOrphan(ctx context.Context, key string) error {
	obj, exists, err := c.podIndexer.GetByKey(key)
	if err != nil || !exists {
		return err
	}
	pod := obj.(*corev1.Pod)
	if jobRef(pod) != nil || !hasFinalizer(pod) || c.removed.has(pod.UID) {
		return nil
	}
	return c.removeFinalizers(ctx, []*corev1.Pod{pod})
}

// removeFinalizers removes the tracking finalizer from pods, at most 8
// at a time, and remembers each removal until the cache shows it.
func (c *Controller) removeFinalizers(ctx context.Context, pods []*corev1.Pod) error {
	if len(pods) == 0 {
		return nil
	}
	patch := []byte(`{"metadata":{"$deleteFromPrimitiveList/finalizers":["` + batchv1.JobTrackingFinalizer + `"]}}`)
	errs := make([]error, len(pods))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, pod := range pods {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			wctx, cancel := context.WithTimeout(ctx, c.cfg.WriteTimeout)
			defer cancel()
			_, err := c.client.Pods(pod.Namespace).Patch(wctx, pod.Name, types.StrategicMergePatchType, patch)
			switch {
			case err == nil || apierrors.IsNotFound(err):
				c.removed.add(pod.UID)
			default:
				errs[i] = fmt.Errorf("removing the finalizer of pod %s/%s: %w", pod.Namespace, pod.Name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// createPods creates one pod per entry of indexes, at most BurstPods,
// in batches that grow while they succeed (1, 2, 4, ...), as Kubernetes
// does: a Job whose pods are refused fails fast instead of flooding the
// API server.
func (c *Controller) createPods(ctx context.Context, key string, job *batchv1.Job, indexes []int) error {
	indexes = indexes[:min(len(indexes), c.cfg.BurstPods)]
	c.expectations.Expect(key, len(indexes), nil)
	logging.From(ctx).Info("creating pods", "count", len(indexes))
	done := 0
	for batch := 1; done < len(indexes); batch = min(batch*2, len(indexes)-done) {
		batch = min(batch, len(indexes)-done)
		errs := make([]error, batch)
		var wg sync.WaitGroup
		for i := range batch {
			ix := indexes[done+i]
			wg.Go(func() { errs[i] = c.createPod(ctx, job, ix) })
		}
		wg.Wait()
		done += batch
		if err := errors.Join(errs...); err != nil {
			failed := 0
			for _, e := range errs {
				if e != nil {
					failed++
				}
			}
			// Pods not created will never be observed.
			for range failed + len(indexes) - done {
				c.expectations.CreationObserved(key)
			}
			return err
		}
	}
	return nil
}

func (c *Controller) createPod(ctx context.Context, job *batchv1.Job, index int) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("job %s/%s: not creating pod: %w", job.Namespace, job.Name, err)
	}
	wctx, cancel := context.WithTimeout(ctx, c.cfg.WriteTimeout)
	defer cancel()
	pod, err := c.client.Pods(job.Namespace).Create(wctx, newPod(job, index))
	if err != nil {
		c.recorder.Eventf(job, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
		return fmt.Errorf("job %s/%s: creating pod: %w", job.Namespace, job.Name, err)
	}
	c.recorder.Eventf(job, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %v", pod.Name)
	return nil
}

// deletePods deletes active pods of job.
func (c *Controller) deletePods(ctx context.Context, key string, job *batchv1.Job, pods []*corev1.Pod) error {
	podKeys := make([]string, len(pods))
	for i, p := range pods {
		podKeys[i] = p.Namespace + "/" + p.Name
	}
	c.expectations.Expect(key, 0, podKeys)
	errs := make([]error, len(pods))
	var wg sync.WaitGroup
	for i, pod := range pods {
		wg.Go(func() {
			wctx, cancel := context.WithTimeout(ctx, c.cfg.WriteTimeout)
			defer cancel()
			err := c.client.Pods(pod.Namespace).Delete(wctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pod.UID}})
			if err != nil {
				c.expectations.DeletionObserved(key, podKeys[i])
				if !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
					c.recorder.Eventf(job, corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
					errs[i] = fmt.Errorf("job %s/%s: deleting pod %q: %w", job.Namespace, job.Name, pod.Name, err)
				}
				return
			}
			c.recorder.Eventf(job, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %v", pod.Name)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// expire deletes a finished Job whose ttlSecondsAfterFinished has
// passed, in the foreground as Kubernetes' TTL-after-finished controller
// does: the Job stays, marked, until the garbage collector has deleted
// its pods.
func (c *Controller) expire(ctx context.Context, job *batchv1.Job) error {
	fg := metav1.DeletePropagationForeground
	wctx, cancel := context.WithTimeout(ctx, c.cfg.WriteTimeout)
	defer cancel()
	err := c.client.Jobs(job.Namespace).Delete(wctx, job.Name, metav1.DeleteOptions{
		PropagationPolicy: &fg,
		Preconditions:     &metav1.Preconditions{UID: &job.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("job %s/%s: deleting after ttlSecondsAfterFinished: %w", job.Namespace, job.Name, err)
	}
	logging.From(ctx).Info("deleted finished job", "ttlSecondsAfterFinished", *job.Spec.TTLSecondsAfterFinished)
	return nil
}

// newPod returns a pod to create for job: named "<job>-<5 random
// characters>" by the API server ("<job>-<index>-..." when Indexed),
// with the template's labels, annotations and spec, the tracking
// finalizer, and job as its controller. An Indexed Job's pod carries its
// index as an annotation and a label, its hostname is "<job>-<index>",
// and every container gets JOB_COMPLETION_INDEX from the annotation.
func newPod(job *batchv1.Job, index int) *corev1.Pod {
	t := &job.Spec.Template
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    job.Name + "-",
			Namespace:       job.Namespace,
			Labels:          maps.Clone(t.Labels),
			Annotations:     maps.Clone(t.Annotations),
			Finalizers:      append(slices.Clone(t.Finalizers), batchv1.JobTrackingFinalizer),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(job, controllerKind)},
		},
		Spec: *t.Spec.DeepCopy(),
	}
	if index == NoIndex {
		return pod
	}
	ix := strconv.Itoa(index)
	pod.GenerateName = job.Name + "-" + ix + "-"
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[batchv1.JobCompletionIndexAnnotation] = ix
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[batchv1.JobCompletionIndexAnnotation] = ix
	if pod.Spec.Hostname == "" {
		pod.Spec.Hostname = job.Name + "-" + ix
	}
	env := corev1.EnvVar{Name: "JOB_COMPLETION_INDEX", ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations['" + batchv1.JobCompletionIndexAnnotation + "']"},
	}}
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			if !slices.ContainsFunc(cs[i].Env, func(e corev1.EnvVar) bool { return e.Name == env.Name }) {
				cs[i].Env = append(cs[i].Env, env)
			}
		}
	}
	return pod
}

// removals remembers the pods whose tracking finalizer this controller
// removed until the pod cache shows it gone: until then the cache would
// make a counted pod look uncounted.
type removals struct {
	// mu guards uids.
	mu   sync.Mutex
	uids map[types.UID]bool
}

func (r *removals) add(uid types.UID) {
	r.mu.Lock()
	r.uids[uid] = true
	r.mu.Unlock()
}

func (r *removals) observed(uid types.UID) {
	r.mu.Lock()
	delete(r.uids, uid)
	r.mu.Unlock()
}

func (r *removals) has(uid types.UID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.uids[uid]
}

// of returns the removals among pods.
func (r *removals) of(pods []*corev1.Pod) map[types.UID]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[types.UID]bool{}
	for _, p := range pods {
		if r.uids[p.UID] {
			out[p.UID] = true
		}
	}
	return out
}
