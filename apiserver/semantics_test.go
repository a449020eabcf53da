package apiserver_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/skiffdev/skiff/apiserver"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
)

// TestManifestErrors sends manifests as a user writes them (YAML) and
// checks that what is wrong is named with its field path, in Kubernetes'
// words.
func TestManifestErrors(t *testing.T) {
	srv := testenv.StartServer(t)
	var warnings []string
	conn := testenv.AdminConfig(t, srv)
	conn.WarningHandler = func(w string) { warnings = append(warnings, w) }
	c, err := client.New(conn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := testenv.Context(t)
	deployments, err := c.Untyped(schema.GroupResource{Group: "apps", Resource: "deployments"}, "default")
	if err != nil {
		t.Fatal(err)
	}
	const good = `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
`
	cases := []struct {
		name     string
		manifest string
		isErr    func(error) bool
		contains []string
	}{
		{
			name:     "unknown field",
			manifest: strings.Replace(good, "  replicas: 2", "  replicas: 2\n  replica: 3", 1),
			isErr:    apierrors.IsBadRequest,
			contains: []string{`unknown field "spec.replica"`},
		},
		{
			name:     "unknown field deep in the template",
			manifest: strings.Replace(good, "        image: nginx:1.27", "        image: nginx:1.27\n        imagePullPolicey: Always", 1),
			isErr:    apierrors.IsBadRequest,
			contains: []string{`unknown field "spec.template.spec.containers[0].imagePullPolicey"`},
		},
		{
			name:     "negative replicas",
			manifest: strings.Replace(good, "replicas: 2", "replicas: -1", 1),
			isErr:    apierrors.IsInvalid,
			contains: []string{`Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0`},
		},
		{
			name:     "selector does not match template",
			manifest: strings.Replace(good, "matchLabels: {app: web}", "matchLabels: {app: api}", 1),
			isErr:    apierrors.IsInvalid,
			contains: []string{"spec.template.metadata.labels", "`selector` does not match template `labels`"},
		},
		{
			name:     "missing image",
			manifest: strings.Replace(good, "        image: nginx:1.27\n", "", 1),
			isErr:    apierrors.IsInvalid,
			contains: []string{"spec.template.spec.containers[0].image: Required value"},
		},
		{
			name:     "wrong kind for the resource",
			manifest: strings.Replace(good, "kind: Deployment", "kind: ReplicaSet", 1),
			isErr:    apierrors.IsBadRequest,
			contains: []string{"ReplicaSet"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := deployments.Create(ctx, []byte(tc.manifest), client.YAML, metav1.CreateOptions{})
			if err == nil || !tc.isErr(err) {
				t.Fatalf("got %v, want a %s error", err, tc.name)
			}
			for _, s := range tc.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err.Error(), s)
				}
			}
		})
	}
	// Nothing of the failed attempts was stored.
	if _, err := c.Deployments("default").Get(ctx, "web"); !apierrors.IsNotFound(err) {
		t.Fatalf("get after failed creates: got %v, want NotFound", err)
	}

	t.Run("unimplemented field is a warning", func(t *testing.T) {
		warnings = nil
		m := strings.Replace(good, "      containers:", "      affinity:\n        podAntiAffinity:\n          preferredDuringSchedulingIgnoredDuringExecution:\n          - weight: 1\n            podAffinityTerm:\n              topologyKey: kubernetes.io/hostname\n              labelSelector: {matchLabels: {app: web}}\n      containers:", 1)
		_, ws, err := deployments.Create(ctx, []byte(m), client.YAML, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(ws) == 0 || !strings.Contains(strings.Join(ws, "\n"), "podAntiAffinity") {
			t.Fatalf("warnings %q, want one naming podAntiAffinity", ws)
		}
	})
}

