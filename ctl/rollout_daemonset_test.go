package ctl

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/testenv"
)

// The DaemonSet's part of skiffctl: its table, its description, and its
// rollout through ControllerRevisions. The objects are made as a user and
// the DaemonSet controller would make them, without the controller.

// testDaemonSet creates a RollingUpdate DaemonSet "agent" of image in ns.
func testDaemonSet(t *testing.T, c *client.Client, ns, image string) *appsv1.DaemonSet {
	t.Helper()
	labels := map[string]string{"app": "agent"}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: ns, Labels: labels},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{"kubernetes.io/os": "linux"},
					Containers:   []corev1.Container{{Name: "agent", Image: image}},
				},
			},
		},
	}
	ds, err := c.DaemonSets(ns).Create(testenv.Context(t), ds)
	if err != nil {
		t.Fatalf("create daemonset: %v", err)
	}
	return ds
}

// testRevision creates the ControllerRevision rev of ds with ds's template
// but the given image, as the DaemonSet controller writes it: the
// template as a patch that replaces spec.template, ds's annotations
// (cause, when not empty, among them).
func testRevision(t *testing.T, c *client.Client, ds *appsv1.DaemonSet, rev int64, image, cause string) *appsv1.ControllerRevision {
	t.Helper()
	tmpl := ds.Spec.Template.DeepCopy()
	tmpl.Spec.Containers[0].Image = image
	raw, err := json.Marshal(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	var template map[string]any
	if err := json.Unmarshal(raw, &template); err != nil {
		t.Fatal(err)
	}
	template["$patch"] = "replace"
	data, err := json.Marshal(map[string]any{"spec": map[string]any{"template": template}})
	if err != nil {
		t.Fatal(err)
	}
	hash := fmt.Sprintf("h%d", rev)
	cr := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name:            ds.Name + "-" + hash,
			Namespace:       ds.Namespace,
			Labels:          map[string]string{"app": "agent", appsv1.DefaultDaemonSetUniqueLabelKey: hash},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ds, appsv1.SchemeGroupVersion.WithKind("DaemonSet"))},
		},
		Data:     runtime.RawExtension{Raw: data},
		Revision: rev,
	}
	if cause != "" {
		cr.Annotations = map[string]string{changeCauseAnnotation: cause}
	}
	cr, err = c.ControllerRevisions(ds.Namespace).Create(testenv.Context(t), cr)
	if err != nil {
		t.Fatalf("create controller revision %d: %v", rev, err)
	}
	return cr
}

// setDaemonSetStatus changes the status of the DaemonSet "agent" as its
// controller would, for the spec it has now.
func setDaemonSetStatus(t *testing.T, c *client.Client, ns string, desired, updated, available int32) {
	t.Helper()
	ctx := testenv.Context(t)
	ds, err := c.DaemonSets(ns).Get(ctx, "agent")
	if err != nil {
		t.Fatal(err)
	}
	ds.Status = appsv1.DaemonSetStatus{
		ObservedGeneration:     ds.Generation,
		DesiredNumberScheduled: desired, CurrentNumberScheduled: desired,
		UpdatedNumberScheduled: updated, NumberReady: available, NumberAvailable: available,
		NumberUnavailable: desired - available, NumberMisscheduled: 1,
	}
	if _, err := c.DaemonSets(ns).UpdateStatus(ctx, ds); err != nil {
		t.Fatalf("update status: %v", err)
	}
}

// daemonSetHistory makes "agent" at revision 3 (image agent:3) with the
// revisions 1 to 3, and a revision of another DaemonSet with the same
// labels, which is not its history.
func daemonSetHistory(t *testing.T, c *client.Client, ns string) *appsv1.DaemonSet {
	t.Helper()
	ctlNamespace(t, c, ns)
	ds := testDaemonSet(t, c, ns, "agent:3")
	testRevision(t, c, ds, 1, "agent:1", "")
	testRevision(t, c, ds, 2, "agent:2", "skiffctl set image ds/agent agent=agent:2")
	testRevision(t, c, ds, 3, "agent:3", "")
	other := ds.DeepCopy()
	other.Name, other.UID = "other", "another-uid"
	testRevision(t, c, other, 7, "agent:7", "")
	return ds
}

