// Package namespace empties namespaces that are being deleted, then lets
// them go.
//
// Deleting a namespace only marks it: the API server sets its
// deletionTimestamp, turns it Terminating, refuses new objects in it, and
// keeps it while spec.finalizers is non-empty (every namespace is created
// with the "kubernetes" finalizer). This controller does the rest:
//
//  1. it deletes every object of every namespaced resource in the
//     namespace (in the background, so the garbage collector is not
//     needed for dependents that are in the namespace anyway); pods bound
//     to a node get their grace period, and their kubelet confirms;
//  2. while any object is left (a pod waiting for its kubelet, an object
//     held by a finalizer) it looks again after RecheckInterval;
//  3. once the namespace is empty it removes "kubernetes" from
//     spec.finalizers with a conditional update, and the API server
//     removes the namespace.
//
// The caller's duties, in order: New, start the informer factory, then
// Run, which waits for the caches.
package namespace

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/skiffdev/skiff/controllers/controller"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/scheme"
)

// Name is the controller's name in logs and in the manager.
const Name = "namespace"

// Config configures the controller.
type Config struct {
	// Workers is how many namespaces are emptied at once.
	Workers int
	// RecheckInterval is how long to wait before looking again at a
	// namespace whose objects are still going (pods in their grace
	// period, objects held by finalizers).
	RecheckInterval time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Workers: 2, RecheckInterval: time.Second}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Workers < 1 {
		return fmt.Errorf("workers: must be at least 1, got %d", c.Workers)
	}
	if c.RecheckInterval <= 0 {
		return fmt.Errorf("recheck interval: must be positive, got %v", c.RecheckInterval)
	}
	return nil
}

// Controller is the namespace controller.
type Controller struct {
	*controller.Loop
	cfg        Config
	client     *client.Client
	namespaces cache.SharedIndexInformer
}

// New builds the controller and adds its handler to the namespace
// informer of deps. Start it after New.
func New(deps controller.Deps, cfg Config) (*Controller, error) {
	deps, err := deps.Complete()
	if err = errors.Join(err, cfg.Validate()); err != nil {
		return nil, err
	}
	nc := &Controller{cfg: cfg, client: deps.Client, namespaces: deps.Informers.Namespaces()}
	nc.Loop = controller.NewLoop(Name, cfg.Workers, nc)
	if err := nc.Watch(nc.namespaces, controller.EnqueueHandler(nc.Queue())); err != nil {
		return nil, err
	}
	return nc, nil
}

// Reconcile empties the namespace called key if it is being deleted, and
// releases it once it is empty.
func (nc *Controller) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	item, exists, err := nc.namespaces.GetIndexer().GetByKey(key)
	if err != nil || !exists {
		return controller.Result{}, err
	}
	ns := item.(*corev1.Namespace)
	if ns.DeletionTimestamp == nil || !slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes) {
		return controller.Result{}, nil
	}
	ctx, log := logging.With(ctx, "namespace", key)

	remaining, err := nc.deleteContents(ctx, ns.Name)
	if err != nil {
		return controller.Result{}, err
	}
	if remaining > 0 {
		log.Info("waiting for namespace contents to go", "remaining", remaining)
		return controller.Result{RequeueAfter: nc.cfg.RecheckInterval}, nil
	}

	next := ns.DeepCopy()
	next.Spec.Finalizers = slices.DeleteFunc(next.Spec.Finalizers, func(f corev1.FinalizerName) bool { return f == corev1.FinalizerKubernetes })
	if _, err := nc.client.Namespaces().Update(ctx, next); err != nil && !apierrors.IsNotFound(err) {
		return controller.Result{}, fmt.Errorf("namespace %q: remove finalizer %q: %w", ns.Name, corev1.FinalizerKubernetes, err)
	}
	log.Info("namespace emptied")
	return controller.Result{}, nil
}

// deleteContents deletes every object in the namespace that is not being
// deleted yet, and returns how many objects it found (deleted now or
// still going).
func (nc *Controller) deleteContents(ctx context.Context, namespace string) (int, error) {
	background := metav1.DeletePropagationBackground
	remaining := 0
	for i := range scheme.Resources {
		info := &scheme.Resources[i]
		if !info.Namespaced {
			continue
		}
		gr := info.GroupResource()
		uc, err := nc.client.Untyped(gr, namespace)
		if err != nil {
			return 0, err
		}
		list, err := uc.List(ctx, metav1.ListOptions{})
		if err != nil {
			return 0, fmt.Errorf("list %s in namespace %q: %w", gr, namespace, err)
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			return 0, fmt.Errorf("list %s in namespace %q: %w", gr, namespace, err)
		}
		for _, obj := range items {
			m, err := meta.Accessor(obj)
			if err != nil {
				continue
			}
			remaining++
			if m.GetDeletionTimestamp() != nil {
				continue
			}
			uid := m.GetUID()
			err = uc.Delete(ctx, m.GetName(), metav1.DeleteOptions{
				PropagationPolicy: &background,
				Preconditions:     &metav1.Preconditions{UID: &uid},
			})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				return 0, fmt.Errorf("delete %s %q in namespace %q: %w", gr, m.GetName(), namespace, err)
			}
		}
	}
	return remaining, nil
}