func TestDefaults(t *testing.T) {
	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	d, err := c.Deployments("default").Create(ctx, newDeployment("web", 1))
	if err != nil {
		t.Fatal(err)
	}
	spec := d.Spec.Template.Spec
	switch {
	case d.Spec.Strategy.Type != "RollingUpdate" || d.Spec.Strategy.RollingUpdate == nil || d.Spec.Strategy.RollingUpdate.MaxSurge.String() != "25%":
		t.Errorf("strategy %+v, want RollingUpdate 25%%/25%%", d.Spec.Strategy)
	case d.Spec.RevisionHistoryLimit == nil || *d.Spec.RevisionHistoryLimit != 10:
		t.Errorf("revisionHistoryLimit %v, want 10", d.Spec.RevisionHistoryLimit)
	case d.Spec.ProgressDeadlineSeconds == nil || *d.Spec.ProgressDeadlineSeconds != 600:
		t.Errorf("progressDeadlineSeconds %v, want 600", d.Spec.ProgressDeadlineSeconds)
	case spec.RestartPolicy != corev1.RestartPolicyAlways || spec.DNSPolicy != corev1.DNSClusterFirst || spec.SchedulerName != "default-scheduler":
		t.Errorf("pod spec defaults: restartPolicy %q dnsPolicy %q schedulerName %q", spec.RestartPolicy, spec.DNSPolicy, spec.SchedulerName)
	case spec.TerminationGracePeriodSeconds == nil || *spec.TerminationGracePeriodSeconds != 30:
		t.Errorf("terminationGracePeriodSeconds %v, want 30", spec.TerminationGracePeriodSeconds)
	case spec.Containers[0].ImagePullPolicy != corev1.PullIfNotPresent:
		t.Errorf("imagePullPolicy %q for a tagged image, want IfNotPresent", spec.Containers[0].ImagePullPolicy)
	}
	svc, err := c.Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if p := svc.Spec.Ports[0]; svc.Spec.Type != corev1.ServiceTypeClusterIP || p.Protocol != corev1.ProtocolTCP || p.TargetPort.IntValue() != 80 {
		t.Errorf("service defaults: type %q protocol %q targetPort %v", svc.Spec.Type, p.Protocol, p.TargetPort)
	}
	pod, err := c.Pods("default").Create(ctx, newPod("p", nil))
	if err != nil {
		t.Fatal(err)
	}
	if pod.Status.Phase != corev1.PodPending || pod.Status.QOSClass != corev1.PodQOSBestEffort {
		t.Errorf("new pod status: phase %q qos %q, want Pending BestEffort", pod.Status.Phase, pod.Status.QOSClass)
	}
}

// TestGracefulPodDeletion: an unbound pod goes at once; a bound pod stays,
// marked, until its kubelet confirms with grace period 0.
func TestGracefulPodDeletion(t *testing.T) {
	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	pods := c.Pods("default")

	if _, err := pods.Create(ctx, newPod("unbound", nil)); err != nil {
		t.Fatal(err)
	}
	if err := pods.Delete(ctx, "unbound", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Get(ctx, "unbound"); !apierrors.IsNotFound(err) {
		t.Fatalf("unbound pod after delete: got %v, want NotFound", err)
	}

	p := newPod("bound", nil)
	p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](45)
	if _, err := pods.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := pods.Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "bound"}, Target: corev1.ObjectReference{Name: "node-1"}}); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	if err := pods.Delete(ctx, "bound", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := pods.Get(ctx, "bound")
	if err != nil {
		t.Fatalf("bound pod right after delete: %v (it should wait for its kubelet)", err)
	}
	if got.DeletionTimestamp == nil || got.DeletionGracePeriodSeconds == nil || *got.DeletionGracePeriodSeconds != 45 {
		t.Fatalf("deletionTimestamp %v grace %v, want set and 45", got.DeletionTimestamp, got.DeletionGracePeriodSeconds)
	}
	if d := got.DeletionTimestamp.Sub(before); d < 40*time.Second || d > 50*time.Second {
		t.Fatalf("deletionTimestamp is %v after the delete, want about 45s", d)
	}
	// A second delete may shorten the grace period but never lengthen it.
	if err := pods.Delete(ctx, "bound", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](100)}); err != nil {
		t.Fatal(err)
	}
	if got, _ := pods.Get(ctx, "bound"); *got.DeletionGracePeriodSeconds != 45 {
		t.Fatalf("grace period lengthened to %d", *got.DeletionGracePeriodSeconds)
	}
	// The kubelet confirms: grace period 0 removes it.
	if err := pods.Delete(ctx, "bound", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Get(ctx, "bound"); !apierrors.IsNotFound(err) {
		t.Fatalf("after delete with grace 0: got %v, want NotFound", err)
	}

	// A finalizer (here the one a foreground delete adds) does not take
	// away the grace period of a bound pod.
	if _, err := pods.Create(ctx, newPod("held", nil)); err != nil {
		t.Fatal(err)
	}
	if err := pods.Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "held"}, Target: corev1.ObjectReference{Name: "node-1"}}); err != nil {
		t.Fatal(err)
	}
	if err := pods.Delete(ctx, "held", metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationForeground)}); err != nil {
		t.Fatal(err)
	}
	held, err := pods.Get(ctx, "held")
	if err != nil || *held.DeletionGracePeriodSeconds != 30 {
		t.Fatalf("bound pod with a finalizer: %v, grace %v; want it kept with 30s", err, held.DeletionGracePeriodSeconds)
	}
	held.Finalizers = nil
	if _, err := pods.Update(ctx, held); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Get(ctx, "held"); err != nil {
		t.Fatalf("bound pod whose finalizer went, before its kubelet confirmed: %v; want it kept", err)
	}
}

