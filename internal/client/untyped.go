package client

import (
	"context"
	"fmt"
	"reflect"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/yaml"

	"github.com/skiffdev/skiff/internal/grpcerr"
	"github.com/skiffdev/skiff/internal/scheme"
	skiffv1 "github.com/skiffdev/skiff/proto/skiff/v1"
)

// Encoding is the encoding of a request body handed to the server as is.
type Encoding int

const (
	// Protobuf is the Kubernetes protobuf encoding ("k8s\x00" envelope).
	Protobuf Encoding = iota
	// JSON is a Kubernetes JSON manifest.
	JSON
	// YAML is a single Kubernetes YAML document.
	YAML
)

func (e Encoding) proto() skiffv1.Encoding {
	switch e {
	case JSON:
		return skiffv1.Encoding_ENCODING_JSON
	case YAML:
		return skiffv1.Encoding_ENCODING_YAML
	}
	return skiffv1.Encoding_ENCODING_PROTOBUF
}

// UntypedClient reads and writes one resource chosen at run time, for
// skiffctl, which learns resource names from its command line and objects
// from manifests. Objects it returns are still the concrete Go types
// (*corev1.Pod, *appsv1.DeploymentList, ...) behind runtime.Object.
//
// Create and Update take the manifest bytes unparsed: the server decodes
// them strictly, so an unknown field is reported by the server, with its
// path, exactly as for any other client.
type UntypedClient struct {
	c         *Client
	info      *scheme.ResourceInfo
	namespace string
}

// Untyped returns a client for the resource gr ("pods", "deployments.apps")
// in namespace. For namespaced resources namespace "" means all
// namespaces when listing and watching, and the object's own namespace
// when creating or updating; for cluster-scoped resources it is ignored.
func (c *Client) Untyped(gr schema.GroupResource, namespace string) (*UntypedClient, error) {
	info, ok := scheme.Lookup(gr)
	if !ok {
		return nil, fmt.Errorf("the server doesn't have a resource type %q", gr)
	}
	return newUntyped(c, info, namespace), nil
}

func newUntyped(c *Client, info *scheme.ResourceInfo, namespace string) *UntypedClient {
	if !info.Namespaced {
		namespace = ""
	}
	return &UntypedClient{c: c, info: info, namespace: namespace}
}

// Resource describes the resource this client serves.
func (u *UntypedClient) Resource() *scheme.ResourceInfo { return u.info }

// Namespace is the client's namespace ("" for all namespaces or a
// cluster-scoped resource).
func (u *UntypedClient) Namespace() string { return u.namespace }

func (u *UntypedClient) resource() *skiffv1.Resource {
	return &skiffv1.Resource{Group: u.info.Group, Resource: u.info.Resource}
}

// Get reads the object called name, or one of its subresources ("status",
// "scale").
func (u *UntypedClient) Get(ctx context.Context, name string, subresource ...string) (runtime.Object, error) {
	sub, err := u.subresource(subresource)
	if err != nil {
		return nil, err
	}
	ctx, cancel := u.c.requestContext(ctx)
	defer cancel()
	resp, err := u.c.api.Get(ctx, &skiffv1.GetRequest{
		Resource:    u.resource(),
		Namespace:   u.namespace,
		Name:        name,
		Subresource: sub,
	})
	if err != nil {
		return nil, grpcerr.FromStatus(err)
	}
	u.c.warnings(resp.GetWarnings())
	return u.decode(resp.GetObject(), u.newFor(sub))
}

// List reads the objects that match opts.LabelSelector and
// opts.FieldSelector, at most opts.Limit of them (0 for all), continuing
// from opts.Continue, as of opts.ResourceVersion ("" for the latest, "0"
// for whatever the server's cache holds). The result is the resource's
// list type.
func (u *UntypedClient) List(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	ctx, cancel := u.c.requestContext(ctx)
	defer cancel()
	resp, err := u.c.api.List(ctx, &skiffv1.ListRequest{
		Resource:        u.resource(),
		Namespace:       u.namespace,
		LabelSelector:   opts.LabelSelector,
		FieldSelector:   opts.FieldSelector,
		Limit:           opts.Limit,
		Continue:        opts.Continue,
		ResourceVersion: opts.ResourceVersion,
	})
	if err != nil {
		return nil, grpcerr.FromStatus(err)
	}
	u.c.warnings(resp.GetWarnings())
	return u.decode(resp.GetList(), u.info.NewList())
}

// Create creates the object in body, a manifest in the given encoding, and
// returns the object as stored along with the server's warnings (which
// have also gone to Config.WarningHandler, so do not print them again).
// The namespace is the client's, or the manifest's when the client has
// none.
func (u *UntypedClient) Create(ctx context.Context, body []byte, enc Encoding, opts metav1.CreateOptions) (runtime.Object, []string, error) {
	ns := u.namespace
	if ns == "" && u.info.Namespaced {
		m, err := peekMeta(body, enc)
		if err != nil {
			return nil, nil, err
		}
		ns = m.Namespace
	}
	return u.create(ctx, ns, "", "", body, enc, len(opts.DryRun) > 0)
}

