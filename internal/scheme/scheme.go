// Package scheme is the table of resource types Skiff serves and the codecs
// that turn them into bytes.
//
// Every component shares it: the API server to store and validate objects,
// the client to encode requests and decode answers. Skiff serves exactly one
// version of each API group (core/v1, apps/v1, batch/v1, discovery.k8s.io/v1,
// coordination.k8s.io/v1), so there is no conversion between versions.
package scheme

import (
	"fmt"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	jsonserializer "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
)

// Scheme knows every Go type Skiff serves, plus the option and helper types
// (DeleteOptions, Status, Binding, Scale) that travel with them.
var Scheme = runtime.NewScheme()

// Codecs is the codec factory over Scheme.
var Codecs serializer.CodecFactory

func init() {
	utilruntime.Must(corev1.AddToScheme(Scheme))
	utilruntime.Must(appsv1.AddToScheme(Scheme))
	utilruntime.Must(discoveryv1.AddToScheme(Scheme))
	utilruntime.Must(coordinationv1.AddToScheme(Scheme))
	utilruntime.Must(autoscalingv1.AddToScheme(Scheme))
	utilruntime.Must(batchv1.AddToScheme(Scheme))
	metav1.AddToGroupVersion(Scheme, schema.GroupVersion{Version: "v1"})
	Codecs = serializer.NewCodecFactory(Scheme)
	for i := range Resources {
		r := &Resources[i]
		byResource[r.GroupResource()] = r
		byKind[r.GroupVersionKind()] = r
	}
}

// ResourceInfo describes one resource type.
type ResourceInfo struct {
	Group    string // "" for the core group
	Version  string // always "v1"
	Resource string // plural, lower case: "pods"
	Singular string // "pod"
	Kind     string // "Pod"
	// Namespaced is true for objects that live in a namespace.
	Namespaced bool
	// ShortNames are kubectl's abbreviations ("po", "deploy").
	ShortNames []string
	// Categories are the groups of resources that one name stands for
	// in kubectl ("all": what `kubectl get all` shows).
	Categories []string
	// Subresources lists the subresources the API server offers.
	Subresources []string
	// New returns an empty object; NewList an empty list of them.
	New     func() runtime.Object
	NewList func() runtime.Object
}

// GroupResource is the resource's group and plural name.
func (r *ResourceInfo) GroupResource() schema.GroupResource {
	return schema.GroupResource{Group: r.Group, Resource: r.Resource}
}

// GroupVersionResource adds the served version.
func (r *ResourceInfo) GroupVersionResource() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: r.Group, Version: r.Version, Resource: r.Resource}
}

// GroupVersionKind is the kind of one object of the resource.
func (r *ResourceInfo) GroupVersionKind() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind}
}

// HasSubresource reports whether sub ("status", "scale", "binding") is served.
func (r *ResourceInfo) HasSubresource(sub string) bool {
	for _, s := range r.Subresources {
		if s == sub {
			return true
		}
	}
	return false
}

