package validation

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Kubernetes' limits on Indexed Jobs: each index is tracked in status,
// so their number is bounded.
const (
	maxParallelismForIndexedJob        = 100000
	completionsSoftLimit               = 100000
	parallelismLimitForHighCompletions = 10000
	// maxCronJobNameLength leaves room in a Job's name for the 11
	// characters of "-<minutes since the epoch>" the CronJob controller
	// appends, within the 63 of a label value (job-name).
	maxCronJobNameLength = 52
)

var (
	supportedCompletionModes = []batchv1.CompletionMode{batchv1.NonIndexedCompletion, batchv1.IndexedCompletion}
	// A Job's pods run to completion: Always would never end.
	supportedJobRestartPolicies  = []corev1.RestartPolicy{corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}
	supportedConcurrencyPolicies = []batchv1.ConcurrencyPolicy{batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent}
)

// validateJob checks a new Job. Unless spec.manualSelector is true, the
// API server generated the selector and the template's labels from the
// Job's UID (registry/job.go); they must still be what it made.
func validateJob(j *batchv1.Job) field.ErrorList {
	errs := validateObjectMeta(&j.ObjectMeta, true, nameIsDNSSubdomain)
	errs = append(errs, validateGeneratedSelector(j)...)
	errs = append(errs, validateJobSpec(&j.Spec, specPath, false)...)
	return errs
}

// validateGeneratedSelector checks the labels and the selector the API
// server generates for a Job without spec.manualSelector: pods carry the
// Job's UID and name, and the selector picks them by UID.
func validateGeneratedSelector(j *batchv1.Job) field.ErrorList {
	if j.Spec.ManualSelector != nil && *j.Spec.ManualSelector {
		return nil
	}
	var errs field.ErrorList
	labelsPath := specPath.Child("template", "metadata", "labels")
	tl := j.Spec.Template.Labels
	for _, l := range []struct{ key, want string }{
		{legacyControllerUIDLabel, string(j.UID)},
		{batchv1.ControllerUidLabel, string(j.UID)},
		{legacyJobNameLabel, j.Name},
		{batchv1.JobNameLabel, j.Name},
	} {
		if tl[l.key] != l.want {
			errs = append(errs, field.Invalid(labelsPath, tl, fmt.Sprintf("must be '%s=%s'", l.key, l.want)))
		}
	}
	if j.Spec.Selector == nil {
		return append(errs, field.Required(specPath.Child("selector"), ""))
	}
	sel, err := metav1.LabelSelectorAsSelector(j.Spec.Selector)
	if err == nil && !sel.Matches(labels.Set{batchv1.ControllerUidLabel: string(j.UID)}) {
		errs = append(errs, field.Invalid(specPath.Child("selector"), j.Spec.Selector, "`selector` not auto-generated"))
	}
	return errs
}

