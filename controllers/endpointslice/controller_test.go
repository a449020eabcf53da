package endpointslice

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffdev/skiff/apiserver/auth"
	"github.com/skiffdev/skiff/controllers/controller"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/informers"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
)

const (
	ns          = "default"
	waitTimeout = 30 * time.Second
)

// quietLogger logs warnings and errors only.
var quietLogger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

// env is an API server, two clients, and (once started) the controller.
type env struct {
	t   testing.TB
	ctx context.Context
	// c is the test's, as the administrator; cc the controller's, as the
	// controller manager, so that what the controller may do is tested
	// too.
	c, cc  *client.Client
	ctrl   *Controller
	events *recorder
}

func newEnv(t testing.TB) *env {
	t.Helper()
	srv := testenv.StartServer(t)
	return &env{t: t, ctx: testenv.Context(t), c: testenv.NewClient(t, srv),
		cc: testenv.NewClientAs(t, srv, auth.ControllersUser), events: &recorder{}}
}

// start runs the controller with its own informers until the test ends.
func (e *env) start() *env {
	e.t.Helper()
	f := informers.NewFactory(e.cc, time.Minute)
	ctrl, err := New(controller.Deps{Client: e.cc, Informers: f, Recorder: e.events}, DefaultConfig())
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(logging.Into(context.Background(), quietLogger))
	f.Start(ctx)
	done := make(chan struct{})
	e.t.Cleanup(func() { cancel(); <-done; f.Wait() })
	go func() { defer close(done); ctrl.Run(ctx) }()
	if !f.WaitForCacheSync(ctx) {
		e.t.Fatal("caches did not sync")
	}
	e.ctrl = ctrl
	return e
}

// recorder keeps the events the controller records.
type recorder struct {
	// mu guards events.
	mu     sync.Mutex
	events []string
}

func (r *recorder) Eventf(obj runtime.Object, eventType, reason, messageFmt string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, eventType+" "+reason+" "+fmt.Sprintf(messageFmt, args...))
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func (e *env) createService(svc *corev1.Service) *corev1.Service {
	e.t.Helper()
	if svc.Namespace == "" {
		svc.Namespace = ns
	}
	got, err := e.c.Services(svc.Namespace).Create(e.ctx, svc)
	if err != nil {
		e.t.Fatalf("creating service %q: %v", svc.Name, err)
	}
	return got
}

func service(name string, selector map[string]string, ports ...corev1.ServicePort) *corev1.Service {
	if len(ports) == 0 {
		ports = []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}
	}
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.ServiceSpec{Selector: selector, Ports: ports},
	}
}

// podSpec describes a test pod.
type podSpec struct {
	name   string
	labels map[string]string
	node   string
	ip     string // "" leaves the pod without an address
	ready  bool
	ports  []corev1.ContainerPort
}

// createPod creates a pod and sets its status as a kubelet would: phase
// Running, its IP, and its Ready condition.
func (e *env) createPod(p podSpec) *corev1.Pod {
	e.t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: ns, Labels: p.labels},
		Spec: corev1.PodSpec{
			NodeName:   p.node,
			Containers: []corev1.Container{{Name: "c", Image: "nginx", Ports: p.ports}},
		},
	}
	created, err := e.c.Pods(ns).Create(e.ctx, pod)
	if err != nil {
		e.t.Fatalf("creating pod %q: %v", p.name, err)
	}
	if p.ip == "" && !p.ready {
		return created
	}
	return e.setStatus(p.name, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodRunning
		if p.ip != "" {
			s.PodIP, s.PodIPs = p.ip, []corev1.PodIP{{IP: p.ip}}
		}
		setReady(s, p.ready)
	})
}

func setReady(s *corev1.PodStatus, ready bool) {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	for i := range s.Conditions {
		if s.Conditions[i].Type == corev1.PodReady {
			s.Conditions[i].Status = status
			return
		}
	}
	s.Conditions = append(s.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: status})
}

