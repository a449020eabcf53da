package validation

import (
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateDaemonSet checks a new DaemonSet.
func validateDaemonSet(ds *appsv1.DaemonSet) field.ErrorList {
	errs := validateObjectMeta(&ds.ObjectMeta, true, nameIsDNSSubdomain)
	spec := &ds.Spec
	errs = append(errs, validateControllerSelectorAndTemplate(spec.Selector, &spec.Template, "empty selector is invalid for daemonset", "DaemonSet")...)
	errs = append(errs, validateNonnegativeField(int64(spec.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	if spec.RevisionHistoryLimit != nil {
		// Zero is fine: keep no old ControllerRevisions, and give up
		// rollbacks.
		errs = append(errs, validateNonnegativeField(int64(*spec.RevisionHistoryLimit), specPath.Child("revisionHistoryLimit"))...)
	}
	errs = append(errs, validateDaemonSetUpdateStrategy(&spec.UpdateStrategy, specPath.Child("updateStrategy"))...)
	return errs
}

// validateDaemonSetUpdate checks an update of a DaemonSet. As in apps/v1
// of Kubernetes, the selector may not change: the pods it selected would
// be left to nobody.
func validateDaemonSetUpdate(ds, old *appsv1.DaemonSet) field.ErrorList {
	errs := validateDaemonSet(ds)
	errs = append(errs, validateObjectMetaUpdate(&ds.ObjectMeta, &old.ObjectMeta)...)
	errs = append(errs, validateImmutable(ds.Spec.Selector, old.Spec.Selector, specPath.Child("selector"))...)
	return errs
}

var supportedDaemonSetStrategies = []appsv1.DaemonSetUpdateStrategyType{appsv1.RollingUpdateDaemonSetStrategyType, appsv1.OnDeleteDaemonSetStrategyType}

// validateDaemonSetUpdateStrategy checks how a DaemonSet replaces the pods
// of an old template: node by node within maxUnavailable or maxSurge
// (RollingUpdate), or only once a user deletes them (OnDelete).
func validateDaemonSetUpdateStrategy(s *appsv1.DaemonSetUpdateStrategy, path *field.Path) field.ErrorList {
	switch s.Type {
	case appsv1.OnDeleteDaemonSetStrategyType:
	case appsv1.RollingUpdateDaemonSetStrategyType:
		if s.RollingUpdate == nil {
			return field.ErrorList{field.Required(path.Child("rollingUpdate"), "")}
		}
		return validateRollingUpdateDaemonSet(s.RollingUpdate, path.Child("rollingUpdate"))
	default:
		return field.ErrorList{field.NotSupported(path.Child("type"), s.Type, supportedDaemonSetStrategies)}
	}
	return nil
}

// validateRollingUpdateDaemonSet checks maxUnavailable (how many nodes may
// be without an available pod during a rollout) and maxSurge (on how many
// nodes an old and a new pod may run side by side). Each is a count or a
// percentage of the nodes, at most 100%; exactly one of them is non-zero,
// since a node's pod is either replaced first or started first.
func validateRollingUpdateDaemonSet(ru *appsv1.RollingUpdateDaemonSet, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	var hasUnavailable, hasSurge bool
	for _, f := range []struct {
		v    *intstr.IntOrString
		name string
		set  *bool
	}{{ru.MaxUnavailable, "maxUnavailable", &hasUnavailable}, {ru.MaxSurge, "maxSurge", &hasSurge}} {
		if f.v == nil {
			continue
		}
		p := path.Child(f.name)
		errs = append(errs, validateIntOrPercent(*f.v, p)...)
		if v, isPercent := percentValue(*f.v); isPercent && v > 100 {
			errs = append(errs, field.Invalid(p, *f.v, "must not be greater than 100%"))
		}
		*f.set = intOrPercentValue(*f.v) != 0
	}
	switch {
	case hasUnavailable && hasSurge:
		errs = append(errs, field.Invalid(path.Child("maxSurge"), *ru.MaxSurge, "may not be set when maxUnavailable is non-zero"))
	case !hasUnavailable && !hasSurge:
		errs = append(errs, field.Required(path.Child("maxUnavailable"), "cannot be 0 when maxSurge is 0"))
	}
	return errs
}

// validateDaemonSetStatusUpdate checks a write to a DaemonSet's status,
// which the DaemonSet controller does as nodes and pods come and go.
func validateDaemonSetStatusUpdate(ds, old *appsv1.DaemonSet) field.ErrorList {
	errs := validateObjectMetaUpdate(&ds.ObjectMeta, &old.ObjectMeta)
	s := &ds.Status
	for _, c := range []struct {
		value int64
		name  string
	}{
		{int64(s.CurrentNumberScheduled), "currentNumberScheduled"},
		{int64(s.NumberMisscheduled), "numberMisscheduled"},
		{int64(s.DesiredNumberScheduled), "desiredNumberScheduled"},
		{int64(s.NumberReady), "numberReady"},
		{s.ObservedGeneration, "observedGeneration"},
		{int64(s.UpdatedNumberScheduled), "updatedNumberScheduled"},
		{int64(s.NumberAvailable), "numberAvailable"},
		{int64(s.NumberUnavailable), "numberUnavailable"},
	} {
		errs = append(errs, validateNonnegativeField(c.value, statusPath.Child(c.name))...)
	}
	if s.CollisionCount != nil {
		errs = append(errs, validateNonnegativeField(int64(*s.CollisionCount), statusPath.Child("collisionCount"))...)
	}
	// collisionCount feeds the names of new ControllerRevisions; going
	// back could reuse a name that is taken.
	if isDecremented(s.CollisionCount, old.Status.CollisionCount) {
		var v int32
		if s.CollisionCount != nil {
			v = *s.CollisionCount
		}
		errs = append(errs, field.Invalid(statusPath.Child("collisionCount"), v, "cannot be decremented"))
	}
	return errs
}

// validateControllerRevision checks a new ControllerRevision: a snapshot
// of a DaemonSet's (or StatefulSet's) template, numbered.
func validateControllerRevision(cr *appsv1.ControllerRevision) field.ErrorList {
	errs := validateObjectMeta(&cr.ObjectMeta, true, nameIsDNSSubdomain)
	if cr.Data.Raw == nil && cr.Data.Object == nil {
		errs = append(errs, field.Required(field.NewPath("data"), "data is mandatory"))
	}
	errs = append(errs, validateNonnegativeField(cr.Revision, field.NewPath("revision"))...)
	return errs
}

// validateControllerRevisionUpdate checks an update of a
// ControllerRevision: its revision number may change (a rollback makes an
// old snapshot the newest), its data may not.
func validateControllerRevisionUpdate(cr, old *appsv1.ControllerRevision) field.ErrorList {
	errs := validateControllerRevision(cr)
	errs = append(errs, validateObjectMetaUpdate(&cr.ObjectMeta, &old.ObjectMeta)...)
	errs = append(errs, validateImmutable(cr.Data, old.Data, field.NewPath("data"))...)
	return errs
}