// Resources is every resource type Skiff serves, in the order that
// manifests are best applied (namespaces first).
var Resources = []ResourceInfo{
	{Group: "", Version: "v1", Resource: "namespaces", Singular: "namespace", Kind: "Namespace", ShortNames: []string{"ns"}, Subresources: []string{"status"},
		New: func() runtime.Object { return &corev1.Namespace{} }, NewList: func() runtime.Object { return &corev1.NamespaceList{} }},
	{Group: "", Version: "v1", Resource: "nodes", Singular: "node", Kind: "Node", ShortNames: []string{"no"}, Subresources: []string{"status"},
		New: func() runtime.Object { return &corev1.Node{} }, NewList: func() runtime.Object { return &corev1.NodeList{} }},
	{Group: "", Version: "v1", Resource: "serviceaccounts", Singular: "serviceaccount", Kind: "ServiceAccount", Namespaced: true, ShortNames: []string{"sa"},
		New: func() runtime.Object { return &corev1.ServiceAccount{} }, NewList: func() runtime.Object { return &corev1.ServiceAccountList{} }},
	{Group: "", Version: "v1", Resource: "configmaps", Singular: "configmap", Kind: "ConfigMap", Namespaced: true, ShortNames: []string{"cm"},
		New: func() runtime.Object { return &corev1.ConfigMap{} }, NewList: func() runtime.Object { return &corev1.ConfigMapList{} }},
	{Group: "", Version: "v1", Resource: "secrets", Singular: "secret", Kind: "Secret", Namespaced: true,
		New: func() runtime.Object { return &corev1.Secret{} }, NewList: func() runtime.Object { return &corev1.SecretList{} }},
	{Group: "", Version: "v1", Resource: "services", Singular: "service", Kind: "Service", Namespaced: true, ShortNames: []string{"svc"}, Categories: []string{"all"}, Subresources: []string{"status"},
		New: func() runtime.Object { return &corev1.Service{} }, NewList: func() runtime.Object { return &corev1.ServiceList{} }},
	{Group: "apps", Version: "v1", Resource: "deployments", Singular: "deployment", Kind: "Deployment", Namespaced: true, ShortNames: []string{"deploy"}, Categories: []string{"all"}, Subresources: []string{"status", "scale"},
		New: func() runtime.Object { return &appsv1.Deployment{} }, NewList: func() runtime.Object { return &appsv1.DeploymentList{} }},
	{Group: "apps", Version: "v1", Resource: "replicasets", Singular: "replicaset", Kind: "ReplicaSet", Namespaced: true, ShortNames: []string{"rs"}, Categories: []string{"all"}, Subresources: []string{"status", "scale"},
		New: func() runtime.Object { return &appsv1.ReplicaSet{} }, NewList: func() runtime.Object { return &appsv1.ReplicaSetList{} }},
	{Group: "apps", Version: "v1", Resource: "daemonsets", Singular: "daemonset", Kind: "DaemonSet", Namespaced: true, ShortNames: []string{"ds"}, Categories: []string{"all"}, Subresources: []string{"status"},
		New: func() runtime.Object { return &appsv1.DaemonSet{} }, NewList: func() runtime.Object { return &appsv1.DaemonSetList{} }},
	{Group: "apps", Version: "v1", Resource: "controllerrevisions", Singular: "controllerrevision", Kind: "ControllerRevision", Namespaced: true,
		New: func() runtime.Object { return &appsv1.ControllerRevision{} }, NewList: func() runtime.Object { return &appsv1.ControllerRevisionList{} }},
	{Group: "batch", Version: "v1", Resource: "cronjobs", Singular: "cronjob", Kind: "CronJob", Namespaced: true, ShortNames: []string{"cj"}, Categories: []string{"all"}, Subresources: []string{"status"},
		New: func() runtime.Object { return &batchv1.CronJob{} }, NewList: func() runtime.Object { return &batchv1.CronJobList{} }},
	{Group: "batch", Version: "v1", Resource: "jobs", Singular: "job", Kind: "Job", Namespaced: true, Categories: []string{"all"}, Subresources: []string{"status"},
		New: func() runtime.Object { return &batchv1.Job{} }, NewList: func() runtime.Object { return &batchv1.JobList{} }},
	{Group: "", Version: "v1", Resource: "pods", Singular: "pod", Kind: "Pod", Namespaced: true, ShortNames: []string{"po"}, Categories: []string{"all"}, Subresources: []string{"status", "binding"},
		New: func() runtime.Object { return &corev1.Pod{} }, NewList: func() runtime.Object { return &corev1.PodList{} }},
	{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices", Singular: "endpointslice", Kind: "EndpointSlice", Namespaced: true,
		New: func() runtime.Object { return &discoveryv1.EndpointSlice{} }, NewList: func() runtime.Object { return &discoveryv1.EndpointSliceList{} }},
	{Group: "coordination.k8s.io", Version: "v1", Resource: "leases", Singular: "lease", Kind: "Lease", Namespaced: true,
		New: func() runtime.Object { return &coordinationv1.Lease{} }, NewList: func() runtime.Object { return &coordinationv1.LeaseList{} }},
	{Group: "", Version: "v1", Resource: "events", Singular: "event", Kind: "Event", Namespaced: true, ShortNames: []string{"ev"},
		New: func() runtime.Object { return &corev1.Event{} }, NewList: func() runtime.Object { return &corev1.EventList{} }},
}

var (
	byResource = map[schema.GroupResource]*ResourceInfo{}
	byKind     = map[schema.GroupVersionKind]*ResourceInfo{}
)

// Lookup finds a resource by group and plural name.
func Lookup(gr schema.GroupResource) (*ResourceInfo, bool) {
	r, ok := byResource[gr]
	return r, ok
}

