package client

import (
	"context"
	"fmt"
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiffdev/skiff/internal/scheme"
)

// ResourceClient reads and writes objects of one type, T, whose list type
// is L, in one namespace. Get one with Resource or with the accessors on
// Client (Pods, Deployments, ...). It is safe for concurrent use and cheap
// to create.
type ResourceClient[T runtime.Object, L runtime.Object] struct {
	u *UntypedClient
}

// Resource returns a client for the resource whose objects have type T and
// whose lists have type L, for example
//
//	client.Resource[*appsv1.Deployment, *appsv1.DeploymentList](c, "default")
//
// namespace is ignored for cluster-scoped resources. For namespaced ones
// "" means all namespaces when listing and watching, and the object's own
// metadata.namespace when creating or updating.
//
// Resource panics when T is not a type Skiff serves or L is not its list
// type: that is a programming error, found the first time the code runs.
func Resource[T runtime.Object, L runtime.Object](c *Client, namespace string) *ResourceClient[T, L] {
	var zeroT T
	typ := reflect.TypeOf(zeroT)
	if typ == nil || typ.Kind() != reflect.Pointer {
		panic(fmt.Sprintf("client.Resource: type parameter T must be a pointer to a struct, got %v", typ))
	}
	info, err := scheme.ForObject(reflect.New(typ.Elem()).Interface().(T))
	if err != nil {
		panic(fmt.Sprintf("client.Resource: %v", err))
	}
	if _, ok := info.NewList().(L); !ok {
		var zeroL L
		panic(fmt.Sprintf("client.Resource: the list type of %s is %T, not %T", info.GroupResource(), info.NewList(), zeroL))
	}
	return &ResourceClient[T, L]{u: newUntyped(c, info, namespace)}
}

// Untyped returns the untyped client underneath.
func (r *ResourceClient[T, L]) Untyped() *UntypedClient { return r.u }

// Get reads the object called name.
func (r *ResourceClient[T, L]) Get(ctx context.Context, name string) (T, error) {
	obj, err := r.u.Get(ctx, name)
	if err != nil {
		var zero T
		return zero, err
	}
	return as[T](obj)
}

// List reads the objects that match opts.LabelSelector and
// opts.FieldSelector. opts.Limit and opts.Continue page through a long
// list; opts.ResourceVersion "0" accepts the server's cached state, ""
// asks for the latest.
func (r *ResourceClient[T, L]) List(ctx context.Context, opts metav1.ListOptions) (L, error) {
	obj, err := r.u.List(ctx, opts)
	if err != nil {
		var zero L
		return zero, err
	}
	return as[L](obj)
}

// Create creates obj and returns it as stored, with its uid,
// resourceVersion and defaults filled in. obj is not modified.
func (r *ResourceClient[T, L]) Create(ctx context.Context, obj T) (T, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		var zero T
		return zero, err
	}
	out, err := r.u.createObject(ctx, r.namespaceFor(m), "", "", obj)
	if err != nil {
		var zero T
		return zero, err
	}
	return as[T](out)
}

// Update replaces the stored object with obj. The update succeeds only if
// obj's resourceVersion is still the stored one; otherwise it fails with
// a Conflict (apierrors.IsConflict), and the caller reads again and
// retries. For resources with a status subresource the server keeps the
// stored status, as Kubernetes does: write it with UpdateStatus.
func (r *ResourceClient[T, L]) Update(ctx context.Context, obj T) (T, error) {
	return r.update(ctx, obj, "")
}

// UpdateStatus replaces the status of the stored object with obj's, under
// the same resourceVersion rule as Update; the server ignores changes
// outside status. It fails without asking the server for resources that
// have no status subresource.
func (r *ResourceClient[T, L]) UpdateStatus(ctx context.Context, obj T) (T, error) {
	return r.update(ctx, obj, "status")
}

