package cronjob

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/skiffdev/skiff/apiserver/auth"
	"github.com/skiffdev/skiff/controllers/controller"
	"github.com/skiffdev/skiff/internal/events"
	"github.com/skiffdev/skiff/internal/informers"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/testenv"
)

const waitTimeout = 30 * time.Second

// story is a cluster with the CronJob controller on a fake clock.
// (Suspension is in the decision's table: a story cannot tell a
// Reconcile that skipped a run from one that has not happened yet.) No Job
// controller runs: the test plays it, writing the Jobs' status.
type story struct {
	*testenv.Cluster
	clock *clocktesting.FakePassiveClock
	pokes int
}

// start runs the CronJob controller (as the controller manager's user)
// until the returned component is stopped. If stopAfterStart, the
// controller stops itself right after its first Job create, before it
// records the run in status.
func (s *story) start(stopAfterStart bool) *testenv.Component {
	s.T.Helper()
	cc := s.ClientAs(auth.ControllersUser)
	f := informers.NewFactory(cc, time.Minute)
	rec := events.NewRecorder(logging.Into(s.Ctx, s.Log), cc, "controllers")
	c, err := New(controller.Deps{Client: cc, Informers: f, Recorder: rec, Clock: s.clock}, DefaultConfig())
	if err != nil {
		s.T.Fatal(err)
	}
	return s.Start("cronjob controller", func(ctx context.Context) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		if stopAfterStart {
			var once sync.Once
			c.afterStart = func() { once.Do(cancel) }
		}
		f.Start(ctx)
		c.Run(ctx)
		f.Wait()
		rec.Stop()
		return nil
	})
}

// step moves the fake clock to sec seconds past the next minute after
// now plus minutes, and pokes the CronJob: the controller's requeue
// waits on the real clock, so the test brings the Reconcile the fake
// time is due for with an update of the CronJob.
func (s *story) step(minutes int) time.Time {
	s.T.Helper()
	t := s.clock.Now().Truncate(time.Minute).Add(time.Duration(minutes) * time.Minute).Add(time.Second)
	s.clock.SetTime(t)
	s.poke()
	return t.Truncate(time.Minute)
}

func (s *story) poke() {
	s.T.Helper()
	s.pokes++
	patch := fmt.Sprintf(`{"metadata":{"annotations":{"test.skiff.dev/poke":"%d"}}}`, s.pokes)
	if _, err := s.Client.CronJobs("default").Patch(s.Ctx, "tick", types.MergePatchType, []byte(patch)); err != nil {
		s.T.Fatal(err)
	}
}

func (s *story) patch(p string) {
	s.T.Helper()
	if _, err := s.Client.CronJobs("default").Patch(s.Ctx, "tick", types.MergePatchType, []byte(p)); err != nil {
		s.T.Fatal(err)
	}
}

func (s *story) jobs() []batchv1.Job {
	s.T.Helper()
	list, err := s.Client.Jobs("default").List(s.Ctx, metav1.ListOptions{})
	if err != nil {
		s.T.Fatal(err)
	}
	slices.SortFunc(list.Items, func(a, b batchv1.Job) int { return strings.Compare(a.Name, b.Name) })
	return list.Items
}

func names(jobs []batchv1.Job) []string {
	var out []string
	for _, j := range jobs {
		out = append(out, j.Name)
	}
	return out
}

// awaitJobs waits until the CronJob's Jobs are exactly want.
func (s *story) awaitJobs(what string, want ...string) {
	s.T.Helper()
	slices.Sort(want)
	s.Await(waitTimeout, what, func() (bool, error) {
		got := names(s.jobs())
		return slices.Equal(got, want), fmt.Errorf("jobs %v, want %v", got, want)
	})
}

func (s *story) awaitEvent(reason string) {
	s.T.Helper()
	s.Await(waitTimeout, "event "+reason, func() (bool, error) {
		list, err := s.Client.Events("default").List(s.Ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, e := range list.Items {
			if e.InvolvedObject.Kind == "CronJob" && e.Reason == reason {
				return true, nil
			}
		}
		return false, fmt.Errorf("no %s event", reason)
	})
}

// setPolicy changes the CronJob's concurrencyPolicy and waits until the
// controller has seen the change, so that no Reconcile after the next
// clock step decides with the old policy. The proof: in the same patch
// successfulJobsHistoryLimit drops to 0, and the controller deletes a
// finished Job the test made for it; then the limit goes back to 10
// (no other finished Job exists meanwhile).
func (s *story) setPolicy(p batchv1.ConcurrencyPolicy) {
	s.T.Helper()
	cj, err := s.Client.CronJobs("default").Get(s.Ctx, "tick")
	if err != nil {
		s.T.Fatal(err)
	}
	s.pokes++
	barrier := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("barrier-%d", s.pokes),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(cj, controllerKind)}},
		Spec: *cj.Spec.JobTemplate.Spec.DeepCopy(),
	}
	if _, err := s.Client.Jobs("default").Create(s.Ctx, barrier); err != nil {
		s.T.Fatal(err)
	}
	s.complete(barrier.Name, s.clock.Now())
	s.patch(fmt.Sprintf(`{"spec":{"concurrencyPolicy":%q,"successfulJobsHistoryLimit":0}}`, p))
	s.Await(waitTimeout, "the controller sees concurrencyPolicy "+string(p), func() (bool, error) {
		got := names(s.jobs())
		return !slices.Contains(got, barrier.Name), fmt.Errorf("jobs %v", got)
	})
	s.patch(`{"spec":{"successfulJobsHistoryLimit":10}}`)
}

