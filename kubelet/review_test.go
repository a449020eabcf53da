package kubelet_test

// Tests written during a review; each demonstrates one finding.
//
//	go test -count=1 -run TestReview ./kubelet/

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/apiserver"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/kubelet"
	"github.com/skiffdev/skiff/kubelet/kubelettest"
)

func reviewCluster(t *testing.T, opts ...kubelettest.Option) *cluster {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs a kubelet")
	}
	var node *kubelettest.Node
	srv := testenv.StartServer(t, func(cfg *apiserver.Config) {
		cfg.KubeletDialer = func(ctx context.Context, addr string) (net.Conn, error) { return node.Dial(ctx, addr) }
	})
	c := testenv.NewClient(t, srv.Addr())
	node = kubelettest.Start(t, srv.Addr(), opts...)
	node.WaitReady(c)
	return &cluster{t: t, c: c, node: node, ctx: testenv.Context(t)}
}

// containersOf counts the runtime's containers per pod name and container
// name, from the records on disk.
func containersOf(t *testing.T, cl *cluster) map[string]int {
	dir := filepath.Join(cl.node.Config.StateDir, "runtime", "containers")
	entries, _ := os.ReadDir(dir)
	out := map[string]int{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "container.json"))
		if err != nil {
			continue
		}
		var rec struct {
			Spec struct{ Labels map[string]string } `json:"spec"`
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatal(err)
		}
		out[rec.Spec.Labels["skiff.pod.name"]+"/"+rec.Spec.Labels["skiff.container.name"]]++
	}
	return out
}

// A relist (housekeeping) that races with a start replaces the container
// index with a listing taken before the start: the next sync does not see
// the new container and starts the same container again.
func TestReviewRelistRaceStartsContainersTwice(t *testing.T) {
	cl := reviewCluster(t, func(cfg *kubelet.Config) { cfg.SyncInterval = 3 * time.Millisecond })
	const n = 12
	for i := range n {
		cl.create(cl.pod(fmt.Sprintf("p%d", i),
			corev1.Container{Name: "a", Command: sh(`sleep 3600`)},
			corev1.Container{Name: "b", Command: sh(`sleep 3600`)}))
	}
	for i := range n {
		cl.wait(fmt.Sprintf("p%d", i), "to run", running)
	}
	time.Sleep(3 * time.Second)
	for k, c := range containersOf(t, cl) {
		if c != 1 {
			t.Errorf("%s: %d containers in the runtime, want 1 (nothing exited)", k, c)
		}
	}
	for i := range n {
		name := fmt.Sprintf("p%d", i)
		p, err := cl.c.Pods("default").Get(cl.ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.RestartCount != 0 || cs.LastTerminationState.Terminated != nil {
				t.Errorf("%s/%s: restartCount %d lastState %+v, want no restart", name, cs.Name, cs.RestartCount, cs.LastTerminationState)
			}
		}
	}
}

// Kubernetes restarts at once a container that ran longer than twice the
// maximum backoff (the backoff has expired); here it still waits the old
// delay in CrashLoopBackOff.
func TestReviewBackoffExpiry(t *testing.T) {
	cl := reviewCluster(t, func(cfg *kubelet.Config) {
		cfg.InitialBackoff = time.Second
		cfg.MaxBackoff = 4 * time.Second
	})
	// Runs 1-4 crash at once (restarts after 0, 1, 2, 4 s); run 5 lasts
	// 10 s (> 2 × 4 s), so its restart should be immediate.
	p := cl.pod("expiry", corev1.Container{Name: "c", Command: sh(`n=$(cat /d/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /d/n; if [ $n -eq 5 ]; then sleep 10; fi; exit 1`),
		VolumeMounts: []corev1.VolumeMount{{Name: "d", MountPath: "/d"}}})
	p.Spec.Volumes = []corev1.Volume{{Name: "d", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	cl.create(p)
	got := cl.wait("expiry", "to start run 6", func(p *corev1.Pod) bool { return status(p, "c").RestartCount >= 5 })
	cs := status(got, "c")
	last := cs.LastTerminationState.Terminated
	var started metav1.Time
	switch {
	case cs.State.Running != nil:
		started = cs.State.Running.StartedAt
	case cs.State.Terminated != nil:
		started = cs.State.Terminated.StartedAt
	}
	if last == nil || started.IsZero() {
		t.Fatalf("status: %+v", cs)
	}
	if ran := last.FinishedAt.Sub(last.StartedAt.Time); ran < 9*time.Second {
		t.Fatalf("run 5 lasted %v, want about 10 s", ran)
	}
	if wait := started.Sub(last.FinishedAt.Time); wait > time.Second {
		t.Errorf("run 6 started %v after run 5 (which ran longer than 2 × max backoff) ended; want an immediate restart", wait)
	}
	cl.delete("expiry")
}

// A running pod's status is written once; nothing should change it while
// nothing happens.
func TestReviewStatusSettles(t *testing.T) {
	cl := reviewCluster(t)
	p := cl.pod("steady", corev1.Container{Name: "c", Command: sh(`sleep 3600`),
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}, PeriodSeconds: 1}})
	p.Spec.InitContainers = []corev1.Container{{Name: "i", Image: cl.node.Image, Command: sh(`true`)}}
	cl.create(p)
	got := cl.wait("steady", "to be Ready", func(p *corev1.Pod) bool { return condition(p, corev1.PodReady) == corev1.ConditionTrue })
	time.Sleep(2 * time.Second)
	got = cl.wait("steady", "", func(*corev1.Pod) bool { return true })
	rv := got.ResourceVersion
	time.Sleep(7 * time.Second)
	now := cl.wait("steady", "", func(*corev1.Pod) bool { return true })
	if now.ResourceVersion != rv {
		a, _ := json.Marshal(got.Status)
		b, _ := json.Marshal(now.Status)
		t.Errorf("status rewritten while nothing happened: rv %s → %s\nbefore %s\nafter  %s", rv, now.ResourceVersion, a, b)
	}
	cl.delete("steady")
}
