package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/events"
	"github.com/skiffdev/skiff/internal/informers"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/scheduler/algorithm"
)

// Scheduler binds pending pods to nodes. Create it with New and call Run
// once.
type Scheduler struct {
	cfg       Config
	client    *client.Client
	ownClient bool // the client was dialled by New, and Run closes it
	// log is the logger of Run's ctx, kept for the informers' event
	// handlers, which get no ctx; Run sets it once, before the informers
	// start.
	log *slog.Logger

	factory *informers.Factory
	pods    cache.SharedIndexInformer
	// synced report whether the handlers have seen every pod and node
	// that the informers' first lists returned.
	synced   []cache.InformerSynced
	queue    *Queue
	cache    *Cache
	recorder *events.Recorder

	// jobs feeds the bind workers: bindings, and status writes of
	// unschedulable pods.
	jobs chan func(context.Context)

	// start is where the next search begins among the nodes; only the
	// scheduling loop uses it.
	start int
}

// Run schedules pods with cfg until ctx ends; with leader election, only
// while this copy holds the Lease, each term with a fresh scheduler (and
// so fresh caches and queue). It logs through the logger ctx carries,
// with component=scheduler.
func Run(ctx context.Context, cfg Config) error {
	ctx, _ = logging.With(ctx, "component", "scheduler")
	if !cfg.LeaderElection.LeaderElect {
		s, err := New(cfg)
		if err != nil {
			return err
		}
		return s.Run(ctx)
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Client == nil {
		c, err := dial(cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		cfg.Client = c
	}
	// Each term as leader builds a fresh scheduler; a term that fails
	// (not one that merely lost the Lease) ends Run with its error.
	return cfg.LeaderElection.RunOrLeadE(ctx, cfg.Client, func(ctx context.Context) error {
		s, err := New(cfg)
		if err != nil {
			return err
		}
		return s.Run(ctx)
	})
}

// dial makes the scheduler's own client from cfg.Connection, naming the
// scheduler in the server's logs unless the binary named it already.
func dial(cfg Config) (*client.Client, error) {
	conn := cfg.Connection
	if conn.UserAgent == "" {
		conn.UserAgent = "scheduler"
	}
	return client.New(conn)
}

// New checks cfg and builds a scheduler. Nothing runs until Run.
func New(cfg Config) (*Scheduler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Scheduler{cfg: cfg, client: cfg.Client}
	if s.client == nil {
		c, err := dial(cfg)
		if err != nil {
			return nil, err
		}
		s.client, s.ownClient = c, true
	}
	clk := clock.RealClock{}
	s.queue = NewQueue(clk)
	s.cache = NewCache()
	s.jobs = make(chan func(context.Context), 4*cfg.BindWorkers)

	s.factory = informers.NewFactory(s.client, 0)
	s.pods = s.factory.Pods()
	podsReg, err := s.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.onPod(obj.(*corev1.Pod)) },
		UpdateFunc: func(old, obj any) { s.onPodUpdated(old.(*corev1.Pod), obj.(*corev1.Pod)) },
		DeleteFunc: func(obj any) {
			if pod, ok := tombstoned[*corev1.Pod](obj); ok {
				s.onPodDeleted(pod)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("watch pods: %w", err)
	}
	nodesReg, err := s.factory.Nodes().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.onNodeAdded(obj.(*corev1.Node)) },
		UpdateFunc: func(old, obj any) { s.onNodeUpdated(old.(*corev1.Node), obj.(*corev1.Node)) },
		DeleteFunc: func(obj any) {
			if node, ok := tombstoned[*corev1.Node](obj); ok {
				s.cache.RemoveNode(node.Name)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("watch nodes: %w", err)
	}
	s.synced = []cache.InformerSynced{podsReg.HasSynced, nodesReg.HasSynced}
	return s, nil
}

// Run starts the informers, waits for their caches, and schedules pods
// until ctx ends, logging through the logger ctx carries. It returns nil
// when ctx ends. Call it once.
func (s *Scheduler) Run(ctx context.Context) error {
	s.log = logging.From(ctx)
	if s.ownClient {
		defer s.client.Close()
	}
	s.recorder = events.NewRecorder(ctx, s.client, s.cfg.SchedulerName)
	defer s.recorder.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer s.factory.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	s.factory.Start(ctx)
	// Deciding before every node is in the cache would crowd the pods
	// onto the nodes seen first.
	if !cache.WaitForCacheSync(ctx.Done(), s.synced...) {
		return nil // ctx ended before the caches filled
	}
	s.log.Info("scheduler started", "nodes", s.cache.NodeCount(), "schedulerName", s.cfg.SchedulerName, "bindWorkers", s.cfg.BindWorkers)

	for range s.cfg.BindWorkers {
		wg.Go(func() { s.worker(ctx) })
	}
	wg.Go(func() { s.queue.Run(ctx) })

	for ctx.Err() == nil {
		s.scheduleOne(ctx)
	}
	s.log.Info("scheduler stopped")
	return nil
}

// scheduleOne takes the next pod off the queue and decides where it goes:
// on success it counts the pod on the node at once and hands the binding
// to a worker; when no node fits, it records why and parks the pod.
func (s *Scheduler) scheduleOne(ctx context.Context) {
	qp, err := s.queue.Pop(ctx)
	if err != nil {
		return
	}
	key := podKey(qp.Pod)
	pod, ok := s.pendingPod(key, qp.Pod)
	if !ok {
		s.queue.Done(qp) // bound, deleted, or replaced meanwhile
		return
	}
	res, err := s.cache.Schedule(pod, algorithm.Config{
		Weights:                  s.cfg.Weights,
		PercentageOfNodesToScore: s.cfg.PercentageOfNodesToScore,
		Start:                    s.start,
	})
	var fitErr *algorithm.FitError
	switch {
	case errors.As(err, &fitErr), errors.Is(err, algorithm.ErrNoNodesAvailable):
		// Nothing fits now; a change in the cluster may change that.
		s.unschedulable(ctx, qp, pod, err.Error())
		return
	case err != nil:
		s.log.Error("cannot schedule pod", "pod", key, "attempts", qp.Attempts, "err", err)
		s.queue.Requeue(qp, false)
		return
	}
	s.start = res.NextStart

	if err := s.cache.Assume(pod, res.Node); err != nil {
		// The node went away between the decision and now.
		s.log.Info("cannot assume pod", "pod", key, "node", res.Node, "err", err)
		s.queue.Requeue(qp, false)
		return
	}
	s.log.Debug("pod assumed", "pod", key, "node", res.Node, "evaluated", res.Evaluated, "feasible", res.Feasible)
	s.submit(ctx, func(ctx context.Context) { s.bind(ctx, qp, pod, res.Node) })
}

// pendingPod returns the newest version of the pod the queue handed out,
// if it still needs scheduling: it exists, is the same pod (uid), is not
// bound, and is not counted on a node already.
func (s *Scheduler) pendingPod(key string, queued *corev1.Pod) (*corev1.Pod, bool) {
	obj, exists, err := s.pods.GetStore().GetByKey(key)
	if err != nil || !exists {
		return nil, false
	}
	pod := obj.(*corev1.Pod)
	if pod.UID != queued.UID || !s.responsibleFor(pod) || s.cache.Counted(pod) {
		return nil, false
	}
	return pod, true
}

// bind writes the binding of pod to node. On success the assumption
// waits for the watch to confirm it, however long that takes; on failure
// it is forgotten, which may let a parked pod fit, and the pod is tried
// again, unless it was bound by someone else or deleted.
func (s *Scheduler) bind(ctx context.Context, qp *QueuedPod, pod *corev1.Pod, node string) {
	key := podKey(pod)
	err := s.client.Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: node},
	})
	switch {
	case err == nil:
		s.queue.Done(qp)
		s.log.Debug("pod bound", "pod", key, "node", node)
		s.recorder.Eventf(pod, corev1.EventTypeNormal, "Scheduled", "Successfully assigned %s to %s", key, node)
	case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
		// Bound by someone else, or deleted: nothing left to do but
		// give back the capacity, which a parked pod may fit.
		s.queue.Done(qp)
		s.log.Debug("pod not bound", "pod", key, "node", node, "err", err)
		if s.cache.Forget(pod) {
			s.moveUnschedulable("binding failed")
		}
	case ctx.Err() != nil:
		// Shutting down: the pod stays pending for the next scheduler.
	default:
		s.queue.Requeue(qp, false)
		s.log.Error("binding failed", "pod", key, "node", node, "err", err)
		// The capacity given back may fit a parked pod.
		if s.cache.Forget(pod) {
			s.moveUnschedulable("binding failed")
		}
	}
}