// complete writes what the Job controller would on success.
func (s *story) complete(name string, at time.Time) {
	s.T.Helper()
	j, err := s.Client.Jobs("default").Get(s.Ctx, name)
	if err != nil {
		s.T.Fatal(err)
	}
	start, end := metav1.NewTime(at), metav1.NewTime(at.Add(time.Second))
	j.Status.StartTime, j.Status.CompletionTime, j.Status.Succeeded = &start, &end, 1
	j.Status.Conditions = []batchv1.JobCondition{
		{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: end},
		{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: end},
	}
	if _, err := s.Client.Jobs("default").UpdateStatus(s.Ctx, j); err != nil {
		s.T.Fatal(err)
	}
}

func TestCronJobStory(t *testing.T) {
	s := &story{Cluster: testenv.NewCluster(t), clock: clocktesting.NewFakePassiveClock(time.Now())}
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "tick"},
		Spec: batchv1.CronJobSpec{
			Schedule: "* * * * *", TimeZone: new("UTC"), SuccessfulJobsHistoryLimit: new(int32(10)),
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyOnFailure, Containers: []corev1.Container{{Name: "date", Image: "busybox"}},
			}}}},
		},
	}
	if _, err := s.Client.CronJobs("default").Create(s.Ctx, cj); err != nil {
		t.Fatal(err)
	}

	// A minute's run starts once, across a restart between the Job's
	// creation and the status that records it.
	first := s.start(true)
	m1 := s.step(1)
	s.awaitJobs("the first run", JobName("tick", m1))
	first.Stop()
	if got, _ := s.Client.CronJobs("default").Get(s.Ctx, "tick"); got.Status.LastScheduleTime != nil {
		t.Fatalf("the stopped controller recorded the run: %+v", got.Status)
	}
	s.start(false)
	s.poke()
	s.Await(waitTimeout, "the run recorded once", func() (bool, error) {
		got, err := s.Client.CronJobs("default").Get(s.Ctx, "tick")
		if err != nil {
			return false, err
		}
		return got.Status.LastScheduleTime != nil && got.Status.LastScheduleTime.Time.Equal(m1) && len(got.Status.Active) == 1,
			fmt.Errorf("status %+v", got.Status)
	})
	if got := names(s.jobs()); len(got) != 1 {
		t.Fatalf("jobs after the restart: got %v, want one", got)
	}
	j := s.jobs()[0]
	if ts := j.Annotations[batchv1.CronJobScheduledTimestampAnnotation]; ts != m1.UTC().Format(time.RFC3339) {
		t.Errorf("scheduled timestamp: got %q, want %q", ts, m1.UTC().Format(time.RFC3339))
	}

	// Forbid: the next minute is skipped while the first run is active.
	s.setPolicy(batchv1.ForbidConcurrent)
	s.step(1)
	s.awaitEvent("JobAlreadyActive")
	s.awaitJobs("still the first run", JobName("tick", m1))

	// Replace: the next minute's run replaces it.
	s.setPolicy(batchv1.ReplaceConcurrent)
	m3 := s.step(1)
	s.awaitJobs("the first run replaced", JobName("tick", m3))

	// 150 minutes missed: one catch-up run, and a warning.
	s.setPolicy(batchv1.AllowConcurrent)
	m153 := s.step(150)
	s.awaitJobs("one catch-up run", JobName("tick", m3), JobName("tick", m153))
	s.awaitEvent("TooManyMissedTimes")

	// History: of the successful runs, only the newest is kept.
	s.complete(JobName("tick", m3), m3)
	s.complete(JobName("tick", m153), m153)
	s.patch(`{"spec":{"successfulJobsHistoryLimit":1}}`)
	s.awaitJobs("history limited to one", JobName("tick", m153))
	s.Await(waitTimeout, "lastSuccessfulTime", func() (bool, error) {
		got, err := s.Client.CronJobs("default").Get(s.Ctx, "tick")
		if err != nil {
			return false, err
		}
		return got.Status.LastSuccessfulTime != nil && len(got.Status.Active) == 0, fmt.Errorf("status %+v", got.Status)
	})

}
