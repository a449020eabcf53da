package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func newService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: newMeta("web"),
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}
}

func TestValidateService(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*corev1.Service)
		want   []string
	}{
		{"valid", func(*corev1.Service) {}, nil},
		{"name must start with a letter", func(s *corev1.Service) { s.Name = "1web" },
			[]string{`metadata.name: Invalid value: "1web": a DNS-1035 label must consist of`}},
		{"no ports", func(s *corev1.Service) { s.Spec.Ports = nil },
			[]string{"spec.ports: Required value"}},
		{"headless without ports", func(s *corev1.Service) {
			s.Spec.Ports = nil
			s.Spec.ClusterIP = corev1.ClusterIPNone
		}, nil},
		{"port zero", func(s *corev1.Service) { s.Spec.Ports[0].Port = 0 },
			[]string{"spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"}},
		{"port out of range", func(s *corev1.Service) { s.Spec.Ports[0].Port = 65536 },
			[]string{"spec.ports[0].port: Invalid value: 65536: must be between 1 and 65535, inclusive"}},
		{"unnamed second port", func(s *corev1.Service) { s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Port: 443}) },
			[]string{"spec.ports[1].name: Required value"}},
		{"duplicate port name", func(s *corev1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "http", Port: 8080})
		}, []string{`spec.ports[1].name: Duplicate value: "http"`}},
		{"duplicate port", func(s *corev1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "alt", Port: 80})
		}, []string{`spec.ports[1]: Duplicate value: {"protocol":"TCP","port":80,"targetPort":0}`}},
		{"same port on two protocols", func(s *corev1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "dns", Port: 80, Protocol: corev1.ProtocolUDP})
		}, nil},
		{"bad protocol", func(s *corev1.Service) { s.Spec.Ports[0].Protocol = "ICMP" },
			[]string{`spec.ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"`}},
		{"target port out of range", func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromInt32(70000) },
			[]string{"spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive"}},
		{"target port name too long", func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromString("http-alternative") },
			[]string{`spec.ports[0].targetPort: Invalid value: "http-alternative": must be no more than 15 characters`}},
		{"node port on a ClusterIP service", func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30080 },
			[]string{"spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"}},
		{"node port", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = 30080
		}, nil},
		{"node port out of range", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = 70000
		}, []string{"spec.ports[0].nodePort: Invalid value: 70000: must be between 1 and 65535, inclusive"}},
		{"headless NodePort service", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.ClusterIP = corev1.ClusterIPNone
		}, []string{`spec.clusterIPs[0]: Invalid value: "None": may not be set to 'None' for NodePort services`}},
		{"bad type", func(s *corev1.Service) { s.Spec.Type = "Internal" },
			[]string{`spec.type: Unsupported value: "Internal": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"`}},
		{"external name", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeExternalName
			s.Spec.ExternalName = "db.example.com."
		}, nil},
		{"external name missing", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeExternalName },
			[]string{"spec.externalName: Required value"}},
		{"bad session affinity", func(s *corev1.Service) { s.Spec.SessionAffinity = "Cookie" },
			[]string{`spec.sessionAffinity: Unsupported value: "Cookie": supported values: "ClientIP", "None"`}},
		{"cluster IP", func(s *corev1.Service) { s.Spec.ClusterIP = "10.96.0.10" }, nil},
		{"bad cluster IP", func(s *corev1.Service) { s.Spec.ClusterIP = "10.96.0.300" },
			[]string{`spec.clusterIPs[0]: Invalid value: "10.96.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)`}},
		{"cluster IPs disagree", func(s *corev1.Service) {
			s.Spec.ClusterIP = "10.96.0.10"
			s.Spec.ClusterIPs = []string{"10.96.0.11"}
		}, []string{`spec.clusterIPs: Invalid value: ["10.96.0.11"]: first value must match ` + "`clusterIP`"}},
		{"bad selector", func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "web server"} },
			[]string{`spec.selector: Invalid value: "web server": a valid label must be`}},
		{"external traffic policy on ClusterIP", func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal },
			[]string{`spec.externalTrafficPolicy: Invalid value: "Local": may only be set for externally-accessible services`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc := newService()
			tc.mutate(svc)
			checkErrors(t, create(svc), tc.want...)
		})
	}
}

func TestValidateServiceUpdate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*corev1.Service)
		want   []string
	}{
		{"new port", func(s *corev1.Service) { s.Spec.Ports[0].Port = 8080 }, nil},
		{"new cluster IP", func(s *corev1.Service) {
			s.Spec.ClusterIP = "10.96.0.11"
			s.Spec.ClusterIPs = nil
		}, []string{`spec.clusterIP: Invalid value: "10.96.0.11": field is immutable`}},
		{"cluster IP removed", func(s *corev1.Service) {
			s.Spec.ClusterIP = ""
			s.Spec.ClusterIPs = nil
		}, []string{"spec.clusterIPs[0]: Invalid value: null: primary clusterIP can not be unset"}},
		{"to ExternalName", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeExternalName
			s.Spec.ExternalName = "db.example.com"
			s.Spec.ClusterIP = ""
			s.Spec.ClusterIPs = nil
			s.Spec.InternalTrafficPolicy = nil
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := newService()
			old.Spec.ClusterIP = "10.96.0.10"
			svc := old.DeepCopy()
			tc.mutate(svc)
			checkErrors(t, update(svc, old), tc.want...)
		})
	}
}

func TestValidateServiceStatusUpdate(t *testing.T) {
	old := newService()
	svc := old.DeepCopy()
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.300"}, {Hostname: "192.0.2.7"}}
	checkErrors(t, ValidateStatusUpdate(svc, old),
		`status.loadBalancer.ingress[0].ip: Invalid value: "192.0.2.300": must be a valid IP address`,
		`status.loadBalancer.ingress[1].hostname: Invalid value: "192.0.2.7": must be a DNS name, not an IP address`)
}
