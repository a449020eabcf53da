package validation

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Length limits of an Event's fields.
const (
	reportingInstanceLengthLimit = 128
	actionLengthLimit            = 128
	reasonLengthLimit            = 128
	noteLengthLimit              = 1024
)

// validateEvent checks a new Event, with the rules Kubernetes applies to
// core/v1 Events.
//
// An Event lives in the namespace of the object it is about. An old-style
// Event (no eventTime, as most components still write them) about a
// cluster-scoped object such as a Node may live in "default". A new-style
// Event (eventTime set) must also say who reported it, what happened and
// why.
func validateEvent(e *corev1.Event) field.ErrorList {
	errs := validateObjectMeta(&e.ObjectMeta, true, nameIsDNSSubdomain)
	involvedNS := field.NewPath("involvedObject", "namespace")
	const mismatch = "does not match event.namespace"
	if e.EventTime.IsZero() {
		if e.InvolvedObject.Namespace == "" {
			if e.Namespace != metav1.NamespaceNone && e.Namespace != metav1.NamespaceDefault {
				errs = append(errs, field.Invalid(involvedNS, e.InvolvedObject.Namespace, mismatch))
			}
		} else if e.Namespace != e.InvolvedObject.Namespace {
			errs = append(errs, field.Invalid(involvedNS, e.InvolvedObject.Namespace, mismatch))
		}
		return errs
	}

	if e.InvolvedObject.Namespace == "" && e.Namespace != metav1.NamespaceDefault && e.Namespace != metav1.NamespaceSystem {
		errs = append(errs, field.Invalid(involvedNS, e.InvolvedObject.Namespace, mismatch))
	}
	// In core/v1 the reporting controller is spelled reportingComponent.
	componentPath := field.NewPath("reportingComponent")
	if e.ReportingController == "" {
		errs = append(errs, field.Required(componentPath, ""))
	} else {
		errs = append(errs, validateQualifiedName(e.ReportingController, componentPath)...)
	}
	for _, f := range []struct {
		value string
		name  string
		limit int
	}{
		{e.ReportingInstance, "reportingInstance", reportingInstanceLengthLimit},
		{e.Action, "action", actionLengthLimit},
		{e.Reason, "reason", reasonLengthLimit},
	} {
		if f.value == "" {
			errs = append(errs, field.Required(field.NewPath(f.name), ""))
		}
		if len(f.value) > f.limit {
			errs = append(errs, field.Invalid(field.NewPath(f.name), "", fmt.Sprintf("can have at most %v characters", f.limit)))
		}
	}
	if len(e.Message) > noteLengthLimit {
		errs = append(errs, field.Invalid(field.NewPath("message"), "", fmt.Sprintf("can have at most %v characters", noteLengthLimit)))
	}
	return errs
}

// validateEventUpdate checks an update of an Event (a repeated event is
// written as an update with a higher count).
func validateEventUpdate(e, old *corev1.Event) field.ErrorList {
	errs := validateEvent(e)
	return append(errs, validateObjectMetaUpdate(&e.ObjectMeta, &old.ObjectMeta)...)
}