// Update replaces the object in body, a manifest in the given encoding
// whose metadata names the object, and returns the object as stored along
// with the server's warnings (also sent to Config.WarningHandler). Give
// metadata.resourceVersion to make the update conditional; without it the
// update overwrites whatever is stored.
func (u *UntypedClient) Update(ctx context.Context, body []byte, enc Encoding, opts metav1.UpdateOptions) (runtime.Object, []string, error) {
	m, err := peekMeta(body, enc)
	if err != nil {
		return nil, nil, err
	}
	if m.Name == "" {
		return nil, nil, apierrors.NewBadRequest("metadata.name is required for an update")
	}
	ns := u.namespace
	if ns == "" && u.info.Namespaced {
		ns = m.Namespace
	}
	return u.update(ctx, ns, m.Name, "", body, enc, len(opts.DryRun) > 0)
}

// Patch applies a patch of type pt (merge, strategic merge or JSON patch)
// to the object called name, or to its subresource, and returns the result
// (an *autoscalingv1.Scale for the scale subresource).
func (u *UntypedClient) Patch(ctx context.Context, name string, pt types.PatchType, data []byte, subresource ...string) (runtime.Object, error) {
	sub, err := u.subresource(subresource)
	if err != nil {
		return nil, err
	}
	ctx, cancel := u.c.requestContext(ctx)
	defer cancel()
	resp, err := u.c.api.Patch(ctx, &skiffv1.PatchRequest{
		Resource:    u.resource(),
		Namespace:   u.namespace,
		Name:        name,
		Subresource: sub,
		PatchType:   string(pt),
		Patch:       data,
	})
	if err != nil {
		return nil, grpcerr.FromStatus(err)
	}
	u.c.warnings(resp.GetWarnings())
	return u.decode(resp.GetObject(), u.newFor(sub))
}

// Delete deletes the object called name. opts may carry preconditions
// (uid, resourceVersion), a propagation policy and a grace period.
func (u *UntypedClient) Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error {
	data, err := opts.Marshal()
	if err != nil {
		return fmt.Errorf("encode delete options: %w", err)
	}
	ctx, cancel := u.c.requestContext(ctx)
	defer cancel()
	resp, err := u.c.api.Delete(ctx, &skiffv1.DeleteRequest{
		Resource:  u.resource(),
		Namespace: u.namespace,
		Name:      name,
		Options:   data,
	})
	if err != nil {
		return grpcerr.FromStatus(err)
	}
	u.c.warnings(resp.GetWarnings())
	return nil
}

// Watch streams changes to the objects that match opts; see
// ResourceClient.Watch for the contract.
func (u *UntypedClient) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	return u.watch(ctx, opts)
}

// GetScale reads the scale subresource of the object called name. Only
// deployments and replicasets have one.
func (u *UntypedClient) GetScale(ctx context.Context, name string) (*autoscalingv1.Scale, error) {
	obj, err := u.Get(ctx, name, "scale")
	if err != nil {
		return nil, err
	}
	return as[*autoscalingv1.Scale](obj)
}

// UpdateScale sets the desired replicas of the object called name through
// its scale subresource. A scale.resourceVersion makes the update
// conditional.
func (u *UntypedClient) UpdateScale(ctx context.Context, name string, scale *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
	if _, err := u.subresource([]string{"scale"}); err != nil {
		return nil, err
	}
	obj, err := u.updateObject(ctx, u.namespace, name, "scale", scale)
	if err != nil {
		return nil, err
	}
	return as[*autoscalingv1.Scale](obj)
}

// createObject encodes a typed object and creates it (or, with sub, posts
// it to the subresource of the object called name).
func (u *UntypedClient) createObject(ctx context.Context, ns, name, sub string, obj runtime.Object) (runtime.Object, error) {
	data, err := encode(obj)
	if err != nil {
		return nil, err
	}
	out, _, err := u.create(ctx, ns, name, sub, data, Protobuf, false)
	return out, err
}

func (u *UntypedClient) create(ctx context.Context, ns, name, sub string, body []byte, enc Encoding, dryRun bool) (runtime.Object, []string, error) {
	ctx, cancel := u.c.requestContext(ctx)
	defer cancel()
	resp, err := u.c.api.Create(ctx, &skiffv1.CreateRequest{
		Resource:    u.resource(),
		Namespace:   ns,
		Subresource: sub,
		Name:        name,
		Object:      body,
		Encoding:    enc.proto(),
		DryRun:      dryRun,
	})
	if err != nil {
		return nil, nil, grpcerr.FromStatus(err)
	}
	u.c.warnings(resp.GetWarnings())
	if sub != "" {
		// The one create subresource is a pod's binding; its answer
		// carries nothing the caller needs.
		return nil, resp.GetWarnings(), nil
	}
	obj, err := u.decode(resp.GetObject(), u.info.New())
	return obj, resp.GetWarnings(), err
}