// unschedulable handles a pod that fits no node: a FailedScheduling event
// each time, the PodScheduled=False condition when its message changes,
// and the pod parked until the cluster changes.
func (s *Scheduler) unschedulable(ctx context.Context, qp *QueuedPod, pod *corev1.Pod, message string) {
	s.queue.Requeue(qp, true)
	s.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedScheduling", "%s", message)
	if !conditionNeedsUpdate(pod, message) {
		s.log.Debug("pod is still unschedulable", "pod", podKey(pod), "attempts", qp.Attempts)
		return
	}
	s.log.Info("pod is unschedulable", "pod", podKey(pod), "attempts", qp.Attempts, "reason", message)
	s.submit(ctx, func(ctx context.Context) { s.writeUnschedulable(ctx, pod, message) })
}

// writeUnschedulable sets the pod's PodScheduled condition to False with
// reason Unschedulable and the decision's message. pod is the version the
// decision was made from; the write is a compare-and-swap on its
// resourceVersion, because a write delayed in a busy worker must not
// overwrite what happened since (PodScheduled=True of a pod bound
// meanwhile). A Conflict or NotFound means the pod moved on: the write
// is dropped, and the next decision about it writes afresh if needed.
func (s *Scheduler) writeUnschedulable(ctx context.Context, pod *corev1.Pod, message string) {
	key := podKey(pod)
	if obj, exists, err := s.pods.GetStore().GetByKey(key); err == nil && exists {
		if cur := obj.(*corev1.Pod); cur.UID != pod.UID || cur.Spec.NodeName != "" {
			return // bound or replaced since the decision: saves a Conflict
		}
	}
	cond := corev1.PodCondition{
		Type:               corev1.PodScheduled,
		Status:             corev1.ConditionFalse,
		Reason:             corev1.PodReasonUnschedulable,
		Message:            message,
		LastTransitionTime: metav1.Now(),
	}
	if old := podCondition(pod, corev1.PodScheduled); old != nil && old.Status == cond.Status {
		cond.LastTransitionTime = old.LastTransitionTime
	}
	// A strategic merge patch merges conditions by type, leaving the
	// other conditions alone; the API server refuses it with Conflict
	// when metadata.resourceVersion is no longer the pod's.
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": pod.ResourceVersion},
		"status":   map[string]any{"conditions": []corev1.PodCondition{cond}},
	})
	if err != nil {
		s.log.Error("cannot encode the pod's condition", "pod", key, "err", err)
		return
	}
	_, err = s.client.Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, "status")
	switch {
	case err == nil:
	case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
		s.log.Debug("pod changed before its condition was written", "pod", key, "err", err)
	case ctx.Err() == nil:
		s.log.Error("cannot write the pod's condition", "pod", key, "err", err)
	}
}