// setStatus changes a pod's status, retrying on conflicts.
func (e *env) setStatus(name string, change func(*corev1.PodStatus)) *corev1.Pod {
	e.t.Helper()
	for {
		pod, err := e.c.Pods(ns).Get(e.ctx, name)
		if err != nil {
			e.t.Fatalf("pod %q: %v", name, err)
		}
		change(&pod.Status)
		got, err := e.c.Pods(ns).UpdateStatus(e.ctx, pod)
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			e.t.Fatalf("pod %q: updating status: %v", name, err)
		}
		return got
	}
}

func (e *env) deletePod(name string, grace *int64) {
	e.t.Helper()
	if err := e.c.Pods(ns).Delete(e.ctx, name, metav1.DeleteOptions{GracePeriodSeconds: grace}); err != nil && !apierrors.IsNotFound(err) {
		e.t.Fatalf("deleting pod %q: %v", name, err)
	}
}

// slices lists the slices labelled for the Service, sorted by name.
func (e *env) slices(svc string) ([]discoveryv1.EndpointSlice, error) {
	list, err := e.c.EndpointSlices(ns).List(e.ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
	if err != nil {
		return nil, err
	}
	items := list.Items
	slices.SortFunc(items, func(a, b discoveryv1.EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
	return items, nil
}

// await waits until the Service's slices satisfy cond, and returns them.
func (e *env) await(svc, what string, cond func([]discoveryv1.EndpointSlice) error) []discoveryv1.EndpointSlice {
	e.t.Helper()
	var got []discoveryv1.EndpointSlice
	wait.For(e.t, waitTimeout, what, func() (bool, error) {
		s, err := e.slices(svc)
		if err != nil {
			return false, err
		}
		if err := cond(s); err != nil {
			return false, fmt.Errorf("%w; slices: %s", err, describe(s))
		}
		got = s
		return true, nil
	})
	return got
}

// endpointsOf maps pod name to endpoint over all slices, failing on a
// pod listed twice.
func endpointsOf(s []discoveryv1.EndpointSlice) (map[string]discoveryv1.Endpoint, error) {
	out := map[string]discoveryv1.Endpoint{}
	for _, sl := range s {
		for _, ep := range sl.Endpoints {
			name := podName(&ep)
			if _, dup := out[name]; dup {
				return nil, fmt.Errorf("pod %q listed twice", name)
			}
			out[name] = ep
		}
	}
	return out, nil
}

// conds renders an endpoint's conditions as "ready,serving,terminating"
// with each flag 1 or 0.
func conds(ep discoveryv1.Endpoint) string {
	b := func(p *bool) string {
		if p != nil && *p {
			return "1"
		}
		return "0"
	}
	return b(ep.Conditions.Ready) + b(ep.Conditions.Serving) + b(ep.Conditions.Terminating)
}

// wantEndpoints checks the pods listed (and nothing else) with their
// conditions.
func wantEndpoints(want map[string]string) func([]discoveryv1.EndpointSlice) error {
	return func(s []discoveryv1.EndpointSlice) error {
		eps, err := endpointsOf(s)
		if err != nil {
			return err
		}
		got := map[string]string{}
		for name, ep := range eps {
			got[name] = conds(ep)
		}
		if !maps.Equal(got, want) {
			return fmt.Errorf("got endpoints %v, want %v", got, want)
		}
		return nil
	}
}

func describe(s []discoveryv1.EndpointSlice) string {
	var b strings.Builder
	for _, sl := range s {
		fmt.Fprintf(&b, "[%s ports=%s:", sl.Name, portsKey(sl.Ports))
		for _, ep := range sl.Endpoints {
			fmt.Fprintf(&b, " %s=%s", podName(&ep), conds(ep))
		}
		b.WriteString("] ")
	}
	return b.String()
}

func TestBasicSlice(t *testing.T) {
	e := newEnv(t).start()
	web := map[string]string{"app": "web"}
	svc := service("web", web)
	svc.Labels = map[string]string{"tier": "front"}
	svc = e.createService(svc)
	e.createPod(podSpec{name: "web-0", labels: web, node: "node-a", ip: "10.244.1.10", ready: true})
	e.createPod(podSpec{name: "web-1", labels: web, node: "node-b", ip: "10.244.2.10"})
	e.createPod(podSpec{name: "web-2", labels: web, node: "node-b"}) // no IP yet
	e.createPod(podSpec{name: "db-0", labels: map[string]string{"app": "db"}, ip: "10.244.2.11", ready: true})

	got := e.await("web", "web-0 ready and web-1 not ready", func(s []discoveryv1.EndpointSlice) error {
		if len(s) != 1 {
			return fmt.Errorf("got %d slices, want 1", len(s))
		}
		return wantEndpoints(map[string]string{"web-0": "110", "web-1": "000"})(s)
	})
	sl := got[0]
	if !strings.HasPrefix(sl.Name, "web-") || sl.GenerateName != "web-" {
		t.Errorf("name %q, generateName %q: want generated from \"web-\"", sl.Name, sl.GenerateName)
	}
	wantLabels := map[string]string{"tier": "front", discoveryv1.LabelServiceName: "web", discoveryv1.LabelManagedBy: ManagedBy}
	if !maps.Equal(sl.Labels, wantLabels) {
		t.Errorf("labels: got %v, want %v", sl.Labels, wantLabels)
	}
	ref := metav1.GetControllerOf(&sl)
	if ref == nil || ref.UID != svc.UID || ref.Kind != "Service" || ref.Name != "web" {
		t.Errorf("controller reference: got %+v, want Service web %s", ref, svc.UID)
	}
	if sl.AddressType != discoveryv1.AddressTypeIPv4 {
		t.Errorf("addressType: got %q, want IPv4", sl.AddressType)
	}
	if k := portsKey(sl.Ports); k != "http/TCP/8080/" {
		t.Errorf("ports: got %s, want http/TCP/8080/", k)
	}
	eps, _ := endpointsOf(got)
	ep := eps["web-0"]
	if !slices.Equal(ep.Addresses, []string{"10.244.1.10"}) {
		t.Errorf("web-0 addresses: got %v, want [10.244.1.10]", ep.Addresses)
	}
	if ep.NodeName == nil || *ep.NodeName != "node-a" {
		t.Errorf("web-0 nodeName: got %v, want node-a", ep.NodeName)
	}
	if r := ep.TargetRef; r == nil || r.Kind != "Pod" || r.Name != "web-0" || r.Namespace != ns || r.UID == "" {
		t.Errorf("web-0 targetRef: got %+v, want Pod default/web-0 with its UID", r)
	}
	if ep.Zone != nil {
		t.Errorf("web-0 zone: got %q, want none", *ep.Zone)
	}

	// The pod without an address gets one.
	e.setStatus("web-2", func(s *corev1.PodStatus) { s.PodIP, s.PodIPs = "10.244.2.12", []corev1.PodIP{{IP: "10.244.2.12"}} })
	e.await("web", "web-2 listed", wantEndpoints(map[string]string{"web-0": "110", "web-1": "000", "web-2": "000"}))

	// A finished pod is not an endpoint.
	e.setStatus("web-1", func(s *corev1.PodStatus) { s.Phase = corev1.PodSucceeded })
	e.await("web", "finished web-1 gone", wantEndpoints(map[string]string{"web-0": "110", "web-2": "000"}))
	if ev := e.events.all(); len(ev) > 0 {
		t.Errorf("events: got %v, want none", ev)
	}
}

func TestReadinessFlip(t *testing.T) {
	e := newEnv(t).start()
	web := map[string]string{"app": "web"}
	e.createService(service("web", web))
	e.createPod(podSpec{name: "web-0", labels: web, ip: "10.244.1.10"})
	e.await("web", "not ready", wantEndpoints(map[string]string{"web-0": "000"}))
	e.setStatus("web-0", func(s *corev1.PodStatus) { setReady(s, true) })
	e.await("web", "ready", wantEndpoints(map[string]string{"web-0": "110"}))
	e.setStatus("web-0", func(s *corev1.PodStatus) { setReady(s, false) })
	e.await("web", "not ready again", wantEndpoints(map[string]string{"web-0": "000"}))
}

func TestPublishNotReadyAddresses(t *testing.T) {
	e := newEnv(t).start()
	web := map[string]string{"app": "web"}
	svc := service("web", web)
	svc.Spec.PublishNotReadyAddresses = true
	e.createService(svc)
	e.createPod(podSpec{name: "web-0", labels: web, ip: "10.244.1.10"})
	e.await("web", "ready though the pod is not", wantEndpoints(map[string]string{"web-0": "100"}))
}

func TestNamedTargetPortPerPod(t *testing.T) {
	e := newEnv(t).start()
	web := map[string]string{"app": "web"}
	e.createService(service("web", web,
		corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("web")},
		corev1.ServicePort{Name: "metrics", Port: 9100, TargetPort: intstr.FromInt32(9100)}))
	e.createPod(podSpec{name: "a", labels: web, ip: "10.244.1.10", ready: true,
		ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 8080}}})
	e.createPod(podSpec{name: "b", labels: web, ip: "10.244.1.11", ready: true,
		ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 9090}}})
	e.createPod(podSpec{name: "c", labels: web, ip: "10.244.1.12", ready: true,
		ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 8080}}})
	// A pod that does not name the port: only the numeric port.
	e.createPod(podSpec{name: "d", labels: web, ip: "10.244.1.13", ready: true})

	e.await("web", "one slice per port set", func(s []discoveryv1.EndpointSlice) error {
		got := map[string][]string{}
		for _, sl := range s {
			var names []string
			for _, ep := range sl.Endpoints {
				names = append(names, podName(&ep))
			}
			slices.Sort(names)
			got[portsKey(sl.Ports)] = names
		}
		want := map[string][]string{
			"http/TCP/8080/,metrics/TCP/9100/": {"a", "c"},
			"http/TCP/9090/,metrics/TCP/9100/": {"b"},
			"metrics/TCP/9100/":                {"d"},
		}
		if len(got) != len(want) || len(s) != len(want) {
			return fmt.Errorf("got %d slices %v, want %v", len(s), got, want)
		}
		for k, v := range want {
			if !slices.Equal(got[k], v) {
				return fmt.Errorf("got %v, want %v", got, want)
			}
		}
		return nil
	})
}