// validateJobSpec checks the spec of a Job, or of a CronJob's job
// template (template is true), whose selector is generated only when each
// Job is created.
func validateJobSpec(spec *batchv1.JobSpec, path *field.Path, template bool) field.ErrorList {
	var errs field.ErrorList
	if spec.Parallelism != nil {
		errs = append(errs, validateNonnegativeField(int64(*spec.Parallelism), path.Child("parallelism"))...)
	}
	if spec.Completions != nil {
		errs = append(errs, validateNonnegativeField(int64(*spec.Completions), path.Child("completions"))...)
	}
	if spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, validateNonnegativeField(*spec.ActiveDeadlineSeconds, path.Child("activeDeadlineSeconds"))...)
	}
	if spec.BackoffLimit != nil {
		errs = append(errs, validateNonnegativeField(int64(*spec.BackoffLimit), path.Child("backoffLimit"))...)
	}
	if spec.TTLSecondsAfterFinished != nil {
		errs = append(errs, validateNonnegativeField(int64(*spec.TTLSecondsAfterFinished), path.Child("ttlSecondsAfterFinished"))...)
	}
	if spec.BackoffLimitPerIndex != nil {
		errs = append(errs, validateNonnegativeField(int64(*spec.BackoffLimitPerIndex), path.Child("backoffLimitPerIndex"))...)
		if spec.CompletionMode == nil || *spec.CompletionMode != batchv1.IndexedCompletion {
			errs = append(errs, field.Forbidden(path.Child("backoffLimitPerIndex"), "requires indexed completion mode"))
		}
	}
	if spec.CompletionMode != nil {
		mode := *spec.CompletionMode
		if !slices.Contains(supportedCompletionModes, mode) {
			errs = append(errs, field.NotSupported(path.Child("completionMode"), mode, supportedCompletionModes))
		}
		if mode == batchv1.IndexedCompletion {
			errs = append(errs, validateIndexedJob(spec, path)...)
		}
	}

	selPath := path.Child("selector")
	if spec.Selector == nil {
		if !template {
			errs = append(errs, field.Required(selPath, ""))
		}
	} else {
		errs = append(errs, metav1validation.ValidateLabelSelector(spec.Selector, metav1validation.LabelSelectorValidationOptions{}, selPath)...)
	}
	templatePath := path.Child("template")
	if spec.Selector != nil {
		if sel, err := metav1.LabelSelectorAsSelector(spec.Selector); err == nil && !sel.Matches(labels.Set(spec.Template.Labels)) {
			errs = append(errs, field.Invalid(templatePath.Child("metadata", "labels"), spec.Template.Labels, "`selector` does not match template `labels`"))
		}
	}
	errs = append(errs, validatePodTemplateSpec(&spec.Template, templatePath)...)
	restart := templatePath.Child("spec", "restartPolicy")
	if p := spec.Template.Spec.RestartPolicy; !slices.Contains(supportedJobRestartPolicies, p) {
		errs = append(errs, field.NotSupported(restart, p, supportedJobRestartPolicies))
	} else if spec.PodFailurePolicy != nil && p != corev1.RestartPolicyNever {
		errs = append(errs, field.Invalid(restart, p, fmt.Sprintf("only %q is supported when podFailurePolicy is specified", corev1.RestartPolicyNever)))
	}
	return errs
}

// validateIndexedJob checks what an Indexed Job needs: a number of
// completions, and bounds that keep its status small.
func validateIndexedJob(spec *batchv1.JobSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if spec.Completions == nil {
		errs = append(errs, field.Required(path.Child("completions"), fmt.Sprintf("when completion mode is %s", batchv1.IndexedCompletion)))
	}
	if spec.Parallelism != nil && *spec.Parallelism > maxParallelismForIndexedJob {
		errs = append(errs, field.Invalid(path.Child("parallelism"), *spec.Parallelism,
			fmt.Sprintf("must be less than or equal to %d when completion mode is %s", maxParallelismForIndexedJob, batchv1.IndexedCompletion)))
	}
	if spec.Completions != nil && *spec.Completions > completionsSoftLimit && spec.Parallelism != nil && *spec.Parallelism > parallelismLimitForHighCompletions {
		errs = append(errs, field.Invalid(path, nil,
			fmt.Sprintf("when completion mode is %s and completions is greater than %d, parallelism must be at most %d", batchv1.IndexedCompletion, completionsSoftLimit, parallelismLimitForHighCompletions)))
	}
	return errs
}

