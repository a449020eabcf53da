package job

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"

	"github.com/skiffdev/skiff/apiserver/auth"
	"github.com/skiffdev/skiff/controllers/controller"
	"github.com/skiffdev/skiff/controllers/garbagecollector"
	"github.com/skiffdev/skiff/controllers/namespace"
	"github.com/skiffdev/skiff/internal/events"
	"github.com/skiffdev/skiff/internal/informers"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/scheduler"
)

const waitTimeout = 45 * time.Second

// cluster is a test cluster with a scheduler, three simulated nodes (which
// run pods but never finish them: the test does, through pod status), and
// the Job controller with the garbage collector and the namespace
// controller.
type cluster struct {
	*testenv.Cluster
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	cl := &cluster{testenv.NewCluster(t)}
	schedCfg := scheduler.DefaultConfig()
	schedCfg.Client = cl.ClientAs(auth.SchedulerUser)
	cl.Start("scheduler", func(ctx context.Context) error { return scheduler.Run(ctx, schedCfg) })
	cl.StartSimNodes(cl.SimNodes(3))
	return cl
}

// testConfig is DefaultConfig with a pod failure backoff short enough
// for tests (the decision tests check Kubernetes' 10 s).
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.PodFailureBackoff, cfg.MaxPodFailureBackoff = 20*time.Millisecond, 200*time.Millisecond
	return cfg
}

// startControllers runs the Job controller (as the controller manager's
// user, so that its rights are tested too) and the garbage collector,
// with fresh informers, until the returned component is stopped.
// afterStatus, if not nil, is the controller's test hook; it is handed
// a function that stops the controller from inside a Reconcile.
func (cl *cluster) startControllers(afterStatus func(st batchv1.JobStatus, stop func())) *testenv.Component {
	cl.T.Helper()
	cc := cl.ClientAs(auth.ControllersUser)
	f := informers.NewFactory(cc, time.Minute)
	rec := events.NewRecorder(logging.Into(cl.Ctx, cl.Log), cc, "controllers")
	deps := controller.Deps{Client: cc, Informers: f, Recorder: rec}
	jc, err := New(deps, testConfig())
	if err != nil {
		cl.T.Fatal(err)
	}
	gc, err := garbagecollector.New(deps, garbagecollector.DefaultConfig())
	if err != nil {
		cl.T.Fatal(err)
	}
	nc, err := namespace.New(deps, namespace.DefaultConfig())
	if err != nil {
		cl.T.Fatal(err)
	}
	return cl.Start("controllers", func(ctx context.Context) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		if afterStatus != nil {
			jc.afterStatus = func(st batchv1.JobStatus) { afterStatus(st, cancel) }
		}
		f.Start(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { jc.Run(ctx) })
		wg.Go(func() { gc.Run(ctx) })
		wg.Go(func() { nc.Run(ctx) })
		wg.Wait()
		f.Wait()
		rec.Stop()
		return nil
	})
}

func newJob(name string, completions, parallelism *int32, mutate ...func(*batchv1.Job)) *batchv1.Job {
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: batchv1.JobSpec{
			Completions: completions, Parallelism: parallelism,
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "work", Image: "busybox"}},
			}},
		},
	}
	for _, m := range mutate {
		m(j)
	}
	return j
}

func (cl *cluster) create(j *batchv1.Job) *batchv1.Job {
	cl.T.Helper()
	out, err := cl.Client.Jobs(j.Namespace).Create(cl.Ctx, j)
	if err != nil {
		cl.T.Fatal(err)
	}
	return out
}

func (cl *cluster) job(name string) *batchv1.Job {
	cl.T.Helper()
	j, err := cl.Client.Jobs("default").Get(cl.Ctx, name)
	if err != nil {
		cl.T.Fatal(err)
	}
	return j
}

// pods lists the pods of the Job called name, by the label the API
// server generated.
func (cl *cluster) pods(name string) []corev1.Pod {
	cl.T.Helper()
	list, err := cl.Client.Pods("default").List(cl.Ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + name})
	if err != nil {
		cl.T.Fatal(err)
	}
	return list.Items
}

