package validation

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateNamespace checks a new Namespace. Its name becomes part of DNS
// names ("web.shop.svc"), so it must be a DNS label.
func validateNamespace(ns *corev1.Namespace) field.ErrorList {
	errs := validateObjectMeta(&ns.ObjectMeta, false, nameIsDNSLabel)
	for i, f := range ns.Spec.Finalizers {
		errs = append(errs, validateNamespaceFinalizer(string(f), specPath.Child("finalizers").Index(i))...)
	}
	return errs
}

// validateNamespaceFinalizer checks one of spec.finalizers: a qualified
// name, and if it has no domain, one that Kubernetes defines.
func validateNamespaceFinalizer(name string, path *field.Path) field.ErrorList {
	errs := apivalidation.ValidateFinalizerName(name, path)
	if !strings.Contains(name, "/") {
		switch name {
		case string(corev1.FinalizerKubernetes), metav1.FinalizerOrphanDependents, metav1.FinalizerDeleteDependents:
		default:
			errs = append(errs, field.Invalid(path, name, "name is neither a standard finalizer name nor is it fully qualified"))
		}
	}
	return errs
}

// validateNamespaceUpdate checks an update of a Namespace. spec.finalizers
// may change: that is how the namespace controller, once it has emptied a
// deleted namespace, lets it go.
func validateNamespaceUpdate(ns, old *corev1.Namespace) field.ErrorList {
	errs := validateNamespace(ns)
	errs = append(errs, validateObjectMetaUpdate(&ns.ObjectMeta, &old.ObjectMeta)...)
	return errs
}

// validateNamespaceStatusUpdate checks a write to a Namespace's status: the
// phase follows the deletion timestamp, Active before deletion starts and
// Terminating after.
func validateNamespaceStatusUpdate(ns, old *corev1.Namespace) field.ErrorList {
	errs := validateObjectMetaUpdate(&ns.ObjectMeta, &old.ObjectMeta)
	phasePath := statusPath.Child("phase")
	if ns.DeletionTimestamp.IsZero() {
		if ns.Status.Phase != corev1.NamespaceActive {
			errs = append(errs, field.Invalid(phasePath, ns.Status.Phase, "may only be 'Active' if `deletionTimestamp` is empty"))
		}
	} else if ns.Status.Phase != corev1.NamespaceTerminating {
		errs = append(errs, field.Invalid(phasePath, ns.Status.Phase, "may only be 'Terminating' if `deletionTimestamp` is not empty"))
	}
	return errs
}
