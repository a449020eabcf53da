package ctl

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
)

// rolloutDeployment creates a Deployment of the given image and replicas
// in ns, as a user would, with no status.
func rolloutDeployment(t *testing.T, c *client.Client, ns, name, image string, replicas int32) *appsv1.Deployment {
	t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
	d, err := c.Deployments(ns).Create(testenv.Context(t), d)
	if err != nil {
		t.Fatalf("create deployment %s: %v", name, err)
	}
	return d
}

// rolloutReplicaSet creates a replica set of revision rev controlled by d,
// with d's template but the given image, as the deployment controller
// would: the pod-template-hash label, the revision annotation, and the
// change cause when not empty.
func rolloutReplicaSet(t *testing.T, c *client.Client, d *appsv1.Deployment, rev int, image, cause string) *appsv1.ReplicaSet {
	t.Helper()
	hash := fmt.Sprintf("h%d", rev)
	tmpl := d.Spec.Template.DeepCopy()
	tmpl.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
	tmpl.Spec.Containers[0].Image = image
	annotations := map[string]string{revisionAnnotation: fmt.Sprint(rev)}
	if cause != "" {
		annotations[changeCauseAnnotation] = cause
	}
	selector := d.Spec.Selector.DeepCopy()
	selector.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:            d.Name + "-" + hash,
			Namespace:       d.Namespace,
			Labels:          tmpl.Labels,
			Annotations:     annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, appsv1.SchemeGroupVersion.WithKind("Deployment"))},
		},
		Spec: appsv1.ReplicaSetSpec{Replicas: new(int32), Selector: selector, Template: *tmpl},
	}
	rs, err := c.ReplicaSets(d.Namespace).Create(testenv.Context(t), rs)
	if err != nil {
		t.Fatalf("create replica set %s: %v", rs.Name, err)
	}
	return rs
}

// setDeploymentStatus changes the status of a Deployment as its
// controller would, reading it first.
func setDeploymentStatus(t *testing.T, c *client.Client, ns, name string, change func(d *appsv1.Deployment)) {
	t.Helper()
	ctx := testenv.Context(t)
	d, err := c.Deployments(ns).Get(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	change(d)
	if _, err := c.Deployments(ns).UpdateStatus(ctx, d); err != nil {
		t.Fatalf("update status of %s: %v", name, err)
	}
}

// rolloutStage is a status of a Deployment of 3 replicas whose spec the
// controller observed.
func rolloutStage(replicas, updated, available int32) func(*appsv1.Deployment) {
	return func(d *appsv1.Deployment) {
		d.Status.ObservedGeneration = d.Generation
		d.Status.Replicas = replicas
		d.Status.UpdatedReplicas = updated
		d.Status.AvailableReplicas = available
		d.Status.ReadyReplicas = available
	}
}

// startCtl runs skiffctl in the background; the returned function waits
// for it to end.
func startCtl(ctx context.Context, kubeconfig string, args ...string) (out, errOut *syncBuffer, wait func() error) {
	out, errOut = &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		o := DefaultOptions()
		o.Streams = Streams{In: strings.NewReader(""), Out: out, ErrOut: errOut}
		o.Kubeconfig = kubeconfig
		cmd := NewCommand(o)
		cmd.SetArgs(args)
		err := cmd.ExecuteContext(ctx)
		o.Close()
		done <- err
	}()
	var err error
	waited := false
	return out, errOut, func() error {
		if !waited {
			err, waited = <-done, true
		}
		return err
	}
}

// waitOutput waits until out holds want.
func waitOutput(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	wait.For(t, 10*time.Second, fmt.Sprintf("output %q (have %q)", want, out), func() (bool, error) {
		return strings.Contains(out.String(), want), nil
	})
}

