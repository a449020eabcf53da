package cronjob

import (
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// created is when the test CronJobs were created: 10:00:30 UTC.
var created = time.Date(2026, 3, 1, 10, 0, 30, 0, time.UTC)

// at returns a time as "HH:MM" or "HH:MM:SS" on the creation day, UTC.
func at(s string) time.Time {
	if strings.Count(s, ":") == 1 {
		s += ":00"
	}
	t, err := time.Parse("2006-01-02 15:04:05", "2026-03-01 "+s)
	if err != nil {
		panic(err)
	}
	return t
}

func testCronJob(mutate ...func(*batchv1.CronJob)) *batchv1.CronJob {
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "hello", UID: "cj-uid", CreationTimestamp: metav1.NewTime(created)},
		Spec: batchv1.CronJobSpec{
			Schedule: "*/5 * * * *", TimeZone: new("UTC"), ConcurrencyPolicy: batchv1.AllowConcurrent, Suspend: new(false),
			SuccessfulJobsHistoryLimit: new(int32(3)), FailedJobsHistoryLimit: new(int32(1)),
		},
	}
	for _, m := range mutate {
		m(cj)
	}
	return cj
}

// job describes a Job of the CronJob: "HH:MM:state" with state running,
// complete or failed; its name is the CronJob's for that time.
func job(desc string) *batchv1.Job {
	hm, state, _ := strings.Cut(desc[3:], ":")
	t := at(desc[:3] + hm)
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: JobName("hello", t), UID: types.UID("uid-" + desc[:5]),
		CreationTimestamp: metav1.NewTime(t)}}
	j.Status.StartTime = &metav1.Time{Time: t}
	switch state {
	case "running":
	case "complete":
		j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
		j.Status.CompletionTime = &metav1.Time{Time: t.Add(time.Minute)}
	case "failed":
		j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue}}
	default:
		panic(state)
	}
	return j
}

func jobs(descs ...string) []*batchv1.Job {
	var out []*batchv1.Job
	for _, d := range descs {
		out = append(out, job(d))
	}
	return out
}

type summary struct {
	Start        string // HH:MM
	Delete       string
	Active       string
	LastSchedule string
	LastSuccess  string
	Events       string
	RequeueAfter time.Duration
}

func hm(t *metav1.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format("15:04")
}

func summarize(p Plan) summary {
	var del, act, evs []string
	for _, j := range p.DeleteJobs {
		del = append(del, j.Name)
	}
	for _, r := range p.Status.Active {
		act = append(act, r.Name)
	}
	for _, e := range p.Events {
		evs = append(evs, e.Reason)
	}
	s := summary{
		Delete: strings.Join(del, ","), Active: strings.Join(act, ","), Events: strings.Join(evs, ","),
		LastSchedule: hm(p.Status.LastScheduleTime), LastSuccess: hm(p.Status.LastSuccessfulTime), RequeueAfter: p.RequeueAfter,
	}
	if !p.Start.IsZero() {
		s.Start = p.Start.UTC().Format("15:04")
	}
	return s
}

func name(hhmm string) string { return JobName("hello", at(hhmm)) }

