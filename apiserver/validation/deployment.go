package validation

import (
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateDeployment checks a new Deployment.
func validateDeployment(d *appsv1.Deployment) field.ErrorList {
	errs := validateObjectMeta(&d.ObjectMeta, true, nameIsDNSSubdomain)
	spec := &d.Spec
	errs = append(errs, validateReplicas(spec.Replicas, specPath.Child("replicas"))...)
	errs = append(errs, validateControllerSelectorAndTemplate(spec.Selector, &spec.Template, "empty selector is invalid for deployment", "ReplicaSet")...)
	errs = append(errs, validateDeploymentStrategy(&spec.Strategy, specPath.Child("strategy"))...)
	errs = append(errs, validateNonnegativeField(int64(spec.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	if spec.RevisionHistoryLimit != nil {
		// Zero is fine: keep no old ReplicaSets, and give up rollbacks.
		errs = append(errs, validateNonnegativeField(int64(*spec.RevisionHistoryLimit), specPath.Child("revisionHistoryLimit"))...)
	}
	if p := spec.ProgressDeadlineSeconds; p != nil {
		path := specPath.Child("progressDeadlineSeconds")
		errs = append(errs, validatePositiveField(int64(*p), path)...)
		// A new pod only counts once it has been ready for
		// minReadySeconds, so a shorter deadline could never be met.
		if *p <= spec.MinReadySeconds {
			errs = append(errs, field.Invalid(path, *p, "must be greater than minReadySeconds"))
		}
	}
	return errs
}

// validateDeploymentUpdate checks an update of a Deployment. As in apps/v1
// of Kubernetes, the selector may not change.
func validateDeploymentUpdate(d, old *appsv1.Deployment) field.ErrorList {
	errs := validateDeployment(d)
	errs = append(errs, validateObjectMetaUpdate(&d.ObjectMeta, &old.ObjectMeta)...)
	errs = append(errs, validateImmutable(d.Spec.Selector, old.Spec.Selector, specPath.Child("selector"))...)
	return errs
}

var supportedDeploymentStrategies = []appsv1.DeploymentStrategyType{appsv1.RecreateDeploymentStrategyType, appsv1.RollingUpdateDeploymentStrategyType}

// validateDeploymentStrategy checks how a Deployment replaces old pods with
// new ones: all at once (Recreate), or a few at a time (RollingUpdate).
func validateDeploymentStrategy(s *appsv1.DeploymentStrategy, path *field.Path) field.ErrorList {
	switch s.Type {
	case appsv1.RecreateDeploymentStrategyType:
		if s.RollingUpdate != nil {
			return field.ErrorList{field.Forbidden(path.Child("rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'")}
		}
	case appsv1.RollingUpdateDeploymentStrategyType:
		if s.RollingUpdate == nil {
			return field.ErrorList{field.Required(path.Child("rollingUpdate"), "this should be defaulted and never be nil")}
		}
		return validateRollingUpdate(s.RollingUpdate, path.Child("rollingUpdate"))
	default:
		return field.ErrorList{field.NotSupported(path.Child("type"), s.Type, supportedDeploymentStrategies)}
	}
	return nil
}

// validateRollingUpdate checks maxUnavailable (how many pods may be missing
// during a rollout) and maxSurge (how many extra pods may exist). Each is a
// count or a percentage of the replicas; if both were zero the rollout
// could never take a step.
func validateRollingUpdate(ru *appsv1.RollingUpdateDeployment, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	unavailablePath := path.Child("maxUnavailable")
	if ru.MaxUnavailable != nil {
		errs = append(errs, validateIntOrPercent(*ru.MaxUnavailable, unavailablePath)...)
		if v, isPercent := percentValue(*ru.MaxUnavailable); isPercent && v > 100 {
			errs = append(errs, field.Invalid(unavailablePath, *ru.MaxUnavailable, "must not be greater than 100%"))
		}
	}
	if ru.MaxSurge != nil {
		errs = append(errs, validateIntOrPercent(*ru.MaxSurge, path.Child("maxSurge"))...)
	}
	if ru.MaxUnavailable != nil && ru.MaxSurge != nil && intOrPercentValue(*ru.MaxUnavailable) == 0 && intOrPercentValue(*ru.MaxSurge) == 0 {
		errs = append(errs, field.Invalid(unavailablePath, *ru.MaxUnavailable, "may not be 0 when `maxSurge` is 0"))
	}
	return errs
}

// validateIntOrPercent accepts a count >= 0 or a percentage such as "25%".
func validateIntOrPercent(v intstr.IntOrString, path *field.Path) field.ErrorList {
	switch v.Type {
	case intstr.String:
		return invalidEach(path, v, utilvalidation.IsValidPercent(v.StrVal))
	case intstr.Int:
		return validateNonnegativeField(int64(v.IntValue()), path)
	}
	return field.ErrorList{field.Invalid(path, v, "must be an integer or percentage (e.g '5%')")}
}

// percentValue returns the number in a valid percentage ("25%" gives 25).
func percentValue(v intstr.IntOrString) (int, bool) {
	if v.Type != intstr.String || len(utilvalidation.IsValidPercent(v.StrVal)) > 0 {
		return 0, false
	}
	n, err := strconv.Atoi(v.StrVal[:len(v.StrVal)-1])
	return n, err == nil
}

// intOrPercentValue returns the number in a count or a percentage.
func intOrPercentValue(v intstr.IntOrString) int {
	if n, ok := percentValue(v); ok {
		return n
	}
	return v.IntValue()
}

// validateDeploymentStatusUpdate checks a write to a Deployment's status,
// which the Deployment controller does as a rollout progresses.
func validateDeploymentStatusUpdate(d, old *appsv1.Deployment) field.ErrorList {
	errs := validateObjectMetaUpdate(&d.ObjectMeta, &old.ObjectMeta)
	s := &d.Status
	for _, c := range []struct {
		value int64
		name  string
	}{
		{s.ObservedGeneration, "observedGeneration"},
		{int64(s.Replicas), "replicas"},
		{int64(s.UpdatedReplicas), "updatedReplicas"},
		{int64(s.ReadyReplicas), "readyReplicas"},
		{int64(s.AvailableReplicas), "availableReplicas"},
		{int64(s.UnavailableReplicas), "unavailableReplicas"},
	} {
		errs = append(errs, validateNonnegativeField(c.value, statusPath.Child(c.name))...)
	}
	if s.TerminatingReplicas != nil {
		errs = append(errs, validateNonnegativeField(int64(*s.TerminatingReplicas), statusPath.Child("terminatingReplicas"))...)
	}
	if s.CollisionCount != nil {
		errs = append(errs, validateNonnegativeField(int64(*s.CollisionCount), statusPath.Child("collisionCount"))...)
	}
	const moreThanReplicas = "cannot be greater than status.replicas"
	if s.UpdatedReplicas > s.Replicas {
		errs = append(errs, field.Invalid(statusPath.Child("updatedReplicas"), s.UpdatedReplicas, moreThanReplicas))
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
	// collisionCount feeds the names of new ReplicaSets; going back could
	// reuse a name that is taken.
	if isDecremented(s.CollisionCount, old.Status.CollisionCount) {
		var v int32
		if s.CollisionCount != nil {
			v = *s.CollisionCount
		}
		errs = append(errs, field.Invalid(statusPath.Child("collisionCount"), v, "cannot be decremented"))
	}
	return errs
}

func isDecremented(update, old *int32) bool {
	if update == nil {
		return old != nil
	}
	return old != nil && *update < *old
}