// updateObject encodes a typed object and replaces the stored one (or its
// subresource).
func (u *UntypedClient) updateObject(ctx context.Context, ns, name, sub string, obj runtime.Object) (runtime.Object, error) {
	data, err := encode(obj)
	if err != nil {
		return nil, err
	}
	out, _, err := u.update(ctx, ns, name, sub, data, Protobuf, false)
	return out, err
}

func (u *UntypedClient) update(ctx context.Context, ns, name, sub string, body []byte, enc Encoding, dryRun bool) (runtime.Object, []string, error) {
	ctx, cancel := u.c.requestContext(ctx)
	defer cancel()
	resp, err := u.c.api.Update(ctx, &skiffv1.UpdateRequest{
		Resource:    u.resource(),
		Namespace:   ns,
		Name:        name,
		Subresource: sub,
		Object:      body,
		Encoding:    enc.proto(),
		DryRun:      dryRun,
	})
	if err != nil {
		return nil, nil, grpcerr.FromStatus(err)
	}
	u.c.warnings(resp.GetWarnings())
	obj, err := u.decode(resp.GetObject(), u.newFor(sub))
	return obj, resp.GetWarnings(), err
}

// subresource checks an optional subresource argument against the
// resource table, so that a typo fails here with a clear message rather
// than as a puzzling server error.
func (u *UntypedClient) subresource(subs []string) (string, error) {
	switch len(subs) {
	case 0:
		return "", nil
	case 1:
		if subs[0] == "" || u.info.HasSubresource(subs[0]) {
			return subs[0], nil
		}
		return "", fmt.Errorf("resource %q has no %q subresource", u.info.GroupResource(), subs[0])
	}
	return "", fmt.Errorf("at most one subresource, got %q", subs)
}

// newFor returns an empty object of the type the server answers with for
// subresource sub.
func (u *UntypedClient) newFor(sub string) runtime.Object {
	if sub == "scale" {
		return &autoscalingv1.Scale{}
	}
	return u.info.New()
}

// decode reads a protobuf answer into into (an empty object of the
// expected type) and checks that the server answered with that type.
func (u *UntypedClient) decode(data []byte, into runtime.Object) (runtime.Object, error) {
	obj, err := scheme.DecodeProtobuf(data, into)
	if err != nil {
		return nil, fmt.Errorf("decode %s from server: %w", u.info.GroupResource(), err)
	}
	if reflect.TypeOf(obj) != reflect.TypeOf(into) {
		return nil, fmt.Errorf("decode %s from server: got %T, want %T", u.info.GroupResource(), obj, into)
	}
	return obj, nil
}

// encode encodes a typed object in the Kubernetes protobuf encoding
// without modifying it: scheme.EncodeProtobuf fills in an empty TypeMeta,
// and the caller's object may be shared (it may come from an informer's
// cache), so such an object is copied first.
func encode(obj runtime.Object) ([]byte, error) {
	if obj.GetObjectKind().GroupVersionKind().Empty() {
		obj = obj.DeepCopyObject()
	}
	data, err := scheme.EncodeProtobuf(obj)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", obj, err)
	}
	return data, nil
}

// peekMeta reads the name and namespace from a manifest without decoding
// the rest of it.
func peekMeta(body []byte, enc Encoding) (metav1.ObjectMeta, error) {
	if enc == Protobuf {
		obj, err := scheme.DecodeProtobuf(body, nil)
		if err != nil {
			return metav1.ObjectMeta{}, apierrors.NewBadRequest(fmt.Sprintf("decode object: %v", err))
		}
		m, err := meta.Accessor(obj)
		if err != nil {
			return metav1.ObjectMeta{}, apierrors.NewBadRequest(err.Error())
		}
		return metav1.ObjectMeta{Name: m.GetName(), Namespace: m.GetNamespace()}, nil
	}
	// sigs.k8s.io/yaml reads JSON as well: JSON is YAML.
	var manifest struct {
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(body, &manifest); err != nil {
		return metav1.ObjectMeta{}, apierrors.NewBadRequest(fmt.Sprintf("read metadata: %v", err))
	}
	return metav1.ObjectMeta{Name: manifest.Metadata.Name, Namespace: manifest.Metadata.Namespace}, nil
}

// as converts an object to the type the caller expects.
func as[T runtime.Object](obj runtime.Object) (T, error) {
	t, ok := obj.(T)
	if !ok {
		var zero T
		return zero, fmt.Errorf("server returned %T, want %T", obj, zero)
	}
	return t, nil
}
