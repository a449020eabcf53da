package deployment

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiffdev/skiff/apiserver/auth"
	"github.com/skiffdev/skiff/controllers/controller"
	"github.com/skiffdev/skiff/controllers/replicaset"
	"github.com/skiffdev/skiff/internal/events"
	"github.com/skiffdev/skiff/internal/informers"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/scheduler"
)

const waitTimeout = 45 * time.Second

// cluster is a test cluster running a scheduler, simulated nodes and the
// ReplicaSet and Deployment controllers, all stopped when the test ends.
type cluster struct {
	*testenv.Cluster
}

func startCluster(t *testing.T, startDelay time.Duration) *cluster {
	t.Helper()
	cl := &cluster{testenv.NewCluster(t)}

	// The scheduler and the controllers run as themselves, so that what
	// they may do is tested too; the simulated nodes and the test itself
	// act as the administrator.
	schedCfg := scheduler.DefaultConfig()
	schedCfg.Client = cl.ClientAs(auth.SchedulerUser)
	cl.Start("scheduler", func(ctx context.Context) error { return scheduler.Run(ctx, schedCfg) })

	simCfg := cl.SimNodes(3)
	simCfg.StartDelay = startDelay
	cl.StartSimNodes(simCfg)

	cc := cl.ClientAs(auth.ControllersUser)
	f := informers.NewFactory(cc, time.Minute)
	rec := events.NewRecorder(logging.Into(cl.Ctx, cl.Log), cc, "controllers")
	deps := controller.Deps{Client: cc, Informers: f, Recorder: rec}
	rsCtrl, err := replicaset.New(deps, replicaset.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	dCtrl, err := New(deps, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	cl.Start("controllers", func(ctx context.Context) error {
		f.Start(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { rsCtrl.Run(ctx) })
		wg.Go(func() { dCtrl.Run(ctx) })
		wg.Wait()
		f.Wait()
		rec.Stop()
		return nil
	})
	return cl
}

func newDeployment(replicas int32, image string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: image}}},
			},
		},
	}
}

func (cl *cluster) create(d *appsv1.Deployment) {
	cl.T.Helper()
	if _, err := cl.Client.Deployments("default").Create(cl.Ctx, d); err != nil {
		cl.T.Fatal(err)
	}
}

func (cl *cluster) patch(p string) {
	cl.T.Helper()
	if _, err := cl.Client.Deployments("default").Patch(cl.Ctx, "web", types.StrategicMergePatchType, []byte(p)); err != nil {
		cl.T.Fatal(err)
	}
}

func (cl *cluster) setImage(image string) {
	cl.T.Helper()
	cl.patch(fmt.Sprintf(`{"spec":{"template":{"spec":{"containers":[{"name":"web","image":%q}]}}}}`, image))
}

// awaitComplete waits until the Deployment's current generation is fully
// rolled out, as `kubectl rollout status` judges it, and returns it.
func (cl *cluster) awaitComplete() *appsv1.Deployment {
	cl.T.Helper()
	var d *appsv1.Deployment
	cl.Await(waitTimeout, "rollout complete", func() (bool, error) {
		var err error
		if d, err = cl.Client.Deployments("default").Get(cl.Ctx, "web"); err != nil {
			return false, err
		}
		c := getCondition(d.Status, appsv1.DeploymentProgressing)
		want := *d.Spec.Replicas
		s := d.Status
		ok := s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.Replicas == want &&
			s.AvailableReplicas == want && c != nil && c.Reason == ReasonNewReplicaSetAvailable
		return ok, fmt.Errorf("status %+v", s)
	})
	return d
}

// replicaSets returns the Deployment's ReplicaSets by revision.
func (cl *cluster) replicaSets() map[string]*appsv1.ReplicaSet {
	cl.T.Helper()
	list, err := cl.Client.ReplicaSets("default").List(cl.Ctx, metav1.ListOptions{})
	if err != nil {
		cl.T.Fatal(err)
	}
	out := map[string]*appsv1.ReplicaSet{}
	for i := range list.Items {
		rs := &list.Items[i]
		out[rs.Annotations[RevisionAnnotation]] = rs
	}
	return out
}

