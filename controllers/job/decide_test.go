package job

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// t0 is when the test Jobs started.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

func mtime(sec int) *metav1.Time { t := metav1.NewTime(at(sec)); return &t }

// testJob is a started Job of completions 3, parallelism 2, backoffLimit 2.
func testJob(mutate ...func(*batchv1.Job)) *batchv1.Job {
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "pi", UID: "job-uid"},
		Spec: batchv1.JobSpec{
			Completions: new(int32(3)), Parallelism: new(int32(2)), BackoffLimit: new(int32(2)),
			CompletionMode: new(batchv1.NonIndexedCompletion), Suspend: new(false),
			PodReplacementPolicy: new(batchv1.TerminatingOrFailed),
			Template:             corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever}},
		},
		Status: batchv1.JobStatus{StartTime: mtime(0), UncountedTerminatedPods: &batchv1.UncountedTerminatedPods{}},
	}
	for _, m := range mutate {
		m(j)
	}
	return j
}

// pod describes a pod of the Job: "name:state[:opt...]" where state is
// pending, running, ready, succeeded@T, failed@T or deleting@T, and the
// options are nofin (finalizer gone), ix=N (completion index) and
// restarts=N.
func pod(desc string) *corev1.Pod {
	parts := strings.Split(desc, ":")
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: parts[0], UID: types.UID(parts[0]),
			Finalizers: []string{batchv1.JobTrackingFinalizer}, CreationTimestamp: metav1.NewTime(t0)},
		Spec: corev1.PodSpec{NodeName: "n1"},
	}
	state, when, _ := strings.Cut(parts[1], "@")
	var sec int
	fmt.Sscan(when, &sec)
	terminated := []corev1.ContainerStatus{{Name: "c", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{FinishedAt: *mtime(sec)}}}}
	switch state {
	case "pending":
		p.Status.Phase = corev1.PodPending
		p.Spec.NodeName = ""
	case "running":
		p.Status.Phase = corev1.PodRunning
	case "ready":
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	case "succeeded":
		p.Status.Phase, p.Status.ContainerStatuses = corev1.PodSucceeded, terminated
	case "failed":
		p.Status.Phase, p.Status.ContainerStatuses = corev1.PodFailed, terminated
	case "deleting":
		p.Status.Phase = corev1.PodRunning
		p.DeletionTimestamp = mtime(sec)
	default:
		panic("unknown pod state " + state)
	}
	for _, opt := range parts[2:] {
		k, v, _ := strings.Cut(opt, "=")
		switch k {
		case "nofin":
			p.Finalizers = nil
		case "ix":
			p.Annotations = map[string]string{batchv1.JobCompletionIndexAnnotation: v}
		case "restarts":
			var n int32
			fmt.Sscan(v, &n)
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", RestartCount: n}}
		}
	}
	return p
}

func pods(descs ...string) []*corev1.Pod {
	out := make([]*corev1.Pod, len(descs))
	for i, d := range descs {
		out[i] = pod(d)
	}
	return out
}

// summary is the part of a Plan a case checks, in a form that prints
// readably.
type summary struct {
	Succeeded, Failed, Active   int32
	Ready, Terminating          int32
	UncountedS, UncountedF      string
	CompletedIndexes            string
	Conditions                  string // "Type=Reason,..." of True conditions
	Create, Delete, Unfinalize  string
	Events                      string
	RequeueAfter                time.Duration
	DeleteJob, StartTimeChanged bool
	CompletionTimeSet           bool
}

