package cronjob

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// maxMissed is how many missed start times Kubernetes tolerates before it
// warns: past it, the controller's clock or the schedule is likely wrong.
const maxMissed = 100

// nextDelay is added to the wait for the next start time, as Kubernetes
// does, so that the Reconcile it brings comes after the time, not just
// before it.
const nextDelay = 100 * time.Millisecond

// Input is what one decision is made from.
type Input struct {
	CronJob *batchv1.CronJob
	// Jobs are the Jobs the CronJob controls, from the cache.
	Jobs []*batchv1.Job
	Now  time.Time
}

// Plan is what the controller does about one CronJob, in this order:
// delete DeleteJobs, create a Job for Start (if set) and, once it exists,
// add it to Status.Active and set Status.LastScheduleTime to Start; write
// Status if it differs; record Events; requeue after RequeueAfter.
type Plan struct {
	Status batchv1.CronJobStatus
	// Start is the scheduled time of the run to start now; zero for none.
	Start time.Time
	// DeleteJobs are the active Jobs that Replace replaces and finished
	// Jobs beyond the history limits.
	DeleteJobs []*batchv1.Job
	Events     []Event
	// RequeueAfter is when the next start time comes (zero when the
	// CronJob is suspended, or its schedule cannot be read).
	RequeueAfter time.Duration
}

// Event is one event to record about the CronJob.
type Event struct {
	Type, Reason, Message string
}

// Decide is the CronJob controller's decision, as Kubernetes' CronJob
// controller makes it:
//
//  1. status.active lists the Jobs of the CronJob that have not
//     finished; a finished one leaves it (SawCompletedJob), and a
//     success moves lastSuccessfulTime.
//  2. Nothing starts while the CronJob is suspended or being deleted.
//  3. The start time due is the latest schedule time after the last one
//     (or after the CronJob's creation) and not after now: however many
//     were missed, at most one run catches up. Past 100 missed times a
//     TooManyMissedTimes warning says so. A start time older than
//     startingDeadlineSeconds is missed for good (MissSchedule).
//  4. concurrencyPolicy: Allow starts beside running Jobs, Forbid skips
//     the run while one is active (JobAlreadyActive), Replace deletes the
//     active ones first.
//  5. Finished Jobs beyond successfulJobsHistoryLimit and
//     failedJobsHistoryLimit are deleted, oldest first.
//  6. The next Reconcile is due at the next schedule time.
func Decide(in Input) Plan {
	cj := in.CronJob
	p := Plan{Status: *cj.Status.DeepCopy()}
	st := &p.Status

	// 1. Active Jobs.
	byUID := map[string]*batchv1.Job{}
	for _, j := range in.Jobs {
		byUID[string(j.UID)] = j
	}
	var active []corev1.ObjectReference
	for _, ref := range st.Active {
		j, ok := byUID[string(ref.UID)]
		if !ok {
			// Gone; the cache may lag behind a new Job, but then it is
			// not in status yet either.
			continue
		}
		if cond := finished(j); cond != nil {
			p.Events = append(p.Events, Event{corev1.EventTypeNormal, "SawCompletedJob",
				fmt.Sprintf("Saw completed job: %s, condition: %s", j.Name, cond.Type)})
			continue
		}
		active = append(active, ref)
	}
	var activeJobs []*batchv1.Job
	for _, j := range in.Jobs {
		cond := finished(j)
		if cond == nil {
			activeJobs = append(activeJobs, j)
			if !slices.ContainsFunc(active, func(r corev1.ObjectReference) bool { return r.UID == j.UID }) {
				active = append(active, ref(j))
			}
			continue
		}
		if cond.Type == batchv1.JobComplete && j.Status.CompletionTime != nil &&
			(st.LastSuccessfulTime == nil || st.LastSuccessfulTime.Before(j.Status.CompletionTime)) {
			st.LastSuccessfulTime = j.Status.CompletionTime.DeepCopy()
		}
	}
	slices.SortFunc(active, func(a, b corev1.ObjectReference) int { return cmpString(a.Name, b.Name) })
	st.Active = active
	p.DeleteJobs = historyBeyondLimits(cj, in.Jobs)

	// 2. Suspended or going.
	if cj.DeletionTimestamp != nil || (cj.Spec.Suspend != nil && *cj.Spec.Suspend) {
		return p
	}
	sched, loc, err := parse(cj)
	if err != nil {
		p.Events = append(p.Events, Event{corev1.EventTypeWarning, reasonFor(err), err.Error()})
		return p
	}
	now := in.Now.In(loc)
	next := sched.Next(now)
	p.RequeueAfter = next.Sub(now) + nextDelay

	// 3. The start time due.
	due, missed := mostRecent(cj, sched, now)
	if due.IsZero() {
		return p
	}
	if missed > maxMissed {
		p.Events = append(p.Events, Event{corev1.EventTypeWarning, "TooManyMissedTimes",
			fmt.Sprintf("too many missed start times: %d. Set or decrease .spec.startingDeadlineSeconds or check clock skew", missed)})
	}
	if d := cj.Spec.StartingDeadlineSeconds; d != nil && due.Add(time.Duration(*d)*time.Second).Before(now) {
		p.Events = append(p.Events, Event{corev1.EventTypeWarning, "MissSchedule",
			fmt.Sprintf("Missed scheduled time to start a job: %s", due.Format(time.RFC1123Z))})
		return p
	}
	name := JobName(cj.Name, due)
	for _, j := range in.Jobs {
		if j.Name == name {
			// Started already (by this or an earlier controller, which
			// may have stopped before it wrote status).
			if st.LastScheduleTime == nil || st.LastScheduleTime.Time.Before(due) {
				st.LastScheduleTime = &metav1.Time{Time: due}
			}
			return p
		}
	}

	// 4. Concurrency.
	switch cj.Spec.ConcurrencyPolicy {
	case batchv1.ForbidConcurrent:
		if len(activeJobs) > 0 {
			p.Events = append(p.Events, Event{corev1.EventTypeNormal, "JobAlreadyActive",
				"Not starting job because prior execution is running and concurrency policy is Forbid"})
			return p
		}
	case batchv1.ReplaceConcurrent:
		p.DeleteJobs = append(p.DeleteJobs, activeJobs...)
		st.Active = nil
	}
	p.Start = due
	return p
}

