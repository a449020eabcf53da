package validation

import (
	"slices"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func newEndpointSlice() *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  newMeta("web-abc12"),
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses: []string{"10.244.1.5"},
			NodeName:  new("node-a"),
		}},
		Ports: []discoveryv1.EndpointPort{{Name: new("http"), Port: new(int32(8080))}},
	}
}

func TestValidateEndpointSlice(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*discoveryv1.EndpointSlice)
		want   []string
	}{
		{"valid", func(*discoveryv1.EndpointSlice) {}, nil},
		{"bad address type", func(s *discoveryv1.EndpointSlice) { s.AddressType = "IPv5" },
			[]string{`addressType: Unsupported value: "IPv5": supported values: "FQDN", "IPv4", "IPv6"`}},
		{"IPv6 address in an IPv4 slice", func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].Addresses = []string{"fd00::5"} },
			[]string{`endpoints[0].addresses[0]: Invalid value: "fd00::5": must be a valid IPv4 address`}},
		{"loopback address", func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].Addresses = []string{"127.0.0.1"} },
			[]string{`endpoints[0].addresses[0]: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)`}},
		{"endpoint without address", func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].Addresses = nil },
			[]string{"endpoints[0].addresses: Required value: must contain at least 1 address"}},
		{"too many addresses", func(s *discoveryv1.EndpointSlice) {
			s.Endpoints[0].Addresses = slices.Repeat([]string{"10.244.1.5"}, 101)
		}, []string{"endpoints[0].addresses: Too many: 101: must have at most 100 items"}},
		{"FQDN", func(s *discoveryv1.EndpointSlice) {
			s.AddressType = discoveryv1.AddressTypeFQDN
			s.Endpoints[0].Addresses = []string{"db.example.com"}
		}, nil},
		{"duplicate port name", func(s *discoveryv1.EndpointSlice) {
			s.Ports = append(s.Ports, discoveryv1.EndpointPort{Name: new("http"), Port: new(int32(8443))})
		}, []string{`ports[1].name: Duplicate value: "http"`}},
		{"bad port protocol", func(s *discoveryv1.EndpointSlice) { s.Ports[0].Protocol = new(corev1.Protocol("HTTP")) },
			[]string{`ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newEndpointSlice()
			tc.mutate(s)
			checkErrors(t, create(s), tc.want...)
		})
	}
}

func TestValidateEndpointSliceUpdate(t *testing.T) {
	old := newEndpointSlice()
	s := old.DeepCopy()
	s.AddressType = discoveryv1.AddressTypeFQDN
	s.Endpoints[0].Addresses = []string{"db.example.com"}
	checkErrors(t, update(s, old), `addressType: Invalid value: "FQDN": field is immutable`)
}

func TestValidateLease(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*coordinationv1.Lease)
		want   []string
	}{
		{"valid", func(*coordinationv1.Lease) {}, nil},
		{"zero duration", func(l *coordinationv1.Lease) { l.Spec.LeaseDurationSeconds = new(int32(0)) },
			[]string{"spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"}},
		{"negative transitions", func(l *coordinationv1.Lease) { l.Spec.LeaseTransitions = new(int32(-1)) },
			[]string{"spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0"}},
		{"preferred holder without strategy", func(l *coordinationv1.Lease) { l.Spec.PreferredHolder = new("node-b") },
			[]string{"spec.preferredHolder: Forbidden: may only be specified if `strategy` is defined"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: "node-a", Namespace: "kube-node-lease"},
				Spec: coordinationv1.LeaseSpec{
					HolderIdentity:       new("node-a"),
					LeaseDurationSeconds: new(int32(40)),
					RenewTime:            &metav1.MicroTime{Time: time.Unix(1700000000, 0)},
				},
			}
			tc.mutate(l)
			checkErrors(t, create(l), tc.want...)
		})
	}
}

func TestValidateEvent(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*corev1.Event)
		want   []string
	}{
		{"valid", func(*corev1.Event) {}, nil},
		{"namespace mismatch", func(e *corev1.Event) { e.InvolvedObject.Namespace = "shop" },
			[]string{`involvedObject.namespace: Invalid value: "shop": does not match event.namespace`}},
		{"node event in default", func(e *corev1.Event) { e.InvolvedObject = corev1.ObjectReference{Kind: "Node", Name: "node-a"} }, nil},
		{"new-style event without reporter", func(e *corev1.Event) { e.EventTime = metav1.NowMicro() }, []string{
			"reportingComponent: Required value",
			"reportingInstance: Required value",
			"action: Required value",
		}},
		{"new-style event with a long reason", func(e *corev1.Event) {
			e.EventTime = metav1.NowMicro()
			e.ReportingController, e.ReportingInstance, e.Action = "skiff.dev/scheduler", "scheduler-1", "Binding"
			e.Reason = strings.Repeat("x", 129)
		}, []string{`reason: Invalid value: "": can have at most 128 characters`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := &corev1.Event{
				ObjectMeta:     newMeta("web.17a3"),
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web"},
				Reason:         "Scheduled",
				Message:        "Successfully assigned default/web to node-a",
			}
			tc.mutate(e)
			checkErrors(t, create(e), tc.want...)
		})
	}
}
