package controllers

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/apiserver/auth"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
)

// TestRunLogsWithComponentOnce: Run logs through the logger of its ctx,
// with component=controllers once per line (also while campaigning for
// its Lease); a controller's lines add controller=<its name>, and those
// of a Reconcile key=<the key>.
func TestRunLogsWithComponentOnce(t *testing.T) {
	srv := testenv.StartServer(t)
	admin := testenv.NewClient(t, srv)
	cfg := DefaultConfig()
	cfg.Client = testenv.NewClientAs(t, srv, auth.ControllersUser)
	var out testenv.Output
	ctx, cancel := context.WithCancel(logging.Into(context.Background(), slog.New(slog.NewTextHandler(&out, nil))))
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})

	replicas := int32(1)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}},
			},
		},
	}
	if _, err := admin.Deployments("default").Create(testenv.Context(t), d); err != nil {
		t.Fatal(err)
	}
	const created = `msg="created replicaset"`
	wait.For(t, 30*time.Second, "the deployment controller to create a ReplicaSet", func() (bool, error) {
		return strings.Contains(out.String(), created), nil
	})

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	for _, l := range lines {
		if n := strings.Count(l, "component=controllers"); n != 1 {
			t.Errorf("line %q has component=controllers %d times, want once", l, n)
		}
	}
	if !strings.Contains(lines[0], `msg="became leader"`) {
		t.Errorf("got first line %q, want the leader election's", lines[0])
	}
	for _, l := range lines {
		if strings.Contains(l, created) {
			// The leader election's lease= and identity= come between.
			for _, want := range []string{"component=controllers ", " controller=deployment key=default/web deployment=default/web "} {
				if !strings.Contains(l, want) {
					t.Errorf("got %q, want it to say %q", l, want)
				}
			}
			t.Logf("%s", l)
			break
		}
	}
}