func TestRolloutStatus(t *testing.T) {
	srv := testenv.StartServer(t)
	kubeconfig := ctlKubeconfig(t, srv)
	c := testenv.NewClient(t, srv)

	t.Run("progresses and finishes", func(t *testing.T) {
		ctlNamespace(t, c, "status-ok")
		rolloutDeployment(t, c, "status-ok", "web", "nginx:1", 3)
		out, errOut, wait := startCtl(testenv.Context(t), kubeconfig, "rollout", "status", "deployment/web", "-n", "status-ok")

		waitOutput(t, out, "Waiting for deployment spec update to be observed...\n")
		steps := []struct {
			status func(*appsv1.Deployment)
			line   string
		}{
			{rolloutStage(1, 1, 0), `Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...`},
			{rolloutStage(4, 3, 2), `Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...`},
			{rolloutStage(3, 3, 2), `Waiting for deployment "web" rollout to finish: 2 of 3 updated replicas are available...`},
			{rolloutStage(3, 3, 3), `deployment "web" successfully rolled out`},
		}
		for _, s := range steps {
			setDeploymentStatus(t, c, "status-ok", "web", s.status)
			waitOutput(t, out, s.line+"\n")
		}
		if err := wait(); err != nil {
			t.Fatalf("rollout status: %v (stderr %q)", err, errOut)
		}
		want := "Waiting for deployment spec update to be observed...\n"
		for _, s := range steps {
			want += s.line + "\n"
		}
		if got := out.String(); got != want {
			t.Errorf("output:\n%s\nwant:\n%s", got, want)
		}
	})

	t.Run("a new spec waits for the controller to observe it", func(t *testing.T) {
		ctlNamespace(t, c, "status-gen")
		rolloutDeployment(t, c, "status-gen", "web", "nginx:1", 1)
		setDeploymentStatus(t, c, "status-gen", "web", rolloutStage(1, 1, 1))
		// The spec changes: generation 2, observed 1.
		if _, _, err := ctlRun(t, kubeconfig, "", "scale", "deploy", "web", "--replicas=2", "-n", "status-gen"); err != nil {
			t.Fatal(err)
		}
		out, _, err := ctlRun(t, kubeconfig, "", "rollout", "status", "deploy", "web", "-n", "status-gen", "--watch=false")
		if err != nil || out != "Waiting for deployment spec update to be observed...\n" {
			t.Errorf("got %q, %v", out, err)
		}
		setDeploymentStatus(t, c, "status-gen", "web", rolloutStage(2, 2, 2))
		out, _, err = ctlRun(t, kubeconfig, "", "rollout", "status", "deploy", "web", "-n", "status-gen")
		if err != nil || out != "deployment \"web\" successfully rolled out\n" {
			t.Errorf("got %q, %v", out, err)
		}
	})

	t.Run("progress deadline exceeded", func(t *testing.T) {
		ctlNamespace(t, c, "status-deadline")
		rolloutDeployment(t, c, "status-deadline", "web", "nginx:1", 3)
		setDeploymentStatus(t, c, "status-deadline", "web", rolloutStage(1, 1, 0))
		out, _, wait := startCtl(testenv.Context(t), kubeconfig, "rollout", "status", "deployment/web", "-n", "status-deadline")
		waitOutput(t, out, "1 out of 3 new replicas have been updated...\n")
		setDeploymentStatus(t, c, "status-deadline", "web", func(d *appsv1.Deployment) {
			d.Status.Conditions = []appsv1.DeploymentCondition{{
				Type:    appsv1.DeploymentProgressing,
				Status:  corev1.ConditionFalse,
				Reason:  "ProgressDeadlineExceeded",
				Message: `ReplicaSet "web-h1" has timed out progressing.`,
			}}
		})
		err := wait()
		if got, want := FormatError(err), `error: deployment "web" exceeded its progress deadline`; got != want {
			t.Errorf("error %q, want %q", got, want)
		}
	})

	t.Run("watch=false prints once", func(t *testing.T) {
		ctlNamespace(t, c, "status-once")
		rolloutDeployment(t, c, "status-once", "web", "nginx:1", 3)
		setDeploymentStatus(t, c, "status-once", "web", rolloutStage(3, 3, 2))
		out, _, err := ctlRun(t, kubeconfig, "", "rollout", "status", "deployment/web", "-n", "status-once", "--watch=false")
		if want := "Waiting for deployment \"web\" rollout to finish: 2 of 3 updated replicas are available...\n"; err != nil || out != want {
			t.Errorf("got %q, %v; want %q", out, err, want)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		ctlNamespace(t, c, "status-timeout")
		rolloutDeployment(t, c, "status-timeout", "web", "nginx:1", 3)
		_, _, err := ctlRun(t, kubeconfig, "", "rollout", "status", "deployment/web", "-n", "status-timeout", "--timeout=300ms")
		if got, want := FormatError(err), "error: timed out waiting for the condition"; got != want {
			t.Errorf("error %q, want %q", got, want)
		}
	})

	t.Run("revision", func(t *testing.T) {
		ctlNamespace(t, c, "status-rev")
		d := rolloutDeployment(t, c, "status-rev", "web", "nginx:1", 1)
		d.Annotations = map[string]string{revisionAnnotation: "2"}
		if _, err := c.Deployments("status-rev").Update(testenv.Context(t), d); err != nil {
			t.Fatal(err)
		}
		_, _, err := ctlRun(t, kubeconfig, "", "rollout", "status", "deployment/web", "-n", "status-rev", "--revision=3")
		if got, want := FormatError(err), "error: desired revision (3) is different from the running revision (2)"; got != want {
			t.Errorf("error %q, want %q", got, want)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"deployment/nope"}, `Error from server (NotFound): deployments.apps "nope" not found`},
			{[]string{"rs/x"}, `error: no status viewer has been implemented for ReplicaSet.apps`},
			{[]string{"deploy/a", "deploy/b"}, `error: rollout status is only supported on individual resources and resource collections, but 2 resources were found`},
			{[]string{"deploy"}, `error: resource(s) were provided, but no name was specified`},
			{nil, `error: required resource not specified`},
		} {
			_, _, err := ctlRun(t, kubeconfig, "", append([]string{"rollout", "status"}, tc.args...)...)
			if got := FormatError(err); got != tc.want {
				t.Errorf("%v: error %q, want %q", tc.args, got, tc.want)
			}
		}
	})
}