func TestDaemonSetGetAndDescribe(t *testing.T) {
	srv := testenv.StartServer(t)
	kubeconfig := ctlKubeconfig(t, srv)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	getFixClock(t)
	ds := daemonSetHistory(t, c, "ds-get")
	setDaemonSetStatus(t, c, "ds-get", 3, 2, 2)
	// Its pods: two running, one pending; a pod with its labels that
	// it does not control is not counted.
	pod := func(name string, phase corev1.PodPhase, owned bool) {
		t.Helper()
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "agent"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: "agent:3"}}},
		}
		if owned {
			p.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(ds, appsv1.SchemeGroupVersion.WithKind("DaemonSet"))}
		}
		p, err := c.Pods("ds-get").Create(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		p.Status.Phase = phase
		if _, err := c.Pods("ds-get").UpdateStatus(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	pod("agent-a", corev1.PodRunning, true)
	pod("agent-b", corev1.PodRunning, true)
	pod("agent-c", corev1.PodPending, true)
	pod("stray", corev1.PodRunning, false)
	// A service and a deployment, for the order of get all.
	rolloutDeployment(t, c, "ds-get", "web", "nginx:1", 1)
	if _, err := c.Services("ds-get").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{ClusterIP: "10.96.0.20", Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}},
	}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Events("ds-get").Create(ctx, &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "agent.1"},
		InvolvedObject: corev1.ObjectReference{Kind: "DaemonSet", APIVersion: "apps/v1", Namespace: "ds-get", Name: "agent", UID: ds.UID},
		Type:           corev1.EventTypeNormal, Reason: "SuccessfulCreate", Message: "Created pod: agent-a",
		Source:         corev1.EventSource{Component: "daemonset-controller"},
		FirstTimestamp: metav1.Now(), LastTimestamp: metav1.Now(), Count: 1,
	})
	if err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name string
		args []string
	}{
		{"daemonsets", []string{"get", "ds", "-n", "ds-get"}},
		{"daemonsets-wide", []string{"get", "daemonsets.apps", "-o", "wide", "-n", "ds-get"}},
		{"controllerrevisions", []string{"get", "controllerrevisions", "-n", "ds-get"}},
		// get all has the daemon sets, between services and deployments.
		{"all-daemonsets", []string{"get", "all", "-n", "ds-get"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, err := getRun(ctx, kubeconfig, tt.args...)
			if err != nil || errOut != "" {
				t.Fatalf("%v: %v (stderr %q)", tt.args, err, errOut)
			}
			getGolden(t, tt.name, out)
		})
	}

	t.Run("describe", func(t *testing.T) {
		out, errOut, err := getRun(ctx, kubeconfig, "describe", "ds", "agent", "-n", "ds-get")
		if err != nil {
			t.Fatalf("describe: %v (stderr %q)", err, errOut)
		}
		describeLines(t, out,
			`Name:\s+agent`,
			`Selector:\s+app=agent`,
			`Node-Selector:\s+kubernetes.io/os=linux`,
			`Labels:\s+app=agent`,
			`Annotations:\s+<none>`,
			`Desired Number of Nodes Scheduled: 3`,
			`Current Number of Nodes Scheduled: 3`,
			`Number of Nodes Scheduled with Up-to-date Pods: 2`,
			`Number of Nodes Scheduled with Available Pods: 2`,
			`Number of Nodes Misscheduled: 1`,
			`Pods Status:\s+2 Running / 1 Waiting / 0 Succeeded / 0 Failed`,
			`Pod Template:`,
			`  Labels:\s+app=agent`,
			`  Containers:`,
			`   agent:`,
			`    Image:\s+agent:3`,
			`  Node-Selectors:\s+kubernetes.io/os=linux`,
			`Events:`,
			`  Normal\s+SuccessfulCreate\s+30d\s+daemonset-controller\s+Created pod: agent-a`,
		)
	})
}

