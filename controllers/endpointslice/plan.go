package endpointslice

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	// ManagedBy is the value of the discovery.k8s.io managed-by label on
	// the slices this controller writes. Slices with another value (or
	// none) belong to someone else and are never touched.
	ManagedBy = "endpointslice-controller.skiff.dev"
	// DefaultMaxEndpointsPerSlice is Kubernetes' default for
	// --max-endpoints-per-slice.
	DefaultMaxEndpointsPerSlice = 100
	// headlessLabel marks the slices of a Service with clusterIP None, as
	// Kubernetes does, so that proxies can skip them by label.
	headlessLabel = "service.kubernetes.io/headless"
)

// serviceKind is the kind of the ownerReferences this controller writes.
var serviceKind = corev1.SchemeGroupVersion.WithKind("Service")

// Plan is what it takes to bring a Service's slices to the desired state:
// slices to create (names left to the API server through generateName),
// slices to update (copies of cached slices, changed; each keeps the
// resourceVersion it was read at, so the write is a compare-and-swap),
// and slices to delete.
type Plan struct {
	Create []*discoveryv1.EndpointSlice
	Update []*discoveryv1.EndpointSlice
	Delete []*discoveryv1.EndpointSlice
}

// Empty reports whether the plan writes nothing.
func (p Plan) Empty() bool {
	return len(p.Create) == 0 && len(p.Update) == 0 && len(p.Delete) == 0
}

// Compute decides the writes that bring the slices of svc to what its
// pods call for. It is a pure function of its inputs and never modifies
// them.
//
//   - svc is the Service, or nil if it is gone.
//   - pods are the pods its selector matches (Compute skips those that
//     cannot be endpoints: no IPv4 address, or finished).
//   - existing are the slices that carry svc's service-name label and
//     this controller's managed-by label.
//   - maxPerSlice caps the endpoints of one slice.
//
// A Service that is gone, has no selector, or is of type ExternalName
// gets no slices: the existing ones are deleted. Otherwise the endpoints
// are grouped by their resolved port set, one or more slices per group.
// Endpoints stay in the slice they are in when possible; new endpoints
// fill slices that have room before new slices are made; a slice left
// empty is deleted; a slice is updated only when its endpoints (compared
// without regard to order), labels or owner changed. A Service with no
// endpoints at all keeps one empty slice without ports (Kubernetes' placeholder),
// which tells readers the Service was seen.
func Compute(svc *corev1.Service, pods []*corev1.Pod, existing []*discoveryv1.EndpointSlice, maxPerSlice int) Plan {
	var plan Plan
	if !wantsSlices(svc) {
		plan.Delete = slices.Clone(existing)
		return plan
	}
	maxPerSlice = max(maxPerSlice, 1)
	groups, total := desiredGroups(svc, pods)
	labels := desiredLabels(svc)

	// Slices this controller cannot reuse: those of an earlier Service
	// of the same name (the garbage collector would delete them later),
	// and any of another address type.
	var mine []*discoveryv1.EndpointSlice
	for _, s := range sortedByName(existing) {
		if ownedBy(s, svc) && s.AddressType == discoveryv1.AddressTypeIPv4 {
			mine = append(mine, s)
		} else {
			plan.Delete = append(plan.Delete, s)
		}
	}

	if total == 0 {
		return placeholderPlan(plan, svc, labels, mine)
	}

	// Keep each existing endpoint that is still wanted with the same
	// ports in the slice where it is, brought up to date.
	placed := map[string]bool{}
	var kept []*sliceState
	byGroup := map[string][]*sliceState{}
	for _, s := range mine {
		key := portsKey(s.Ports)
		g, ok := groups[key]
		if !ok {
			plan.Delete = append(plan.Delete, s)
			continue
		}
		st := &sliceState{orig: s, changed: !maps.Equal(s.Labels, labels)}
		for _, ep := range s.Endpoints {
			name := podName(&ep)
			want, ok := g.endpoints[name]
			if !ok || placed[name] || len(st.endpoints) == maxPerSlice {
				st.changed = true
				continue
			}
			placed[name] = true
			if !endpointEqual(&ep, &want) {
				st.changed = true
			}
			st.endpoints = append(st.endpoints, want)
		}
		kept = append(kept, st)
		byGroup[key] = append(byGroup[key], st)
	}

	// Place the endpoints not yet in a slice: first into slices that are
	// written anyway, then into other slices with room, then into new
	// slices.
	for _, key := range slices.Sorted(maps.Keys(groups)) {
		g := groups[key]
		var todo []discoveryv1.Endpoint
		for _, name := range slices.Sorted(maps.Keys(g.endpoints)) {
			if !placed[name] {
				todo = append(todo, g.endpoints[name])
			}
		}
		candidates := slices.Clone(byGroup[key])
		slices.SortStableFunc(candidates, func(a, b *sliceState) int {
			// Changed slices first (false sorts before true).
			return cmpBool(!a.changed, !b.changed)
		})
		for _, st := range candidates {
			if len(todo) == 0 {
				break
			}
			n := min(maxPerSlice-len(st.endpoints), len(todo))
			if n <= 0 {
				continue
			}
			st.endpoints = append(st.endpoints, todo[:n]...)
			st.changed = true
			todo = todo[n:]
		}
		for len(todo) > 0 {
			n := min(maxPerSlice, len(todo))
			plan.Create = append(plan.Create, newSlice(svc, labels, g.ports, todo[:n]))
			todo = todo[n:]
		}
	}

	for _, st := range kept {
		switch {
		case len(st.endpoints) == 0:
			plan.Delete = append(plan.Delete, st.orig)
		case st.changed:
			s := st.orig.DeepCopy()
			s.Labels = maps.Clone(labels)
			s.Endpoints = st.endpoints
			plan.Update = append(plan.Update, s)
		}
	}
	return plan
}

