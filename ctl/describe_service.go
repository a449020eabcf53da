package ctl

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffdev/skiff/ctl/printers"
)

// This file describes services, with the endpoints of their slices.

func describeService(svc *corev1.Service, slices []discoveryv1.EndpointSlice, events *corev1.EventList, now time.Time) string {
	w := newDescribeWriter()
	w.write(0, "Name:\t%s\n", svc.Name)
	w.write(0, "Namespace:\t%s\n", svc.Namespace)
	w.labels("", "Labels", svc.Labels)
	w.annotations("", "Annotations", svc.Annotations)
	w.write(0, "Selector:\t%s\n", labels.FormatLabels(svc.Spec.Selector))
	w.write(0, "Type:\t%s\n", svc.Spec.Type)
	if svc.Spec.IPFamilyPolicy != nil {
		w.write(0, "IP Family Policy:\t%s\n", *svc.Spec.IPFamilyPolicy)
	}
	families := make([]string, len(svc.Spec.IPFamilies))
	for i, f := range svc.Spec.IPFamilies {
		families[i] = string(f)
	}
	w.write(0, "IP Families:\t%s\n", printers.OrNone(strings.Join(families, ",")))
	w.write(0, "IP:\t%s\n", svc.Spec.ClusterIP)
	w.write(0, "IPs:\t%s\n", printers.OrNone(strings.Join(svc.Spec.ClusterIPs, ",")))
	if len(svc.Spec.ExternalIPs) > 0 {
		w.write(0, "External IPs:\t%s\n", strings.Join(svc.Spec.ExternalIPs, ","))
	}
	if svc.Spec.LoadBalancerIP != "" {
		w.write(0, "Desired LoadBalancer IP:\t%s\n", svc.Spec.LoadBalancerIP)
	}
	if svc.Spec.ExternalName != "" {
		w.write(0, "External Name:\t%s\n", svc.Spec.ExternalName)
	}
	if in := svc.Status.LoadBalancer.Ingress; len(in) > 0 {
		var addrs []string
		for _, i := range in {
			a := i.Hostname
			if i.IP != "" {
				a = i.IP
				if i.IPMode != nil {
					a += fmt.Sprintf(" (%s)", *i.IPMode)
				}
			}
			addrs = append(addrs, a)
		}
		w.write(0, "LoadBalancer Ingress:\t%s\n", strings.Join(addrs, ", "))
	}
	for _, p := range svc.Spec.Ports {
		name := p.Name
		if name == "" {
			name = "<unset>"
		}
		w.write(0, "Port:\t%s\t%d/%s\n", name, p.Port, p.Protocol)
		if p.TargetPort.Type == intstr.Int {
			w.write(0, "TargetPort:\t%d/%s\n", p.TargetPort.IntVal, p.Protocol)
		} else {
			w.write(0, "TargetPort:\t%s/%s\n", p.TargetPort.StrVal, p.Protocol)
		}
		if p.AppProtocol != nil {
			w.write(0, "AppProtocol:\t%s\n", *p.AppProtocol)
		}
		if p.NodePort != 0 {
			w.write(0, "NodePort:\t%s\t%d/%s\n", name, p.NodePort, p.Protocol)
		}
		w.write(0, "Endpoints:\t%s\n", sliceEndpoints(slices, p.Name))
	}
	w.write(0, "Session Affinity:\t%s\n", svc.Spec.SessionAffinity)
	if svc.Spec.ExternalTrafficPolicy != "" {
		w.write(0, "External Traffic Policy:\t%s\n", svc.Spec.ExternalTrafficPolicy)
	}
	if svc.Spec.InternalTrafficPolicy != nil {
		w.write(0, "Internal Traffic Policy:\t%s\n", *svc.Spec.InternalTrafficPolicy)
	}
	if svc.Spec.HealthCheckNodePort != 0 {
		w.write(0, "HealthCheck NodePort:\t%d\n", svc.Spec.HealthCheckNodePort)
	}
	if len(svc.Spec.LoadBalancerSourceRanges) > 0 {
		w.write(0, "LoadBalancer Source Ranges:\t%s\n", strings.Join(svc.Spec.LoadBalancerSourceRanges, ","))
	}
	w.events(events, now)
	return w.String()
}

// sliceEndpoints is a service port's Endpoints line: the ready addresses
// of the port called portName, as host:port, the first three and how many
// more; "<none>" when the service has no endpoint slices.
func sliceEndpoints(slices []discoveryv1.EndpointSlice, portName string) string {
	if len(slices) == 0 {
		return "<none>"
	}
	ready := func(ep discoveryv1.Endpoint) bool {
		// An unknown readiness counts as ready.
		return len(ep.Addresses) > 0 && (ep.Conditions.Ready == nil || *ep.Conditions.Ready)
	}
	var addrs []string
	for _, s := range slices {
		if len(s.Ports) == 0 {
			// A headless service without ports: bare addresses.
			for _, ep := range s.Endpoints {
				if ready(ep) {
					addrs = append(addrs, ep.Addresses[0])
				}
			}
			continue
		}
		for _, p := range s.Ports {
			if p.Name == nil && portName != "" || p.Name != nil && *p.Name != portName || p.Port == nil {
				continue
			}
			for _, ep := range s.Endpoints {
				if ready(ep) {
					addrs = append(addrs, net.JoinHostPort(ep.Addresses[0], strconv.Itoa(int(*p.Port))))
				}
			}
		}
	}
	const shown = 3
	if len(addrs) > shown {
		return fmt.Sprintf("%s + %d more...", strings.Join(addrs[:shown], ","), len(addrs)-shown)
	}
	return strings.Join(addrs, ",")
}
