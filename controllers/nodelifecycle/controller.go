package nodelifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/skiffdev/skiff/controllers/controller"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/events"
	"github.com/skiffdev/skiff/internal/informers"
	"github.com/skiffdev/skiff/internal/logging"
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
	// GracePeriod is how long a node's Lease may go unrenewed before the
	// node is marked not ready (--node-monitor-grace-period).
	GracePeriod time.Duration
	// Workers is how many nodes are reconciled at once.
	Workers int
}

// DefaultConfig returns Kubernetes' defaults.
func DefaultConfig() Config {
	return Config{GracePeriod: 40 * time.Second, Workers: 5}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.GracePeriod <= 0 {
		errs = append(errs, fmt.Errorf("grace period: must be positive, got %v", c.GracePeriod))
	}
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers: must be at least 1, got %d", c.Workers))
	}
	return errors.Join(errs...)
}

// Controller is the node lifecycle controller. It writes nodes and pods,
// and records NodeNotReady and TaintManagerEviction events. Its clock
// measures the grace period and tolerationSeconds.
type Controller struct {
	*controller.Loop
	cfg      Config
	client   *client.Client
	recorder events.EventRecorder
	clock    clock.PassiveClock
	nodes    cache.Indexer
	leases   cache.Indexer
	pods     cache.Indexer

	// mu guards health.
	mu     sync.Mutex
	health map[string]Observation // by node name
}

// New builds the controller and adds its handlers to the node, Lease and
// pod informers of deps: node and Lease events update the node's record
// and enqueue the node, and pod events enqueue the pod's node while that
// node has a NoExecute taint (a pod arriving on it may have to be
// evicted). Start the informers after New.
func New(deps controller.Deps, cfg Config) (*Controller, error) {
	deps, err := deps.Complete()
	if err = errors.Join(err, cfg.Validate()); err != nil {
		return nil, err
	}
	nodes, leases, pods := deps.Informers.Nodes(), deps.Informers.Leases(), deps.Informers.Pods()
	c := &Controller{
		cfg:      cfg,
		client:   deps.Client,
		recorder: deps.Recorder,
		clock:    deps.Clock,
		nodes:    nodes.GetIndexer(),
		leases:   leases.GetIndexer(),
		pods:     pods.GetIndexer(),
		health:   map[string]Observation{},
	}
	c.Loop = controller.NewLoop(Name, cfg.Workers, c)
	c.OnSynced(c.resetHealth)
	observe := func(node string) { c.observe(node) }
	nodeName := func(m metav1.Object) string { return m.GetName() }
	err = errors.Join(
		c.Watch(nodes, byNode(nodeName, observe)),
		c.Watch(nodes, controller.EnqueueHandler(c.Queue())),
		c.Watch(leases, byNode(leaseNode, observe)),
		c.Watch(leases, byNode(leaseNode, c.Queue().Add)),
		c.Watch(pods, byNode(c.taintedNodeOf, c.Queue().Add)),
	)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// resetHealth records every cached node as seen alive now, on the
// controller's clock. It runs before the first Reconcile: a controller
// that just started (or was just elected) knows nothing of how long ago a
// node last renewed, so it waits one grace period before it judges any
// node stale.
func (c *Controller) resetHealth(context.Context) {
	now := c.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.health)
	for _, obj := range c.nodes.List() {
		node := obj.(*corev1.Node)
		c.health[node.Name] = Observation{Heartbeat: HeartbeatOf(node, c.cachedLease(node.Name)), ObservedAt: now}
	}
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

// Reconcile brings one node (key: its name) and its pods in line with the
// freshness of the node's Lease; see the package doc for the steps.
func (c *Controller) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	ctx, log := logging.With(ctx, "node", key)
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
			if node, err = c.client.Nodes().UpdateStatus(ctx, node); err != nil {
				return controller.Result{}, fmt.Errorf("mark node %q not ready: %w", key, err)
			}
			if readyChanged {
				log.Info("node stopped renewing its lease; marked not ready", "gracePeriod", c.cfg.GracePeriod)
				c.recorder.Eventf(node, corev1.EventTypeNormal, EventNodeNotReady, "Node %s status is now: %s", key, EventNodeNotReady)
			}
		}
	}
	if taints, changed := DesiredTaints(node, stale, now); changed {
		node.Spec.Taints = taints
		if node, err = c.client.Nodes().Update(ctx, node); err != nil {
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
			errs = append(errs, c.evict(ctx, pod))
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
	_, err = c.client.Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, "status")
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mark pod %q in namespace %q not ready: %w", pod.Name, pod.Namespace, err)
	}
	c.recorder.Eventf(pod, corev1.EventTypeWarning, EventNodeNotReady, "Node is not ready")
	return nil
}

// evict deletes a pod, only if it is still the pod that was judged (uid).
func (c *Controller) evict(ctx context.Context, pod *corev1.Pod) error {
	err := c.client.Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &pod.UID},
	})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("evict pod %q in namespace %q: %w", pod.Name, pod.Namespace, err)
	}
	logging.From(ctx).Info("pod evicted", "pod", pod.Namespace+"/"+pod.Name)
	c.recorder.Eventf(pod, corev1.EventTypeNormal, EventTaintManagerEviction, "Marking for deletion Pod %s/%s", pod.Namespace, pod.Name)
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

// byNode is an event handler that calls do with the name of the node
// nodeOf finds for each object added, updated or deleted, unless it finds
// none ("").
func byNode(nodeOf func(metav1.Object) string, do func(node string)) cache.ResourceEventHandler {
	handle := func(obj any) {
		if m, ok := controller.Unwrap[metav1.Object](obj); ok {
			if node := nodeOf(m); node != "" {
				do(node)
			}
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    handle,
		UpdateFunc: func(_, obj any) { handle(obj) },
		DeleteFunc: handle,
	}
}

// leaseNode is the node whose Lease m is, if it is one: a node Lease is
// named after its node, in kube-node-lease.
func leaseNode(m metav1.Object) string {
	if m.GetNamespace() != corev1.NamespaceNodeLease {
		return ""
	}
	return m.GetName()
}

// taintedNodeOf is the node of the pod m while that node has a NoExecute
// taint.
func (c *Controller) taintedNodeOf(m metav1.Object) string {
	pod, ok := m.(*corev1.Pod)
	if !ok || pod.Spec.NodeName == "" || !c.hasNoExecuteTaint(pod.Spec.NodeName) {
		return ""
	}
	return pod.Spec.NodeName
}

func taintStrings(taints []corev1.Taint) []string {
	out := make([]string, len(taints))
	for i, t := range taints {
		out[i] = t.ToString()
	}
	return out
}