// sliceState is an existing slice while Compute works on it.
type sliceState struct {
	orig      *discoveryv1.EndpointSlice
	endpoints []discoveryv1.Endpoint
	changed   bool
}

// group is the endpoints that share one port set.
type group struct {
	ports     []discoveryv1.EndpointPort
	endpoints map[string]discoveryv1.Endpoint // by pod name
}

// placeholderPlan keeps exactly one empty slice without ports for a
// Service that has no endpoints, reusing an existing slice if it can.
func placeholderPlan(plan Plan, svc *corev1.Service, labels map[string]string, mine []*discoveryv1.EndpointSlice) Plan {
	if len(mine) == 0 {
		plan.Create = append(plan.Create, newSlice(svc, labels, nil, nil))
		return plan
	}
	// Prefer a slice that already is a placeholder.
	keep := 0
	for i, s := range mine {
		if len(s.Endpoints) == 0 && len(s.Ports) == 0 {
			keep = i
			break
		}
	}
	for i, s := range mine {
		if i != keep {
			plan.Delete = append(plan.Delete, s)
		}
	}
	s := mine[keep]
	if len(s.Endpoints) != 0 || len(s.Ports) != 0 || !maps.Equal(s.Labels, labels) {
		s = s.DeepCopy()
		s.Endpoints, s.Ports, s.Labels = nil, nil, maps.Clone(labels)
		plan.Update = append(plan.Update, s)
	}
	return plan
}

// wantsSlices reports whether this controller keeps slices for svc.
// Services without a selector have their slices written by their users.
func wantsSlices(svc *corev1.Service) bool {
	return svc != nil && svc.DeletionTimestamp == nil && len(svc.Spec.Selector) > 0 &&
		svc.Spec.Type != corev1.ServiceTypeExternalName
}