// podWatch follows the app=web pods from a list onwards and calls check
// with every state it observes.
func (cl *cluster) podWatch(check func(pods map[string]*corev1.Pod)) (stop func()) {
	cl.T.Helper()
	list, err := cl.Client.Pods("default").List(cl.Ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		cl.T.Fatal(err)
	}
	pods := map[string]*corev1.Pod{}
	for i := range list.Items {
		pods[list.Items[i].Name] = &list.Items[i]
	}
	check(pods)
	ctx, cancel := context.WithCancel(cl.Ctx)
	w, err := cl.Client.Pods("default").Watch(ctx, metav1.ListOptions{LabelSelector: "app=web", ResourceVersion: list.ResourceVersion})
	if err != nil {
		cl.T.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				pods[pod.Name] = pod
			case watch.Deleted:
				delete(pods, pod.Name)
			default:
				continue
			}
			check(pods)
		}
	}()
	return func() { cancel(); w.Stop(); <-done }
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// stripTimes drops the condition times, which tests cannot predict.
func stripTimes(s appsv1.DeploymentStatus) appsv1.DeploymentStatus {
	s.Conditions = append([]appsv1.DeploymentCondition(nil), s.Conditions...)
	for i := range s.Conditions {
		s.Conditions[i].LastUpdateTime = metav1.Time{}
		s.Conditions[i].LastTransitionTime = metav1.Time{}
	}
	return s
}

func TestTenReplicasBecomeAvailable(t *testing.T) {
	cl := startCluster(t, 0)
	cl.create(newDeployment(10, "nginx:1.27"))
	d := cl.awaitComplete()
	rs := cl.replicaSets()["1"]
	if rs == nil {
		t.Fatalf("no ReplicaSet of revision 1")
	}
	hash := rs.Labels[PodTemplateHashLabel]
	if rs.Name != "web-"+hash || rs.Spec.Selector.MatchLabels[PodTemplateHashLabel] != hash || rs.Spec.Template.Labels[PodTemplateHashLabel] != hash {
		t.Errorf("replicaset %q: hash label %q not in name, selector and template", rs.Name, hash)
	}
	if ref := metav1.GetControllerOf(rs); ref == nil || ref.UID != d.UID {
		t.Errorf("replicaset controller ref: got %v, want the Deployment", ref)
	}
	if rs.Annotations[DesiredReplicasAnnotation] != "10" || rs.Annotations[MaxReplicasAnnotation] != "13" {
		t.Errorf("replicas annotations: got %v", rs.Annotations)
	}
	if d.Annotations[RevisionAnnotation] != "1" {
		t.Errorf("deployment revision: got %q, want 1", d.Annotations[RevisionAnnotation])
	}
	want := appsv1.DeploymentStatus{
		ObservedGeneration: 1, Replicas: 10, UpdatedReplicas: 10, ReadyReplicas: 10, AvailableReplicas: 10,
		Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: ReasonMinimumReplicasAvailable, Message: "Deployment has minimum availability."},
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: ReasonNewReplicaSetAvailable, Message: fmt.Sprintf("ReplicaSet %q has successfully progressed.", rs.Name)},
		},
	}
	got := stripTimes(d.Status)
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("status:\ngot  %+v\nwant %+v", got, want)
	}
	pods, err := cl.Client.Pods("default").List(cl.Ctx, metav1.ListOptions{LabelSelector: PodTemplateHashLabel + "=" + hash})
	if err != nil || len(pods.Items) != 10 {
		t.Errorf("pods with the hash label: got %d (%v), want 10", len(pods.Items), err)
	}
	cl.Await(waitTimeout, "ScalingReplicaSet event", func() (bool, error) {
		evs, err := cl.Client.Events("default").List(cl.Ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.Reason == "ScalingReplicaSet" && e.Message == fmt.Sprintf("Scaled up replica set %s from 0 to 10", rs.Name) {
				return true, nil
			}
		}
		return false, fmt.Errorf("%d events", len(evs.Items))
	})
}