func summarize(in Input, p Plan) summary {
	names := func(ps []*corev1.Pod) string {
		var s []string
		for _, p := range ps {
			s = append(s, p.Name)
		}
		slices.Sort(s)
		return strings.Join(s, ",")
	}
	uids := func(us []types.UID) string {
		var s []string
		for _, u := range us {
			s = append(s, string(u))
		}
		slices.Sort(s)
		return strings.Join(s, ",")
	}
	var conds, evs, creates []string
	for _, c := range p.Status.Conditions {
		if c.Status == corev1.ConditionTrue {
			conds = append(conds, string(c.Type)+"="+c.Reason)
		}
	}
	for _, e := range p.Events {
		evs = append(evs, e.Reason)
	}
	for _, ix := range p.Create {
		creates = append(creates, fmt.Sprint(ix))
	}
	st := p.Status
	return summary{
		Succeeded: st.Succeeded, Failed: st.Failed, Active: st.Active,
		Ready: deref(st.Ready), Terminating: deref(st.Terminating),
		UncountedS: uids(st.UncountedTerminatedPods.Succeeded), UncountedF: uids(st.UncountedTerminatedPods.Failed),
		CompletedIndexes: st.CompletedIndexes,
		Conditions:       strings.Join(conds, ","),
		Create:           strings.Join(creates, ","), Delete: names(p.Delete), Unfinalize: names(p.RemoveFinalizers),
		Events:       strings.Join(evs, ","),
		RequeueAfter: p.RequeueAfter, DeleteJob: p.DeleteJob,
		StartTimeChanged:  !st.StartTime.Equal(in.Job.Status.StartTime),
		CompletionTimeSet: st.CompletionTime != nil,
	}
}