func TestRolloutStatusDaemonSet(t *testing.T) {
	srv := testenv.StartServer(t)
	kubeconfig := ctlKubeconfig(t, srv)
	c := testenv.NewClient(t, srv)

	t.Run("progresses and finishes", func(t *testing.T) {
		ctlNamespace(t, c, "ds-status")
		testDaemonSet(t, c, "ds-status", "agent:1")
		out, errOut, wait := startCtl(testenv.Context(t), kubeconfig, "rollout", "status", "daemonset/agent", "-n", "ds-status")
		waitOutput(t, out, "Waiting for daemon set spec update to be observed...\n")
		steps := []struct {
			desired, updated, available int32
			line                        string
		}{
			{3, 1, 0, `Waiting for daemon set "agent" rollout to finish: 1 out of 3 new pods have been updated...`},
			{3, 3, 2, `Waiting for daemon set "agent" rollout to finish: 2 of 3 updated pods are available...`},
			{3, 3, 3, `daemon set "agent" successfully rolled out`},
		}
		want := "Waiting for daemon set spec update to be observed...\n"
		for _, s := range steps {
			setDaemonSetStatus(t, c, "ds-status", s.desired, s.updated, s.available)
			waitOutput(t, out, s.line+"\n")
			want += s.line + "\n"
		}
		if err := wait(); err != nil {
			t.Fatalf("rollout status: %v (stderr %q)", err, errOut)
		}
		if got := out.String(); got != want {
			t.Errorf("output:\n%s\nwant:\n%s", got, want)
		}
	})

	t.Run("watch=false prints once", func(t *testing.T) {
		ctlNamespace(t, c, "ds-once")
		testDaemonSet(t, c, "ds-once", "agent:1")
		setDaemonSetStatus(t, c, "ds-once", 3, 3, 1)
		out, _, err := ctlRun(t, kubeconfig, "", "rollout", "status", "ds", "agent", "-n", "ds-once", "--watch=false")
		if want := "Waiting for daemon set \"agent\" rollout to finish: 1 of 3 updated pods are available...\n"; err != nil || out != want {
			t.Errorf("got %q, %v; want %q", out, err, want)
		}
	})

	t.Run("OnDelete has no rollout status", func(t *testing.T) {
		ctlNamespace(t, c, "ds-ondelete")
		ds := testDaemonSet(t, c, "ds-ondelete", "agent:1")
		ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
		if _, err := c.DaemonSets("ds-ondelete").Update(testenv.Context(t), ds); err != nil {
			t.Fatal(err)
		}
		_, _, err := ctlRun(t, kubeconfig, "", "rollout", "status", "ds/agent", "-n", "ds-ondelete")
		if got, want := FormatError(err), "error: rollout status is only available for RollingUpdate strategy type"; got != want {
			t.Errorf("error %q, want %q", got, want)
		}
	})

	t.Run("not found", func(t *testing.T) {
		_, _, err := ctlRun(t, kubeconfig, "", "rollout", "status", "daemonset/nope")
		if got, want := FormatError(err), `Error from server (NotFound): daemonsets.apps "nope" not found`; got != want {
			t.Errorf("error %q, want %q", got, want)
		}
	})
}