func TestFinalizersAndPropagation(t *testing.T) {
	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	deps := c.Deployments("default")

	d := newDeployment("held", 1)
	d.Finalizers = []string{"example.com/hold"}
	if _, err := deps.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := deps.Delete(ctx, "held", metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationForeground)}); err != nil {
		t.Fatal(err)
	}
	got, err := deps.Get(ctx, "held")
	if err != nil {
		t.Fatalf("object with a finalizer after delete: %v", err)
	}
	if got.DeletionTimestamp == nil {
		t.Fatal("no deletionTimestamp")
	}
	if want := []string{"example.com/hold", metav1.FinalizerDeleteDependents}; strings.Join(got.Finalizers, ",") != strings.Join(want, ",") {
		t.Fatalf("finalizers %v, want %v (the propagation policy is recorded)", got.Finalizers, want)
	}
	// Removing the last finalizer removes the object.
	got.Finalizers = nil
	if _, err := deps.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	if _, err := deps.Get(ctx, "held"); !apierrors.IsNotFound(err) {
		t.Fatalf("after the last finalizer went: got %v, want NotFound", err)
	}

	if _, err := deps.Create(ctx, newDeployment("orphaner", 1)); err != nil {
		t.Fatal(err)
	}
	if err := deps.Delete(ctx, "orphaner", metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationOrphan)}); err != nil {
		t.Fatal(err)
	}
	if got, err := deps.Get(ctx, "orphaner"); err != nil || len(got.Finalizers) != 1 || got.Finalizers[0] != metav1.FinalizerOrphanDependents {
		t.Fatalf("orphan delete: %v, finalizers %v; want the object kept with the orphan finalizer", err, got.Finalizers)
	}
	// Preconditions are honoured.
	if _, err := deps.Create(ctx, newDeployment("pre", 1)); err != nil {
		t.Fatal(err)
	}
	err = deps.Delete(ctx, "pre", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: ptr.To("1")}})
	if !apierrors.IsConflict(err) {
		t.Fatalf("delete with a stale resourceVersion precondition: got %v, want Conflict", err)
	}
}

func TestNamespaceRules(t *testing.T) {
	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	for _, ns := range []string{"default", "kube-system", "kube-node-lease"} {
		if _, err := c.Namespaces().Get(ctx, ns); err != nil {
			t.Errorf("namespace %s: %v", ns, err)
		}
	}
	p := newPod("p", nil)
	p.Namespace = "nowhere"
	if _, err := c.Pods("nowhere").Create(ctx, p); !apierrors.IsNotFound(err) || !strings.Contains(err.Error(), `namespaces "nowhere" not found`) {
		t.Fatalf("create in a missing namespace: got %v, want NotFound naming it", err)
	}
	// A namespace created a moment ago is usable at once.
	if _, err := c.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}); err != nil {
		t.Fatal(err)
	}
	p.Namespace = "team"
	if _, err := c.Pods("team").Create(ctx, p); err != nil {
		t.Fatalf("create in a new namespace: %v", err)
	}
	if err := c.Namespaces().Delete(ctx, "team", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ns, err := c.Namespaces().Get(ctx, "team")
	if err != nil || ns.Status.Phase != corev1.NamespaceTerminating {
		t.Fatalf("deleted namespace: %v phase %q, want it kept as Terminating until its contents are gone", err, ns.Status.Phase)
	}
	p.Name = "late"
	if _, err := c.Pods("team").Create(ctx, p); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "because it is being terminated") {
		t.Fatalf("create in a terminating namespace: got %v, want Forbidden", err)
	}
	// A namespace whose finalizers are cleared goes.
	ns.Spec.Finalizers = nil
	if _, err := c.Namespaces().Update(ctx, ns); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Namespaces().Get(ctx, "team"); !apierrors.IsNotFound(err) {
		t.Fatalf("namespace after its finalizers were cleared: got %v, want NotFound", err)
	}
}

