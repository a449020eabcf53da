package endpointslice

import (
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	clocktesting "k8s.io/utils/clock/testing"
)

func planService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, UID: "svc-uid"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP},
				{Name: "dns", Port: 53, TargetPort: intstr.FromInt32(53), Protocol: corev1.ProtocolUDP},
			},
		},
	}
}

func planPod(i int, ready bool) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("web-%03d", i), Namespace: ns, UID: types.UID(fmt.Sprintf("uid-%d", i)),
			Labels: map[string]string{"app": "web"}},
		Spec:   corev1.PodSpec{NodeName: "node-a"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: fmt.Sprintf("10.244.%d.%d", i/200, i%200+1)},
	}
	setReady(&p.Status, ready)
	return p
}

func planPods(n int) []*corev1.Pod {
	var pods []*corev1.Pod
	for i := range n {
		pods = append(pods, planPod(i, true))
	}
	return pods
}

// applyPlan turns a plan's creates into existing slices, as the API
// server would (names and UIDs given), together with its updates.
func applyPlan(existing []*discoveryv1.EndpointSlice, p Plan) []*discoveryv1.EndpointSlice {
	var out []*discoveryv1.EndpointSlice
	for _, s := range existing {
		if slices.ContainsFunc(p.Delete, func(d *discoveryv1.EndpointSlice) bool { return d.Name == s.Name }) {
			continue
		}
		if i := slices.IndexFunc(p.Update, func(u *discoveryv1.EndpointSlice) bool { return u.Name == s.Name }); i >= 0 {
			s = p.Update[i]
		}
		out = append(out, s)
	}
	for i, s := range p.Create {
		s = s.DeepCopy()
		s.Name = fmt.Sprintf("%sgen%d-%d", s.GenerateName, len(existing), i)
		s.UID = types.UID(s.Name)
		out = append(out, s)
	}
	return out
}

func TestComputeNothingToDoWhateverTheOrder(t *testing.T) {
	svc := planService()
	pods := planPods(150)
	existing := applyPlan(nil, Compute(svc, pods, nil, 100))
	if len(existing) != 2 {
		t.Fatalf("got %d slices, want 2", len(existing))
	}
	// Reverse endpoints and ports of every slice, and the pods.
	for _, s := range existing {
		slices.Reverse(s.Endpoints)
		slices.Reverse(s.Ports)
	}
	slices.Reverse(pods)
	if p := Compute(svc, pods, existing, 100); !p.Empty() {
		t.Errorf("got plan create=%d update=%d delete=%d, want nothing", len(p.Create), len(p.Update), len(p.Delete))
	}
}

func TestComputeFillsBeforeCreating(t *testing.T) {
	svc := planService()
	existing := applyPlan(nil, Compute(svc, planPods(150), nil, 100)) // 100 + 50
	// 30 more: they go into the slice with room, no new slice.
	p := Compute(svc, planPods(180), existing, 100)
	if len(p.Create) != 0 || len(p.Update) != 1 || len(p.Delete) != 0 || len(p.Update[0].Endpoints) != 80 {
		t.Fatalf("got create=%d update=%d delete=%d, want one update to 80 endpoints", len(p.Create), len(p.Update), len(p.Delete))
	}
	// 100 more: fill that slice to 100, then a new slice of 50.
	p = Compute(svc, planPods(250), existing, 100)
	if len(p.Create) != 1 || len(p.Create[0].Endpoints) != 50 || len(p.Update) != 1 || len(p.Update[0].Endpoints) != 100 {
		t.Fatalf("got create=%d update=%d, want a 100-endpoint update and a 50-endpoint create", len(p.Create), len(p.Update))
	}
}

func TestComputeRepairsForeignState(t *testing.T) {
	svc := planService()
	pods := planPods(3)
	existing := applyPlan(nil, Compute(svc, pods, nil, 100))
	good := existing[0]

	// A copy of the same slice (a duplicate left by someone): its
	// endpoints are already placed, so it ends up empty and deleted.
	dup := good.DeepCopy()
	dup.Name, dup.UID = "web-zdup", "dup-uid"
	// A slice of an earlier Service of the same name.
	stale := good.DeepCopy()
	stale.Name, stale.UID = "web-stale", "stale-uid"
	stale.OwnerReferences[0].UID = "old-svc-uid"
	// A slice with ports the Service no longer has.
	oldPorts := good.DeepCopy()
	oldPorts.Name, oldPorts.UID = "web-oldports", "oldports-uid"
	oldPorts.Ports[0].Port = new(int32(1))

	p := Compute(svc, pods, []*discoveryv1.EndpointSlice{good, dup, stale, oldPorts}, 100)
	var deleted []string
	for _, s := range p.Delete {
		deleted = append(deleted, s.Name)
	}
	slices.Sort(deleted)
	if want := []string{"web-oldports", "web-stale", "web-zdup"}; !slices.Equal(deleted, want) || len(p.Create) != 0 || len(p.Update) != 0 {
		t.Errorf("got deletes %v, creates %d, updates %d; want deletes %v only", deleted, len(p.Create), len(p.Update), want)
	}
}

