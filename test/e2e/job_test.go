package e2e

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// An Indexed Job of two busybox pods on real nodes: each prints its
// JOB_COMPLETION_INDEX and exits 0; the Job completes with exact
// counters, and the logs of its pods are readable, through the API and
// with `skiffctl logs job/NAME`.
func TestJobOnRealNodes(t *testing.T) {
	cl, lan := startRealNodes(t, 2)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "count", Namespace: ns},
		Spec: batchv1.JobSpec{
			Completions: new(int32(2)), Parallelism: new(int32(2)), CompletionMode: new(batchv1.IndexedCompletion),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy:                 corev1.RestartPolicyNever,
				TerminationGracePeriodSeconds: new(int64(0)),
				Containers: []corev1.Container{{Name: "count", Image: lan.Image, ImagePullPolicy: corev1.PullIfNotPresent,
					Command: []string{"sh", "-c", "echo index $JOB_COMPLETION_INDEX of $(hostname)"}}},
			}},
		},
	}
	if _, err := cl.Client.Jobs(ns).Create(cl.Ctx, job); err != nil {
		t.Fatal(err)
	}
	var j *batchv1.Job
	cl.Await(2*time.Minute, "the Job to complete", func() (bool, error) {
		var err error
		if j, err = cl.Client.Jobs(ns).Get(cl.Ctx, "count"); err != nil {
			return false, err
		}
		for _, c := range j.Status.Conditions {
			if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
				t.Fatalf("the Job failed: %+v", j.Status)
			}
			if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, fmt.Errorf("status %+v", j.Status)
	})
	if s := j.Status; s.Succeeded != 2 || s.Failed != 0 || s.Active != 0 || s.CompletedIndexes != "0-1" {
		t.Errorf("status: got succeeded %d failed %d active %d indexes %q, want 2, 0, 0, 0-1", s.Succeeded, s.Failed, s.Active, s.CompletedIndexes)
	}

	pods, err := cl.Client.Pods(ns).List(cl.Ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=count"})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, p := range pods.Items {
		var buf bytes.Buffer
		if err := cl.Client.PodLogs(cl.Ctx, ns, p.Name, &corev1.PodLogOptions{}, &buf); err != nil {
			t.Fatalf("logs of %s: %v", p.Name, err)
		}
		lines = append(lines, strings.TrimSpace(buf.String()))
	}
	slices.Sort(lines)
	if want := []string{"index 0 of count-0", "index 1 of count-1"}; !slices.Equal(lines, want) {
		t.Errorf("pod logs: got %q, want %q", lines, want)
	}
	out := strings.TrimSpace(cl.skiffctl("logs", "job/count"))
	if !regexp.MustCompile(`^index [01] of count-[01]$`).MatchString(out) {
		t.Errorf("skiffctl logs job/count: got %q", out)
	}
}
