package defaults

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Default sets Kubernetes' defaults on a supported object, in place. Unknown
// types are left alone, and so are Leases and Events, which have no defaults.
func Default(obj runtime.Object) {
	switch o := obj.(type) {
	case *corev1.Pod:
		DefaultPod(o)
	case *appsv1.Deployment:
		DefaultDeployment(o)
	case *appsv1.ReplicaSet:
		DefaultReplicaSet(o)
	case *appsv1.DaemonSet:
		DefaultDaemonSet(o)
	case *batchv1.Job:
		DefaultJob(o)
	case *batchv1.CronJob:
		DefaultCronJob(o)
	case *corev1.Service:
		DefaultService(o)
	case *corev1.Namespace:
		DefaultNamespace(o)
	case *corev1.Node:
		DefaultNode(o)
	case *discoveryv1.EndpointSlice:
		DefaultEndpointSlice(o)
	case *corev1.Secret:
		DefaultSecret(o)
	}
}
