// Package podgc removes pods nobody else will: pods bound to nodes that no
// longer exist, and finished pods beyond a threshold.
//
// Two kinds of keys go through one queue:
//
//   - a pod's "namespace/name", enqueued when a bound pod is added or
//     changes, and for every pod of a node when the node is deleted.
//     Reconcile deletes the pod with grace period 0 when its node is gone
//     (the cache is checked first, then the API server, since a node just
//     created may not be cached yet). No kubelet is left to confirm a
//     graceful deletion, so the deletion is forced.
//   - TerminatedKey, enqueued whenever a pod is seen Succeeded or Failed.
//     Reconcile counts the finished pods in the cache and deletes the
//     oldest (by creation time) of those beyond
//     Config.TerminatedPodThreshold. TerminatedToDelete is that decision,
//     a pure function.
//
// Every deletion carries the pod's UID as a precondition, so a pod
// replaced by another of the same name is never deleted by mistake.
//
// The caller's duties, in order: New, start the informer factory, then
// Run, which waits for the caches.
package podgc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/skiffdev/skiff/controllers/controller"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/informers"
	"github.com/skiffdev/skiff/internal/logging"
)

// Name is the controller's name in logs and in the manager.
const Name = "podgc"

// TerminatedKey is the queue key of the terminated-pod check. It has no
// "/", so it is never a pod's key.
const TerminatedKey = "terminated-pods"

// DefaultTerminatedPodThreshold is Kubernetes' default for
// --terminated-pod-gc-threshold.
const DefaultTerminatedPodThreshold = 12500

// Config configures the controller.
type Config struct {
	// Workers is how many keys are reconciled at once.
	Workers int
	// TerminatedPodThreshold is how many finished (Succeeded or Failed)
	// pods may exist before the oldest are deleted; zero or less keeps
	// them all.
	TerminatedPodThreshold int
}

// DefaultConfig returns Kubernetes' defaults.
func DefaultConfig() Config {
	return Config{Workers: 2, TerminatedPodThreshold: DefaultTerminatedPodThreshold}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Workers < 1 {
		return fmt.Errorf("workers: must be at least 1, got %d", c.Workers)
	}
	return nil
}

// Controller is the pod garbage collector.
type Controller struct {
	*controller.Loop
	cfg    Config
	client *client.Client
	pods   cache.SharedIndexInformer
	nodes  cache.SharedIndexInformer
}

// New builds the controller and adds its handlers to the pod and node
// informers of deps. Start them after New.
func New(deps controller.Deps, cfg Config) (*Controller, error) {
	deps, err := deps.Complete()
	if err = errors.Join(err, cfg.Validate()); err != nil {
		return nil, err
	}
	gc := &Controller{cfg: cfg, client: deps.Client, pods: deps.Informers.Pods(), nodes: deps.Informers.Nodes()}
	gc.Loop = controller.NewLoop(Name, cfg.Workers, gc)
	err = errors.Join(
		gc.Watch(gc.pods, cache.ResourceEventHandlerFuncs{
			AddFunc:    gc.enqueuePod,
			UpdateFunc: func(_, obj any) { gc.enqueuePod(obj) },
		}),
		gc.Watch(gc.nodes, cache.ResourceEventHandlerFuncs{DeleteFunc: gc.enqueueNodePods}),
	)
	if err != nil {
		return nil, err
	}
	return gc, nil
}

func (gc *Controller) enqueuePod(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if pod.Spec.NodeName != "" {
		controller.Enqueue(gc.Queue(), pod)
	}
	if terminated(pod) {
		gc.Queue().Add(TerminatedKey)
	}
}

func (gc *Controller) enqueueNodePods(obj any) {
	node, ok := controller.Unwrap[*corev1.Node](obj)
	if !ok {
		return
	}
	pods, _ := gc.pods.GetIndexer().ByIndex(informers.NodeNameIndex, node.Name)
	for _, p := range pods {
		controller.Enqueue(gc.Queue(), p)
	}
}

// Reconcile handles a pod's key or TerminatedKey; see the package
// documentation.
func (gc *Controller) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	if key == TerminatedKey {
		return controller.Result{}, gc.deleteTerminated(ctx)
	}
	item, exists, err := gc.pods.GetIndexer().GetByKey(key)
	if err != nil || !exists {
		return controller.Result{}, err
	}
	pod := item.(*corev1.Pod)
	if pod.Spec.NodeName == "" {
		return controller.Result{}, nil
	}
	gone, err := gc.nodeGone(ctx, pod.Spec.NodeName)
	if err != nil || !gone {
		return controller.Result{}, err
	}
	if err := gc.deletePod(ctx, pod, 0); err != nil {
		return controller.Result{}, err
	}
	logging.From(ctx).Info("pod of a missing node deleted", "pod", key, "node", pod.Spec.NodeName)
	return controller.Result{}, nil
}

// nodeGone reports whether no node is called name, asking the API server
// when the cache has none: the cache may not have seen a new node yet.
func (gc *Controller) nodeGone(ctx context.Context, name string) (bool, error) {
	if _, exists, _ := gc.nodes.GetIndexer().GetByKey(name); exists {
		return false, nil
	}
	_, err := gc.client.Nodes().Get(ctx, name)
	switch {
	case apierrors.IsNotFound(err):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("get node %q: %w", name, err)
	}
	return false, nil
}

// deleteTerminated deletes the oldest finished pods beyond the threshold.
func (gc *Controller) deleteTerminated(ctx context.Context) error {
	if gc.cfg.TerminatedPodThreshold <= 0 {
		return nil
	}
	var pods []*corev1.Pod
	for _, item := range gc.pods.GetStore().List() {
		pods = append(pods, item.(*corev1.Pod))
	}
	for _, pod := range TerminatedToDelete(pods, gc.cfg.TerminatedPodThreshold) {
		if err := gc.deletePod(ctx, pod, 0); err != nil {
			return err
		}
		logging.From(ctx).Info("terminated pod deleted", "pod", pod.Namespace+"/"+pod.Name, "phase", pod.Status.Phase)
	}
	return nil
}

// TerminatedToDelete returns the finished pods (Succeeded or Failed, not
// being deleted yet) beyond threshold, oldest first: the ones to delete.
// Pods created in the same second are taken in namespace/name order.
func TerminatedToDelete(pods []*corev1.Pod, threshold int) []*corev1.Pod {
	var done []*corev1.Pod
	for _, p := range pods {
		if terminated(p) && p.DeletionTimestamp == nil {
			done = append(done, p)
		}
	}
	if len(done) <= threshold {
		return nil
	}
	slices.SortFunc(done, func(a, b *corev1.Pod) int {
		return cmp.Or(
			a.CreationTimestamp.Compare(b.CreationTimestamp.Time),
			cmp.Compare(a.Namespace, b.Namespace),
			cmp.Compare(a.Name, b.Name),
		)
	})
	return done[:len(done)-threshold]
}

func terminated(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// deletePod deletes this very pod (by UID) with the given grace period.
func (gc *Controller) deletePod(ctx context.Context, pod *corev1.Pod, grace int64) error {
	uid := pod.UID
	err := gc.client.Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &grace,
		Preconditions:      &metav1.Preconditions{UID: &uid},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete pod %q in namespace %q: %w", pod.Name, pod.Namespace, err)
	}
	return nil
}