// SelectorMatches reports whether the Service's selector selects a pod
// with these labels. An empty selector selects nothing: such a Service
// has no endpoints managed by this controller.
func SelectorMatches(selector, podLabels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if got, ok := podLabels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// desiredGroups turns pods into endpoints grouped by port set (keyed by
// portsKey), and counts them.
func desiredGroups(svc *corev1.Service, pods []*corev1.Pod) (map[string]*group, int) {
	groups := map[string]*group{}
	total := 0
	for _, pod := range pods {
		ip, ok := podIPv4(pod)
		if !ok || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		ports := endpointPorts(svc, pod)
		key := portsKey(ports)
		g := groups[key]
		if g == nil {
			g = &group{ports: ports, endpoints: map[string]discoveryv1.Endpoint{}}
			groups[key] = g
		}
		g.endpoints[pod.Name] = endpointFor(svc, pod, ip)
		total++
	}
	return groups, total
}

// endpointFor is the endpoint of one pod. Ready means the pod takes new
// connections: it is Ready and not terminating (or the Service publishes
// pods that are not ready). Serving is the pod's readiness alone, so a
// terminating pod that still serves can finish its connections.
func endpointFor(svc *corev1.Service, pod *corev1.Pod, ip string) discoveryv1.Endpoint {
	serving := podReady(pod)
	terminating := pod.DeletionTimestamp != nil
	ready := svc.Spec.PublishNotReadyAddresses || (serving && !terminating)
	ep := discoveryv1.Endpoint{
		Addresses: []string{ip},
		Conditions: discoveryv1.EndpointConditions{
			Ready:       new(ready),
			Serving:     new(serving),
			Terminating: new(terminating),
		},
		TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
	}
	if pod.Spec.NodeName != "" {
		ep.NodeName = new(pod.Spec.NodeName)
	}
	// A pod names itself in DNS under a headless Service whose name is
	// its subdomain.
	if pod.Spec.Hostname != "" && pod.Spec.Subdomain == svc.Name {
		ep.Hostname = new(pod.Spec.Hostname)
	}
	return ep
}

// endpointPorts resolves the Service's ports for one pod, sorted by name.
// A numeric targetPort is the same for every pod; a named one is looked
// up in the pod's container ports, and a port that the pod does not name
// is left out for this pod (its endpoint then lands in a slice of its
// own port set).
func endpointPorts(svc *corev1.Service, pod *corev1.Pod) []discoveryv1.EndpointPort {
	ports := make([]discoveryv1.EndpointPort, 0, len(svc.Spec.Ports))
	for i := range svc.Spec.Ports {
		sp := &svc.Spec.Ports[i]
		protocol := cmp.Or(sp.Protocol, corev1.ProtocolTCP)
		num, ok := targetPort(sp, protocol, pod)
		if !ok {
			continue
		}
		ports = append(ports, discoveryv1.EndpointPort{
			Name:        new(sp.Name),
			Protocol:    new(protocol),
			Port:        new(num),
			AppProtocol: sp.AppProtocol,
		})
	}
	slices.SortFunc(ports, func(a, b discoveryv1.EndpointPort) int { return strings.Compare(*a.Name, *b.Name) })
	return ports
}

// targetPort is the port number a Service port forwards to on pod.
func targetPort(sp *corev1.ServicePort, protocol corev1.Protocol, pod *corev1.Pod) (int32, bool) {
	tp := sp.TargetPort
	if tp.Type == intstr.Int {
		if tp.IntVal == 0 {
			return sp.Port, true
		}
		return tp.IntVal, true
	}
	if tp.StrVal == "" {
		return sp.Port, true
	}
	containers := pod.Spec.Containers
	// Sidecars (init containers that keep running) serve ports too.
	for _, c := range pod.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			containers = append(slices.Clip(containers), c)
		}
	}
	for _, c := range containers {
		for _, p := range c.Ports {
			if p.Name == tp.StrVal && cmp.Or(p.Protocol, corev1.ProtocolTCP) == protocol {
				return p.ContainerPort, true
			}
		}
	}
	return 0, false
}