// running returns the Job's pods that the simulated nodes run.
func running(pods []corev1.Pod) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range pods {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

// finish ends a pod as its kubelet would: phase and container state.
func (cl *cluster) finish(pod corev1.Pod, phase corev1.PodPhase) {
	cl.T.Helper()
	code := int32(0)
	if phase == corev1.PodFailed {
		code = 1
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := cl.Client.Pods(pod.Namespace).Get(cl.Ctx, pod.Name)
		if err != nil {
			return err
		}
		p.Status.Phase = phase
		now := metav1.Now()
		for i := range p.Status.ContainerStatuses {
			cs := &p.Status.ContainerStatuses[i]
			cs.Ready, cs.Started = false, new(false)
			cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, FinishedAt: now, StartedAt: now}}
		}
		for i := range p.Status.Conditions {
			if c := &p.Status.Conditions[i]; c.Type == corev1.PodReady || c.Type == corev1.ContainersReady {
				c.Status = corev1.ConditionFalse
			}
		}
		_, err = cl.Client.Pods(pod.Namespace).UpdateStatus(cl.Ctx, p)
		return err
	})
	if err != nil {
		cl.T.Fatalf("finishing pod %s: %v", pod.Name, err)
	}
}

// awaitRunning waits until n of the Job's pods run, and checks on the way
// that never more than max of them are active at once.
func (cl *cluster) awaitRunning(name string, n, max int) []corev1.Pod {
	cl.T.Helper()
	var got []corev1.Pod
	cl.Await(waitTimeout, fmt.Sprintf("%d pods of %s running", n, name), func() (bool, error) {
		pods := cl.pods(name)
		active := 0
		for _, p := range pods {
			if p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
				active++
			}
		}
		if active > max {
			cl.T.Fatalf("%d active pods, parallelism is %d", active, max)
		}
		got = running(pods)
		return len(got) == n, fmt.Errorf("%d running", len(got))
	})
	return got
}

// awaitCondition waits for the Job's condition of type t to be True and
// returns the Job.
func (cl *cluster) awaitCondition(name string, t batchv1.JobConditionType) *batchv1.Job {
	cl.T.Helper()
	var j *batchv1.Job
	cl.Await(waitTimeout, fmt.Sprintf("%s %s", name, t), func() (bool, error) {
		j = cl.job(name)
		return findCondition(j.Status.Conditions, t) != nil, fmt.Errorf("status %+v", j.Status)
	})
	return j
}

// checkCounted checks the final counters of a finished Job and that no
// pod of it keeps the tracking finalizer.
func (cl *cluster) checkCounted(j *batchv1.Job, succeeded, failed int32) {
	cl.T.Helper()
	s := j.Status
	if s.Succeeded != succeeded || s.Failed != failed || s.Active != 0 || deref(s.Ready) != 0 ||
		s.UncountedTerminatedPods == nil || len(s.UncountedTerminatedPods.Succeeded)+len(s.UncountedTerminatedPods.Failed) != 0 {
		cl.T.Errorf("status: got succeeded %d failed %d active %d ready %d uncounted %+v, want %d, %d, 0, 0, none",
			s.Succeeded, s.Failed, s.Active, deref(s.Ready), s.UncountedTerminatedPods, succeeded, failed)
	}
	cl.Await(waitTimeout, "tracking finalizers removed", func() (bool, error) {
		for _, p := range cl.pods(j.Name) {
			if slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer) {
				return false, fmt.Errorf("pod %s keeps its finalizer", p.Name)
			}
		}
		return true, nil
	})
}