func TestRollingUpdateAndRollback(t *testing.T) {
	cl := startCluster(t, 100*time.Millisecond)
	d := newDeployment(10, "nginx:1.27")
	surge, unavail := intstr.FromInt32(3), intstr.FromInt32(2)
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavail}}
	cl.create(d)
	cl.awaitComplete()

	// rollout watches pods through a rollout and checks the budgets at
	// every state it sees.
	rollout := func(image string) {
		t.Helper()
		// mu guards violations, states and maxTotal.
		var mu sync.Mutex
		var violations []string
		var states, maxTotal int
		stop := cl.podWatch(func(pods map[string]*corev1.Pod) {
			total, available := 0, 0
			for _, p := range pods {
				if p.DeletionTimestamp != nil {
					continue
				}
				total++
				if isReady(p) {
					available++
				}
			}
			mu.Lock()
			defer mu.Unlock()
			states++
			maxTotal = max(maxTotal, total)
			if total > 13 || available < 8 {
				violations = append(violations, fmt.Sprintf("total %d, available %d", total, available))
			}
		})
		cl.setImage(image)
		cl.awaitComplete()
		stop()
		mu.Lock()
		defer mu.Unlock()
		if len(violations) > 0 {
			t.Errorf("%s: budgets broken in %d of %d states: %v", image, len(violations), states, violations)
		}
		if maxTotal <= 10 {
			t.Errorf("%s: never surged (max %d pods)", image, maxTotal)
		}
		t.Logf("%s: %d states observed, at most %d pods", image, states, maxTotal)
	}

	rollout("nginx:1.28")
	rss := cl.replicaSets()
	if len(rss) != 2 || rss["1"] == nil || rss["2"] == nil {
		t.Fatalf("revisions: got %v, want 1 and 2", keys(rss))
	}
	if *rss["1"].Spec.Replicas != 0 || *rss["2"].Spec.Replicas != 10 {
		t.Errorf("replicas: got old %d new %d, want 0 and 10", *rss["1"].Spec.Replicas, *rss["2"].Spec.Replicas)
	}
	first := rss["1"].Name

	// Rollback: the old template again reuses the old ReplicaSet.
	rollout("nginx:1.27")
	rss = cl.replicaSets()
	if len(rss) != 2 || rss["3"] == nil || rss["3"].Name != first {
		t.Fatalf("after rollback: got revisions %v, want 2 and 3 with %s at 3", keys(rss), first)
	}
	if rss["3"].Annotations[RevisionHistoryAnnotation] != "1" {
		t.Errorf("revision history: got %q, want 1", rss["3"].Annotations[RevisionHistoryAnnotation])
	}
	if d, _ := cl.Client.Deployments("default").Get(cl.Ctx, "web"); d.Annotations[RevisionAnnotation] != "3" {
		t.Errorf("deployment revision: got %q, want 3", d.Annotations[RevisionAnnotation])
	}
}

func keys(m map[string]*appsv1.ReplicaSet) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v.Name)
	}
	return out
}

func TestScaleUpAndDown(t *testing.T) {
	cl := startCluster(t, 0)
	cl.create(newDeployment(3, "nginx:1.27"))
	cl.awaitComplete()
	for _, n := range []int32{7, 2} {
		cl.patch(fmt.Sprintf(`{"spec":{"replicas":%d}}`, n))
		d := cl.awaitComplete()
		if d.Status.Replicas != n || d.Status.AvailableReplicas != n {
			t.Errorf("scaled to %d: status %+v", n, d.Status)
		}
		cl.Await(waitTimeout, fmt.Sprintf("%d pods", n), func() (bool, error) {
			list, err := cl.Client.Pods("default").List(cl.Ctx, metav1.ListOptions{LabelSelector: "app=web"})
			return err == nil && len(list.Items) == int(n), err
		})
		rs := cl.replicaSets()["1"]
		if rs.Annotations[DesiredReplicasAnnotation] != fmt.Sprint(n) {
			t.Errorf("desired-replicas: got %q, want %d", rs.Annotations[DesiredReplicasAnnotation], n)
		}
	}
	if len(cl.replicaSets()) != 1 {
		t.Errorf("scaling made a new ReplicaSet")
	}
}