// submit hands a job to the workers, waiting while they are all busy.
func (s *Scheduler) submit(ctx context.Context, job func(context.Context)) {
	select {
	case s.jobs <- job:
	case <-ctx.Done():
	}
}

// worker runs jobs until ctx ends.
func (s *Scheduler) worker(ctx context.Context) {
	for {
		select {
		case job := <-s.jobs:
			job(ctx)
		case <-ctx.Done():
			return
		}
	}
}

// onPod handles a pod added or changed: a pending pod of this scheduler
// goes to the queue; a bound pod to the cache.
func (s *Scheduler) onPod(pod *corev1.Pod) {
	switch {
	case pod.Spec.NodeName != "":
		s.queue.Delete(podKey(pod))
		if s.cache.SetPod(pod) {
			s.moveUnschedulable("pod finished")
		}
	case s.responsibleFor(pod):
		s.queue.Add(pod)
	default:
		s.queue.Delete(podKey(pod))
	}
}

// onPodUpdated handles a pod changed. A pod deleted and created again
// under the same name while the watch was down shows up as one update
// from the old pod (one UID) to the new one (another) when the informer
// relists: the old pod is gone, and the new one is another pod, as
// kube-scheduler treats it.
func (s *Scheduler) onPodUpdated(old, pod *corev1.Pod) {
	if old.UID != pod.UID {
		s.onPodDeleted(old)
	}
	s.onPod(pod)
}