func (r *ResourceClient[T, L]) update(ctx context.Context, obj T, sub string) (T, error) {
	var zero T
	if sub != "" && !r.u.info.HasSubresource(sub) {
		return zero, fmt.Errorf("resource %q has no %q subresource", r.u.info.GroupResource(), sub)
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return zero, err
	}
	out, err := r.u.updateObject(ctx, r.namespaceFor(m), m.GetName(), sub, obj)
	if err != nil {
		return zero, err
	}
	return as[T](out)
}

// Patch changes the object called name (or its status subresource) with
// a patch of type pt: types.MergePatchType, types.StrategicMergePatchType
// or types.JSONPatchType. To change the scale subresource use UpdateScale,
// or UntypedClient.Patch, which returns the Scale.
func (r *ResourceClient[T, L]) Patch(ctx context.Context, name string, pt types.PatchType, data []byte, subresource ...string) (T, error) {
	obj, err := r.u.Patch(ctx, name, pt, data, subresource...)
	if err != nil {
		var zero T
		return zero, err
	}
	return as[T](obj)
}

// Delete deletes the object called name.
func (r *ResourceClient[T, L]) Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error {
	return r.u.Delete(ctx, name, opts)
}

// Watch streams changes to the objects that match opts, starting after
// opts.ResourceVersion ("" or "0": first an ADDED event for every current
// object). Events carry *T objects:
//
//   - ADDED, MODIFIED, DELETED: the object after (for DELETED: before) the
//     change.
//   - BOOKMARK (only with opts.AllowWatchBookmarks): a T with only
//     metadata.resourceVersion set; restarting the watch from it misses
//     nothing.
//   - ERROR: a *metav1.Status (apierrors.FromObject turns it back into an
//     error), for example 410 Gone when opts.ResourceVersion is older than
//     the server's history; the channel closes right after it.
//
// The channel also closes, without an ERROR event, when ctx ends, when
// Stop is called, when opts.TimeoutSeconds pass, and when the connection
// to the server drops (gRPC Unavailable): the caller simply watches again
// from the last resourceVersion it saw, as client-go's reflector does.
// Always call Stop when done; it releases the stream.
func (r *ResourceClient[T, L]) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	return r.u.watch(ctx, opts)
}

// GetScale reads the scale subresource of the object called name. Only
// deployments and replicasets have one; for other resources GetScale
// fails without asking the server.
func (r *ResourceClient[T, L]) GetScale(ctx context.Context, name string) (*autoscalingv1.Scale, error) {
	return r.u.GetScale(ctx, name)
}

// UpdateScale sets spec.replicas of the object called name through its
// scale subresource and returns the new scale. Only deployments and
// replicasets have one.
func (r *ResourceClient[T, L]) UpdateScale(ctx context.Context, name string, scale *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
	return r.u.UpdateScale(ctx, name, scale)
}

// namespaceFor is the namespace a write of the object m goes to: the
// client's, or the object's own when the client has none.
func (r *ResourceClient[T, L]) namespaceFor(m metav1.Object) string {
	if !r.u.info.Namespaced {
		return ""
	}
	if r.u.namespace != "" {
		return r.u.namespace
	}
	return m.GetNamespace()
}

// PodClient is the client for pods: a ResourceClient plus Bind.
type PodClient struct {
	*ResourceClient[*corev1.Pod, *corev1.PodList]
}

// Bind assigns a pod to a node: binding.Name is the pod,
// binding.Target.Name the node. This is how the scheduler sets
// spec.nodeName, which an Update cannot change. It fails with a Conflict
// if the pod is already bound.
func (p PodClient) Bind(ctx context.Context, binding *corev1.Binding) error {
	ns := p.u.namespace
	if ns == "" {
		ns = binding.Namespace
	}
	_, err := p.u.createObject(ctx, ns, binding.Name, "binding", binding)
	return err
}

// Pods returns the client for pods in namespace ("" for all namespaces).
func (c *Client) Pods(namespace string) PodClient {
	return PodClient{Resource[*corev1.Pod, *corev1.PodList](c, namespace)}
}

// Nodes returns the client for nodes.
func (c *Client) Nodes() *ResourceClient[*corev1.Node, *corev1.NodeList] {
	return Resource[*corev1.Node, *corev1.NodeList](c, "")
}

