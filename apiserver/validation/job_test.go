package validation

import (
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/apiserver/defaults"
)

const jobUID = "1f6d3c40-0000-4000-8000-000000000001"

// newJob returns a Job as the API server has it after prepareJobForCreate:
// the generated labels and selector in place.
func newJob() *batchv1.Job {
	meta := newMeta("pi")
	meta.UID = jobUID
	return &batchv1.Job{
		ObjectMeta: meta,
		Spec: batchv1.JobSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{batchv1.ControllerUidLabel: jobUID}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{
					batchv1.ControllerUidLabel: jobUID, legacyControllerUIDLabel: jobUID,
					batchv1.JobNameLabel: "pi", legacyJobNameLabel: "pi",
				}},
				Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{newContainer("pi")}},
			},
		},
	}
}

func TestValidateJob(t *testing.T) {
	const labels = "spec.template.metadata.labels: Invalid value: "
	tests := []struct {
		name   string
		mutate func(*batchv1.Job)
		want   []string
	}{
		{"valid", func(*batchv1.Job) {}, nil},
		{"restart OnFailure", func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure }, nil},
		{"restart Always", func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways },
			[]string{`spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"`}},
		{"restart left to the default", func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = "" },
			[]string{`spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"`}},
		{"negative parallelism", func(j *batchv1.Job) { j.Spec.Parallelism = new(int32(-1)) },
			[]string{"spec.parallelism: Invalid value: -1: must be greater than or equal to 0"}},
		{"negative completions", func(j *batchv1.Job) { j.Spec.Completions = new(int32(-2)) },
			[]string{"spec.completions: Invalid value: -2: must be greater than or equal to 0"}},
		{"negative backoffLimit", func(j *batchv1.Job) { j.Spec.BackoffLimit = new(int32(-1)) },
			[]string{"spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0"}},
		{"negative activeDeadlineSeconds", func(j *batchv1.Job) { j.Spec.ActiveDeadlineSeconds = new(int64(-5)) },
			[]string{"spec.activeDeadlineSeconds: Invalid value: -5: must be greater than or equal to 0"}},
		{"negative ttlSecondsAfterFinished", func(j *batchv1.Job) { j.Spec.TTLSecondsAfterFinished = new(int32(-1)) },
			[]string{"spec.ttlSecondsAfterFinished: Invalid value: -1: must be greater than or equal to 0"}},
		{"indexed", func(j *batchv1.Job) {
			j.Spec.CompletionMode = new(batchv1.IndexedCompletion)
			j.Spec.Completions = new(int32(5))
		}, nil},
		{"indexed without completions", func(j *batchv1.Job) {
			j.Spec.CompletionMode = new(batchv1.IndexedCompletion)
			j.Spec.Parallelism = new(int32(2))
		}, []string{"spec.completions: Required value: when completion mode is Indexed"}},
		{"indexed, parallelism too high", func(j *batchv1.Job) {
			j.Spec.CompletionMode = new(batchv1.IndexedCompletion)
			j.Spec.Completions = new(int32(5))
			j.Spec.Parallelism = new(int32(100001))
		}, []string{"spec.parallelism: Invalid value: 100001: must be less than or equal to 100000 when completion mode is Indexed"}},
		{"unknown completion mode", func(j *batchv1.Job) { j.Spec.CompletionMode = new(batchv1.CompletionMode("Sometimes")) },
			[]string{`spec.completionMode: Unsupported value: "Sometimes": supported values: "NonIndexed", "Indexed"`}},
		{"backoffLimitPerIndex without Indexed", func(j *batchv1.Job) { j.Spec.BackoffLimitPerIndex = new(int32(1)) },
			[]string{"spec.backoffLimitPerIndex: Forbidden: requires indexed completion mode"}},
		{"podFailurePolicy with OnFailure", func(j *batchv1.Job) {
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{}
			j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
		}, []string{`spec.template.spec.restartPolicy: Invalid value: "OnFailure": only "Never" is supported when podFailurePolicy is specified`}},
		{"generated uid label changed", func(j *batchv1.Job) { j.Spec.Template.Labels[batchv1.ControllerUidLabel] = "other" },
			[]string{labels, "spec.template.metadata.labels: Invalid value: "}}, // must be 'uid', does not match selector
		{"generated job-name label missing", func(j *batchv1.Job) { delete(j.Spec.Template.Labels, legacyJobNameLabel) },
			[]string{labels + `{"batch.kubernetes.io/controller-uid":"` + jobUID + `","batch.kubernetes.io/job-name":"pi","controller-uid":"` + jobUID + `"}: must be 'job-name=pi'`}},
		{"selector not generated", func(j *batchv1.Job) {
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{batchv1.JobNameLabel: "pi"}}
		}, []string{"spec.selector: Invalid value: {\"matchLabels\":{\"batch.kubernetes.io/job-name\":\"pi\"}}: `selector` not auto-generated"}},
		{"manual selector", func(j *batchv1.Job) {
			j.Spec.ManualSelector = new(true)
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "pi"}}
			j.Spec.Template.Labels = map[string]string{"app": "pi"}
		}, nil},
		{"manual selector not matching the template", func(j *batchv1.Job) {
			j.Spec.ManualSelector = new(true)
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "pi"}}
		}, []string{labels + `{"batch.kubernetes.io/controller-uid":"` + jobUID + `","batch.kubernetes.io/job-name":"pi","controller-uid":"` + jobUID + `","job-name":"pi"}: ` + "`selector` does not match template `labels`"}},
		{"manual selector missing", func(j *batchv1.Job) {
			j.Spec.ManualSelector = new(true)
			j.Spec.Selector = nil
		}, []string{"spec.selector: Required value"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := newJob()
			tc.mutate(j)
			checkErrors(t, create(j), tc.want...)
		})
	}
}

