package replicaset

import (
	"context"
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/skiffdev/skiff/apiserver/auth"
	"github.com/skiffdev/skiff/controllers/controller"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/events"
	"github.com/skiffdev/skiff/internal/informers"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/scheduler"
)

// waitTimeout bounds every wait of these tests.
const waitTimeout = 30 * time.Second

// cluster is a test cluster with a scheduler and simulated nodes, all
// stopped when the test ends.
type cluster struct {
	*testenv.Cluster
	// controllers is the ReplicaSet controllers' client, as the
	// controller manager, so that what they may do is tested too; the
	// test and the simulated nodes act as the administrator.
	controllers *client.Client
}

func startCluster(t *testing.T, nodes int) *cluster {
	t.Helper()
	cl := &cluster{Cluster: testenv.NewCluster(t)}
	cl.controllers = cl.ClientAs(auth.ControllersUser)

	// The scheduler runs as itself.
	schedCfg := scheduler.DefaultConfig()
	schedCfg.Client = cl.ClientAs(auth.SchedulerUser)
	cl.Start("scheduler", func(ctx context.Context) error { return scheduler.Run(ctx, schedCfg) })

	cl.StartSimNodes(cl.SimNodes(nodes))
	cl.Await(waitTimeout, fmt.Sprintf("%d nodes", nodes), func() (bool, error) {
		list, err := cl.Client.Nodes().List(cl.Ctx, metav1.ListOptions{})
		return err == nil && len(list.Items) == nodes, err
	})
	return cl
}

// startController runs a ReplicaSet controller with its own informers
// and recorder, like a fresh process. stop ends it and returns once Run
// has returned; it is also called when the test ends.
//
// beforeCreate, when not nil, is called before each pod create with a
// function that ends the controller's context without waiting for Run.
func (cl *cluster) startController(beforeCreate func(cancel context.CancelFunc)) (stop func()) {
	cl.T.Helper()
	f := informers.NewFactory(cl.controllers, time.Minute)
	rec := events.NewRecorder(logging.Into(cl.Ctx, cl.Log), cl.controllers, "controllers")
	ctrl, err := New(controller.Deps{Client: cl.controllers, Informers: f, Recorder: rec}, DefaultConfig())
	if err != nil {
		cl.T.Fatal(err)
	}
	comp := cl.Start("replicaset controller", func(ctx context.Context) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		if beforeCreate != nil {
			ctrl.beforeCreate = func() { beforeCreate(cancel) }
		}
		f.Start(ctx)
		ctrl.Run(ctx)
		f.Wait()
		rec.Stop()
		return nil
	})
	return comp.Stop
}

// newReplicaSet is a ReplicaSet "web" selecting app=web, whose template
// also sets tier=frontend.
func newReplicaSet(replicas, minReadySeconds int32) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: appsv1.ReplicaSetSpec{
			Replicas:        ptr.To(replicas),
			MinReadySeconds: minReadySeconds,
			Selector:        &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", "tier": "frontend"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "web", Image: "nginx:1.27",
				}}},
			},
		},
	}
}

func (cl *cluster) createReplicaSet(rs *appsv1.ReplicaSet) *appsv1.ReplicaSet {
	cl.T.Helper()
	out, err := cl.Client.ReplicaSets(rs.Namespace).Create(cl.Ctx, rs)
	if err != nil {
		cl.T.Fatal(err)
	}
	return out
}

func (cl *cluster) scale(name string, replicas int32) {
	cl.T.Helper()
	patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, replicas)
	if _, err := cl.Client.ReplicaSets("default").Patch(cl.Ctx, name, types.MergePatchType, []byte(patch)); err != nil {
		cl.T.Fatal(err)
	}
}

