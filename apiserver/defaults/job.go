package defaults

import (
	"math"

	batchv1 "k8s.io/api/batch/v1"
)

// DefaultJob sets the defaults of a Job, as Kubernetes does: one pod to
// run to completion when neither completions nor parallelism is given
// (parallelism alone leaves completions unset: a work queue whose first
// success ends the Job), six retries, NonIndexed completions, not
// suspended, a pod replaced as soon as it is terminating, the Job's
// labels from its pod template's, and the template's own defaults.
func DefaultJob(j *batchv1.Job) {
	spec := &j.Spec
	if spec.Completions == nil && spec.Parallelism == nil {
		spec.Completions = new(int32(1))
		spec.Parallelism = new(int32(1))
	}
	if spec.Parallelism == nil {
		spec.Parallelism = new(int32(1))
	}
	if spec.BackoffLimit == nil {
		if spec.BackoffLimitPerIndex != nil {
			spec.BackoffLimit = new(int32(math.MaxInt32))
		} else {
			spec.BackoffLimit = new(int32(6))
		}
	}
	if len(j.Labels) == 0 && len(spec.Template.Labels) > 0 {
		j.Labels = make(map[string]string, len(spec.Template.Labels))
		for k, v := range spec.Template.Labels {
			j.Labels[k] = v
		}
	}
	defaultJobSpec(spec)
}

// defaultJobSpec sets the defaults a Job and a CronJob's job template
// share.
func defaultJobSpec(spec *batchv1.JobSpec) {
	if spec.CompletionMode == nil {
		spec.CompletionMode = new(batchv1.NonIndexedCompletion)
	}
	if spec.Suspend == nil {
		spec.Suspend = new(false)
	}
	if spec.PodReplacementPolicy == nil {
		if spec.PodFailurePolicy != nil {
			spec.PodReplacementPolicy = new(batchv1.Failed)
		} else {
			spec.PodReplacementPolicy = new(batchv1.TerminatingOrFailed)
		}
	}
	DefaultPodTemplateSpec(&spec.Template)
}

// DefaultCronJob sets the defaults of a CronJob: concurrent runs
// allowed, not suspended, the last three successful Jobs and the last
// failed one kept, and the job template's defaults.
func DefaultCronJob(cj *batchv1.CronJob) {
	spec := &cj.Spec
	if spec.ConcurrencyPolicy == "" {
		spec.ConcurrencyPolicy = batchv1.AllowConcurrent
	}
	if spec.Suspend == nil {
		spec.Suspend = new(false)
	}
	if spec.SuccessfulJobsHistoryLimit == nil {
		spec.SuccessfulJobsHistoryLimit = new(int32(3))
	}
	if spec.FailedJobsHistoryLimit == nil {
		spec.FailedJobsHistoryLimit = new(int32(1))
	}
	DefaultPodTemplateSpec(&spec.JobTemplate.Spec.Template)
}