// createPods creates n ready pods named <prefix>-000, -001, ... in
// parallel.
func (e *env) createPods(prefix string, labels map[string]string, from, n int) {
	e.t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := from; i < from+n; i++ {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			e.createPod(podSpec{name: fmt.Sprintf("%s-%03d", prefix, i), labels: labels,
				ip: fmt.Sprintf("10.244.%d.%d", i/200, i%200+1), ready: true})
		})
	}
	wg.Wait()
}

func TestManyPodsScaleDown(t *testing.T) {
	e := newEnv(t)
	web := map[string]string{"app": "web"}
	e.createService(service("web", web))
	// Pods exist before the controller starts, so its first Reconcile
	// sees them all and fills slices in name order.
	e.createPods("web", web, 0, 250)
	e.start()
	before := e.await("web", "250 endpoints in 3 slices", func(s []discoveryv1.EndpointSlice) error {
		var sizes []int
		for _, sl := range s {
			sizes = append(sizes, len(sl.Endpoints))
		}
		slices.Sort(sizes)
		if !slices.Equal(sizes, []int{50, 100, 100}) {
			return fmt.Errorf("got slice sizes %v, want [50 100 100]", sizes)
		}
		_, err := endpointsOf(s)
		return err
	})

	// Scale down to web-000..web-029: those share the first slice; the
	// other two are left empty and deleted.
	var first string
	for _, sl := range before {
		if slices.ContainsFunc(sl.Endpoints, func(ep discoveryv1.Endpoint) bool { return podName(&ep) == "web-000" }) {
			first = sl.Name
		}
	}
	var wg sync.WaitGroup
	for i := 30; i < 250; i++ {
		wg.Go(func() { e.deletePod(fmt.Sprintf("web-%03d", i), nil) })
	}
	wg.Wait()
	e.await("web", "30 endpoints in the first slice", func(s []discoveryv1.EndpointSlice) error {
		if len(s) != 1 || s[0].Name != first || len(s[0].Endpoints) != 30 {
			return fmt.Errorf("got %d slices, want only %s with 30 endpoints", len(s), first)
		}
		return nil
	})

	// No pods at all: one empty placeholder slice.
	for i := range 30 {
		wg.Go(func() { e.deletePod(fmt.Sprintf("web-%03d", i), nil) })
	}
	wg.Wait()
	e.await("web", "a placeholder", func(s []discoveryv1.EndpointSlice) error {
		if len(s) != 1 || len(s[0].Endpoints) != 0 || len(s[0].Ports) != 0 {
			return fmt.Errorf("got %d slices, want one without endpoints and ports", len(s))
		}
		return nil
	})
}