// historyFixture makes a Deployment at revision 3 (image nginx:3) with
// the replica sets of revisions 1 to 3.
func historyFixture(t *testing.T, c *client.Client, ns string) *appsv1.Deployment {
	t.Helper()
	ctlNamespace(t, c, ns)
	d := rolloutDeployment(t, c, ns, "web", "nginx:3", 3)
	rolloutReplicaSet(t, c, d, 1, "nginx:1", "")
	rolloutReplicaSet(t, c, d, 2, "nginx:2", "skiffctl set image web app=nginx:2")
	rolloutReplicaSet(t, c, d, 3, "nginx:3", "")
	// A replica set with the labels but another owner is not history.
	other := rolloutDeployment(t, c, ns, "other", "nginx:9", 1)
	rs := rolloutReplicaSet(t, c, other, 7, "nginx:7", "")
	rs.Labels["app"] = "web"
	if _, err := c.ReplicaSets(ns).Update(testenv.Context(t), rs); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestRolloutHistory(t *testing.T) {
	srv := testenv.StartServer(t)
	kubeconfig := ctlKubeconfig(t, srv)
	c := testenv.NewClient(t, srv)
	historyFixture(t, c, "hist")

	t.Run("table", func(t *testing.T) {
		out, _, err := ctlRun(t, kubeconfig, "", "rollout", "history", "deployment/web", "-n", "hist")
		want := "deployment.apps/web \n" +
			"REVISION  CHANGE-CAUSE\n" +
			"1         <none>\n" +
			"2         skiffctl set image web app=nginx:2\n" +
			"3         <none>\n\n"
		if err != nil || out != want {
			t.Errorf("got %q, %v; want %q", out, err, want)
		}
	})

	t.Run("one revision", func(t *testing.T) {
		out, _, err := ctlRun(t, kubeconfig, "", "rollout", "history", "deploy", "web", "-n", "hist", "--revision=2")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			"deployment.apps/web with revision #2\nPod Template:\n",
			"pod-template-hash=h2",
			"kubernetes.io/change-cause: skiffctl set image web app=nginx:2",
			"Image:",
			"nginx:2",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("no history", func(t *testing.T) {
		ctlNamespace(t, c, "hist-none")
		rolloutDeployment(t, c, "hist-none", "web", "nginx:1", 1)
		out, _, err := ctlRun(t, kubeconfig, "", "rollout", "history", "deployment/web", "-n", "hist-none")
		if want := "deployment.apps/web \nNo rollout history found.\n"; err != nil || out != want {
			t.Errorf("got %q, %v; want %q", out, err, want)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"deployment/web", "--revision=9"}, "error: unable to find the specified revision"},
			{[]string{"deployment/nope"}, `Error from server (NotFound): deployments.apps "nope" not found`},
			{[]string{"rs/web-h1"}, `error: no history viewer has been implemented for "ReplicaSet.apps"`},
		} {
			_, _, err := ctlRun(t, kubeconfig, "", append([]string{"rollout", "history", "-n", "hist"}, tc.args...)...)
			if got := FormatError(err); got != tc.want {
				t.Errorf("%v: error %q, want %q", tc.args, got, tc.want)
			}
		}
	})
}

func TestRolloutUndo(t *testing.T) {
	srv := testenv.StartServer(t)
	kubeconfig := ctlKubeconfig(t, srv)
	c := testenv.NewClient(t, srv)
	image := func(t *testing.T, ns string) *appsv1.Deployment {
		t.Helper()
		d, err := c.Deployments(ns).Get(testenv.Context(t), "web")
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	t.Run("to the previous revision", func(t *testing.T) {
		historyFixture(t, c, "undo-prev")
		out, _, err := ctlRun(t, kubeconfig, "", "rollout", "undo", "deployment/web", "-n", "undo-prev")
		if err != nil || out != "deployment.apps/web rolled back\n" {
			t.Fatalf("got %q, %v", out, err)
		}
		d := image(t, "undo-prev")
		if got := d.Spec.Template.Spec.Containers[0].Image; got != "nginx:2" {
			t.Errorf("image %q, want nginx:2", got)
		}
		if _, ok := d.Spec.Template.Labels[appsv1.DefaultDeploymentUniqueLabelKey]; ok {
			t.Errorf("the template kept the pod-template-hash label: %v", d.Spec.Template.Labels)
		}
		if got := d.Annotations[changeCauseAnnotation]; got != "skiffctl set image web app=nginx:2" {
			t.Errorf("change cause %q, want revision 2's", got)
		}
		if d.Generation != 2 {
			t.Errorf("generation %d, want 2", d.Generation)
		}
	})

	t.Run("to a given revision", func(t *testing.T) {
		historyFixture(t, c, "undo-rev")
		out, _, err := ctlRun(t, kubeconfig, "", "rollout", "undo", "deploy", "web", "-n", "undo-rev", "--to-revision=1")
		if err != nil || out != "deployment.apps/web rolled back\n" {
			t.Fatalf("got %q, %v", out, err)
		}
		if got := image(t, "undo-rev").Spec.Template.Spec.Containers[0].Image; got != "nginx:1" {
			t.Errorf("image %q, want nginx:1", got)
		}
		// The template is now revision 1's: undoing to it again is
		// skipped.
		out, _, err = ctlRun(t, kubeconfig, "", "rollout", "undo", "deploy", "web", "-n", "undo-rev", "--to-revision=1")
		if want := "deployment.apps/web skipped rollback (current template already matches revision 1)\n"; err != nil || out != want {
			t.Errorf("got %q, %v; want %q", out, err, want)
		}
	})

	t.Run("errors", func(t *testing.T) {
		historyFixture(t, c, "undo-err")
		ctlNamespace(t, c, "undo-none")
		rolloutDeployment(t, c, "undo-none", "web", "nginx:1", 1)
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"-n", "undo-err", "deployment/web", "--to-revision=9"}, "error: unable to find specified revision 9 in history"},
			{[]string{"-n", "undo-err", "deployment/nope"}, `Error from server (NotFound): deployments.apps "nope" not found`},
			{[]string{"-n", "undo-none", "deployment/web"}, `error: no rollout history found for deployment "web"`},
			{[]string{"-n", "undo-err", "rs/web-h1"}, `error: no rollbacker has been implemented for "ReplicaSet.apps"`},
		} {
			_, _, err := ctlRun(t, kubeconfig, "", append([]string{"rollout", "undo"}, tc.args...)...)
			if got := FormatError(err); got != tc.want {
				t.Errorf("%v: error %q, want %q", tc.args, got, tc.want)
			}
		}
		if got := image(t, "undo-err").Spec.Template.Spec.Containers[0].Image; got != "nginx:3" {
			t.Errorf("a failed undo changed the image to %q", got)
		}
	})

	t.Run("paused", func(t *testing.T) {
		historyFixture(t, c, "undo-paused")
		if _, _, err := ctlRun(t, kubeconfig, "", "rollout", "pause", "deployment/web", "-n", "undo-paused"); err != nil {
			t.Fatal(err)
		}
		_, _, err := ctlRun(t, kubeconfig, "", "rollout", "undo", "deployment/web", "-n", "undo-paused")
		if got := FormatError(err); !strings.Contains(got, "you cannot rollback a paused deployment") {
			t.Errorf("error %q", got)
		}
	})
}