func deref(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

func TestDecide(t *testing.T) {
	indexed := func(j *batchv1.Job) {
		j.Spec.CompletionMode = new(batchv1.IndexedCompletion)
		j.Spec.Completions = new(int32(4))
	}
	withStatus := func(f func(*batchv1.JobStatus)) func(*batchv1.Job) {
		return func(j *batchv1.Job) { f(&j.Status) }
	}
	cond := func(t batchv1.JobConditionType, reason string, sec int) batchv1.JobCondition {
		return batchv1.JobCondition{Type: t, Status: corev1.ConditionTrue, Reason: reason, LastTransitionTime: *mtime(sec)}
	}
	tests := []struct {
		name    string
		job     *batchv1.Job
		pods    []*corev1.Pod
		removed []types.UID
		now     int
		want    summary
	}{
		{name: "new job starts parallelism pods",
			job:  testJob(withStatus(func(s *batchv1.JobStatus) { s.StartTime, s.UncountedTerminatedPods = nil, nil })),
			want: summary{Create: "-1,-1", StartTimeChanged: true}},
		{name: "running pods are counted active and ready",
			job: testJob(), pods: pods("a:ready", "b:pending"),
			want: summary{Active: 2, Ready: 1}},
		{name: "a success is first recorded uncounted, then its finalizer goes",
			job: testJob(), pods: pods("a:succeeded@5", "b:running"),
			want: summary{Active: 1, UncountedS: "a", Unfinalize: "a", Create: "-1"}},
		{name: "an uncounted success whose finalizer is gone is counted",
			job:  testJob(withStatus(func(s *batchv1.JobStatus) { s.UncountedTerminatedPods.Succeeded = []types.UID{"a"} })),
			pods: pods("a:succeeded@5:nofin", "b:running", "c:running"),
			want: summary{Succeeded: 1, Active: 2}},
		{name: "an uncounted pod that is gone is counted",
			job:  testJob(withStatus(func(s *batchv1.JobStatus) { s.UncountedTerminatedPods.Failed = []types.UID{"x"} })),
			pods: pods("b:running", "c:running"),
			want: summary{Failed: 1, Active: 2}},
		{name: "a finished pod without finalizer was counted before",
			job:  testJob(withStatus(func(s *batchv1.JobStatus) { s.Succeeded = 1 })),
			pods: pods("a:succeeded@5:nofin", "b:running", "c:running"),
			want: summary{Succeeded: 1, Active: 2}},
		{name: "a removal the cache does not show yet counts as done",
			job:     testJob(withStatus(func(s *batchv1.JobStatus) { s.UncountedTerminatedPods.Succeeded = []types.UID{"a"} })),
			pods:    pods("a:succeeded@5", "b:running", "c:running"),
			removed: []types.UID{"a"},
			want:    summary{Succeeded: 1, Active: 2}},
		{name: "an uncounted pod still holding its finalizer has it removed again",
			job:  testJob(withStatus(func(s *batchv1.JobStatus) { s.UncountedTerminatedPods.Succeeded = []types.UID{"a"} })),
			pods: pods("a:succeeded@5", "b:running"),
			want: summary{Active: 1, UncountedS: "a", Unfinalize: "a", Create: "-1"}},
		{name: "first failure: replacement waits 10s from the failure",
			job: testJob(), pods: pods("a:failed@5", "b:running"), now: 6,
			want: summary{Active: 1, UncountedF: "a", Unfinalize: "a", RequeueAfter: 9 * time.Second}},
		{name: "first failure: replacement after the backoff",
			job:  testJob(withStatus(func(s *batchv1.JobStatus) { s.Failed = 1 })),
			pods: pods("a:failed@5:nofin", "b:running"), now: 15,
			want: summary{Failed: 1, Active: 1, Create: "-1"}},
		{name: "second failure doubles the backoff to 20s",
			job:  testJob(withStatus(func(s *batchv1.JobStatus) { s.Failed = 2 })),
			pods: pods("a:failed@5:nofin", "c:failed@30:nofin", "b:running"), now: 31,
			want: summary{Failed: 2, Active: 1, RequeueAfter: 19 * time.Second}},
		{name: "a success resets the backoff",
			job:  testJob(withStatus(func(s *batchv1.JobStatus) { s.Failed, s.Succeeded = 2, 1 })),
			pods: pods("a:failed@5:nofin", "c:failed@30:nofin", "d:succeeded@40:nofin"), now: 41,
			want: summary{Failed: 2, Succeeded: 1, Create: "-1,-1"}},
		{name: "the backoff is capped at 6 minutes",
			job: testJob(func(j *batchv1.Job) { j.Spec.BackoffLimit = new(int32(100)) }, withStatus(func(s *batchv1.JobStatus) { s.Failed = 8 })),
			pods: pods("f1:failed@1:nofin", "f2:failed@2:nofin", "f3:failed@3:nofin", "f4:failed@4:nofin",
				"f5:failed@5:nofin", "f6:failed@6:nofin", "f7:failed@7:nofin", "f8:failed@8:nofin"), now: 8,
			want: summary{Failed: 8, RequeueAfter: 6 * time.Minute}},
		{name: "failures beyond backoffLimit: FailureTarget, active pods deleted",
			job:  testJob(withStatus(func(s *batchv1.JobStatus) { s.Failed = 2 })),
			pods: pods("a:failed@5:nofin", "b:failed@6:nofin", "c:failed@50", "d:running"), now: 51,
			want: summary{Failed: 2, Active: 1, UncountedF: "c", Unfinalize: "c", Delete: "d", Conditions: "FailureTarget=BackoffLimitExceeded"}},
		{name: "FailureTarget becomes Failed once everything is counted and stopped",
			job: testJob(withStatus(func(s *batchv1.JobStatus) {
				s.Failed = 3
				s.Conditions = []batchv1.JobCondition{cond(batchv1.JobFailureTarget, ReasonBackoffLimitExceeded, 51)}
			})),
			pods: pods("a:failed@5:nofin", "b:failed@6:nofin", "c:failed@50:nofin"), now: 52,
			want: summary{Failed: 3, Conditions: "FailureTarget=BackoffLimitExceeded,Failed=BackoffLimitExceeded", Events: ReasonBackoffLimitExceeded}},
		{name: "FailureTarget waits for terminating pods, which count as failed",
			job: testJob(withStatus(func(s *batchv1.JobStatus) {
				s.Failed = 3
				s.Conditions = []batchv1.JobCondition{cond(batchv1.JobFailureTarget, ReasonBackoffLimitExceeded, 51)}
			})),
			pods: pods("d:deleting@51"), now: 52,
			want: summary{Failed: 3, Terminating: 1, UncountedF: "d", Unfinalize: "d", Conditions: "FailureTarget=BackoffLimitExceeded"}},
		{name: "OnFailure: container restarts reaching backoffLimit fail the job",
			job:  testJob(func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure }),
			pods: pods("a:running:restarts=1", "b:running:restarts=1"), now: 20,
			want: summary{Active: 2, Delete: "a,b", Conditions: "FailureTarget=BackoffLimitExceeded"}},
		{name: "OnFailure: fewer restarts go on",
			job:  testJob(func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure }),
			pods: pods("a:running:restarts=1", "b:running"), now: 20,
			want: summary{Active: 2}},
		{name: "activeDeadlineSeconds passed",
			job:  testJob(func(j *batchv1.Job) { j.Spec.ActiveDeadlineSeconds = new(int64(30)) }),
			pods: pods("a:running", "b:running"), now: 30,
			want: summary{Active: 2, Delete: "a,b", Conditions: "FailureTarget=DeadlineExceeded"}},
		{name: "activeDeadlineSeconds ahead: requeue at the deadline",
			job:  testJob(func(j *batchv1.Job) { j.Spec.ActiveDeadlineSeconds = new(int64(30)) }),
			pods: pods("a:running", "b:running"), now: 12,
			want: summary{Active: 2, RequeueAfter: 18 * time.Second}},
		{name: "deleted pod counts as failed and is replaced at once",
			job: testJob(), pods: pods("a:deleting@5", "b:running"), now: 5,
			want: summary{Active: 1, Terminating: 1, UncountedF: "a", Unfinalize: "a", RequeueAfter: 10 * time.Second}},
		{name: "podReplacementPolicy Failed: a terminating pod holds its place",
			job:  testJob(func(j *batchv1.Job) { j.Spec.PodReplacementPolicy = new(batchv1.Failed) }),
			pods: pods("a:deleting@5", "b:running"), now: 5,
			want: summary{Active: 1, Terminating: 1}},
		{name: "completions reached with nothing running: SuccessCriteriaMet and Complete at once",
			job:  testJob(withStatus(func(s *batchv1.JobStatus) { s.Succeeded = 3 })),
			pods: pods("a:succeeded@5:nofin", "b:succeeded@6:nofin", "c:succeeded@7:nofin"), now: 8,
			want: summary{Succeeded: 3, Conditions: "SuccessCriteriaMet=CompletionsReached,Complete=CompletionsReached", Events: "Completed", CompletionTimeSet: true}},
		{name: "SuccessCriteriaMet becomes Complete",
			job: testJob(withStatus(func(s *batchv1.JobStatus) {
				s.Succeeded = 3
				s.Conditions = []batchv1.JobCondition{cond(batchv1.JobSuccessCriteriaMet, ReasonCompletionsReached, 8)}
			})),
			pods: pods("a:succeeded@5:nofin", "b:succeeded@6:nofin", "c:succeeded@7:nofin"), now: 9,
			want: summary{Succeeded: 3, Conditions: "SuccessCriteriaMet=CompletionsReached,Complete=CompletionsReached", Events: "Completed", CompletionTimeSet: true}},
		{name: "fewer left to complete than parallelism",
			job:  testJob(withStatus(func(s *batchv1.JobStatus) { s.Succeeded = 2 })),
			pods: pods("a:succeeded@5:nofin", "b:succeeded@6:nofin"), now: 9,
			want: summary{Succeeded: 2, Create: "-1"}},
		{name: "parallelism lowered: the least advanced pods go",
			job:  testJob(func(j *batchv1.Job) { j.Spec.Parallelism = new(int32(1)) }),
			pods: pods("a:ready", "b:pending"),
			want: summary{Active: 2, Ready: 1, Delete: "b"}},
		{name: "work queue: after a success no new pods, completes when the rest finish",
			job:  testJob(func(j *batchv1.Job) { j.Spec.Completions = nil }, withStatus(func(s *batchv1.JobStatus) { s.Succeeded = 1 })),
			pods: pods("a:succeeded@5:nofin", "b:running"),
			want: summary{Succeeded: 1, Active: 1}},
		{name: "work queue: complete once nothing runs",
			job:  testJob(func(j *batchv1.Job) { j.Spec.Completions = nil }, withStatus(func(s *batchv1.JobStatus) { s.Succeeded = 2 })),
			pods: pods("a:succeeded@5:nofin", "b:succeeded@6:nofin"),
			want: summary{Succeeded: 2, Conditions: "SuccessCriteriaMet=CompletionsReached,Complete=CompletionsReached", Events: "Completed", CompletionTimeSet: true}},
		{name: "indexed: lowest missing indexes first",
			job: testJob(indexed), pods: pods("a:running:ix=0"),
			want: summary{Active: 1, Create: "1"}},
		{name: "indexed: a success goes into completedIndexes at once",
			job: testJob(indexed), pods: pods("a:succeeded@5:ix=0", "b:running:ix=1"),
			want: summary{Succeeded: 1, Active: 1, CompletedIndexes: "0", Unfinalize: "a", Create: "2"}},
		{name: "indexed: ranges, duplicates and out-of-range indexes deleted",
			job:  testJob(indexed, withStatus(func(s *batchv1.JobStatus) { s.CompletedIndexes, s.Succeeded = "0-1", 2 })),
			pods: pods("a:running:ix=2", "b:running:ix=2", "c:running:ix=7", "d:running:ix=1"),
			want: summary{Succeeded: 2, Active: 4, CompletedIndexes: "0-1", Delete: "b,c,d", Create: "3"}},
		{name: "indexed: all indexes done, Complete waits for the last finalizer",
			job:  testJob(indexed, withStatus(func(s *batchv1.JobStatus) { s.CompletedIndexes, s.Succeeded = "0-2", 3 })),
			pods: pods("a:succeeded@5:ix=3"),
			want: summary{Succeeded: 4, CompletedIndexes: "0-3", Unfinalize: "a", Conditions: "SuccessCriteriaMet=CompletionsReached"}},
		{name: "suspended: active pods deleted, not counted as failures",
			job:  testJob(func(j *batchv1.Job) { j.Spec.Suspend = new(true) }),
			pods: pods("a:running", "b:deleting@3"), now: 4,
			want: summary{Active: 1, Terminating: 1, Delete: "a", Unfinalize: "b", Conditions: "Suspended=JobSuspended", Events: "Suspended"}},
		{name: "resumed: the deadline restarts",
			job: testJob(withStatus(func(s *batchv1.JobStatus) {
				s.Conditions = []batchv1.JobCondition{cond(batchv1.JobSuspended, ReasonJobSuspended, 3)}
			})), now: 100,
			want: summary{Create: "-1,-1", Events: "Resumed", StartTimeChanged: true}},
		{name: "finished: stray finalizers removed, TTL waits",
			job: testJob(func(j *batchv1.Job) { j.Spec.TTLSecondsAfterFinished = new(int32(60)) }, withStatus(func(s *batchv1.JobStatus) {
				s.Succeeded = 3
				s.Conditions = []batchv1.JobCondition{cond(batchv1.JobComplete, ReasonCompletionsReached, 10)}
			})),
			pods: pods("a:succeeded@5", "b:succeeded@6:nofin"), now: 40,
			want: summary{Succeeded: 3, Conditions: "Complete=CompletionsReached", Unfinalize: "a", RequeueAfter: 30 * time.Second}},
		{name: "finished: TTL passed, the job is deleted",
			job: testJob(func(j *batchv1.Job) { j.Spec.TTLSecondsAfterFinished = new(int32(60)) }, withStatus(func(s *batchv1.JobStatus) {
				s.Succeeded = 3
				s.Conditions = []batchv1.JobCondition{cond(batchv1.JobComplete, ReasonCompletionsReached, 10)}
			})), now: 70,
			want: summary{Succeeded: 3, Conditions: "Complete=CompletionsReached", DeleteJob: true}},
		{name: "job being deleted: finalizers go, nothing created",
			job: testJob(func(j *batchv1.Job) { j.DeletionTimestamp = mtime(3) }), pods: pods("a:running", "b:deleting@3"), now: 4,
			want: summary{Active: 1, Terminating: 1, Unfinalize: "a,b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			removed := map[types.UID]bool{}
			for _, u := range tc.removed {
				removed[u] = true
			}
			in := Input{Job: tc.job, Pods: tc.pods, Removed: removed, Now: at(tc.now), Backoff: 10 * time.Second, MaxBackoff: 6 * time.Minute}
			got := summarize(in, Decide(in))
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestDecideCountsEachPodOnce replays a Job's life one decision at a
// time, with the controller stopping between any two steps (the plan's
// status stored, its finalizers not yet removed), and checks that every
// pod is counted exactly once.
func TestDecideCountsEachPodOnce(t *testing.T) {
	job := testJob(func(j *batchv1.Job) { j.Spec.Completions, j.Spec.Parallelism = new(int32(3)), new(int32(3)) })
	ps := pods("a:succeeded@5", "b:failed@6", "c:succeeded@7", "d:succeeded@8")
	for step := range 6 {
		in := Input{Job: job, Pods: ps, Now: at(100 + step), Backoff: time.Second, MaxBackoff: time.Minute}
		plan := Decide(in)
		job = job.DeepCopy()
		job.Status = plan.Status
		// Odd steps stop before the finalizers are removed.
		if step%2 == 0 {
			for _, p := range plan.RemoveFinalizers {
				p.Finalizers = nil
			}
		}
	}
	s := job.Status
	if s.Succeeded != 3 || s.Failed != 1 || len(s.UncountedTerminatedPods.Succeeded)+len(s.UncountedTerminatedPods.Failed) != 0 {
		t.Errorf("got succeeded %d failed %d uncounted %+v, want 3, 1, none", s.Succeeded, s.Failed, s.UncountedTerminatedPods)
	}
	if c := finishedCondition(job); c == nil || c.Type != batchv1.JobComplete {
		t.Errorf("got conditions %+v, want Complete", s.Conditions)
	}
}

func TestIndexes(t *testing.T) {
	for _, s := range []string{"", "0", "0-2", "1,3-5,7", "0,2,4"} {
		if got := formatIndexes(parseIndexes(s), 10); got != s {
			t.Errorf("round trip of %q: got %q", s, got)
		}
	}
	if got := formatIndexes(map[int]bool{1: true, 2: true, 9: true}, 5); got != "1-2" {
		t.Errorf("indexes beyond completions: got %q, want %q", got, "1-2")
	}
}

func TestNewPodIndexed(t *testing.T) {
	j := testJob(func(j *batchv1.Job) {
		j.Spec.Template.Spec.Containers = []corev1.Container{{Name: "c", Image: "busybox"}}
	})
	p := newPod(j, 3)
	if p.GenerateName != "pi-3-" || p.Annotations[batchv1.JobCompletionIndexAnnotation] != "3" ||
		p.Labels[batchv1.JobCompletionIndexAnnotation] != "3" || p.Spec.Hostname != "pi-3" {
		t.Errorf("got %+v", p.ObjectMeta)
	}
	if !slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer) {
		t.Errorf("finalizers: got %v, want the tracking finalizer", p.Finalizers)
	}
	env := p.Spec.Containers[0].Env
	if len(env) != 1 || env[0].Name != "JOB_COMPLETION_INDEX" || env[0].ValueFrom.FieldRef.FieldPath != "metadata.annotations['batch.kubernetes.io/job-completion-index']" {
		t.Errorf("env: got %+v", env)
	}
	if ref := metav1.GetControllerOf(p); ref == nil || ref.UID != j.UID || ref.Kind != "Job" || ref.APIVersion != "batch/v1" {
		t.Errorf("controller: got %+v", ref)
	}
}