func TestRecreateNeverMixes(t *testing.T) {
	cl := startCluster(t, 50*time.Millisecond)
	d := newDeployment(4, "nginx:1.27")
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	cl.create(d)
	cl.awaitComplete()
	// mu guards mixed.
	var mu sync.Mutex
	var mixed []string
	stop := cl.podWatch(func(pods map[string]*corev1.Pod) {
		hashes := map[string]bool{}
		for _, p := range pods {
			hashes[p.Labels[PodTemplateHashLabel]] = true
		}
		if len(hashes) > 1 {
			mu.Lock()
			mixed = append(mixed, fmt.Sprint(hashes))
			mu.Unlock()
		}
	})
	cl.setImage("nginx:1.28")
	cl.awaitComplete()
	stop()
	if len(mixed) > 0 {
		t.Errorf("old and new pods at once: %v", mixed)
	}
	if rss := cl.replicaSets(); *rss["1"].Spec.Replicas != 0 || *rss["2"].Spec.Replicas != 4 {
		t.Errorf("got %v, want revision 1 at 0 and 2 at 4", keys(rss))
	}
}

func TestProgressDeadlineExceeded(t *testing.T) {
	cl := startCluster(t, 0)
	d := newDeployment(2, "nginx:1.27")
	d.Spec.ProgressDeadlineSeconds = new(int32(2))
	d.Spec.Template.Spec.NodeSelector = map[string]string{"disk": "none-has-it"}
	cl.create(d)
	cl.Await(waitTimeout, "ProgressDeadlineExceeded", func() (bool, error) {
		d, err := cl.Client.Deployments("default").Get(cl.Ctx, "web")
		if err != nil {
			return false, err
		}
		c := getCondition(d.Status, appsv1.DeploymentProgressing)
		return c != nil && c.Status == corev1.ConditionFalse && c.Reason == ReasonProgressDeadlineExceeded &&
			strings.HasSuffix(c.Message, "has timed out progressing."), fmt.Errorf("conditions %+v", d.Status.Conditions)
	})
	d, _ = cl.Client.Deployments("default").Get(cl.Ctx, "web")
	if c := getCondition(d.Status, appsv1.DeploymentAvailable); c == nil || c.Status != corev1.ConditionFalse || c.Reason != ReasonMinimumReplicasUnavailable {
		t.Errorf("Available: got %+v", c)
	}
}

func TestRevisionHistoryLimit(t *testing.T) {
	cl := startCluster(t, 0)
	d := newDeployment(2, "nginx:1")
	d.Spec.RevisionHistoryLimit = new(int32(1))
	cl.create(d)
	cl.awaitComplete()
	for _, image := range []string{"nginx:2", "nginx:3", "nginx:4"} {
		cl.setImage(image)
		cl.awaitComplete()
	}
	cl.Await(waitTimeout, "revisions 3 and 4 only", func() (bool, error) {
		rss := cl.replicaSets()
		return len(rss) == 2 && rss["3"] != nil && rss["4"] != nil, fmt.Errorf("revisions %v", keys(rss))
	})
}

func TestPausedHoldsRollout(t *testing.T) {
	cl := startCluster(t, 0)
	cl.create(newDeployment(2, "nginx:1"))
	cl.awaitComplete()
	cl.patch(`{"spec":{"paused":true}}`)
	cl.setImage("nginx:2")
	cl.Await(waitTimeout, "DeploymentPaused", func() (bool, error) {
		d, err := cl.Client.Deployments("default").Get(cl.Ctx, "web")
		if err != nil {
			return false, err
		}
		c := getCondition(d.Status, appsv1.DeploymentProgressing)
		return c != nil && c.Reason == ReasonDeploymentPaused && d.Status.ObservedGeneration == d.Generation, fmt.Errorf("%+v", d.Status)
	})
	if rss := cl.replicaSets(); len(rss) != 1 {
		t.Errorf("paused Deployment rolled out: %v", keys(rss))
	}
	cl.patch(`{"spec":{"paused":false}}`)
	cl.awaitComplete()
	if rss := cl.replicaSets(); rss["2"] == nil {
		t.Errorf("resumed Deployment did not roll out: %v", keys(rss))
	}
}
