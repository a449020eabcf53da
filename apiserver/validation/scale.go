package validation

import (
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateScale checks a write to the scale subresource of a Deployment or
// ReplicaSet ("skiffctl scale deploy/web --replicas=3").
func validateScale(s *autoscalingv1.Scale) field.ErrorList {
	errs := validateObjectMeta(&s.ObjectMeta, true, nameIsDNSSubdomain)
	return append(errs, validateNonnegativeField(int64(s.Spec.Replicas), specPath.Child("replicas"))...)
}

// validateScaleUpdate checks a Scale against the current one.
func validateScaleUpdate(s, old *autoscalingv1.Scale) field.ErrorList {
	errs := validateScale(s)
	return append(errs, validateObjectMetaUpdate(&s.ObjectMeta, &old.ObjectMeta)...)
}