// ForKind finds the resource whose objects have the given kind.
func ForKind(gvk schema.GroupVersionKind) (*ResourceInfo, bool) {
	r, ok := byKind[gvk]
	return r, ok
}

// ForObject finds the resource of a typed object.
func ForObject(obj runtime.Object) (*ResourceInfo, error) {
	gvks, _, err := Scheme.ObjectKinds(obj)
	if err != nil {
		return nil, err
	}
	for _, gvk := range gvks {
		if r, ok := byKind[gvk]; ok {
			return r, nil
		}
	}
	return nil, fmt.Errorf("type %T is not a resource Skiff serves", obj)
}

// ResourceNames lists "resource.group" names, sorted, for messages.
func ResourceNames() []string {
	var names []string
	for _, r := range Resources {
		names = append(names, r.GroupResource().String())
	}
	sort.Strings(names)
	return names
}

// protobufSerializer writes and reads the Kubernetes protobuf envelope
// ("k8s\x00" followed by a runtime.Unknown holding the type and the bytes).
var protobufSerializer = protobuf.NewSerializer(Scheme, Scheme)

// EncodeProtobuf encodes a typed object in the Kubernetes protobuf encoding.
// The object's TypeMeta is filled in when it is empty; callers that share
// objects between goroutines must pass objects whose TypeMeta is already set
// (everything Decode returns is).
func EncodeProtobuf(obj runtime.Object) ([]byte, error) {
	if err := SetTypeMeta(obj); err != nil {
		return nil, err
	}
	return runtime.Encode(protobufSerializer, obj)
}

// SetTypeMeta fills in apiVersion and kind from the scheme when they are empty.
func SetTypeMeta(obj runtime.Object) error {
	if !obj.GetObjectKind().GroupVersionKind().Empty() {
		return nil
	}
	gvks, _, err := Scheme.ObjectKinds(obj)
	if err != nil {
		return err
	}
	obj.GetObjectKind().SetGroupVersionKind(gvks[0])
	return nil
}

// DecodeProtobuf decodes protobuf bytes into a typed object. When into is
// nil a new object of the encoded kind is returned.
func DecodeProtobuf(data []byte, into runtime.Object) (runtime.Object, error) {
	obj, _, err := protobufSerializer.Decode(data, nil, into)
	return obj, err
}

var (
	strictJSON = jsonserializer.NewSerializerWithOptions(jsonserializer.DefaultMetaFactory, Scheme, Scheme,
		jsonserializer.SerializerOptions{Strict: true})
	strictYAML = jsonserializer.NewSerializerWithOptions(jsonserializer.DefaultMetaFactory, Scheme, Scheme,
		jsonserializer.SerializerOptions{Yaml: true, Strict: true})
	prettyJSON = jsonserializer.NewSerializerWithOptions(jsonserializer.DefaultMetaFactory, Scheme, Scheme,
		jsonserializer.SerializerOptions{Pretty: true})
	plainYAML = jsonserializer.NewSerializerWithOptions(jsonserializer.DefaultMetaFactory, Scheme, Scheme,
		jsonserializer.SerializerOptions{Yaml: true})
)

// DecodeStrictJSON decodes JSON into a typed object. A field that the
// Kubernetes type does not define, or a field given twice, makes it return
// the decoded object together with a runtime.StrictDecodingError that names
// the field path.
func DecodeStrictJSON(data []byte, into runtime.Object) (runtime.Object, error) {
	obj, _, err := strictJSON.Decode(data, nil, into)
	return obj, err
}

// DecodeStrictYAML is DecodeStrictJSON for YAML documents.
func DecodeStrictYAML(data []byte, into runtime.Object) (runtime.Object, error) {
	obj, _, err := strictYAML.Decode(data, nil, into)
	return obj, err
}

// EncodeJSON encodes a typed object as indented JSON.
func EncodeJSON(obj runtime.Object) ([]byte, error) {
	if err := SetTypeMeta(obj); err != nil {
		return nil, err
	}
	return runtime.Encode(prettyJSON, obj)
}

// EncodeYAML encodes a typed object as YAML.
func EncodeYAML(obj runtime.Object) ([]byte, error) {
	if err := SetTypeMeta(obj); err != nil {
		return nil, err
	}
	return runtime.Encode(plainYAML, obj)
}