// onPodDeleted handles a pod deleted: it leaves the queue, and its node
// has room again.
func (s *Scheduler) onPodDeleted(pod *corev1.Pod) {
	key := podKey(pod)
	s.queue.Delete(key)
	if s.cache.RemovePod(key) {
		s.moveUnschedulable("pod deleted")
	}
}

func (s *Scheduler) onNodeAdded(node *corev1.Node) {
	s.cache.SetNode(node)
	s.moveUnschedulable("node added")
}

func (s *Scheduler) onNodeUpdated(old, node *corev1.Node) {
	s.cache.SetNode(node)
	if nodeChanged(old, node) {
		s.moveUnschedulable("node changed")
	}
}

// moveUnschedulable gives the parked pods another try after event.
func (s *Scheduler) moveUnschedulable(event string) {
	if n := s.queue.MoveAllToActiveOrBackoff(); n > 0 {
		s.log.Debug("unschedulable pods moved", "event", event, "pods", n)
	}
}

// responsibleFor reports whether pod waits for this scheduler: not bound,
// not being deleted, not finished, and with our scheduler name (an empty
// one counts as the default scheduler's).
func (s *Scheduler) responsibleFor(pod *corev1.Pod) bool {
	name := pod.Spec.SchedulerName
	if name == "" {
		name = corev1.DefaultSchedulerName
	}
	return pod.Spec.NodeName == "" && pod.DeletionTimestamp == nil && !podFinished(pod) && name == s.cfg.SchedulerName
}

// nodeChanged reports whether a node changed in a way that could make a
// pod fit that did not: allocatable resources, labels, taints,
// schedulability or readiness. Heartbeats do not count.
func nodeChanged(old, node *corev1.Node) bool {
	return !equality.Semantic.DeepEqual(old.Status.Allocatable, node.Status.Allocatable) ||
		!maps.Equal(old.Labels, node.Labels) ||
		!slices.EqualFunc(old.Spec.Taints, node.Spec.Taints, func(a, b corev1.Taint) bool { return a.MatchTaint(&b) && a.Value == b.Value }) ||
		old.Spec.Unschedulable != node.Spec.Unschedulable ||
		algorithm.ReadyStatus(old) != algorithm.ReadyStatus(node)
}

// conditionNeedsUpdate reports whether the pod's PodScheduled condition
// differs from False/Unschedulable with message.
func conditionNeedsUpdate(pod *corev1.Pod, message string) bool {
	c := podCondition(pod, corev1.PodScheduled)
	return c == nil || c.Status != corev1.ConditionFalse || c.Reason != corev1.PodReasonUnschedulable || c.Message != message
}

func podCondition(pod *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == t {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// tombstoned returns the object of a delete notification, which is the
// object itself or, when the watch missed the delete, a tombstone
// holding its last known state.
func tombstoned[T any](obj any) (T, bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	v, ok := obj.(T)
	return v, ok
}