func TestDefaultJob(t *testing.T) {
	j := newJob()
	create(j)
	if *j.Spec.Completions != 1 || *j.Spec.Parallelism != 1 || *j.Spec.BackoffLimit != 6 ||
		*j.Spec.CompletionMode != batchv1.NonIndexedCompletion || *j.Spec.Suspend || *j.Spec.PodReplacementPolicy != batchv1.TerminatingOrFailed {
		t.Errorf("defaults: got %+v", j.Spec)
	}
	if j.Labels[batchv1.JobNameLabel] != "pi" {
		t.Errorf("labels: got %v, want the template's", j.Labels)
	}
	// Parallelism alone is a work queue: completions stay unset.
	wq := newJob()
	wq.Spec.Parallelism = new(int32(3))
	create(wq)
	if wq.Spec.Completions != nil {
		t.Errorf("work queue completions: got %d, want nil", *wq.Spec.Completions)
	}
}

func TestValidateJobUpdate(t *testing.T) {
	tests := []struct {
		name   string
		old    func(*batchv1.Job)
		mutate func(*batchv1.Job)
		want   []string
	}{
		{"resume", func(j *batchv1.Job) { j.Spec.Suspend = new(true) }, func(j *batchv1.Job) { j.Spec.Suspend = new(false) }, nil},
		{"more parallelism", nil, func(j *batchv1.Job) { j.Spec.Parallelism = new(int32(4)) }, nil},
		{"new completions", nil, func(j *batchv1.Job) { j.Spec.Completions = new(int32(4)) },
			[]string{"spec.completions: Invalid value: 4: field is immutable"}},
		{"new image", nil, func(j *batchv1.Job) { j.Spec.Template.Spec.Containers[0].Image = "perl:5" },
			[]string{"spec.template: Invalid value: "}},
		{"new image while suspended and never started", func(j *batchv1.Job) { j.Spec.Suspend = new(true) },
			func(j *batchv1.Job) { j.Spec.Template.Spec.Containers[0].Image = "perl:5" }, nil},
		{"new completion mode", nil, func(j *batchv1.Job) {
			j.Spec.CompletionMode = new(batchv1.IndexedCompletion)
		}, []string{`spec.completionMode: Invalid value: "Indexed": field is immutable`}},
		{"elastic indexed", func(j *batchv1.Job) {
			j.Spec.CompletionMode = new(batchv1.IndexedCompletion)
			j.Spec.Completions, j.Spec.Parallelism = new(int32(3)), new(int32(3))
		}, func(j *batchv1.Job) { j.Spec.Completions, j.Spec.Parallelism = new(int32(5)), new(int32(5)) }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := newJob()
			if tc.old != nil {
				tc.old(old)
			}
			defaults.Default(old) // as stored
			j := old.DeepCopy()
			tc.mutate(j)
			checkErrors(t, update(j, old), tc.want...)
		})
	}
}