// activePods lists the pods labelled app=web that are not terminating.
func (cl *cluster) activePods() ([]corev1.Pod, error) {
	list, err := cl.Client.Pods("default").List(cl.Ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// awaitStatus waits until the ReplicaSet's status is exactly want.
func (cl *cluster) awaitStatus(name string, want appsv1.ReplicaSetStatus) *appsv1.ReplicaSet {
	cl.T.Helper()
	var rs *appsv1.ReplicaSet
	cl.Await(waitTimeout, fmt.Sprintf("status %+v", want), func() (bool, error) {
		var err error
		rs, err = cl.Client.ReplicaSets("default").Get(cl.Ctx, name)
		if err != nil {
			return false, err
		}
		return equality.Semantic.DeepEqual(rs.Status, want), fmt.Errorf("got %+v", rs.Status)
	})
	return rs
}

// awaitPods waits until exactly n active pods are labelled app=web, and
// the simulated nodes have removed the terminating ones.
func (cl *cluster) awaitPods(n int) []corev1.Pod {
	cl.T.Helper()
	var pods []corev1.Pod
	cl.Await(waitTimeout, fmt.Sprintf("%d pods", n), func() (bool, error) {
		list, err := cl.Client.Pods("default").List(cl.Ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err
		}
		pods = list.Items
		return len(pods) == n, fmt.Errorf("%d pods", len(pods))
	})
	return pods
}

// status is the status of a settled ReplicaSet at generation gen.
func status(replicas, fullyLabeled int32, gen int64) appsv1.ReplicaSetStatus {
	return appsv1.ReplicaSetStatus{
		Replicas: replicas, FullyLabeledReplicas: fullyLabeled,
		ReadyReplicas: replicas, AvailableReplicas: replicas, ObservedGeneration: gen,
	}
}

// eventCount counts the events with reason about the ReplicaSet name.
func (cl *cluster) eventCount(name, reason string) (int, error) {
	list, err := cl.Client.Events("default").List(cl.Ctx, metav1.ListOptions{})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range list.Items {
		if e.InvolvedObject.Kind == "ReplicaSet" && e.InvolvedObject.Name == name && e.Reason == reason {
			n++
		}
	}
	return n, nil
}

var podName = regexp.MustCompile(`^web-[a-z0-9]{5}$`)

func TestReplicaSetOfTenBecomesAvailable(t *testing.T) {
	cl := startCluster(t, 3)
	cl.startController(nil)
	// minReadySeconds: nothing but the controller's own requeue makes the
	// pods count as available a second after they are ready.
	rs := cl.createReplicaSet(newReplicaSet(10, 1))
	cl.awaitStatus("web", status(10, 10, 1))

	pods := cl.awaitPods(10)
	for _, p := range pods {
		if !podName.MatchString(p.Name) {
			t.Errorf("pod name %q does not match %v", p.Name, podName)
		}
		if p.Labels["app"] != "web" || p.Labels["tier"] != "frontend" {
			t.Errorf("pod %s labels: got %v, want the template's", p.Name, p.Labels)
		}
		ref := metav1.GetControllerOf(&p)
		if ref == nil || ref.UID != rs.UID || ref.Kind != "ReplicaSet" || ref.APIVersion != "apps/v1" ||
			ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
			t.Errorf("pod %s ownerReferences: got %+v, want the ReplicaSet as controller, blocking deletion", p.Name, p.OwnerReferences)
		}
		if p.Spec.NodeName == "" || p.Status.Phase != corev1.PodRunning {
			t.Errorf("pod %s: node %q phase %s, want bound and Running", p.Name, p.Spec.NodeName, p.Status.Phase)
		}
	}
	cl.Await(waitTimeout, "10 SuccessfulCreate events", func() (bool, error) {
		n, err := cl.eventCount("web", "SuccessfulCreate")
		return n == 10, fmt.Errorf("%d events (%v)", n, err)
	})
}

func TestScaleUpAndDown(t *testing.T) {
	cl := startCluster(t, 2)
	cl.startController(nil)
	cl.createReplicaSet(newReplicaSet(3, 0))
	cl.awaitStatus("web", status(3, 3, 1))

	cl.scale("web", 8)
	cl.awaitStatus("web", status(8, 8, 2))
	cl.awaitPods(8)

	cl.scale("web", 2)
	cl.awaitStatus("web", status(2, 2, 3))
	cl.awaitPods(2)
	cl.Await(waitTimeout, "6 SuccessfulDelete events", func() (bool, error) {
		n, err := cl.eventCount("web", "SuccessfulDelete")
		return n == 6, fmt.Errorf("%d events (%v)", n, err)
	})

	cl.scale("web", 0)
	cl.awaitStatus("web", appsv1.ReplicaSetStatus{ObservedGeneration: 4})
	cl.awaitPods(0)
}

func TestDeletedPodIsReplaced(t *testing.T) {
	cl := startCluster(t, 2)
	cl.startController(nil)
	cl.createReplicaSet(newReplicaSet(4, 0))
	cl.awaitStatus("web", status(4, 4, 1))
	pods := cl.awaitPods(4)

	victim := pods[0].Name
	if err := cl.Client.Pods("default").Delete(cl.Ctx, victim, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	cl.Await(waitTimeout, "the deleted pod to be replaced", func() (bool, error) {
		pods, err := cl.Client.Pods("default").List(cl.Ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			if p.Name == victim {
				return false, fmt.Errorf("%s is still there", victim)
			}
		}
		return len(pods.Items) == 4, fmt.Errorf("%d pods", len(pods.Items))
	})
	cl.awaitStatus("web", status(4, 4, 1))
}

func TestAdoptionAndRelease(t *testing.T) {
	cl := startCluster(t, 2)
	cl.startController(nil)
	// An orphan that matches the selector but lacks the template's tier
	// label: adopted, counted in replicas but not in fullyLabeledReplicas.
	orphan := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "orphan", Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27"}}},
	}
	if _, err := cl.Client.Pods("default").Create(cl.Ctx, orphan); err != nil {
		t.Fatal(err)
	}
	rs := cl.createReplicaSet(newReplicaSet(3, 0))
	cl.awaitStatus("web", status(3, 2, 1))
	cl.awaitPods(3)
	got, err := cl.Client.Pods("default").Get(cl.Ctx, "orphan")
	if err != nil {
		t.Fatal(err)
	}
	if ref := metav1.GetControllerOf(got); ref == nil || ref.UID != rs.UID {
		t.Fatalf("orphan's controller: got %+v, want the ReplicaSet", ref)
	}

	// Relabelled out of the selector: released, and replaced.
	if _, err := cl.Client.Pods("default").Patch(cl.Ctx, "orphan", types.MergePatchType,
		[]byte(`{"metadata":{"labels":{"app":"debug"}}}`)); err != nil {
		t.Fatal(err)
	}
	cl.awaitStatus("web", status(3, 3, 1))
	cl.awaitPods(3)
	cl.Await(waitTimeout, "the relabelled pod to be released", func() (bool, error) {
		got, err := cl.Client.Pods("default").Get(cl.Ctx, "orphan")
		if err != nil {
			return false, err
		}
		return len(got.OwnerReferences) == 0, fmt.Errorf("ownerReferences %+v", got.OwnerReferences)
	})
}

// TestRestartMidScaleUpMakesNoExtraPods stops a controller in the middle
// of a scale-up, after its third batch of creates (1+2+4 pods), by
// ending its context before the fourth batch's creates (which must then
// not happen), and
// starts a new one: the new one creates exactly the missing pods, and no
// pod is ever created and deleted again.
func TestRestartMidScaleUpMakesNoExtraPods(t *testing.T) {
	const replicas = 40
	cl := startCluster(t, 4)

	// Every pod ever created, seen through a watch.
	w, err := cl.Client.Pods("default").Watch(cl.Ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	// mu guards created and deleted.
	var mu sync.Mutex
	created, deleted := map[string]bool{}, 0
	go func() {
		for ev := range w.ResultChan() {
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			mu.Lock()
			switch ev.Type {
			case watch.Added:
				created[pod.Name] = true
			case watch.Deleted:
				deleted++
			}
			mu.Unlock()
		}
	}()

	var stopFirst func()
	var firstCreates atomic.Int32
	stopped := make(chan struct{})
	var attempts atomic.Int32
	stopFirst = cl.startController(func(cancel context.CancelFunc) {
		n := attempts.Add(1)
		if n <= 7 {
			firstCreates.Add(1)
			return
		}
		// The fourth batch (8 pods): the controller loses its context
		// before each of these creates, which must then not happen.
		cancel()
		if n == 8 {
			go func() {
				stopFirst()
				close(stopped)
			}()
		}
	})
	cl.createReplicaSet(newReplicaSet(replicas, 0))
	select {
	case <-stopped:
	case <-time.After(waitTimeout):
		t.Fatal("the first controller never made 7 creates")
	}
	if pods, err := cl.activePods(); err != nil || len(pods) != 7 {
		t.Fatalf("after the first controller: %d pods (err %v), want 7", len(pods), err)
	}

	var secondCreates atomic.Int32
	cl.startController(func(context.CancelFunc) { secondCreates.Add(1) })
	cl.awaitStatus("web", status(replicas, replicas, 1))
	cl.awaitPods(replicas)
	if got, want := firstCreates.Load()+secondCreates.Load(), int32(replicas); got != want {
		t.Errorf("creates: got %d, want %d", got, want)
	}
	cl.Await(waitTimeout, "the watch to show every pod", func() (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return len(created) == replicas, fmt.Errorf("%d pods created", len(created))
	})
	mu.Lock()
	defer mu.Unlock()
	if deleted != 0 {
		t.Errorf("%d pods deleted, want none", deleted)
	}
}
