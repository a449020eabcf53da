package validation

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ValidateObject validates a new object (after defaulting). The returned
// field paths are rooted at the object ("metadata.name", "spec.replicas").
// An object of a type Skiff does not serve gets one internal error.
func ValidateObject(obj runtime.Object) field.ErrorList {
	switch o := obj.(type) {
	case *corev1.Pod:
		return validatePodCreate(o)
	case *appsv1.Deployment:
		return validateDeployment(o)
	case *appsv1.ReplicaSet:
		return validateReplicaSet(o)
	case *appsv1.DaemonSet:
		return validateDaemonSet(o)
	case *appsv1.ControllerRevision:
		return validateControllerRevision(o)
	case *batchv1.Job:
		return validateJob(o)
	case *batchv1.CronJob:
		return validateCronJob(o)
	case *corev1.Service:
		return validateService(o)
	case *corev1.Namespace:
		return validateNamespace(o)
	case *corev1.ConfigMap:
		return validateConfigMap(o)
	case *corev1.Secret:
		return validateSecret(o)
	case *corev1.ServiceAccount:
		return validateServiceAccount(o)
	case *corev1.Node:
		return validateNode(o)
	case *discoveryv1.EndpointSlice:
		return validateEndpointSlice(o)
	case *coordinationv1.Lease:
		return validateLease(o)
	case *corev1.Event:
		return validateEvent(o)
	case *corev1.Binding:
		return validateBinding(o)
	case *autoscalingv1.Scale:
		return validateScale(o)
	}
	return unsupportedType(obj)
}

// ValidateObjectUpdate validates an updated object against the stored one:
// everything ValidateObject checks, plus immutable fields and metadata
// update rules. obj and old must be of the same type.
func ValidateObjectUpdate(obj, old runtime.Object) field.ErrorList {
	switch o := obj.(type) {
	case *corev1.Pod:
		return withOld(o, old, validatePodUpdate)
	case *appsv1.Deployment:
		return withOld(o, old, validateDeploymentUpdate)
	case *appsv1.ReplicaSet:
		return withOld(o, old, validateReplicaSetUpdate)
	case *appsv1.DaemonSet:
		return withOld(o, old, validateDaemonSetUpdate)
	case *appsv1.ControllerRevision:
		return withOld(o, old, validateControllerRevisionUpdate)
	case *batchv1.Job:
		return withOld(o, old, validateJobUpdate)
	case *batchv1.CronJob:
		return withOld(o, old, validateCronJobUpdate)
	case *corev1.Service:
		return withOld(o, old, validateServiceUpdate)
	case *corev1.Namespace:
		return withOld(o, old, validateNamespaceUpdate)
	case *corev1.ConfigMap:
		return withOld(o, old, validateConfigMapUpdate)
	case *corev1.Secret:
		return withOld(o, old, validateSecretUpdate)
	case *corev1.ServiceAccount:
		return withOld(o, old, validateServiceAccountUpdate)
	case *corev1.Node:
		return withOld(o, old, validateNodeUpdate)
	case *discoveryv1.EndpointSlice:
		return withOld(o, old, validateEndpointSliceUpdate)
	case *coordinationv1.Lease:
		return withOld(o, old, validateLeaseUpdate)
	case *corev1.Event:
		return withOld(o, old, validateEventUpdate)
	case *autoscalingv1.Scale:
		return withOld(o, old, validateScaleUpdate)
	}
	return unsupportedType(obj)
}

// ValidateStatusUpdate validates a status-subresource update (status
// fields, plus metadata update rules). The caller copies the stored spec
// into obj first: a status write never changes the spec. Kinds without a
// status of their own get the metadata update rules only.
func ValidateStatusUpdate(obj, old runtime.Object) field.ErrorList {
	switch o := obj.(type) {
	case *corev1.Pod:
		return withOld(o, old, validatePodStatusUpdate)
	case *appsv1.Deployment:
		return withOld(o, old, validateDeploymentStatusUpdate)
	case *appsv1.ReplicaSet:
		return withOld(o, old, validateReplicaSetStatusUpdate)
	case *appsv1.DaemonSet:
		return withOld(o, old, validateDaemonSetStatusUpdate)
	case *batchv1.Job:
		return withOld(o, old, validateJobStatusUpdate)
	case *batchv1.CronJob:
		return withOld(o, old, validateCronJobStatusUpdate)
	case *corev1.Service:
		return withOld(o, old, validateServiceStatusUpdate)
	case *corev1.Namespace:
		return withOld(o, old, validateNamespaceStatusUpdate)
	case *corev1.Node:
		return withOld(o, old, validateNodeStatusUpdate)
	case *discoveryv1.EndpointSlice:
		return withOld(o, old, metadataUpdateOnly)
	case *coordinationv1.Lease:
		return withOld(o, old, metadataUpdateOnly)
	case *corev1.Event:
		return withOld(o, old, metadataUpdateOnly)
	}
	return unsupportedType(obj)
}

// metadataUpdateOnly checks the metadata rules of an update and nothing
// else, for kinds that have no status of their own.
func metadataUpdateOnly[T interface {
	runtime.Object
	metav1.Object
}](obj, old T) field.ErrorList {
	return apivalidation.ValidateObjectMetaAccessorUpdate(obj, old, metadataPath)
}

// withOld calls validate with old converted to the type of obj, or reports
// an internal error when the two objects are not of the same type.
func withOld[T runtime.Object](obj T, old runtime.Object, validate func(obj, old T) field.ErrorList) field.ErrorList {
	o, ok := old.(T)
	if !ok {
		return field.ErrorList{field.InternalError(nil, fmt.Errorf("cannot compare a %T with a %T", obj, old))}
	}
	return validate(obj, o)
}

func unsupportedType(obj runtime.Object) field.ErrorList {
	return field.ErrorList{field.InternalError(nil, fmt.Errorf("no validation for type %T", obj))}
}