func TestRolloutHistoryDaemonSet(t *testing.T) {
	srv := testenv.StartServer(t)
	kubeconfig := ctlKubeconfig(t, srv)
	c := testenv.NewClient(t, srv)
	daemonSetHistory(t, c, "ds-hist")

	t.Run("table", func(t *testing.T) {
		out, _, err := ctlRun(t, kubeconfig, "", "rollout", "history", "daemonset/agent", "-n", "ds-hist")
		want := "daemonset.apps/agent \n" +
			"REVISION  CHANGE-CAUSE\n" +
			"1         <none>\n" +
			"2         skiffctl set image ds/agent agent=agent:2\n" +
			"3         <none>\n\n"
		if err != nil || out != want {
			t.Errorf("got %q, %v; want %q", out, err, want)
		}
	})

	t.Run("one revision", func(t *testing.T) {
		out, _, err := ctlRun(t, kubeconfig, "", "rollout", "history", "ds", "agent", "-n", "ds-hist", "--revision=2")
		if err != nil {
			t.Fatal(err)
		}
		describeLines(t, out,
			`daemonset.apps/agent with revision #2`,
			`Pod Template:`,
			`  Labels:\s+app=agent`,
			`    Image:\s+agent:2`,
			`  Node-Selectors:\s+kubernetes.io/os=linux`,
		)
	})

	t.Run("no history", func(t *testing.T) {
		ctlNamespace(t, c, "ds-hist-none")
		testDaemonSet(t, c, "ds-hist-none", "agent:1")
		out, _, err := ctlRun(t, kubeconfig, "", "rollout", "history", "ds/agent", "-n", "ds-hist-none")
		if want := "daemonset.apps/agent \nNo rollout history found.\n"; err != nil || out != want {
			t.Errorf("got %q, %v; want %q", out, err, want)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"ds/agent", "--revision=9"}, "error: unable to find the specified revision"},
			{[]string{"ds/nope"}, `Error from server (NotFound): daemonsets.apps "nope" not found`},
		} {
			_, _, err := ctlRun(t, kubeconfig, "", append([]string{"rollout", "history", "-n", "ds-hist"}, tc.args...)...)
			if got := FormatError(err); got != tc.want {
				t.Errorf("%v: error %q, want %q", tc.args, got, tc.want)
			}
		}
	})
}