func (cl *cluster) awaitEvent(name, reason, message string) {
	cl.T.Helper()
	cl.Await(waitTimeout, "event "+reason, func() (bool, error) {
		list, err := cl.Client.Events("default").List(cl.Ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, e := range list.Items {
			if e.InvolvedObject.Name == name && e.InvolvedObject.Kind == "Job" && e.Reason == reason && e.Message == message {
				return true, nil
			}
		}
		return false, fmt.Errorf("no %s event with message %q among %d", reason, message, len(list.Items))
	})
}

func TestJobCompletes(t *testing.T) {
	cl := startCluster(t)
	cl.startControllers(nil)
	j := cl.create(newJob("pi", new(int32(5)), new(int32(2))))

	// The API server generated the selector and the pod labels.
	uid := string(j.UID)
	if got := j.Spec.Selector.MatchLabels; len(got) != 1 || got[batchv1.ControllerUidLabel] != uid {
		t.Errorf("selector: got %v, want %s=%s", got, batchv1.ControllerUidLabel, uid)
	}
	for k, v := range map[string]string{batchv1.ControllerUidLabel: uid, "controller-uid": uid, batchv1.JobNameLabel: "pi", "job-name": "pi"} {
		if j.Spec.Template.Labels[k] != v {
			t.Errorf("template label %s: got %q, want %q", k, j.Spec.Template.Labels[k], v)
		}
	}

	for done := 0; done < 5; {
		pods := cl.awaitRunning("pi", min(2, 5-done), 2)
		cl.finish(pods[0], corev1.PodSucceeded)
		done++
	}
	j = cl.awaitCondition("pi", batchv1.JobComplete)
	cl.checkCounted(j, 5, 0)
	if n := len(cl.pods("pi")); n != 5 {
		t.Errorf("pods: got %d, want 5", n)
	}
	if j.Status.CompletionTime == nil || j.Status.StartTime == nil {
		t.Errorf("times: got start %v completion %v, want both", j.Status.StartTime, j.Status.CompletionTime)
	}
	c := findCondition(j.Status.Conditions, batchv1.JobComplete)
	if c.Reason != ReasonCompletionsReached || c.Message != "Reached expected number of succeeded pods" {
		t.Errorf("Complete condition: got %+v", c)
	}
	cl.awaitEvent("pi", "Completed", "Job completed")
}

func TestJobBackoffLimitExceeded(t *testing.T) {
	cl := startCluster(t)
	cl.startControllers(nil)
	cl.create(newJob("flaky", nil, nil, func(j *batchv1.Job) { j.Spec.BackoffLimit = new(int32(2)) }))
	for range 3 {
		pods := cl.awaitRunning("flaky", 1, 1)
		cl.finish(pods[0], corev1.PodFailed)
	}
	j := cl.awaitCondition("flaky", batchv1.JobFailed)
	c := findCondition(j.Status.Conditions, batchv1.JobFailed)
	if c.Reason != ReasonBackoffLimitExceeded || c.Message != "Job has reached the specified backoff limit" {
		t.Errorf("Failed condition: got %+v", c)
	}
	cl.checkCounted(j, 0, 3)
	if n := len(cl.pods("flaky")); n != 3 {
		t.Errorf("pods: got %d, want 3 (no pod after the limit)", n)
	}
	cl.awaitEvent("flaky", ReasonBackoffLimitExceeded, "Job has reached the specified backoff limit")
}

func TestJobActiveDeadline(t *testing.T) {
	cl := startCluster(t)
	cl.startControllers(nil)
	cl.create(newJob("slow", new(int32(4)), new(int32(2)), func(j *batchv1.Job) { j.Spec.ActiveDeadlineSeconds = new(int64(1)) }))
	j := cl.awaitCondition("slow", batchv1.JobFailed)
	c := findCondition(j.Status.Conditions, batchv1.JobFailed)
	if c.Reason != ReasonDeadlineExceeded || c.Message != "Job was active longer than specified deadline" {
		t.Errorf("Failed condition: got %+v", c)
	}
	if j.Status.Active != 0 || j.Status.Succeeded != 0 {
		t.Errorf("status: got %+v, want nothing active or succeeded", j.Status)
	}
	cl.Await(waitTimeout, "pods deleted", func() (bool, error) {
		p := running(cl.pods("slow"))
		return len(p) == 0, fmt.Errorf("%d running", len(p))
	})
	cl.awaitEvent("slow", ReasonDeadlineExceeded, "Job was active longer than specified deadline")
}

func TestJobIndexed(t *testing.T) {
	cl := startCluster(t)
	cl.startControllers(nil)
	cl.create(newJob("idx", new(int32(3)), new(int32(3)), func(j *batchv1.Job) { j.Spec.CompletionMode = new(batchv1.IndexedCompletion) }))
	pods := cl.awaitRunning("idx", 3, 3)
	var got []string
	for _, p := range pods {
		ix := p.Annotations[batchv1.JobCompletionIndexAnnotation]
		got = append(got, ix)
		if p.Labels[batchv1.JobCompletionIndexAnnotation] != ix || p.Spec.Hostname != "idx-"+ix {
			t.Errorf("pod %s: labels %v hostname %q", p.Name, p.Labels, p.Spec.Hostname)
		}
		if env := p.Spec.Containers[0].Env; len(env) != 1 || env[0].Name != "JOB_COMPLETION_INDEX" {
			t.Errorf("pod %s: env %+v", p.Name, env)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"0", "1", "2"}) {
		t.Errorf("indexes: got %v, want 0, 1, 2", got)
	}
	// Index 1 fails once and is run again.
	for _, p := range pods {
		if p.Annotations[batchv1.JobCompletionIndexAnnotation] == "1" {
			cl.finish(p, corev1.PodFailed)
		} else {
			cl.finish(p, corev1.PodSucceeded)
		}
	}
	again := cl.awaitRunning("idx", 1, 1)
	if ix := again[0].Annotations[batchv1.JobCompletionIndexAnnotation]; ix != "1" {
		t.Errorf("replacement index: got %s, want 1", ix)
	}
	cl.finish(again[0], corev1.PodSucceeded)
	j := cl.awaitCondition("idx", batchv1.JobComplete)
	if j.Status.CompletedIndexes != "0-2" {
		t.Errorf("completedIndexes: got %q, want 0-2", j.Status.CompletedIndexes)
	}
	cl.checkCounted(j, 3, 1)
}

func TestJobSuspendResume(t *testing.T) {
	cl := startCluster(t)
	cl.startControllers(nil)
	cl.create(newJob("later", new(int32(2)), new(int32(2)), func(j *batchv1.Job) { j.Spec.Suspend = new(true) }))
	j := cl.awaitCondition("later", batchv1.JobSuspended)
	if n := len(cl.pods("later")); n != 0 || j.Status.StartTime != nil {
		t.Fatalf("suspended job: %d pods, startTime %v; want none", n, j.Status.StartTime)
	}

	cl.setSuspend("later", false)
	cl.awaitRunning("later", 2, 2)
	cl.Await(waitTimeout, "Suspended=False", func() (bool, error) {
		j = cl.job("later")
		for _, c := range j.Status.Conditions {
			if c.Type == batchv1.JobSuspended {
				return c.Status == corev1.ConditionFalse && c.Reason == ReasonJobResumed, fmt.Errorf("%+v", c)
			}
		}
		return false, fmt.Errorf("no Suspended condition")
	})

	// Suspending a running Job stops its pods; they are no failures.
	cl.setSuspend("later", true)
	cl.Await(waitTimeout, "pods stopped", func() (bool, error) {
		j = cl.job("later")
		p := running(cl.pods("later"))
		return len(p) == 0 && j.Status.Active == 0 && findCondition(j.Status.Conditions, batchv1.JobSuspended) != nil,
			fmt.Errorf("%d running, status %+v", len(p), j.Status)
	})
	if j.Status.Failed != 0 {
		t.Errorf("failed: got %d, want 0", j.Status.Failed)
	}
	cl.setSuspend("later", false)
	for _, p := range cl.awaitRunning("later", 2, 2) {
		cl.finish(p, corev1.PodSucceeded)
	}
	cl.checkCounted(cl.awaitCondition("later", batchv1.JobComplete), 2, 0)
}

func (cl *cluster) setSuspend(name string, suspend bool) {
	cl.T.Helper()
	patch := fmt.Sprintf(`{"spec":{"suspend":%t}}`, suspend)
	if _, err := cl.Client.Jobs("default").Patch(cl.Ctx, name, types.MergePatchType, []byte(patch)); err != nil {
		cl.T.Fatal(err)
	}
}

// TestJobRestartCountsOnce stops the controller right after it stored
// finished pods as uncounted and before it removed their finalizers, the
// worst moment; the next controller must count each pod exactly once.
func TestJobRestartCountsOnce(t *testing.T) {
	cl := startCluster(t)
	var stopped sync.Once
	first := cl.startControllers(func(st batchv1.JobStatus, stop func()) {
		if u := st.UncountedTerminatedPods; u != nil && len(u.Succeeded)+len(u.Failed) > 0 {
			stopped.Do(stop)
		}
	})
	cl.create(newJob("batch", new(int32(4)), new(int32(4))))
	pods := cl.awaitRunning("batch", 4, 4)
	// All at once, so that one status write holds all four.
	for i, p := range pods {
		phase := corev1.PodSucceeded
		if i == 3 {
			phase = corev1.PodFailed
		}
		cl.finish(p, phase)
	}
	first.Stop()
	j := cl.job("batch")
	u := j.Status.UncountedTerminatedPods
	if u == nil || len(u.Succeeded)+len(u.Failed) == 0 {
		t.Fatalf("the first controller stored no uncounted pods: %+v", j.Status)
	}
	withFinalizer := 0
	for _, p := range cl.pods("batch") {
		if slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer) {
			withFinalizer++
		}
	}
	if withFinalizer == 0 {
		t.Fatalf("the first controller removed every finalizer before it stopped")
	}
	t.Logf("stopped with uncounted %+v, counted %d/%d, %d pods holding the finalizer", u, j.Status.Succeeded, j.Status.Failed, withFinalizer)

	cl.startControllers(nil)
	replacement := cl.awaitRunning("batch", 1, 1)
	cl.finish(replacement[0], corev1.PodSucceeded)
	cl.checkCounted(cl.awaitCondition("batch", batchv1.JobComplete), 4, 1)
	if n := len(cl.pods("batch")); n != 5 {
		t.Errorf("pods: got %d, want 5", n)
	}
}