// Namespaces returns the client for namespaces.
func (c *Client) Namespaces() *ResourceClient[*corev1.Namespace, *corev1.NamespaceList] {
	return Resource[*corev1.Namespace, *corev1.NamespaceList](c, "")
}

// Services returns the client for services in namespace.
func (c *Client) Services(namespace string) *ResourceClient[*corev1.Service, *corev1.ServiceList] {
	return Resource[*corev1.Service, *corev1.ServiceList](c, namespace)
}

// ConfigMaps returns the client for configmaps in namespace.
func (c *Client) ConfigMaps(namespace string) *ResourceClient[*corev1.ConfigMap, *corev1.ConfigMapList] {
	return Resource[*corev1.ConfigMap, *corev1.ConfigMapList](c, namespace)
}

// Secrets returns the client for secrets in namespace.
func (c *Client) Secrets(namespace string) *ResourceClient[*corev1.Secret, *corev1.SecretList] {
	return Resource[*corev1.Secret, *corev1.SecretList](c, namespace)
}

// ServiceAccounts returns the client for serviceaccounts in namespace.
func (c *Client) ServiceAccounts(namespace string) *ResourceClient[*corev1.ServiceAccount, *corev1.ServiceAccountList] {
	return Resource[*corev1.ServiceAccount, *corev1.ServiceAccountList](c, namespace)
}

// Jobs returns the client for jobs in namespace.
func (c *Client) Jobs(namespace string) *ResourceClient[*batchv1.Job, *batchv1.JobList] {
	return Resource[*batchv1.Job, *batchv1.JobList](c, namespace)
}

// CronJobs returns the client for cronjobs in namespace.
func (c *Client) CronJobs(namespace string) *ResourceClient[*batchv1.CronJob, *batchv1.CronJobList] {
	return Resource[*batchv1.CronJob, *batchv1.CronJobList](c, namespace)
}

// Deployments returns the client for deployments in namespace.
func (c *Client) Deployments(namespace string) *ResourceClient[*appsv1.Deployment, *appsv1.DeploymentList] {
	return Resource[*appsv1.Deployment, *appsv1.DeploymentList](c, namespace)
}

// DaemonSets returns the client for daemonsets in namespace.
func (c *Client) DaemonSets(namespace string) *ResourceClient[*appsv1.DaemonSet, *appsv1.DaemonSetList] {
	return Resource[*appsv1.DaemonSet, *appsv1.DaemonSetList](c, namespace)
}

// ControllerRevisions returns the client for controllerrevisions in namespace.
func (c *Client) ControllerRevisions(namespace string) *ResourceClient[*appsv1.ControllerRevision, *appsv1.ControllerRevisionList] {
	return Resource[*appsv1.ControllerRevision, *appsv1.ControllerRevisionList](c, namespace)
}

// ReplicaSets returns the client for replicasets in namespace.
func (c *Client) ReplicaSets(namespace string) *ResourceClient[*appsv1.ReplicaSet, *appsv1.ReplicaSetList] {
	return Resource[*appsv1.ReplicaSet, *appsv1.ReplicaSetList](c, namespace)
}

// EndpointSlices returns the client for endpointslices in namespace.
func (c *Client) EndpointSlices(namespace string) *ResourceClient[*discoveryv1.EndpointSlice, *discoveryv1.EndpointSliceList] {
	return Resource[*discoveryv1.EndpointSlice, *discoveryv1.EndpointSliceList](c, namespace)
}

// Leases returns the client for leases in namespace (node heartbeats live
// in "kube-node-lease", leader election leases in "kube-system").
func (c *Client) Leases(namespace string) *ResourceClient[*coordinationv1.Lease, *coordinationv1.LeaseList] {
	return Resource[*coordinationv1.Lease, *coordinationv1.LeaseList](c, namespace)
}

// Events returns the client for events in namespace.
func (c *Client) Events(namespace string) *ResourceClient[*corev1.Event, *corev1.EventList] {
	return Resource[*corev1.Event, *corev1.EventList](c, namespace)
}
