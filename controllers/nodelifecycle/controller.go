package nodelifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/skiffdev/skiff/controllers/controller"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/events"
	"github.com/skiffdev/skiff/internal/informers"
	"github.com/skiffdev/skiff/internal/queue"
)

// Name names the controller in logs, events and the queue.
const Name = "nodelifecycle"

// Event reasons, as Kubernetes records them.
const (
	EventNodeNotReady         = "NodeNotReady"
	EventTaintManagerEviction = "TaintManagerEviction"
)

// Config configures the controller.
type Config struct {
	// Client writes nodes and pods.
	Client *client.Client
	// Informers provides the node, Lease and pod caches.
	Informers *informers.Factory
	// Recorder records NodeNotReady and TaintManagerEviction events.
	Recorder events.EventRecorder
	// GracePeriod is how long a node's Lease may go unrenewed before the
	// node is marked not ready (--node-monitor-grace-period).
	GracePeriod time.Duration
	// Workers is how many nodes are reconciled at once.
	Workers int
	// Clock tells the time the grace period and tolerationSeconds are
	// measured with. Nil means the real clock; tests inject a fake one.
	Clock clock.PassiveClock
}

// Controller is the node lifecycle controller.
type Controller struct {
	cfg    Config
	clock  clock.PassiveClock
	queue  workqueue.TypedRateLimitingInterface[string]
	nodes  cache.Indexer
	leases cache.Indexer
	pods   cache.Indexer

	mu     sync.Mutex
	health map[string]Observation // by node name
}

// New builds the controller and registers its informer handlers: node and
// Lease events enqueue the node, and pod events enqueue the pod's node
// while that node has a NoExecute taint (a pod arriving on it may have to
// be evicted).
func New(cfg Config) (*Controller, error) {
	if cfg.GracePeriod <= 0 {
		return nil, errors.New("grace period must be positive")
	}
	c := &Controller{cfg: cfg, clock: cfg.Clock, queue: queue.New(Name), health: map[string]Observation{}}
	if c.clock == nil {
		c.clock = clock.RealClock{}
	}
	if c.cfg.Workers < 1 {
		c.cfg.Workers = 1
	}
	nodes, leases, pods := cfg.Informers.Nodes(), cfg.Informers.Leases(), cfg.Informers.Pods()
	c.nodes, c.leases, c.pods = nodes.GetIndexer(), leases.GetIndexer(), pods.GetIndexer()
	if _, err := nodes.AddEventHandler(c.observeBy(func(obj any) string {
		_, name, _ := cache.SplitMetaNamespaceKey(mustKey(obj))
		return name
	})); err != nil {
		return nil, fmt.Errorf("watch nodes: %w", err)
	}
	if _, err := nodes.AddEventHandler(controller.EnqueueHandler(c.queue)); err != nil {
		return nil, fmt.Errorf("watch nodes: %w", err)
	}
	nodeLease := func(obj any) bool {
		key, ok := controller.Key(obj)
		ns, _, _ := cache.SplitMetaNamespaceKey(key)
		return ok && ns == corev1.NamespaceNodeLease
	}
	// A node Lease is named after its node.
	leaseNode := func(obj any) string {
		_, name, _ := cache.SplitMetaNamespaceKey(mustKey(obj))
		return name
	}
	if _, err := leases.AddEventHandler(cache.FilteringResourceEventHandler{
		FilterFunc: nodeLease,
		Handler:    c.observeBy(leaseNode),
	}); err != nil {
		return nil, fmt.Errorf("watch leases: %w", err)
	}
	if _, err := leases.AddEventHandler(cache.FilteringResourceEventHandler{
		FilterFunc: nodeLease,
		Handler:    c.enqueueBy(leaseNode),
	}); err != nil {
		return nil, fmt.Errorf("watch leases: %w", err)
	}
	if _, err := pods.AddEventHandler(c.enqueueBy(func(obj any) string {
		pod, ok := obj.(*corev1.Pod)
		if !ok || pod.Spec.NodeName == "" || !c.hasNoExecuteTaint(pod.Spec.NodeName) {
			return ""
		}
		return pod.Spec.NodeName
	})); err != nil {
		return nil, fmt.Errorf("watch pods: %w", err)
	}
	return c, nil
}