func TestJobTTLAfterFinished(t *testing.T) {
	cl := startCluster(t)
	cl.startControllers(nil)
	cl.create(newJob("once", nil, nil, func(j *batchv1.Job) { j.Spec.TTLSecondsAfterFinished = new(int32(0)) }))
	cl.finish(cl.awaitRunning("once", 1, 1)[0], corev1.PodSucceeded)
	cl.Await(waitTimeout, "job and pods deleted", func() (bool, error) {
		_, err := cl.Client.Jobs("default").Get(cl.Ctx, "once")
		n := len(cl.pods("once"))
		return apierrors.IsNotFound(err) && n == 0, fmt.Errorf("get: %v, %d pods", err, n)
	})
}

// TestJobDeletedTakesItsPods deletes a running Job: the garbage collector
// deletes its pods and the Job controller lets go of their finalizers.
func TestJobDeletedTakesItsPods(t *testing.T) {
	cl := startCluster(t)
	cl.startControllers(nil)
	cl.create(newJob("gone", new(int32(3)), new(int32(3))))
	cl.awaitRunning("gone", 3, 3)
	bg := metav1.DeletePropagationBackground
	if err := cl.Client.Jobs("default").Delete(cl.Ctx, "gone", metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
		t.Fatal(err)
	}
	cl.Await(waitTimeout, "pods deleted", func() (bool, error) {
		n := len(cl.pods("gone"))
		return n == 0, fmt.Errorf("%d pods left", n)
	})
}

