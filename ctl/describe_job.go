package ctl

import (
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/skiffdev/skiff/ctl/printers"
)

// This file describes Jobs and CronJobs as kubectl does.

func describeJob(j *batchv1.Job, events *corev1.EventList, now time.Time) string {
	w := newDescribeWriter()
	w.write(0, "Name:\t%s\n", j.Name)
	w.write(0, "Namespace:\t%s\n", j.Namespace)
	w.write(0, "Selector:\t%s\n", metav1.FormatLabelSelector(j.Spec.Selector))
	w.labels("", "Labels", j.Labels)
	w.annotations("", "Annotations", j.Annotations)
	if by := controllerName(j); by != "" {
		w.write(0, "Controlled By:\t%s\n", by)
	}
	w.write(0, "Parallelism:\t%s\n", int32Text(j.Spec.Parallelism))
	w.write(0, "Completions:\t%s\n", int32Text(j.Spec.Completions))
	if m := j.Spec.CompletionMode; m != nil {
		w.write(0, "Completion Mode:\t%s\n", *m)
	}
	w.write(0, "Suspend:\t%t\n", j.Spec.Suspend != nil && *j.Spec.Suspend)
	w.write(0, "Backoff Limit:\t%s\n", int32Text(j.Spec.BackoffLimit))
	if ttl := j.Spec.TTLSecondsAfterFinished; ttl != nil {
		w.write(0, "TTL Seconds After Finished:\t%d\n", *ttl)
	}
	if st := j.Status.StartTime; st != nil {
		w.write(0, "Start Time:\t%s\n", rfc1123(*st))
	}
	if ct := j.Status.CompletionTime; ct != nil {
		w.write(0, "Completed At:\t%s\n", rfc1123(*ct))
	}
	if d := printers.JobDuration(j, now); d != "" {
		w.write(0, "Duration:\t%s\n", d)
	}
	if ads := j.Spec.ActiveDeadlineSeconds; ads != nil {
		w.write(0, "Active Deadline Seconds:\t%s\n", duration.HumanDuration(time.Duration(*ads)*time.Second))
	}
	ready := int32(0)
	if j.Status.Ready != nil {
		ready = *j.Status.Ready
	}
	w.write(0, "Pods Statuses:\t%d Active (%d Ready) / %d Succeeded / %d Failed\n", j.Status.Active, ready, j.Status.Succeeded, j.Status.Failed)
	if j.Spec.CompletionMode != nil && *j.Spec.CompletionMode == batchv1.IndexedCompletion {
		w.write(0, "Completed Indexes:\t%s\n", printers.OrNone(j.Status.CompletedIndexes))
	}
	w.podTemplate(&j.Spec.Template)
	var conds [][3]string
	for _, c := range j.Status.Conditions {
		conds = append(conds, [3]string{string(c.Type), string(c.Status), c.Reason})
	}
	w.conditions(conds)
	w.events(events, now)
	return w.String()
}

func describeCronJob(cj *batchv1.CronJob, events *corev1.EventList, now time.Time) string {
	w := newDescribeWriter()
	w.write(0, "Name:\t%s\n", cj.Name)
	w.write(0, "Namespace:\t%s\n", cj.Namespace)
	w.labels("", "Labels", cj.Labels)
	w.annotations("", "Annotations", cj.Annotations)
	w.write(0, "Schedule:\t%s\n", cj.Spec.Schedule)
	if tz := cj.Spec.TimeZone; tz != nil {
		w.write(0, "TimeZone:\t%s\n", *tz)
	}
	w.write(0, "Concurrency Policy:\t%s\n", cj.Spec.ConcurrencyPolicy)
	w.write(0, "Suspend:\t%s\n", boolWord(cj.Spec.Suspend != nil && *cj.Spec.Suspend))
	w.write(0, "Successful Job History Limit:\t%s\n", int32Text(cj.Spec.SuccessfulJobsHistoryLimit))
	w.write(0, "Failed Job History Limit:\t%s\n", int32Text(cj.Spec.FailedJobsHistoryLimit))
	if d := cj.Spec.StartingDeadlineSeconds; d != nil {
		w.write(0, "Starting Deadline Seconds:\t%ds\n", *d)
	} else {
		w.write(0, "Starting Deadline Seconds:\t<unset>\n")
	}
	spec := &cj.Spec.JobTemplate.Spec
	if spec.Selector != nil {
		w.write(0, "Selector:\t%s\n", metav1.FormatLabelSelector(spec.Selector))
	} else {
		w.write(0, "Selector:\t<unset>\n")
	}
	w.write(0, "Parallelism:\t%s\n", int32Text(spec.Parallelism))
	w.write(0, "Completions:\t%s\n", int32Text(spec.Completions))
	w.podTemplate(&spec.Template)
	if t := cj.Status.LastScheduleTime; t != nil {
		w.write(0, "Last Schedule Time:\t%s\n", rfc1123(*t))
	} else {
		w.write(0, "Last Schedule Time:\t<unset>\n")
	}
	var active []string
	for _, r := range cj.Status.Active {
		active = append(active, r.Name)
	}
	w.write(0, "Active Jobs:\t%s\n", printers.OrNone(strings.Join(active, ", ")))
	w.events(events, now)
	return w.String()
}

// int32Text is an optional count, or "<unset>".
func int32Text(v *int32) string {
	if v == nil {
		return "<unset>"
	}
	return strconv.Itoa(int(*v))
}