// validateJobUpdate checks an update of a Job. What selects and makes its
// pods is fixed at creation; so is how completions are counted. The pod
// template may change only while the Job is suspended and has never
// started, as in Kubernetes.
func validateJobUpdate(j, old *batchv1.Job) field.ErrorList {
	errs := validateJob(j)
	errs = append(errs, validateObjectMetaUpdate(&j.ObjectMeta, &old.ObjectMeta)...)
	errs = append(errs, validateImmutable(j.Spec.Selector, old.Spec.Selector, specPath.Child("selector"))...)
	errs = append(errs, validateImmutable(j.Spec.CompletionMode, old.Spec.CompletionMode, specPath.Child("completionMode"))...)
	errs = append(errs, validateImmutable(j.Spec.PodFailurePolicy, old.Spec.PodFailurePolicy, specPath.Child("podFailurePolicy"))...)
	errs = append(errs, validateImmutable(j.Spec.BackoffLimitPerIndex, old.Spec.BackoffLimitPerIndex, specPath.Child("backoffLimitPerIndex"))...)
	errs = append(errs, validateImmutable(j.Spec.ManagedBy, old.Spec.ManagedBy, specPath.Child("managedBy"))...)
	// Kubernetes lets an Indexed Job change completions together with
	// parallelism (elastic Indexed Jobs); everything else keeps them.
	elastic := j.Spec.CompletionMode != nil && *j.Spec.CompletionMode == batchv1.IndexedCompletion &&
		j.Spec.Completions != nil && j.Spec.Parallelism != nil && *j.Spec.Completions == *j.Spec.Parallelism
	if !elastic {
		errs = append(errs, validateImmutable(j.Spec.Completions, old.Spec.Completions, specPath.Child("completions"))...)
	}
	neverStarted := old.Spec.Suspend != nil && *old.Spec.Suspend && old.Status.StartTime == nil
	if !neverStarted && !apiequality.Semantic.DeepEqual(j.Spec.Template, old.Spec.Template) {
		errs = append(errs, field.Invalid(specPath.Child("template"), j.Spec.Template, fieldImmutableMsg))
	}
	return errs
}

// validateJobStatusUpdate checks a write to a Job's status, which the Job
// controller does as its pods finish.
func validateJobStatusUpdate(j, old *batchv1.Job) field.ErrorList {
	errs := validateObjectMetaUpdate(&j.ObjectMeta, &old.ObjectMeta)
	s := &j.Status
	for _, c := range []struct {
		value int64
		name  string
	}{
		{int64(s.Active), "active"},
		{int64(s.Succeeded), "succeeded"},
		{int64(s.Failed), "failed"},
	} {
		errs = append(errs, validateNonnegativeField(c.value, statusPath.Child(c.name))...)
	}
	if s.Ready != nil {
		errs = append(errs, validateNonnegativeField(int64(*s.Ready), statusPath.Child("ready"))...)
	}
	if s.Terminating != nil {
		errs = append(errs, validateNonnegativeField(int64(*s.Terminating), statusPath.Child("terminating"))...)
	}
	// A finished Job stays finished: its counts are final.
	if isJobFinished(old) && !isJobFinished(j) {
		errs = append(errs, field.Invalid(statusPath.Child("conditions"), s.Conditions, "cannot remove the Complete or Failed condition of a finished job"))
	}
	if s.CompletionTime != nil && s.StartTime != nil && s.CompletionTime.Before(s.StartTime) {
		errs = append(errs, field.Invalid(statusPath.Child("completionTime"), s.CompletionTime, "completionTime cannot be set before startTime"))
	}
	if s.CompletionTime != nil && !hasJobCondition(j, batchv1.JobComplete) {
		errs = append(errs, field.Invalid(statusPath.Child("completionTime"), s.CompletionTime, "cannot set completionTime when there is no Complete=True condition"))
	}
	return errs
}

func isJobFinished(j *batchv1.Job) bool {
	return hasJobCondition(j, batchv1.JobComplete) || hasJobCondition(j, batchv1.JobFailed)
}