func TestRolloutUndoDaemonSet(t *testing.T) {
	srv := testenv.StartServer(t)
	kubeconfig := ctlKubeconfig(t, srv)
	c := testenv.NewClient(t, srv)
	get := func(t *testing.T, ns string) *appsv1.DaemonSet {
		t.Helper()
		ds, err := c.DaemonSets(ns).Get(testenv.Context(t), "agent")
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}

	t.Run("to the previous revision", func(t *testing.T) {
		daemonSetHistory(t, c, "ds-undo-prev")
		out, _, err := ctlRun(t, kubeconfig, "", "rollout", "undo", "daemonset/agent", "-n", "ds-undo-prev")
		if err != nil || out != "daemonset.apps/agent rolled back\n" {
			t.Fatalf("got %q, %v", out, err)
		}
		ds := get(t, "ds-undo-prev")
		if got := ds.Spec.Template.Spec.Containers[0].Image; got != "agent:2" {
			t.Errorf("image %q, want agent:2", got)
		}
		// The whole template is the revision's, not a merge with the
		// one before.
		if got := ds.Spec.Template.Spec.NodeSelector; len(got) != 1 || got["kubernetes.io/os"] != "linux" {
			t.Errorf("node selector %v, want revision 2's", got)
		}
		if ds.Generation != 2 {
			t.Errorf("generation %d, want 2", ds.Generation)
		}
	})

	t.Run("to a given revision, then skipped", func(t *testing.T) {
		daemonSetHistory(t, c, "ds-undo-rev")
		out, _, err := ctlRun(t, kubeconfig, "", "rollout", "undo", "ds", "agent", "-n", "ds-undo-rev", "--to-revision=1")
		if err != nil || out != "daemonset.apps/agent rolled back\n" {
			t.Fatalf("got %q, %v", out, err)
		}
		if got := get(t, "ds-undo-rev").Spec.Template.Spec.Containers[0].Image; got != "agent:1" {
			t.Errorf("image %q, want agent:1", got)
		}
		out, _, err = ctlRun(t, kubeconfig, "", "rollout", "undo", "ds", "agent", "-n", "ds-undo-rev", "--to-revision=1")
		if want := "daemonset.apps/agent skipped rollback (current template already matches revision 1)\n"; err != nil || out != want {
			t.Errorf("got %q, %v; want %q", out, err, want)
		}
		if g := get(t, "ds-undo-rev").Generation; g != 2 {
			t.Errorf("generation %d after a skipped rollback, want 2", g)
		}
	})

	t.Run("errors", func(t *testing.T) {
		daemonSetHistory(t, c, "ds-undo-err")
		ctlNamespace(t, c, "ds-undo-one")
		ds := testDaemonSet(t, c, "ds-undo-one", "agent:1")
		testRevision(t, c, ds, 1, "agent:1", "")
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"-n", "ds-undo-err", "ds/agent", "--to-revision=9"}, "error: unable to find specified revision 9 in history"},
			{[]string{"-n", "ds-undo-err", "ds/nope"}, `Error from server (NotFound): daemonsets.apps "nope" not found`},
			{[]string{"-n", "ds-undo-one", "ds/agent"}, "error: no last revision to roll back to"},
		} {
			_, _, err := ctlRun(t, kubeconfig, "", append([]string{"rollout", "undo"}, tc.args...)...)
			if got := FormatError(err); got != tc.want {
				t.Errorf("%v: error %q, want %q", tc.args, got, tc.want)
			}
		}
		if got := get(t, "ds-undo-err").Spec.Template.Spec.Containers[0].Image; got != "agent:3" {
			t.Errorf("a failed undo changed the image to %q", got)
		}
	})

	t.Run("a deployment and a daemon set at once", func(t *testing.T) {
		historyFixture(t, c, "ds-undo-both")
		ds := testDaemonSet(t, c, "ds-undo-both", "agent:2")
		testRevision(t, c, ds, 1, "agent:1", "")
		testRevision(t, c, ds, 2, "agent:2", "")
		out, _, err := ctlRun(t, kubeconfig, "", "rollout", "undo", "deploy/web", "ds/agent", "-n", "ds-undo-both")
		if want := "deployment.apps/web rolled back\ndaemonset.apps/agent rolled back\n"; err != nil || out != want {
			t.Errorf("got %q, %v; want %q", out, err, want)
		}
		if got := get(t, "ds-undo-both").Spec.Template.Spec.Containers[0].Image; !strings.HasSuffix(got, ":1") {
			t.Errorf("image %q, want agent:1", got)
		}
	})
}

func TestRolloutRestartDaemonSet(t *testing.T) {
	srv := testenv.StartServer(t)
	kubeconfig := ctlKubeconfig(t, srv)
	c := testenv.NewClient(t, srv)
	ctlNamespace(t, c, "ds-restart")
	testDaemonSet(t, c, "ds-restart", "agent:1")

	start := time.Now().Add(-time.Second)
	out, _, err := ctlRun(t, kubeconfig, "", "rollout", "restart", "daemonset/agent", "-n", "ds-restart")
	if err != nil || out != "daemonset.apps/agent restarted\n" {
		t.Fatalf("got %q, %v", out, err)
	}
	ds, err := c.DaemonSets("ds-restart").Get(testenv.Context(t), "agent")
	if err != nil {
		t.Fatal(err)
	}
	at, err := time.Parse(time.RFC3339, ds.Spec.Template.Annotations[restartedAtAnnotation])
	if err != nil || at.Before(start.Truncate(time.Second)) || at.After(time.Now()) {
		t.Errorf("restartedAt %v, %v: want the time of the restart", at, err)
	}
	if ds.Generation != 2 {
		t.Errorf("generation %d after restart, want 2", ds.Generation)
	}
	_, _, err = ctlRun(t, kubeconfig, "", "rollout", "restart", "rs/x", "-n", "ds-restart")
	if got, want := FormatError(err), `error: replicasets.apps "x" restarting is not supported`; got != want {
		t.Errorf("restart of a replica set: %q, want %q", got, want)
	}
}