// Run reconciles nodes until ctx ends. The informers must be started and
// synced.
//
// Run first records every node as seen alive now, on the controller's
// clock: a controller that just started (or was just elected) knows
// nothing of how long ago a node last renewed, so it waits one grace
// period before it judges any node stale.
func (c *Controller) Run(ctx context.Context) {
	now := c.clock.Now()
	c.mu.Lock()
	clear(c.health)
	for _, obj := range c.nodes.List() {
		node := obj.(*corev1.Node)
		c.health[node.Name] = Observation{Heartbeat: HeartbeatOf(node, c.cachedLease(node.Name)), ObservedAt: now}
	}
	c.mu.Unlock()
	controller.Run(ctx, Name, c.cfg.Workers, c.queue, c)
}

// observe updates the record of the node name from the caches, at the
// controller's clock, and returns it. A node no longer cached is
// forgotten (ok false).
func (c *Controller) observe(name string) (obs Observation, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	obj, exists, _ := c.nodes.GetByKey(name)
	if !exists {
		delete(c.health, name)
		return Observation{}, false
	}
	prev, found := c.health[name]
	obs = Observe(prev, found, HeartbeatOf(obj.(*corev1.Node), c.cachedLease(name)), c.clock.Now())
	c.health[name] = obs
	return obs, true
}

// cachedLease returns the node's cached Lease, or nil.
func (c *Controller) cachedLease(name string) *coordinationv1.Lease {
	if obj, ok, _ := c.leases.GetByKey(corev1.NamespaceNodeLease + "/" + name); ok {
		return obj.(*coordinationv1.Lease)
	}
	return nil
}

// observeBy is an event handler that updates the record of the node
// nodeOf returns for an object, as the event arrives.
func (c *Controller) observeBy(nodeOf func(obj any) string) cache.ResourceEventHandler {
	observe := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if name := nodeOf(obj); name != "" {
			c.observe(name)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    observe,
		UpdateFunc: func(_, obj any) { observe(obj) },
		DeleteFunc: observe,
	}
}

// Reconcile brings one node (key: its name) and its pods in line with the
// freshness of the node's Lease; see the package doc for the steps.
func (c *Controller) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	log := slog.With("component", Name, "node", key)
	obj, exists, err := c.nodes.GetByKey(key)
	if err != nil || !exists {
		if err == nil {
			c.observe(key) // forgets the node
		}
		return controller.Result{}, err // a deleted node's pods are pod GC's
	}
	node := obj.(*corev1.Node).DeepCopy()
	// Staleness is measured on the controller's clock only: since it
	// last saw the node's heartbeat change, never from the node's
	// timestamps, which may be skewed.
	obs, ok := c.observe(key)
	if !ok {
		return controller.Result{}, nil
	}
	now := c.clock.Now()
	stale, left := Stale(obs.ObservedAt, now, c.cfg.GracePeriod)

	if stale {
		if readyChanged, changed := MarkUnknown(&node.Status, now); changed {
			if node, err = c.cfg.Client.Nodes().UpdateStatus(ctx, node); err != nil {
				return controller.Result{}, fmt.Errorf("mark node %q not ready: %w", key, err)
			}
			if readyChanged {
				log.Info("node stopped renewing its lease; marked not ready", "gracePeriod", c.cfg.GracePeriod)
				c.cfg.Recorder.Eventf(node, corev1.EventTypeNormal, EventNodeNotReady, "Node %s status is now: %s", key, EventNodeNotReady)
			}
		}
	}
	if taints, changed := DesiredTaints(node, stale, now); changed {
		node.Spec.Taints = taints
		if node, err = c.cfg.Client.Nodes().Update(ctx, node); err != nil {
			return controller.Result{}, fmt.Errorf("taint node %q: %w", key, err)
		}
		log.Info("node taints updated", "taints", taintStrings(taints))
	}

	pods, err := c.pods.ByIndex(informers.NodeNameIndex, key)
	if err != nil {
		return controller.Result{}, err
	}
	var errs []error
	next := time.Duration(-1)
	for _, obj := range pods {
		pod := obj.(*corev1.Pod)
		if pod.DeletionTimestamp != nil {
			continue
		}
		if stale {
			errs = append(errs, c.markPodNotReady(ctx, pod, now))
		}
		delay, evict := EvictionDelay(pod, node.Spec.Taints, now)
		switch {
		case !evict:
		case delay <= 0:
			errs = append(errs, c.evict(ctx, log, pod))
		case next < 0 || delay < next:
			next = delay
		}
	}
	if !stale && (next < 0 || left < next) {
		// Look again just after the grace period would run out; a
		// renewal before then enqueues the node anyway.
		next = left + time.Millisecond
	}
	return controller.Result{RequeueAfter: max(next, 0)}, errors.Join(errs...)
}

