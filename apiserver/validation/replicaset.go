package validation

import (
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateReplicaSet checks a new ReplicaSet.
func validateReplicaSet(rs *appsv1.ReplicaSet) field.ErrorList {
	errs := validateObjectMeta(&rs.ObjectMeta, true, nameIsDNSSubdomain)
	spec := &rs.Spec
	errs = append(errs, validateReplicas(spec.Replicas, specPath.Child("replicas"))...)
	errs = append(errs, validateNonnegativeField(int64(spec.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	// Kubernetes says "deployment" here too; the message is kept as it is.
	errs = append(errs, validateControllerSelectorAndTemplate(spec.Selector, &spec.Template, "empty selector is invalid for deployment", "ReplicaSet")...)
	return errs
}

// validateReplicaSetUpdate checks an update of a ReplicaSet. The selector
// is fixed at creation: changing it would orphan the pods it selected.
func validateReplicaSetUpdate(rs, old *appsv1.ReplicaSet) field.ErrorList {
	errs := validateReplicaSet(rs)
	errs = append(errs, validateObjectMetaUpdate(&rs.ObjectMeta, &old.ObjectMeta)...)
	errs = append(errs, validateImmutable(rs.Spec.Selector, old.Spec.Selector, specPath.Child("selector"))...)
	return errs
}

// validateReplicaSetStatusUpdate checks a write to a ReplicaSet's status,
// which the ReplicaSet controller does as pods come and go.
func validateReplicaSetStatusUpdate(rs, old *appsv1.ReplicaSet) field.ErrorList {
	errs := validateObjectMetaUpdate(&rs.ObjectMeta, &old.ObjectMeta)
	s := &rs.Status
	for _, c := range []struct {
		value int64
		name  string
	}{
		{int64(s.Replicas), "replicas"},
		{int64(s.FullyLabeledReplicas), "fullyLabeledReplicas"},
		{int64(s.ReadyReplicas), "readyReplicas"},
		{int64(s.AvailableReplicas), "availableReplicas"},
		{s.ObservedGeneration, "observedGeneration"},
	} {
		errs = append(errs, validateNonnegativeField(c.value, statusPath.Child(c.name))...)
	}
	if s.TerminatingReplicas != nil {
		errs = append(errs, validateNonnegativeField(int64(*s.TerminatingReplicas), statusPath.Child("terminatingReplicas"))...)
	}
	const moreThanReplicas = "cannot be greater than status.replicas"
	if s.FullyLabeledReplicas > s.Replicas {
		errs = append(errs, field.Invalid(statusPath.Child("fullyLabeledReplicas"), s.FullyLabeledReplicas, moreThanReplicas))
	}
	if s.ReadyReplicas > s.Replicas {
		errs = append(errs, field.Invalid(statusPath.Child("readyReplicas"), s.ReadyReplicas, moreThanReplicas))
	}
	if s.AvailableReplicas > s.Replicas {
		errs = append(errs, field.Invalid(statusPath.Child("availableReplicas"), s.AvailableReplicas, moreThanReplicas))
	}
	if s.AvailableReplicas > s.ReadyReplicas {
		errs = append(errs, field.Invalid(statusPath.Child("availableReplicas"), s.AvailableReplicas, "cannot be greater than readyReplicas"))
	}
	return errs
}

// validateReplicas requires spec.replicas >= 0. Defaulting sets it, so a
// nil value only reaches here when defaulting was skipped.
func validateReplicas(replicas *int32, path *field.Path) field.ErrorList {
	if replicas == nil {
		return nil
	}
	return validateNonnegativeField(int64(*replicas), path)
}

// validateControllerSelectorAndTemplate checks the selector and the pod
// template of a Deployment, ReplicaSet or DaemonSet (kind, in the
// message about activeDeadlineSeconds). The two must agree: the
// controller counts the pods its selector matches, so pods made from the
// template must match it, or the controller would create pods forever.
func validateControllerSelectorAndTemplate(selector *metav1.LabelSelector, template *corev1.PodTemplateSpec, emptyMsg, kind string) field.ErrorList {
	var errs field.ErrorList
	selPath := specPath.Child("selector")
	if selector == nil {
		errs = append(errs, field.Required(selPath, ""))
	} else {
		errs = append(errs, metav1validation.ValidateLabelSelector(selector, metav1validation.LabelSelectorValidationOptions{}, selPath)...)
		if len(selector.MatchLabels)+len(selector.MatchExpressions) == 0 {
			errs = append(errs, field.Invalid(selPath, selector, emptyMsg))
		}
	}

	templatePath := specPath.Child("template")
	sel, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		errs = append(errs, field.Invalid(selPath, selector, "invalid label selector"))
	} else if selector != nil && !sel.Empty() && !sel.Matches(labels.Set(template.Labels)) {
		errs = append(errs, field.Invalid(templatePath.Child("metadata", "labels"), template.Labels, "`selector` does not match template `labels`"))
	}
	errs = append(errs, validatePodTemplateSpec(template, templatePath)...)

	// A controller replaces pods that exit, whatever their exit code; any
	// other restart policy would fight it.
	supported := []corev1.RestartPolicy{corev1.RestartPolicyAlways}
	if p := template.Spec.RestartPolicy; p != "" && !slices.Contains(supported, p) {
		errs = append(errs, field.NotSupported(templatePath.Child("spec", "restartPolicy"), p, supported))
	}
	if template.Spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, field.Forbidden(templatePath.Child("spec", "activeDeadlineSeconds"), "activeDeadlineSeconds in "+kind+" is not Supported"))
	}
	return errs
}