func TestRolloutRestartPauseResume(t *testing.T) {
	srv := testenv.StartServer(t)
	kubeconfig := ctlKubeconfig(t, srv)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	ctlNamespace(t, c, "rp")
	rolloutDeployment(t, c, "rp", "web", "nginx:1", 2)
	get := func() *appsv1.Deployment {
		t.Helper()
		d, err := c.Deployments("rp").Get(ctx, "web")
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	run := func(want string, args ...string) {
		t.Helper()
		out, errOut, err := ctlRun(t, kubeconfig, "", append(args, "-n", "rp")...)
		if err != nil || out != want {
			t.Errorf("%v: got %q, %v (stderr %q); want %q", args, out, err, errOut, want)
		}
	}
	fails := func(want string, args ...string) {
		t.Helper()
		_, _, err := ctlRun(t, kubeconfig, "", append(args, "-n", "rp")...)
		if got := FormatError(err); got != want {
			t.Errorf("%v: error %q, want %q", args, got, want)
		}
	}

	start := time.Now().Add(-time.Second)
	run("deployment.apps/web restarted\n", "rollout", "restart", "deployment/web")
	at, err := time.Parse(time.RFC3339, get().Spec.Template.Annotations[restartedAtAnnotation])
	if err != nil || at.Before(start.Truncate(time.Second)) || at.After(time.Now()) {
		t.Errorf("restartedAt %v, %v: want the time of the restart", at, err)
	}
	if g := get().Generation; g != 2 {
		t.Errorf("generation %d after restart, want 2", g)
	}

	run("deployment.apps/web paused\n", "rollout", "pause", "deployment/web")
	if !get().Spec.Paused {
		t.Error("not paused")
	}
	fails(`error: deployments.apps "web" is already paused`, "rollout", "pause", "deploy", "web")
	fails(`error: deployments.apps "web" can't restart paused deployment (run rollout resume first)`, "rollout", "restart", "deployment/web")
	run("deployment.apps/web resumed\n", "rollout", "resume", "deployment/web")
	if get().Spec.Paused {
		t.Error("still paused")
	}
	fails(`error: deployments.apps "web" is not paused`, "rollout", "resume", "deployment/web")
	fails(`Error from server (NotFound): deployments.apps "nope" not found`, "rollout", "pause", "deployment/nope")
	fails(`error: replicasets.apps "x" pausing is not supported`, "rollout", "pause", "rs/x")

	// Several objects: the found ones are acted on, the errors come after.
	rolloutDeployment(t, c, "rp", "api", "nginx:1", 1)
	out, _, err := ctlRun(t, kubeconfig, "", "rollout", "pause", "deployment/api", "deployment/nope", "-n", "rp")
	if out != "deployment.apps/api paused\n" || FormatError(err) != `Error from server (NotFound): deployments.apps "nope" not found` {
		t.Errorf("got %q, %v", out, err)
	}
}