func TestComputeEndpoints(t *testing.T) {
	svc := planService()
	svc.Spec.ClusterIP = corev1.ClusterIPNone
	ready := planPod(0, true)
	notReady := planPod(1, false)
	terminating := planPod(2, true)
	terminating.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)}
	noIP := planPod(3, true)
	noIP.Status.PodIP = ""
	ipv6 := planPod(4, true)
	ipv6.Status.PodIP, ipv6.Status.PodIPs = "fd00::4", []corev1.PodIP{{IP: "fd00::4"}}
	failed := planPod(5, true)
	failed.Status.Phase = corev1.PodFailed
	named := planPod(6, true)
	named.Spec.Hostname, named.Spec.Subdomain = "db", "web"

	p := Compute(svc, []*corev1.Pod{ready, notReady, terminating, noIP, ipv6, failed, named}, nil, 100)
	if len(p.Create) != 1 {
		t.Fatalf("got %d creates, want 1", len(p.Create))
	}
	s := p.Create[0]
	if s.Labels[headlessLabel] != "" || len(s.Labels) != 3 {
		t.Errorf("labels: got %v, want service-name, managed-by and headless", s.Labels)
	}
	got := map[string]string{}
	for _, ep := range s.Endpoints {
		got[podName(&ep)] = conds(ep)
		if podName(&ep) == "web-006" && (ep.Hostname == nil || *ep.Hostname != "db") {
			t.Errorf("web-006 hostname: got %v, want db", ep.Hostname)
		}
	}
	want := map[string]string{"web-000": "110", "web-001": "000", "web-002": "011", "web-006": "110"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("endpoints: got %v, want %v", got, want)
	}
	if k := portsKey(s.Ports); k != "dns/UDP/53/,http/TCP/8080/" {
		t.Errorf("ports: got %s", k)
	}
}

func TestComputeNoSlicesWanted(t *testing.T) {
	svc := planService()
	existing := applyPlan(nil, Compute(svc, planPods(2), nil, 100))
	noSelector := planService()
	noSelector.Spec.Selector = nil
	externalName := planService()
	externalName.Spec.Type = corev1.ServiceTypeExternalName
	for name, s := range map[string]*corev1.Service{"gone": nil, "no selector": noSelector, "ExternalName": externalName} {
		if p := Compute(s, planPods(2), existing, 100); len(p.Delete) != 1 || len(p.Create)+len(p.Update) != 0 {
			t.Errorf("%s: got create=%d update=%d delete=%d, want the one slice deleted", name, len(p.Create), len(p.Update), len(p.Delete))
		}
	}
}

func TestTracker(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Unix(100, 0))
	tr := NewTracker(time.Minute, clk)
	cache := map[string]*discoveryv1.EndpointSlice{}
	get := func(n string) (*discoveryv1.EndpointSlice, bool) { s, ok := cache[n]; return s, ok }
	slice := func(name, rv string) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: rv}}
	}

	tr.Wrote("ns/web", slice("a", "10"))
	tr.Deleted("ns/web", "b")
	cache["b"] = slice("b", "5")
	if ok, wait := tr.Satisfied("ns/web", get); ok || wait != time.Minute {
		t.Fatalf("got %v %v, want unsatisfied for a minute", ok, wait)
	}
	cache["a"] = slice("a", "9") // older than the write
	delete(cache, "b")
	if ok, _ := tr.Satisfied("ns/web", get); ok {
		t.Fatal("satisfied by an older resourceVersion")
	}
	cache["a"] = slice("a", "11")
	if ok, _ := tr.Satisfied("ns/web", get); !ok {
		t.Fatal("not satisfied by a newer resourceVersion")
	}

	// A write whose slice someone deletes before the cache saw it.
	tr.Wrote("ns/web", slice("c", "20"))
	clk.SetTime(clk.Now().Add(30 * time.Second))
	if ok, wait := tr.Satisfied("ns/web", get); ok || wait != 30*time.Second {
		t.Fatalf("got %v %v, want unsatisfied for 30s", ok, wait)
	}
	tr.SawDeletion("ns/web", "c")
	if ok, _ := tr.Satisfied("ns/web", get); !ok {
		t.Fatal("not satisfied after the deletion was seen")
	}

	// A record nobody meets expires.
	tr.Wrote("ns/web", slice("d", "30"))
	clk.SetTime(clk.Now().Add(time.Minute))
	if ok, _ := tr.Satisfied("ns/web", get); !ok {
		t.Fatal("not satisfied after the TTL")
	}
}