// markPodNotReady sets a pod's Ready condition to False, unless it is
// already, with a status patch that is a compare-and-swap on the pod's
// resourceVersion.
func (c *Controller) markPodNotReady(ctx context.Context, pod *corev1.Pod, now time.Time) error {
	var ready *corev1.PodCondition
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodReady {
			ready = &pod.Status.Conditions[i]
		}
	}
	if ready == nil || ready.Status == corev1.ConditionFalse {
		return nil
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": pod.ResourceVersion},
		"status": map[string]any{"conditions": []corev1.PodCondition{{
			Type: corev1.PodReady, Status: corev1.ConditionFalse,
			Reason: ready.Reason, Message: ready.Message,
			LastProbeTime: ready.LastProbeTime, LastTransitionTime: metav1.NewTime(now),
		}}},
	})
	if err != nil {
		return err
	}
	_, err = c.cfg.Client.Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, "status")
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mark pod %q in namespace %q not ready: %w", pod.Name, pod.Namespace, err)
	}
	c.cfg.Recorder.Eventf(pod, corev1.EventTypeWarning, EventNodeNotReady, "Node is not ready")
	return nil
}

// evict deletes a pod, only if it is still the pod that was judged (uid).
func (c *Controller) evict(ctx context.Context, log *slog.Logger, pod *corev1.Pod) error {
	err := c.cfg.Client.Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &pod.UID},
	})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("evict pod %q in namespace %q: %w", pod.Name, pod.Namespace, err)
	}
	log.Info("pod evicted", "pod", pod.Namespace+"/"+pod.Name)
	c.cfg.Recorder.Eventf(pod, corev1.EventTypeNormal, EventTaintManagerEviction, "Marking for deletion Pod %s/%s", pod.Namespace, pod.Name)
	return nil
}

// hasNoExecuteTaint reports whether the cached node has a NoExecute taint.
func (c *Controller) hasNoExecuteTaint(name string) bool {
	obj, ok, _ := c.nodes.GetByKey(name)
	if !ok {
		return false
	}
	for _, t := range obj.(*corev1.Node).Spec.Taints {
		if t.Effect == corev1.TaintEffectNoExecute {
			return true
		}
	}
	return false
}

// enqueueBy is an event handler that enqueues the key keyOf returns for
// an object, unless it is "".
func (c *Controller) enqueueBy(keyOf func(obj any) string) cache.ResourceEventHandler {
	add := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if key := keyOf(obj); key != "" {
			c.queue.Add(key)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    add,
		UpdateFunc: func(_, obj any) { add(obj) },
		DeleteFunc: add,
	}
}

func mustKey(obj any) string {
	key, _ := controller.Key(obj)
	return key
}

func taintStrings(taints []corev1.Taint) []string {
	out := make([]string, len(taints))
	for i, t := range taints {
		out[i] = t.ToString()
	}
	return out
}