func hasJobCondition(j *batchv1.Job, t batchv1.JobConditionType) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// validateCronJob checks a new CronJob.
func validateCronJob(cj *batchv1.CronJob) field.ErrorList {
	errs := validateObjectMeta(&cj.ObjectMeta, true, nameIsDNSSubdomain)
	if len(cj.Name) > maxCronJobNameLength {
		errs = append(errs, field.Invalid(metadataPath.Child("name"), cj.Name, fmt.Sprintf("must be no more than %d characters", maxCronJobNameLength)))
	}
	spec := &cj.Spec
	errs = append(errs, validateSchedule(spec.Schedule, spec.TimeZone, specPath)...)
	cp := specPath.Child("concurrencyPolicy")
	switch {
	case spec.ConcurrencyPolicy == "":
		errs = append(errs, field.Required(cp, ""))
	case !slices.Contains(supportedConcurrencyPolicies, spec.ConcurrencyPolicy):
		errs = append(errs, field.NotSupported(cp, spec.ConcurrencyPolicy, supportedConcurrencyPolicies))
	}
	if spec.StartingDeadlineSeconds != nil {
		errs = append(errs, validateNonnegativeField(*spec.StartingDeadlineSeconds, specPath.Child("startingDeadlineSeconds"))...)
	}
	if spec.SuccessfulJobsHistoryLimit != nil {
		errs = append(errs, validateNonnegativeField(int64(*spec.SuccessfulJobsHistoryLimit), specPath.Child("successfulJobsHistoryLimit"))...)
	}
	if spec.FailedJobsHistoryLimit != nil {
		errs = append(errs, validateNonnegativeField(int64(*spec.FailedJobsHistoryLimit), specPath.Child("failedJobsHistoryLimit"))...)
	}
	jt := specPath.Child("jobTemplate")
	errs = append(errs, metav1validation.ValidateLabels(spec.JobTemplate.Labels, jt.Child("metadata", "labels"))...)
	errs = append(errs, validateJobSpec(&spec.JobTemplate.Spec, jt.Child("spec"), true)...)
	return errs
}

// validateSchedule checks a cron schedule as the CronJob controller will
// parse it: five fields or a macro such as @hourly. The time zone belongs
// in spec.timeZone, not in the schedule.
func validateSchedule(schedule string, timeZone *string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	sp := path.Child("schedule")
	switch {
	case schedule == "":
		errs = append(errs, field.Required(sp, ""))
	case strings.Contains(schedule, "TZ"):
		errs = append(errs, field.Invalid(sp, schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
	default:
		if _, err := cron.ParseStandard(schedule); err != nil {
			errs = append(errs, field.Invalid(sp, schedule, err.Error()))
		}
	}
	if timeZone != nil {
		tz := path.Child("timeZone")
		switch {
		case *timeZone == "":
			errs = append(errs, field.Invalid(tz, *timeZone, "timeZone must be nil or non-empty string"))
		case strings.EqualFold(*timeZone, "Local"):
			errs = append(errs, field.Invalid(tz, *timeZone, "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"))
		default:
			if _, err := time.LoadLocation(*timeZone); err != nil {
				errs = append(errs, field.Invalid(tz, *timeZone, err.Error()))
			}
		}
	}
	return errs
}

// validateCronJobUpdate checks an update of a CronJob. Its schedule and
// template may change; the Jobs already made keep theirs.
func validateCronJobUpdate(cj, old *batchv1.CronJob) field.ErrorList {
	errs := validateCronJob(cj)
	errs = append(errs, validateObjectMetaUpdate(&cj.ObjectMeta, &old.ObjectMeta)...)
	return errs
}

// validateCronJobStatusUpdate checks a write to a CronJob's status.
func validateCronJobStatusUpdate(cj, old *batchv1.CronJob) field.ErrorList {
	return validateObjectMetaUpdate(&cj.ObjectMeta, &old.ObjectMeta)
}

// The unprefixed labels Kubernetes still puts on a Job's pods beside the
// batch.kubernetes.io/ ones, for selectors written before those existed.
const (
	legacyControllerUIDLabel = "controller-uid"
	legacyJobNameLabel       = "job-name"
)
