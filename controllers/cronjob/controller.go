package cronjob

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/skiffdev/skiff/controllers/controller"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/events"
	"github.com/skiffdev/skiff/internal/logging"
)

// Name is the controller's name in logs, in the queue and in events.
const Name = "cronjob"

// controllerKind is the kind of the ownerReferences this controller
// writes on Jobs.
var controllerKind = batchv1.SchemeGroupVersion.WithKind("CronJob")

// ownerIndex indexes Jobs by the UID of the CronJob that controls them.
const ownerIndex = "cronjob.batch/controller-uid"

// Config configures the controller.
type Config struct {
	// Workers is how many CronJobs are reconciled at once.
	Workers int
	// WriteTimeout bounds each write.
	WriteTimeout time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Workers: 5, WriteTimeout: 30 * time.Second}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.Workers < 1 {
		errs = append(errs, errors.New("workers must be at least 1"))
	}
	if c.WriteTimeout <= 0 {
		errs = append(errs, errors.New("write timeout must be positive"))
	}
	return errors.Join(errs...)
}

// Controller is the CronJob controller. Build it with New; Run it.
type Controller struct {
	*controller.Loop
	cfg        Config
	client     *client.Client
	recorder   events.EventRecorder
	clock      clock.PassiveClock
	cjIndexer  cache.Indexer
	jobIndexer cache.Indexer

	// afterStart, when set (only by tests), is called after a Job is
	// created, before the status that records it is written.
	afterStart func()
}

// New builds the controller and adds its event handlers (and the Job
// index by owning CronJob) to the CronJob and Job informers of deps.
// Start them after New.
func New(deps controller.Deps, cfg Config) (*Controller, error) {
	deps, err := deps.Complete()
	if err = errors.Join(err, cfg.Validate()); err != nil {
		return nil, err
	}
	cjInformer, jobInformer := deps.Informers.CronJobs(), deps.Informers.Jobs()
	if _, exists := jobInformer.GetIndexer().GetIndexers()[ownerIndex]; !exists {
		if err := jobInformer.AddIndexers(cache.Indexers{ownerIndex: ownerIndexFunc}); err != nil {
			return nil, fmt.Errorf("job index %q: %w", ownerIndex, err)
		}
	}
	c := &Controller{
		cfg:        cfg,
		client:     deps.Client,
		recorder:   deps.Recorder,
		clock:      deps.Clock,
		cjIndexer:  cjInformer.GetIndexer(),
		jobIndexer: jobInformer.GetIndexer(),
	}
	c.Loop = controller.NewLoop(Name, cfg.Workers, c)
	enqueueOwner := func(obj any) {
		j, ok := controller.Unwrap[*batchv1.Job](obj)
		if !ok {
			return
		}
		if ref := metav1.GetControllerOf(j); ref != nil && ref.Kind == controllerKind.Kind && ref.APIVersion == controllerKind.GroupVersion().String() {
			c.Queue().Add(j.Namespace + "/" + ref.Name)
		}
	}
	err = errors.Join(
		c.Watch(cjInformer, controller.EnqueueHandler(c.Queue())),
		c.Watch(jobInformer, cache.ResourceEventHandlerFuncs{
			AddFunc:    enqueueOwner,
			UpdateFunc: func(_, obj any) { enqueueOwner(obj) },
			DeleteFunc: enqueueOwner,
		}),
	)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func ownerIndexFunc(obj any) ([]string, error) {
	j, ok := obj.(*batchv1.Job)
	if !ok {
		return nil, nil
	}
	if ref := metav1.GetControllerOf(j); ref != nil && ref.Kind == controllerKind.Kind {
		return []string{string(ref.UID)}, nil
	}
	return nil, nil
}

// Reconcile converges the CronJob called key: it reads the CronJob and
// its Jobs from the caches, decides (Decide), and carries the plan out.
func (c *Controller) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	obj, exists, err := c.cjIndexer.GetByKey(key)
	if err != nil {
		return controller.Result{}, fmt.Errorf("cronjob %q: %w", key, err)
	}
	if !exists {
		return controller.Result{}, nil // the garbage collector deletes its Jobs
	}
	cj := obj.(*batchv1.CronJob)
	ctx, log := logging.With(ctx, "cronjob", key)
	objs, _ := c.jobIndexer.ByIndex(ownerIndex, string(cj.UID))
	jobs := make([]*batchv1.Job, 0, len(objs))
	for _, o := range objs {
		jobs = append(jobs, o.(*batchv1.Job))
	}
	plan := Decide(Input{CronJob: cj, Jobs: jobs, Now: c.clock.Now()})
	for _, e := range plan.Events {
		c.recorder.Eventf(cj, e.Type, e.Reason, "%s", e.Message)
	}

	var errs []error
	for _, j := range plan.DeleteJobs {
		errs = append(errs, c.deleteJob(ctx, cj, j))
	}
	// Replace starts the new run only once the old ones are deleted.
	if !plan.Start.IsZero() && errors.Join(errs...) == nil {
		j, err := c.startJob(ctx, cj, plan.Start)
		if err != nil {
			errs = append(errs, err)
		} else {
			plan.Status.LastScheduleTime = &metav1.Time{Time: plan.Start}
			if finished(j) == nil && !hasRef(plan.Status.Active, j) {
				plan.Status.Active = append(plan.Status.Active, ref(j))
			}
		}
	}
	if !equality.Semantic.DeepEqual(cj.Status, plan.Status) {
		next := cj.DeepCopy()
		next.Status = plan.Status
		wctx, cancel := context.WithTimeout(ctx, c.cfg.WriteTimeout)
		_, err := c.client.CronJobs(cj.Namespace).UpdateStatus(wctx, next)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("cronjob %q: updating status: %w", key, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return controller.Result{}, err
	}
	if plan.RequeueAfter > 0 {
		log.Debug("next start", "in", plan.RequeueAfter)
	}
	return controller.Result{RequeueAfter: plan.RequeueAfter}, nil
}

// startJob creates the Job of the run scheduled at t. If it exists and
// is this CronJob's, the run has started already (before a restart, or
// while the cache lagged): that Job is returned.
func (c *Controller) startJob(ctx context.Context, cj *batchv1.CronJob, t time.Time) (*batchv1.Job, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	want := newJob(cj, t)
	wctx, cancel := context.WithTimeout(ctx, c.cfg.WriteTimeout)
	defer cancel()
	j, err := c.client.Jobs(cj.Namespace).Create(wctx, want)
	if apierrors.IsAlreadyExists(err) {
		existing, gerr := c.client.Jobs(cj.Namespace).Get(wctx, want.Name)
		if gerr != nil {
			return nil, fmt.Errorf("cronjob %s/%s: job %q exists: %w", cj.Namespace, cj.Name, want.Name, gerr)
		}
		if ref := metav1.GetControllerOf(existing); ref == nil || ref.UID != cj.UID {
			return nil, fmt.Errorf("cronjob %s/%s: job %q exists and is not this cronjob's", cj.Namespace, cj.Name, want.Name)
		}
		return existing, nil
	}
	if err != nil {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "FailedCreate", "Error creating job: %v", err)
		return nil, fmt.Errorf("cronjob %s/%s: creating job: %w", cj.Namespace, cj.Name, err)
	}
	c.recorder.Eventf(cj, corev1.EventTypeNormal, "SuccessfulCreate", "Created job %v", j.Name)
	logging.From(ctx).Info("started job", "job", j.Name, "scheduled", t)
	if c.afterStart != nil {
		c.afterStart()
	}
	return j, nil
}