func TestDecide(t *testing.T) {
	lastAt := func(hhmm string) func(*batchv1.CronJob) {
		return func(cj *batchv1.CronJob) { cj.Status.LastScheduleTime = &metav1.Time{Time: at(hhmm)} }
	}
	activeRef := func(hhmm string) func(*batchv1.CronJob) {
		return func(cj *batchv1.CronJob) {
			cj.Status.Active = append(cj.Status.Active, corev1.ObjectReference{Name: name(hhmm), UID: types.UID("uid-" + hhmm)})
		}
	}
	policy := func(p batchv1.ConcurrencyPolicy) func(*batchv1.CronJob) {
		return func(cj *batchv1.CronJob) { cj.Spec.ConcurrencyPolicy = p }
	}
	tests := []struct {
		name string
		cj   *batchv1.CronJob
		jobs []*batchv1.Job
		now  string
		want summary
	}{
		{name: "nothing due yet: wait for the next time",
			cj: testCronJob(), now: "10:03",
			want: summary{RequeueAfter: 2*time.Minute + nextDelay}},
		{name: "due: start the run",
			cj: testCronJob(), now: "10:05:02",
			want: summary{Start: "10:05", RequeueAfter: 5*time.Minute - 2*time.Second + nextDelay}},
		{name: "run already started (by a stopped controller): not again",
			cj: testCronJob(), jobs: jobs("10:05:running"), now: "10:05:30",
			want: summary{Active: name("10:05"), LastSchedule: "10:05", RequeueAfter: 4*time.Minute + 30*time.Second + nextDelay}},
		{name: "missed runs: only the latest catches up",
			cj: testCronJob(lastAt("10:05")), now: "10:27",
			want: summary{Start: "10:25", LastSchedule: "10:05", RequeueAfter: 3*time.Minute + nextDelay}},
		{name: "more than 100 missed: warned, one run",
			cj: testCronJob(lastAt("10:05"), func(cj *batchv1.CronJob) { cj.Spec.Schedule = "* * * * *" }), now: "12:00",
			want: summary{Start: "12:00", LastSchedule: "10:05", Events: "TooManyMissedTimes", RequeueAfter: time.Minute + nextDelay}},
		{name: "years of missed minutes cost little",
			cj: testCronJob(func(cj *batchv1.CronJob) {
				cj.Spec.Schedule = "* * * * *"
				cj.CreationTimestamp = metav1.NewTime(created.AddDate(-3, 0, 0))
			}), now: "12:00:30",
			want: summary{Start: "12:00", Events: "TooManyMissedTimes", RequeueAfter: 30*time.Second + nextDelay}},
		{name: "startingDeadlineSeconds bounds the missed times counted",
			cj: testCronJob(lastAt("10:05"), func(cj *batchv1.CronJob) {
				cj.Spec.Schedule = "* * * * *"
				cj.Spec.StartingDeadlineSeconds = new(int64(200))
			}), now: "12:00",
			want: summary{Start: "12:00", LastSchedule: "10:05", RequeueAfter: time.Minute + nextDelay}},
		{name: "start time older than startingDeadlineSeconds: missed for good",
			cj: testCronJob(lastAt("10:05"), func(cj *batchv1.CronJob) { cj.Spec.StartingDeadlineSeconds = new(int64(30)) }), now: "10:11",
			want: summary{LastSchedule: "10:05", RequeueAfter: 4*time.Minute + nextDelay}},
		{name: "Forbid: skipped while one runs",
			cj: testCronJob(lastAt("10:05"), activeRef("10:05"), policy(batchv1.ForbidConcurrent)), jobs: jobs("10:05:running"), now: "10:10",
			want: summary{Active: name("10:05"), LastSchedule: "10:05", Events: "JobAlreadyActive", RequeueAfter: 5*time.Minute + nextDelay}},
		{name: "Allow: starts beside",
			cj: testCronJob(lastAt("10:05"), activeRef("10:05")), jobs: jobs("10:05:running"), now: "10:10",
			want: summary{Start: "10:10", Active: name("10:05"), LastSchedule: "10:05", RequeueAfter: 5*time.Minute + nextDelay}},
		{name: "Replace: the running one is deleted",
			cj: testCronJob(lastAt("10:05"), activeRef("10:05"), policy(batchv1.ReplaceConcurrent)), jobs: jobs("10:05:running"), now: "10:10",
			want: summary{Start: "10:10", Delete: name("10:05"), LastSchedule: "10:05", RequeueAfter: 5*time.Minute + nextDelay}},
		{name: "a finished job leaves active; success time recorded",
			cj: testCronJob(lastAt("10:05"), activeRef("10:05")), jobs: jobs("10:05:complete"), now: "10:07",
			want: summary{LastSchedule: "10:05", LastSuccess: "10:06", Events: "SawCompletedJob", RequeueAfter: 3*time.Minute + nextDelay}},
		{name: "history limits: oldest beyond 3 successes and 1 failure go",
			cj:   testCronJob(lastAt("10:30")),
			jobs: jobs("10:05:complete", "10:10:failed", "10:15:complete", "10:20:complete", "10:25:failed", "10:30:complete"), now: "10:31",
			want: summary{Delete: name("10:05") + "," + name("10:10"), LastSchedule: "10:30", LastSuccess: "10:31", RequeueAfter: 4*time.Minute + nextDelay}},
		{name: "suspended: nothing starts, no requeue",
			cj: testCronJob(func(cj *batchv1.CronJob) { cj.Spec.Suspend = new(true) }), now: "10:05",
			want: summary{}},
		{name: "time zone: 9:00 in Paris is 8:00 UTC",
			cj: testCronJob(func(cj *batchv1.CronJob) {
				cj.Spec.Schedule, cj.Spec.TimeZone = "0 9 * * *", new("Europe/Paris")
				cj.CreationTimestamp = metav1.NewTime(at("07:00"))
			}), now: "08:00",
			want: summary{Start: "08:00", RequeueAfter: 24*time.Hour + nextDelay}},
		{name: "macro",
			cj: testCronJob(func(cj *batchv1.CronJob) { cj.Spec.Schedule = "@hourly" }), now: "11:00:10",
			want: summary{Start: "11:00", RequeueAfter: time.Hour - 10*time.Second + nextDelay}},
		{name: "unknown time zone: warned, no requeue",
			cj: testCronJob(func(cj *batchv1.CronJob) { cj.Spec.TimeZone = new("Mars/Olympus") }), now: "10:05",
			want: summary{Events: "UnknownTimeZone"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := summarize(Decide(Input{CronJob: tc.cj, Jobs: tc.jobs, Now: at(tc.now)}))
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestJobName(t *testing.T) {
	// Kubernetes names the run of 2026-03-01 10:05 UTC by its minutes
	// since the epoch.
	got := JobName("hello", at("10:05"))
	if want := fmt.Sprintf("hello-%d", at("10:05").Unix()/60); got != want || got != "hello-29539325" {
		t.Errorf("got %q, want %q", got, want)
	}
}