// portsKey identifies a port set, whatever the order of its ports.
func portsKey(ports []discoveryv1.EndpointPort) string {
	parts := make([]string, len(ports))
	for i, p := range ports {
		var b strings.Builder
		b.WriteString(deref(p.Name, ""))
		b.WriteByte('/')
		b.WriteString(string(deref(p.Protocol, corev1.ProtocolTCP)))
		b.WriteByte('/')
		b.WriteString(strconv.Itoa(int(deref(p.Port, 0))))
		b.WriteByte('/')
		b.WriteString(deref(p.AppProtocol, ""))
		parts[i] = b.String()
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// endpointEqual reports whether an existing endpoint a says the same as
// the endpoint b this controller would write. Fields the controller never
// sets (zone, hints, topology) must be empty in a.
func endpointEqual(a, b *discoveryv1.Endpoint) bool {
	return slices.Equal(a.Addresses, b.Addresses) &&
		ptrEqual(a.Conditions.Ready, b.Conditions.Ready) &&
		ptrEqual(a.Conditions.Serving, b.Conditions.Serving) &&
		ptrEqual(a.Conditions.Terminating, b.Conditions.Terminating) &&
		ptrEqual(a.Hostname, b.Hostname) &&
		ptrEqual(a.NodeName, b.NodeName) &&
		ptrEqual(a.Zone, b.Zone) &&
		ptrEqual(a.TargetRef, b.TargetRef) &&
		a.Hints == nil && b.Hints == nil &&
		len(a.DeprecatedTopology) == 0 && len(b.DeprecatedTopology) == 0
}

func ptrEqual[T comparable](a, b *T) bool {
	return a == b || (a != nil && b != nil && *a == *b)
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// desiredLabels are the labels of svc's slices: the Service's own labels
// (so that slices can be selected like their Service), and the labels
// that tie a slice to its Service and to this controller.
func desiredLabels(svc *corev1.Service) map[string]string {
	labels := make(map[string]string, len(svc.Labels)+3)
	for k, v := range svc.Labels {
		if k != discoveryv1.LabelServiceName && k != discoveryv1.LabelManagedBy && k != headlessLabel {
			labels[k] = v
		}
	}
	labels[discoveryv1.LabelServiceName] = svc.Name
	labels[discoveryv1.LabelManagedBy] = ManagedBy
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		labels[headlessLabel] = ""
	}
	return labels
}

// newSlice is a slice to create for svc.
func newSlice(svc *corev1.Service, labels map[string]string, ports []discoveryv1.EndpointPort, endpoints []discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    svc.Name + "-",
			Namespace:       svc.Namespace,
			Labels:          maps.Clone(labels),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(svc, serviceKind)},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       slices.Clone(ports),
		Endpoints:   slices.Clone(endpoints),
	}
}

// ownedBy reports whether svc is the controller of slice.
func ownedBy(slice *discoveryv1.EndpointSlice, svc *corev1.Service) bool {
	ref := metav1.GetControllerOf(slice)
	return ref != nil && ref.UID == svc.UID && ref.Kind == serviceKind.Kind
}

// podName is the name of the pod an endpoint stands for, or "" when it
// names no pod (an endpoint someone else wrote; it is dropped).
func podName(ep *discoveryv1.Endpoint) string {
	if ep.TargetRef == nil || ep.TargetRef.Kind != "Pod" {
		return ""
	}
	return ep.TargetRef.Name
}

// podIPv4 is the pod's IPv4 address, if it has one.
func podIPv4(pod *corev1.Pod) (string, bool) {
	ips := pod.Status.PodIPs
	if len(ips) == 0 && pod.Status.PodIP != "" {
		ips = []corev1.PodIP{{IP: pod.Status.PodIP}}
	}
	for _, ip := range ips {
		if a, err := netip.ParseAddr(ip.IP); err == nil && a.Is4() {
			return a.String(), true
		}
	}
	return "", false
}

// podReady reports whether the pod's Ready condition is True.
func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func sortedByName(in []*discoveryv1.EndpointSlice) []*discoveryv1.EndpointSlice {
	out := slices.Clone(in)
	slices.SortFunc(out, func(a, b *discoveryv1.EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}