// TestJobNamespaceDeleted deletes a namespace with a running Job: the
// namespace controller deletes the Job and its pods, and the pods' tracking
// finalizers do not keep the namespace forever.
func TestJobNamespaceDeleted(t *testing.T) {
	cl := startCluster(t)
	cl.startControllers(nil)
	if _, err := cl.Client.Namespaces().Create(cl.Ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "batch"}}); err != nil {
		t.Fatal(err)
	}
	j := newJob("work", new(int32(3)), new(int32(3)))
	j.Namespace = "batch"
	cl.create(j)
	cl.Await(waitTimeout, "3 pods running", func() (bool, error) {
		list, err := cl.Client.Pods("batch").List(cl.Ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		n := len(running(list.Items))
		return n == 3, fmt.Errorf("%d running", n)
	})
	if err := cl.Client.Namespaces().Delete(cl.Ctx, "batch", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	cl.Await(waitTimeout, "the namespace gone", func() (bool, error) {
		_, err := cl.Client.Namespaces().Get(cl.Ctx, "batch")
		return apierrors.IsNotFound(err), fmt.Errorf("get: %v", err)
	})
}

// TestJobDeletedOrphansItsPods releases a pod of a running Job by hand,
// then deletes the Job with propagation Orphan: the pods stay, without
// an owner, and lose their tracking finalizer, since no Job will count
// them.
func TestJobDeletedOrphansItsPods(t *testing.T) {
	cl := startCluster(t)
	cl.startControllers(nil)
	cl.create(newJob("left", new(int32(2)), new(int32(2))))
	pods := cl.awaitRunning("left", 2, 2)

	// A pod released by hand (its owner reference removed) is no longer
	// the Job's to count: it loses the finalizer, and the Job replaces it.
	released := pods[0].Name
	if _, err := cl.Client.Pods("default").Patch(cl.Ctx, released, types.MergePatchType, []byte(`{"metadata":{"ownerReferences":null}}`)); err != nil {
		t.Fatal(err)
	}
	cl.Await(waitTimeout, "the released pod without the finalizer", func() (bool, error) {
		p, err := cl.Client.Pods("default").Get(cl.Ctx, released)
		if err != nil {
			return false, err
		}
		return !slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer), fmt.Errorf("finalizers %v", p.Finalizers)
	})
	cl.awaitRunning("left", 3, 3) // the released pod still has the job's labels

	orphan := metav1.DeletePropagationOrphan
	if err := cl.Client.Jobs("default").Delete(cl.Ctx, "left", metav1.DeleteOptions{PropagationPolicy: &orphan}); err != nil {
		t.Fatal(err)
	}
	cl.Await(waitTimeout, "pods orphaned, without the finalizer", func() (bool, error) {
		pods := cl.pods("left")
		for _, p := range pods {
			if len(p.OwnerReferences) > 0 || slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer) || p.DeletionTimestamp != nil {
				return false, fmt.Errorf("pod %s: owners %v finalizers %v", p.Name, p.OwnerReferences, p.Finalizers)
			}
		}
		return len(pods) == 3, fmt.Errorf("%d pods", len(pods))
	})
}