// JobName is the name of the CronJob's Job for the run scheduled at t:
// "<cronjob>-<minutes since the epoch>", as Kubernetes names it. A run's
// name is fixed by its time, so that a second attempt to start it (after
// a restart, say) finds it exists.
func JobName(cronJob string, t time.Time) string {
	return cronJob + "-" + strconv.FormatInt(t.Unix()/60, 10)
}

// parse reads the CronJob's schedule in its time zone.
func parse(cj *batchv1.CronJob) (cron.Schedule, *time.Location, error) {
	loc := time.Local
	if tz := cj.Spec.TimeZone; tz != nil {
		l, err := time.LoadLocation(*tz)
		if err != nil {
			return nil, nil, unknownTimeZone{fmt.Errorf("invalid timeZone: %q: %w", *tz, err)}
		}
		loc = l
	}
	sched, err := cron.ParseStandard(cj.Spec.Schedule)
	if err != nil {
		return nil, nil, fmt.Errorf("unparseable schedule: %q : %w", cj.Spec.Schedule, err)
	}
	return sched, loc, nil
}

type unknownTimeZone struct{ error }

func reasonFor(err error) string {
	if _, ok := err.(unknownTimeZone); ok {
		return "UnknownTimeZone"
	}
	return "InvalidSchedule"
}

// mostRecent returns the latest schedule time after the last one started
// (or the CronJob's creation, or now minus startingDeadlineSeconds,
// whichever is latest) and not after now, and how many such times there
// are (counted up to maxMissed+1). Zero when none is due.
func mostRecent(cj *batchv1.CronJob, sched cron.Schedule, now time.Time) (time.Time, int) {
	earliest := cj.CreationTimestamp.Time
	if cj.Status.LastScheduleTime != nil {
		earliest = cj.Status.LastScheduleTime.Time
	}
	if d := cj.Spec.StartingDeadlineSeconds; d != nil {
		if limit := now.Add(-time.Duration(*d) * time.Second); limit.After(earliest) {
			earliest = limit
		}
	}
	earliest = earliest.In(now.Location())
	first := sched.Next(earliest)
	if first.After(now) {
		return time.Time{}, 0
	}
	missed := 0
	for t := first; !t.After(now) && missed <= maxMissed; t = sched.Next(t) {
		missed++
	}
	// The latest time: search back from now in a window that doubles
	// until it holds one, so that years of missed minutes cost little.
	for w := time.Minute; ; w *= 2 {
		from := now.Add(-w)
		if from.Before(earliest) {
			from = earliest
		}
		var last time.Time
		for t := sched.Next(from); !t.After(now); t = sched.Next(t) {
			last = t
		}
		if !last.IsZero() {
			return last, missed
		}
	}
}

// historyBeyondLimits returns the finished Jobs beyond the CronJob's
// history limits, oldest first.
func historyBeyondLimits(cj *batchv1.CronJob, jobs []*batchv1.Job) []*batchv1.Job {
	var succeeded, failed []*batchv1.Job
	for _, j := range jobs {
		switch c := finished(j); {
		case c == nil || j.DeletionTimestamp != nil:
		case c.Type == batchv1.JobComplete:
			succeeded = append(succeeded, j)
		default:
			failed = append(failed, j)
		}
	}
	var out []*batchv1.Job
	for _, h := range []struct {
		jobs  []*batchv1.Job
		limit *int32
	}{{succeeded, cj.Spec.SuccessfulJobsHistoryLimit}, {failed, cj.Spec.FailedJobsHistoryLimit}} {
		if h.limit == nil || len(h.jobs) <= int(*h.limit) {
			continue
		}
		slices.SortFunc(h.jobs, func(a, b *batchv1.Job) int {
			if c := startOf(a).Compare(startOf(b)); c != 0 {
				return c
			}
			return cmpString(a.Name, b.Name)
		})
		out = append(out, h.jobs[:len(h.jobs)-int(*h.limit)]...)
	}
	return out
}

func startOf(j *batchv1.Job) time.Time {
	if j.Status.StartTime != nil {
		return j.Status.StartTime.Time
	}
	return j.CreationTimestamp.Time
}

// finished returns a Job's Complete or Failed condition when True.
func finished(j *batchv1.Job) *batchv1.JobCondition {
	for i := range j.Status.Conditions {
		c := &j.Status.Conditions[i]
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c
		}
	}
	return nil
}

// ref is the ObjectReference status.active holds for a Job.
func ref(j *batchv1.Job) corev1.ObjectReference {
	return corev1.ObjectReference{
		Kind: "Job", APIVersion: "batch/v1", Namespace: j.Namespace, Name: j.Name, UID: j.UID,
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
