// Package serviceaccount gives every namespace its "default"
// ServiceAccount, as Kubernetes' serviceaccounts-controller does.
//
// Pods run as a ServiceAccount: admission sets spec.serviceAccountName to
// "default" when a pod names none, so every namespace needs one called
// "default". This controller makes it:
//
//   - the key is a namespace's name, enqueued when a namespace is added or
//     changes, and when a ServiceAccount named "default" is deleted (its
//     namespace's key);
//   - Reconcile does nothing for a namespace that is gone or being
//     deleted (not Active); otherwise, when the ServiceAccount cache has
//     no "default" in it, it creates one. AlreadyExists means the cache
//     lags behind, and a refusal because the namespace began terminating
//     meanwhile (Kubernetes' NamespaceTerminating cause) is the namespace
//     going away: neither is an error.
//
// Tokens for ServiceAccounts are not made: Skiff has no token issuer yet.
//
// The caller's duties, in order: New, start the informer factory, then
// Run, which waits for the caches.
package serviceaccount

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/skiffdev/skiff/controllers/controller"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/logging"
)

// Name is the controller's name in logs and in the manager.
const Name = "serviceaccount"

// DefaultName is the ServiceAccount every namespace gets.
const DefaultName = "default"

// Config configures the controller.
type Config struct {
	// Workers is how many namespaces are looked at at once.
	Workers int
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Workers: 2}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Workers < 1 {
		return fmt.Errorf("workers: must be at least 1, got %d", c.Workers)
	}
	return nil
}

// Controller is the service account controller.
type Controller struct {
	*controller.Loop
	client          *client.Client
	namespaces      cache.SharedIndexInformer
	serviceAccounts cache.SharedIndexInformer
}

// New builds the controller and adds its handlers to the namespace and
// serviceaccount informers of deps. Start them after New.
func New(deps controller.Deps, cfg Config) (*Controller, error) {
	deps, err := deps.Complete()
	if err = errors.Join(err, cfg.Validate()); err != nil {
		return nil, err
	}
	sc := &Controller{client: deps.Client, namespaces: deps.Informers.Namespaces(), serviceAccounts: deps.Informers.ServiceAccounts()}
	sc.Loop = controller.NewLoop(Name, cfg.Workers, sc)
	err = errors.Join(
		sc.Watch(sc.namespaces, cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { controller.Enqueue(sc.Queue(), obj) },
			UpdateFunc: func(_, obj any) { controller.Enqueue(sc.Queue(), obj) },
		}),
		sc.Watch(sc.serviceAccounts, cache.ResourceEventHandlerFuncs{DeleteFunc: sc.serviceAccountDeleted}),
	)
	if err != nil {
		return nil, err
	}
	return sc, nil
}

// serviceAccountDeleted enqueues the namespace of a deleted "default".
func (sc *Controller) serviceAccountDeleted(obj any) {
	sa, ok := controller.Unwrap[*corev1.ServiceAccount](obj)
	if !ok || sa.Name != DefaultName {
		return
	}
	sc.Queue().Add(sa.Namespace)
}

// Reconcile makes the "default" ServiceAccount of the namespace called
// key, unless it exists or the namespace is going away.
func (sc *Controller) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	item, exists, err := sc.namespaces.GetIndexer().GetByKey(key)
	if err != nil || !exists {
		return controller.Result{}, err
	}
	ns := item.(*corev1.Namespace)
	if ns.DeletionTimestamp != nil || ns.Status.Phase != corev1.NamespaceActive {
		return controller.Result{}, nil
	}
	if _, exists, err := sc.serviceAccounts.GetIndexer().GetByKey(ns.Name + "/" + DefaultName); err != nil || exists {
		return controller.Result{}, err
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: DefaultName, Namespace: ns.Name}}
	_, err = sc.client.ServiceAccounts(ns.Name).Create(ctx, sa)
	switch {
	case err == nil:
		logging.From(ctx).Info("service account created", "namespace", ns.Name, "name", DefaultName)
	case apierrors.IsAlreadyExists(err):
		// The cache has not seen it yet.
	case apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause), apierrors.IsNotFound(err):
		// The namespace began to go away after the cache saw it.
	default:
		return controller.Result{}, fmt.Errorf("create service account %q in namespace %q: %w", DefaultName, ns.Name, err)
	}
	return controller.Result{}, nil
}