func TestSelectorChange(t *testing.T) {
	e := newEnv(t).start()
	e.createService(service("web", map[string]string{"app": "a"}))
	e.createPod(podSpec{name: "a-0", labels: map[string]string{"app": "a"}, ip: "10.244.1.10", ready: true})
	e.createPod(podSpec{name: "b-0", labels: map[string]string{"app": "b"}, ip: "10.244.1.11", ready: true})
	e.await("web", "pods of app=a", wantEndpoints(map[string]string{"a-0": "110"}))

	svc, err := e.c.Services(ns).Get(e.ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	svc.Spec.Selector = map[string]string{"app": "b"}
	if _, err := e.c.Services(ns).Update(e.ctx, svc); err != nil {
		t.Fatal(err)
	}
	e.await("web", "pods of app=b", wantEndpoints(map[string]string{"b-0": "110"}))

	// A pod relabelled into the selector joins.
	pod, err := e.c.Pods(ns).Get(e.ctx, "a-0")
	if err != nil {
		t.Fatal(err)
	}
	pod.Labels = map[string]string{"app": "b"}
	if _, err := e.c.Pods(ns).Update(e.ctx, pod); err != nil {
		t.Fatal(err)
	}
	e.await("web", "relabelled pod joined", wantEndpoints(map[string]string{"a-0": "110", "b-0": "110"}))

	// Without a selector the controller's slices go.
	svc, err = e.c.Services(ns).Get(e.ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	svc.Spec.Selector = nil
	if _, err := e.c.Services(ns).Update(e.ctx, svc); err != nil {
		t.Fatal(err)
	}
	e.await("web", "no slices", func(s []discoveryv1.EndpointSlice) error {
		if len(s) != 0 {
			return fmt.Errorf("got %d slices, want none", len(s))
		}
		return nil
	})
}

func TestServiceDeletion(t *testing.T) {
	e := newEnv(t).start()
	web := map[string]string{"app": "web"}
	e.createService(service("web", web))
	e.createPods("web", web, 0, 120)
	e.await("web", "two slices", func(s []discoveryv1.EndpointSlice) error {
		if len(s) != 2 {
			return fmt.Errorf("got %d slices, want 2", len(s))
		}
		return nil
	})
	// No garbage collector runs here: the controller deletes them.
	if err := e.c.Services(ns).Delete(e.ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.await("web", "no slices", func(s []discoveryv1.EndpointSlice) error {
		if len(s) != 0 {
			return fmt.Errorf("got %d slices, want none", len(s))
		}
		return nil
	})
}

func TestNoWriteWhenNothingChanges(t *testing.T) {
	e := newEnv(t).start()
	web := map[string]string{"app": "web"}
	e.createService(service("web", web))
	e.createPods("web", web, 0, 150)
	stable := e.await("web", "150 endpoints", func(s []discoveryv1.EndpointSlice) error {
		eps, err := endpointsOf(s)
		if err == nil && len(eps) != 150 {
			err = fmt.Errorf("got %d endpoints, want 150", len(eps))
		}
		return err
	})
	versions := func(s []discoveryv1.EndpointSlice) map[string]string {
		out := map[string]string{}
		for _, sl := range s {
			out[sl.Name] = sl.ResourceVersion
		}
		return out
	}
	want := versions(stable)

	// Things that do not change any endpoint: a Service annotation, a
	// pod status change other than readiness, and Reconciles on demand.
	svc, err := e.c.Services(ns).Get(e.ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	svc.Annotations = map[string]string{"note": "unrelated"}
	if _, err := e.c.Services(ns).Update(e.ctx, svc); err != nil {
		t.Fatal(err)
	}
	e.setStatus("web-007", func(s *corev1.PodStatus) { s.Message = "unrelated" })
	// Wait until the controller's caches show both changes, then
	// reconcile by hand: nothing may be written.
	wait.For(t, waitTimeout, "caches to show the changes", func() (bool, error) {
		s, ok, _ := e.ctrl.services.GetByKey(ns + "/web")
		p, ok2, _ := e.ctrl.pods.GetByKey(ns + "/web-007")
		return ok && ok2 && s.(*corev1.Service).Annotations["note"] != "" && p.(*corev1.Pod).Status.Message != "", nil
	})
	for range 3 {
		if _, err := e.ctrl.Reconcile(e.ctx, ns+"/web"); err != nil {
			t.Fatal(err)
		}
	}
	got, err := e.slices("web")
	if err != nil {
		t.Fatal(err)
	}
	if g := versions(got); !maps.Equal(g, want) {
		t.Errorf("resourceVersions: got %v, want unchanged %v", g, want)
	}
}

func TestTerminatingPod(t *testing.T) {
	e := newEnv(t).start()
	web := map[string]string{"app": "web"}
	e.createService(service("web", web))
	// Bound to a node, a deleted pod waits for its (absent) kubelet
	// during its grace period: it is terminating.
	e.createPod(podSpec{name: "web-0", labels: web, node: "node-a", ip: "10.244.1.10", ready: true})
	e.createPod(podSpec{name: "web-1", labels: web, node: "node-a", ip: "10.244.1.11", ready: true})
	e.await("web", "both ready", wantEndpoints(map[string]string{"web-0": "110", "web-1": "110"}))
	e.deletePod("web-0", nil)
	e.await("web", "web-0 terminating, still serving", wantEndpoints(map[string]string{"web-0": "011", "web-1": "110"}))
	e.setStatus("web-0", func(s *corev1.PodStatus) { setReady(s, false) })
	e.await("web", "web-0 terminating, not serving", wantEndpoints(map[string]string{"web-0": "001", "web-1": "110"}))
	e.deletePod("web-0", new(int64(0)))
	e.await("web", "web-0 gone", wantEndpoints(map[string]string{"web-1": "110"}))
}

func TestServiceWithoutSelectorLeftAlone(t *testing.T) {
	e := newEnv(t).start()
	svc := e.createService(service("ext", nil))
	user := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "ext-1", Namespace: ns,
			Labels: map[string]string{discoveryv1.LabelServiceName: "ext"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"192.0.2.1"}}},
	}
	user, err := e.c.EndpointSlices(ns).Create(e.ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	// A Service with a selector next to it is a barrier: once its slice
	// exists the controller has been through its first round.
	e.createService(service("web", map[string]string{"app": "web"}))
	e.await("web", "a placeholder for web", func(s []discoveryv1.EndpointSlice) error {
		if len(s) != 1 {
			return fmt.Errorf("got %d slices, want 1", len(s))
		}
		return nil
	})
	if _, err := e.ctrl.Reconcile(e.ctx, ns+"/"+svc.Name); err != nil {
		t.Fatal(err)
	}
	got, err := e.slices("ext")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "ext-1" || got[0].ResourceVersion != user.ResourceVersion {
		t.Errorf("got slices %s, want only the user's ext-1 unchanged", describe(got))
	}
}

func TestFailureRecordedAsEvent(t *testing.T) {
	e := newEnv(t)
	if _, err := e.c.Namespaces().Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "doomed"}}); err != nil {
		t.Fatal(err)
	}
	svc := service("web", map[string]string{"app": "web"})
	svc.Namespace = "doomed"
	e.createService(svc)
	// Nothing empties the namespace here, so it stays Terminating, and
	// refuses new objects: the slice cannot be created.
	if err := e.c.Namespaces().Delete(e.ctx, "doomed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.start()
	wait.For(t, waitTimeout, "a FailedToUpdateEndpointSlices event", func() (bool, error) {
		for _, ev := range e.events.all() {
			if strings.HasPrefix(ev, "Warning FailedToUpdateEndpointSlices Error updating Endpoint Slices for Service doomed/web: ") {
				return true, nil
			}
		}
		return false, fmt.Errorf("events: %v", e.events.all())
	})
}