// deleteJob deletes one of the CronJob's Jobs, with its pods (background
// propagation, as Kubernetes does).
func (c *Controller) deleteJob(ctx context.Context, cj *batchv1.CronJob, j *batchv1.Job) error {
	bg := metav1.DeletePropagationBackground
	wctx, cancel := context.WithTimeout(ctx, c.cfg.WriteTimeout)
	defer cancel()
	err := c.client.Jobs(j.Namespace).Delete(wctx, j.Name, metav1.DeleteOptions{
		PropagationPolicy: &bg, Preconditions: &metav1.Preconditions{UID: &j.UID},
	})
	switch {
	case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
		return nil
	case err != nil:
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "FailedDelete", "Deleted job: %v", err)
		return fmt.Errorf("cronjob %s/%s: deleting job %q: %w", cj.Namespace, cj.Name, j.Name, err)
	}
	c.recorder.Eventf(cj, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted job %v", j.Name)
	return nil
}

// newJob returns the Job of the CronJob's run scheduled at t, from its
// jobTemplate, controlled by the CronJob, with the scheduled time in the
// batch.kubernetes.io/cronjob-scheduled-timestamp annotation.
func newJob(cj *batchv1.CronJob, t time.Time) *batchv1.Job {
	tmpl := &cj.Spec.JobTemplate
	annotations := maps.Clone(tmpl.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[batchv1.CronJobScheduledTimestampAnnotation] = t.Format(time.RFC3339)
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:            JobName(cj.Name, t),
			Namespace:       cj.Namespace,
			Labels:          maps.Clone(tmpl.Labels),
			Annotations:     annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(cj, controllerKind)},
		},
		Spec: *tmpl.Spec.DeepCopy(),
	}
}

func hasRef(refs []corev1.ObjectReference, j *batchv1.Job) bool {
	for _, r := range refs {
		if r.UID == j.UID {
			return true
		}
	}
	return false
}
