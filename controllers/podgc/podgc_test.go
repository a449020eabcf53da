package podgc_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/apiserver/auth"
	"github.com/skiffdev/skiff/controllers/controller"
	"github.com/skiffdev/skiff/controllers/podgc"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/events"
	"github.com/skiffdev/skiff/internal/informers"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
)

const (
	ns          = "default"
	waitTimeout = 20 * time.Second
)

func startController(t *testing.T, cfg podgc.Config) (context.Context, *client.Client) {
	t.Helper()
	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	// The controller runs as the controller manager, so that what it may
	// do is tested too; the test itself acts as the administrator.
	cc := testenv.NewClientAs(t, srv, auth.ControllersUser)
	ctx, cancel := context.WithCancel(context.Background())
	f := informers.NewFactory(cc, time.Minute)
	rec := events.NewRecorder(ctx, cc, "controllers")
	gc, err := podgc.New(controller.Deps{Client: cc, Informers: f, Recorder: rec}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx)
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done; f.Wait(); rec.Stop() })
	if !f.WaitForCacheSync(ctx) {
		t.Fatal("caches did not sync")
	}
	go func() { defer close(done); gc.Run(ctx) }()
	return testenv.Context(t), c
}

func pod(name, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
	}
}

func createPod(t *testing.T, ctx context.Context, c *client.Client, name, node string) *corev1.Pod {
	t.Helper()
	p, err := c.Pods(ns).Create(ctx, pod(name, node))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func exists(ctx context.Context, c *client.Client, name string) (bool, error) {
	_, err := c.Pods(ns).Get(ctx, name)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

func TestPodsOfDeletedNodes(t *testing.T) {
	ctx, c := startController(t, podgc.DefaultConfig())
	for _, n := range []string{"node-1", "node-2"} {
		if _, err := c.Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}); err != nil {
			t.Fatal(err)
		}
	}
	createPod(t, ctx, c, "on-1", "node-1")
	createPod(t, ctx, c, "on-1-terminating", "node-1")
	createPod(t, ctx, c, "on-2", "node-2")
	createPod(t, ctx, c, "unbound", "")
	createPod(t, ctx, c, "on-ghost", "ghost")

	wait.For(t, waitTimeout, "pod of a node that never existed deleted", func() (bool, error) {
		ok, err := exists(ctx, c, "on-ghost")
		return !ok, err
	})
	// A graceful deletion that no kubelet will ever confirm.
	if err := c.Pods(ns).Delete(ctx, "on-1-terminating", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Nodes().Delete(ctx, "node-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, waitTimeout, "pods of the deleted node deleted", func() (bool, error) {
		for _, name := range []string{"on-1", "on-1-terminating"} {
			if ok, err := exists(ctx, c, name); ok || err != nil {
				return false, err
			}
		}
		return true, nil
	})
	for _, name := range []string{"on-2", "unbound"} {
		if ok, err := exists(ctx, c, name); !ok {
			t.Errorf("pod %s: got deleted (%v), want it kept", name, err)
		}
	}
}

func TestTerminatedPodsBeyondThreshold(t *testing.T) {
	cfg := podgc.DefaultConfig()
	cfg.TerminatedPodThreshold = 2
	ctx, c := startController(t, cfg)

	finish := func(p *corev1.Pod, phase corev1.PodPhase) {
		t.Helper()
		p.Status.Phase = phase
		if _, err := c.Pods(ns).UpdateStatus(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	old1 := createPod(t, ctx, c, "old-1", "")
	old2 := createPod(t, ctx, c, "old-2", "")
	running := createPod(t, ctx, c, "running", "")
	finish(old1, corev1.PodSucceeded)
	finish(old2, corev1.PodFailed)
	// creationTimestamp has a resolution of one second: let the clock
	// pass the old pods' second, so that the new ones are strictly newer.
	wait.For(t, 3*time.Second, "the clock to pass a second", func() (bool, error) {
		return time.Now().Truncate(time.Second).After(old2.CreationTimestamp.Time), nil
	})
	new1 := createPod(t, ctx, c, "new-1", "")
	new2 := createPod(t, ctx, c, "new-2", "")
	finish(new1, corev1.PodSucceeded)
	finish(new2, corev1.PodFailed)

	wait.For(t, waitTimeout, "the oldest terminated pods deleted", func() (bool, error) {
		for _, name := range []string{old1.Name, old2.Name} {
			if ok, err := exists(ctx, c, name); ok || err != nil {
				return false, err
			}
		}
		return true, nil
	})
	for _, p := range []*corev1.Pod{new1, new2, running} {
		if ok, err := exists(ctx, c, p.Name); !ok {
			t.Errorf("pod %s: got deleted (%v), want it kept", p.Name, err)
		}
	}
}

func TestTerminatedToDelete(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(name string, age int, phase corev1.PodPhase, deleting bool) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
			CreationTimestamp: metav1.NewTime(base.Add(time.Duration(-age) * time.Second))}}
		p.Status.Phase = phase
		if deleting {
			now := metav1.NewTime(base)
			p.DeletionTimestamp = &now
		}
		return p
	}
	pods := []*corev1.Pod{
		mk("young-ok", 1, corev1.PodSucceeded, false),
		mk("old-fail", 30, corev1.PodFailed, false),
		mk("running", 100, corev1.PodRunning, false),
		mk("mid-b", 10, corev1.PodSucceeded, false),
		mk("mid-a", 10, corev1.PodSucceeded, false),
		mk("going", 200, corev1.PodFailed, true),
	}
	tests := []struct {
		threshold int
		want      []string
	}{
		{threshold: 4, want: nil},
		{threshold: 3, want: []string{"old-fail"}},
		{threshold: 1, want: []string{"old-fail", "mid-a", "mid-b"}},
		{threshold: 0, want: []string{"old-fail", "mid-a", "mid-b", "young-ok"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.threshold), func(t *testing.T) {
			var got []string
			for _, p := range podgc.TerminatedToDelete(pods, tt.threshold) {
				got = append(got, p.Name)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