// TestHostileRequests: requests that try to confuse or exhaust the server
// get a clear client error, and the server keeps serving.
func TestHostileRequests(t *testing.T) {
	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	if _, err := c.Pods("default").Create(ctx, newPod("p", nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Deployments("default").Create(ctx, newDeployment("web", 1)); err != nil {
		t.Fatal(err)
	}
	bomb := `[{"op":"add","path":"/metadata/annotations","value":{"a":"0123456789012345678901234567890123456789"}}`
	for range 30 {
		bomb += `,{"op":"copy","from":"/metadata/annotations","path":"/metadata/annotations/a"}`
	}
	bomb += `]`
	cases := []struct {
		name  string
		do    func() error
		isErr func(error) bool
	}{
		{"a patch that changes the kind", func() error {
			_, err := c.Pods("default").Patch(ctx, "p", types.MergePatchType, []byte(`{"kind":"Service","apiVersion":"v1","spec":null,"status":null}`))
			return err
		}, apierrors.IsBadRequest},
		{"a scale patch that changes the kind", func() error {
			_, err := c.Deployments("default").Patch(ctx, "web", types.MergePatchType, []byte(`{"kind":"Pod","apiVersion":"v1","spec":null,"status":null}`), "scale")
			return err
		}, apierrors.IsBadRequest},
		{"a JSON patch that copies itself into a huge document", func() error {
			_, err := c.Pods("default").Patch(ctx, "p", types.JSONPatchType, []byte(bomb))
			return err
		}, apierrors.IsBadRequest},
		{"a name that reaches into another namespace", func() error {
			_, err := c.Pods("kube-system").Get(ctx, "../default/p")
			return err
		}, apierrors.IsBadRequest},
		{"a namespaced get without a namespace", func() error {
			_, err := c.Pods("").Get(ctx, "p")
			return err
		}, apierrors.IsBadRequest},
		{"deleting a system namespace", func() error {
			return c.Namespaces().Delete(ctx, "kube-system", metav1.DeleteOptions{})
		}, apierrors.IsForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.do(); err == nil || !tc.isErr(err) {
				t.Fatalf("got %v, want a client error", err)
			}
			if _, err := c.Pods("default").Get(ctx, "p"); err != nil {
				t.Fatalf("server after the request: %v", err)
			}
		})
	}
}

// TestConcurrentUnconditionalUpdates: updates without a resourceVersion
// never fail with Conflict, however much they race.
func TestConcurrentUnconditionalUpdates(t *testing.T) {
	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	base, err := c.Deployments("default").Create(ctx, newDeployment("web", 1))
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8*20)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				d := base.DeepCopy()
				d.ResourceVersion = ""
				d.Labels = map[string]string{"writer": fmt.Sprint(g), "n": fmt.Sprint(i)}
				_, err := c.Deployments("default").Update(ctx, d)
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("unconditional update: %v", err)
		}
	}
}

// TestStatusIsNotWrittenThroughTheMainResource covers a resource without
// a separate status writer in this cluster yet: namespaces.
func TestStatusIsNotWrittenThroughTheMainResource(t *testing.T) {
	srv := testenv.StartServer(t)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	ns, err := c.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}})
	if err != nil {
		t.Fatal(err)
	}
	ns.Status.Phase = corev1.NamespaceTerminating
	ns, err = c.Namespaces().Update(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	if ns.Status.Phase != corev1.NamespaceActive {
		t.Fatalf("phase %q after a main-resource update, want Active kept", ns.Status.Phase)
	}
}

// TestEventsExpire: events leave by themselves after --event-ttl, also
// when they were updated in between, and watchers see them go.
func TestEventsExpire(t *testing.T) {
	srv := testenv.StartServer(t, func(cfg *apiserver.Config) { cfg.EventTTL = 2 * time.Second })
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	events := c.Events("default")
	ev, err := events.Create(ctx, &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "web-1.1"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-1"},
		Reason:         "Pulled", Message: "pulled the image", Type: corev1.EventTypeNormal, Count: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	w, err := events.Watch(ctx, metav1.ListOptions{ResourceVersion: ev.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ev.Count = 2
	if _, err := events.Update(ctx, ev); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 20*time.Second, "the event to expire", func() (bool, error) {
		_, err := events.Get(ctx, "web-1.1")
		return apierrors.IsNotFound(err), err
	})
	if e := next(t, w); e.Type != watch.Modified {
		t.Fatalf("first watch event %s, want MODIFIED", e.Type)
	}
	if e := next(t, w); e.Type != watch.Deleted {
		t.Fatalf("second watch event %s, want DELETED", e.Type)
	}
	// Other objects do not expire.
	if _, err := c.Namespaces().Get(ctx, "default"); err != nil {
		t.Fatal(err)
	}
}
