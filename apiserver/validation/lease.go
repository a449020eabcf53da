package validation

import (
	"slices"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var supportedLeaseStrategies = []coordinationv1.CoordinatedLeaseStrategy{coordinationv1.OldestEmulationVersion}

// validateLease checks a new Lease. Nodes renew a Lease as their heartbeat,
// and leader election holds one: whoever renewed last within
// leaseDurationSeconds is the holder.
func validateLease(l *coordinationv1.Lease) field.ErrorList {
	errs := validateObjectMeta(&l.ObjectMeta, true, nameIsDNSSubdomain)
	spec := &l.Spec
	if d := spec.LeaseDurationSeconds; d != nil && *d <= 0 {
		errs = append(errs, field.Invalid(specPath.Child("leaseDurationSeconds"), *d, isNotPositiveErrorMsg))
	}
	if t := spec.LeaseTransitions; t != nil && *t < 0 {
		errs = append(errs, field.Invalid(specPath.Child("leaseTransitions"), *t, isNegativeErrorMsg))
	}
	if s := spec.Strategy; s != nil && !slices.Contains(supportedLeaseStrategies, *s) {
		errs = append(errs, field.NotSupported(specPath.Child("strategy"), *s, supportedLeaseStrategies))
	}
	if h := spec.PreferredHolder; h != nil && *h != "" && (spec.Strategy == nil || *spec.Strategy == "") {
		errs = append(errs, field.Forbidden(specPath.Child("preferredHolder"), "may only be specified if `strategy` is defined"))
	}
	return errs
}

// validateLeaseUpdate checks an update of a Lease.
func validateLeaseUpdate(l, old *coordinationv1.Lease) field.ErrorList {
	errs := validateLease(l)
	return append(errs, validateObjectMetaUpdate(&l.ObjectMeta, &old.ObjectMeta)...)
}