func TestValidateJobStatusUpdate(t *testing.T) {
	now := metav1.Now()
	earlier := metav1.NewTime(now.Add(-60e9))
	complete := []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
	tests := []struct {
		name      string
		oldStatus batchv1.JobStatus
		status    batchv1.JobStatus
		want      []string
	}{
		{"valid", batchv1.JobStatus{}, batchv1.JobStatus{Active: 2, Succeeded: 1, Ready: new(int32(1))}, nil},
		{"negative failed", batchv1.JobStatus{}, batchv1.JobStatus{Failed: -1},
			[]string{"status.failed: Invalid value: -1: must be greater than or equal to 0"}},
		{"complete", batchv1.JobStatus{}, batchv1.JobStatus{Succeeded: 1, StartTime: &earlier, CompletionTime: &now, Conditions: complete}, nil},
		{"completion before start", batchv1.JobStatus{}, batchv1.JobStatus{StartTime: &now, CompletionTime: &earlier, Conditions: complete},
			[]string{"status.completionTime: Invalid value: "}},
		{"completionTime without Complete", batchv1.JobStatus{}, batchv1.JobStatus{StartTime: &earlier, CompletionTime: &now},
			[]string{"status.completionTime: Invalid value: "}},
		{"finished job reopened", batchv1.JobStatus{Conditions: complete}, batchv1.JobStatus{},
			[]string{"status.conditions: Invalid value: null: cannot remove the Complete or Failed condition of a finished job"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := newJob()
			old.Status = tc.oldStatus
			j := old.DeepCopy()
			j.Status = tc.status
			checkErrors(t, ValidateStatusUpdate(j, old), tc.want...)
		})
	}
}

func newCronJob() *batchv1.CronJob {
	return &batchv1.CronJob{
		ObjectMeta: newMeta("hello"),
		Spec: batchv1.CronJobSpec{
			Schedule: "*/5 * * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyOnFailure, Containers: []corev1.Container{newContainer("hello")}}},
			}},
		},
	}
}

func TestValidateCronJob(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*batchv1.CronJob)
		want   []string
	}{
		{"valid", func(*batchv1.CronJob) {}, nil},
		{"macro", func(c *batchv1.CronJob) { c.Spec.Schedule = "@hourly" }, nil},
		{"time zone", func(c *batchv1.CronJob) { c.Spec.TimeZone = new("Europe/Paris") }, nil},
		{"no schedule", func(c *batchv1.CronJob) { c.Spec.Schedule = "" }, []string{"spec.schedule: Required value"}},
		{"bad schedule", func(c *batchv1.CronJob) { c.Spec.Schedule = "61 * * * *" },
			[]string{`spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61`}},
		{"six fields", func(c *batchv1.CronJob) { c.Spec.Schedule = "0 */5 * * * *" },
			[]string{`spec.schedule: Invalid value: "0 */5 * * * *": expected exactly 5 fields, found 6: [0 */5 * * * *]`}},
		{"TZ in schedule", func(c *batchv1.CronJob) { c.Spec.Schedule = "CRON_TZ=UTC 0 * * * *" },
			[]string{`spec.schedule: Invalid value: "CRON_TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field instead`}},
		{"unknown time zone", func(c *batchv1.CronJob) { c.Spec.TimeZone = new("Mars/Olympus") },
			[]string{`spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus`}},
		{"empty time zone", func(c *batchv1.CronJob) { c.Spec.TimeZone = new("") },
			[]string{`spec.timeZone: Invalid value: "": timeZone must be nil or non-empty string`}},
		{"unknown concurrency policy", func(c *batchv1.CronJob) { c.Spec.ConcurrencyPolicy = "Sometimes" },
			[]string{`spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"`}},
		{"negative starting deadline", func(c *batchv1.CronJob) { c.Spec.StartingDeadlineSeconds = new(int64(-1)) },
			[]string{"spec.startingDeadlineSeconds: Invalid value: -1: must be greater than or equal to 0"}},
		{"negative history", func(c *batchv1.CronJob) { c.Spec.FailedJobsHistoryLimit = new(int32(-1)) },
			[]string{"spec.failedJobsHistoryLimit: Invalid value: -1: must be greater than or equal to 0"}},
		{"name too long", func(c *batchv1.CronJob) { c.Name = "a-very-long-cronjob-name-that-leaves-no-room-for-the-t" },
			[]string{`metadata.name: Invalid value: "a-very-long-cronjob-name-that-leaves-no-room-for-the-t": must be no more than 52 characters`}},
		{"template restart Always", func(c *batchv1.CronJob) {
			c.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways
		},
			[]string{`spec.jobTemplate.spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCronJob()
			tc.mutate(c)
			checkErrors(t, create(c), tc.want...)
		})
	}
}
