package validation

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// maxClientIPAffinitySeconds is the longest ClientIP stickiness, one day.
const maxClientIPAffinitySeconds = 86400

var (
	supportedServiceTypes = []corev1.ServiceType{corev1.ServiceTypeClusterIP, corev1.ServiceTypeExternalName,
		corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort}
	supportedSessionAffinities  = []corev1.ServiceAffinity{corev1.ServiceAffinityClientIP, corev1.ServiceAffinityNone}
	supportedExternalPolicies   = []corev1.ServiceExternalTrafficPolicy{corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceExternalTrafficPolicyLocal}
	supportedInternalPolicies   = []corev1.ServiceInternalTrafficPolicy{corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyLocal}
	supportedIPFamilies         = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	supportedIPFamilyPolicies   = []corev1.IPFamilyPolicy{corev1.IPFamilyPolicyPreferDualStack, corev1.IPFamilyPolicyRequireDualStack, corev1.IPFamilyPolicySingleStack}
	mayNotBeSetForExternalName  = "may not be set for ExternalName services"
	mayOnlyBeUsedByLoadBalancer = "may only be used when `type` is 'LoadBalancer'"
)

// validateService checks a new Service.
func validateService(svc *corev1.Service) field.ErrorList {
	// A service's name becomes a DNS name and environment variable names
	// in pods, so it must be a DNS label that starts with a letter.
	errs := validateObjectMeta(&svc.ObjectMeta, true, nameIsDNS1035Label)
	spec := &svc.Spec

	// A headless service (clusterIP None) may leave ports out: clients
	// look up the pods' own addresses. Every other service forwards ports.
	if len(spec.Ports) == 0 && !isHeadless(svc) && spec.Type != corev1.ServiceTypeExternalName {
		errs = append(errs, field.Required(specPath.Child("ports"), ""))
	}
	switch spec.Type {
	case corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort:
		if isHeadless(svc) {
			errs = append(errs, field.Invalid(specPath.Child("clusterIPs").Index(0), spec.ClusterIPs[0],
				fmt.Sprintf("may not be set to 'None' for %s services", spec.Type)))
		}
	case corev1.ServiceTypeExternalName:
		// An ExternalName service is only a DNS alias: no IP, no proxying.
		if len(spec.ClusterIPs) > 0 {
			errs = append(errs, field.Forbidden(specPath.Child("clusterIPs"), mayNotBeSetForExternalName))
		}
		if len(spec.IPFamilies) > 0 {
			errs = append(errs, field.Forbidden(specPath.Child("ipFamilies"), mayNotBeSetForExternalName))
		}
		if spec.IPFamilyPolicy != nil {
			errs = append(errs, field.Forbidden(specPath.Child("ipFamilyPolicy"), mayNotBeSetForExternalName))
		}
		// The name may end in a dot, as a fully qualified DNS name does.
		if name := strings.TrimSuffix(spec.ExternalName, "."); name != "" {
			errs = append(errs, validateDNS1123Subdomain(name, specPath.Child("externalName"))...)
		} else {
			errs = append(errs, field.Required(specPath.Child("externalName"), ""))
		}
	}

	errs = append(errs, validateServicePorts(svc)...)
	if spec.Selector != nil {
		errs = append(errs, metav1validation.ValidateLabels(spec.Selector, specPath.Child("selector"))...)
	}
	errs = append(errs, validateSessionAffinity(spec)...)
	errs = append(errs, validateClusterIPs(svc)...)
	for i, ip := range spec.ExternalIPs {
		idx := specPath.Child("externalIPs").Index(i)
		if ipErrs := validateIP(ip, idx); len(ipErrs) > 0 {
			errs = append(errs, ipErrs...)
		} else {
			errs = append(errs, validateEndpointIP(ip, idx)...)
		}
	}

	switch {
	case spec.Type == "":
		errs = append(errs, field.Required(specPath.Child("type"), ""))
	case !slices.Contains(supportedServiceTypes, spec.Type):
		errs = append(errs, field.NotSupported(specPath.Child("type"), spec.Type, supportedServiceTypes))
	}

	if spec.Type != corev1.ServiceTypeLoadBalancer {
		if len(spec.LoadBalancerSourceRanges) > 0 {
			errs = append(errs, field.Forbidden(specPath.Child("loadBalancerSourceRanges"), mayOnlyBeUsedByLoadBalancer))
		}
		if spec.LoadBalancerClass != nil {
			errs = append(errs, field.Forbidden(specPath.Child("loadBalancerClass"), mayOnlyBeUsedByLoadBalancer))
		}
		if spec.AllocateLoadBalancerNodePorts != nil {
			errs = append(errs, field.Forbidden(specPath.Child("allocateLoadBalancerNodePorts"), mayOnlyBeUsedByLoadBalancer))
		}
	} else {
		if spec.AllocateLoadBalancerNodePorts == nil {
			errs = append(errs, field.Required(specPath.Child("allocateLoadBalancerNodePorts"), ""))
		}
		if spec.LoadBalancerClass != nil {
			errs = append(errs, validateQualifiedName(*spec.LoadBalancerClass, specPath.Child("loadBalancerClass"))...)
		}
	}
	for i, cidr := range spec.LoadBalancerSourceRanges {
		// Kubernetes trims spaces here, for the sake of old clients.
		errs = append(errs, validateCIDR(strings.TrimSpace(cidr), specPath.Child("loadBalancerSourceRanges").Index(i))...)
	}

	errs = append(errs, validateTrafficPolicies(svc)...)
	return errs
}

// isHeadless reports whether the service has no cluster IP on purpose.
func isHeadless(svc *corev1.Service) bool {
	return len(svc.Spec.ClusterIPs) == 1 && svc.Spec.ClusterIPs[0] == corev1.ClusterIPNone
}

// validateServicePorts checks the ports a service forwards. With more than
// one port every port needs a name, so that endpoints can tell them apart.
func validateServicePorts(svc *corev1.Service) field.ErrorList {
	var errs field.ErrorList
	spec := &svc.Spec
	portsPath := specPath.Child("ports")
	names := sets.New[string]()
	type protoPort struct {
		protocol corev1.Protocol
		port     int32
	}
	ports := map[protoPort]bool{}
	nodePorts := map[protoPort]bool{}
	for i, sp := range spec.Ports {
		idx := portsPath.Index(i)
		switch {
		case len(spec.Ports) > 1 && sp.Name == "":
			errs = append(errs, field.Required(idx.Child("name"), ""))
		case sp.Name != "":
			errs = append(errs, validateDNS1123Label(sp.Name, idx.Child("name"))...)
			if names.Has(sp.Name) {
				errs = append(errs, field.Duplicate(idx.Child("name"), sp.Name))
			}
			names.Insert(sp.Name)
		}
		errs = append(errs, invalidEach(idx.Child("port"), sp.Port, utilvalidation.IsValidPortNum(int(sp.Port)))...)
		switch {
		case sp.Protocol == "":
			errs = append(errs, field.Required(idx.Child("protocol"), ""))
		case !slices.Contains(supportedPortProtocols, sp.Protocol):
			errs = append(errs, field.NotSupported(idx.Child("protocol"), sp.Protocol, supportedPortProtocols))
		}
		errs = append(errs, validatePortNumOrName(sp.TargetPort, idx.Child("targetPort"))...)
		if sp.AppProtocol != nil {
			errs = append(errs, validateQualifiedName(*sp.AppProtocol, idx.Child("appProtocol"))...)
		}

		// The allocator picks node ports and checks the node port range;
		// here a node port only needs to be a port number, and only
		// services reachable from outside have one.
		if sp.NodePort != 0 {
			if spec.Type == corev1.ServiceTypeClusterIP {
				errs = append(errs, field.Forbidden(idx.Child("nodePort"), "may not be used when `type` is 'ClusterIP'"))
			}
			errs = append(errs, invalidEach(idx.Child("nodePort"), sp.NodePort, utilvalidation.IsValidPortNum(int(sp.NodePort)))...)
			key := protoPort{sp.Protocol, sp.NodePort}
			if nodePorts[key] {
				errs = append(errs, field.Duplicate(idx.Child("nodePort"), sp.NodePort))
			}
			nodePorts[key] = true
		}
		key := protoPort{sp.Protocol, sp.Port}
		if ports[key] {
			errs = append(errs, field.Duplicate(idx, corev1.ServicePort{Protocol: sp.Protocol, Port: sp.Port}))
		}
		ports[key] = true
	}
	return errs
}

// validateSessionAffinity checks spec.sessionAffinity: None spreads every
// connection over the endpoints, ClientIP keeps a client on one endpoint
// for a while.
func validateSessionAffinity(spec *corev1.ServiceSpec) field.ErrorList {
	p := specPath.Child("sessionAffinity")
	switch {
	case spec.SessionAffinity == "":
		return field.ErrorList{field.Required(p, "")}
	case !slices.Contains(supportedSessionAffinities, spec.SessionAffinity):
		return field.ErrorList{field.NotSupported(p, spec.SessionAffinity, supportedSessionAffinities)}
	}
	configPath := specPath.Child("sessionAffinityConfig")
	if spec.SessionAffinity == corev1.ServiceAffinityNone {
		if spec.SessionAffinityConfig != nil {
			return field.ErrorList{field.Forbidden(configPath, "must not be set when session affinity is None")}
		}
		return nil
	}
	const whenClientIP = "when session affinity type is ClientIP"
	c := spec.SessionAffinityConfig
	switch {
	case c == nil:
		return field.ErrorList{field.Required(configPath, whenClientIP)}
	case c.ClientIP == nil:
		return field.ErrorList{field.Required(configPath.Child("clientIP"), whenClientIP)}
	case c.ClientIP.TimeoutSeconds == nil:
		return field.ErrorList{field.Required(configPath.Child("clientIP", "timeoutSeconds"), whenClientIP)}
	case *c.ClientIP.TimeoutSeconds <= 0 || *c.ClientIP.TimeoutSeconds > maxClientIPAffinitySeconds:
		return field.ErrorList{field.Invalid(configPath.Child("clientIP", "timeoutSeconds"), *c.ClientIP.TimeoutSeconds,
			fmt.Sprintf("must be greater than 0 and less than %d", maxClientIPAffinitySeconds))}
	}
	return nil
}

// validateClusterIPs checks spec.clusterIP and spec.clusterIPs, which the
// defaulter keeps in step: clusterIPs[0] is clusterIP, "" asks the
// allocator for an address, "None" makes the service headless, and a
// second entry may add the other IP family.
func validateClusterIPs(svc *corev1.Service) field.ErrorList {
	spec := &svc.Spec
	var errs field.ErrorList
	for i, f := range spec.IPFamilies {
		p := specPath.Child("ipFamilies").Index(i)
		if !slices.Contains(supportedIPFamilies, f) {
			errs = append(errs, field.NotSupported(p, f, supportedIPFamilies))
		}
		if slices.Contains(spec.IPFamilies[:i], f) {
			errs = append(errs, field.Duplicate(p, f))
		}
	}
	if p := spec.IPFamilyPolicy; p != nil && !slices.Contains(supportedIPFamilyPolicies, *p) {
		errs = append(errs, field.NotSupported(specPath.Child("ipFamilyPolicy"), *p, supportedIPFamilyPolicies))
	}
	if spec.Type == corev1.ServiceTypeExternalName {
		return errs // checked by validateService
	}

	ipsPath := specPath.Child("clusterIPs")
	if spec.ClusterIP != "" {
		switch {
		case len(spec.ClusterIPs) == 0:
			errs = append(errs, field.Required(ipsPath, ""))
		case spec.ClusterIPs[0] != spec.ClusterIP:
			errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "first value must match `clusterIP`"))
		}
	} else if len(spec.ClusterIPs) > 0 {
		errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "must be empty when `clusterIP` is not specified"))
	}

	invalid := false
	for i, ip := range spec.ClusterIPs {
		if i == 0 && ip == corev1.ClusterIPNone {
			if len(spec.ClusterIPs) > 1 {
				invalid = true
				errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "'None' must be the first and only value"))
			}
			continue
		}
		if ipErrs := validateIP(ip, ipsPath.Index(i)); len(ipErrs) > 0 {
			invalid = true
			errs = append(errs, ipErrs...)
		}
	}
	if len(spec.ClusterIPs) > 2 {
		errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "may only hold up to 2 values"))
	}
	if invalid || isHeadless(svc) {
		return errs
	}
	if len(spec.ClusterIPs) == 2 && isIPv6(spec.ClusterIPs[0]) == isIPv6(spec.ClusterIPs[1]) {
		errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "may specify no more than one IP for each IP family"))
	}
	for i, ip := range spec.ClusterIPs {
		if i >= len(spec.IPFamilies) {
			break
		}
		switch f := spec.IPFamilies[i]; {
		case f == corev1.IPv4Protocol && isIPv6(ip):
			errs = append(errs, field.Invalid(ipsPath.Index(i), ip, fmt.Sprintf("expected an IPv4 value as indicated by `ipFamilies[%v]`", i)))
		case f == corev1.IPv6Protocol && !isIPv6(ip):
			errs = append(errs, field.Invalid(ipsPath.Index(i), ip, fmt.Sprintf("expected an IPv6 value as indicated by `ipFamilies[%v]`", i)))
		}
	}
	return errs
}

// isIPv6 reports whether ip is an IPv6 address (and not IPv4).
func isIPv6(ip string) bool {
	addr, err := netip.ParseAddr(ip)
	return err == nil && addr.Is6() && !addr.Is4In6()
}

// validateTrafficPolicies checks which endpoints receive traffic: all of
// them (Cluster), or only those on the node the traffic arrived at (Local).
func validateTrafficPolicies(svc *corev1.Service) field.ErrorList {
	var errs field.ErrorList
	spec := &svc.Spec
	etpPath := specPath.Child("externalTrafficPolicy")
	if externallyAccessible(svc) {
		switch {
		case spec.ExternalTrafficPolicy == "":
			errs = append(errs, field.Required(etpPath, ""))
		case !slices.Contains(supportedExternalPolicies, spec.ExternalTrafficPolicy):
			errs = append(errs, field.NotSupported(etpPath, spec.ExternalTrafficPolicy, supportedExternalPolicies))
		}
	} else if spec.ExternalTrafficPolicy != "" {
		errs = append(errs, field.Invalid(etpPath, spec.ExternalTrafficPolicy, "may only be set for externally-accessible services"))
	}

	hcPath := specPath.Child("healthCheckNodePort")
	needsHealthCheck := spec.Type == corev1.ServiceTypeLoadBalancer && spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
	switch {
	case spec.HealthCheckNodePort != 0 && !needsHealthCheck:
		errs = append(errs, field.Invalid(hcPath, spec.HealthCheckNodePort, "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
	case spec.HealthCheckNodePort != 0:
		errs = append(errs, invalidEach(hcPath, spec.HealthCheckNodePort, utilvalidation.IsValidPortNum(int(spec.HealthCheckNodePort)))...)
	}

	itpPath := specPath.Child("internalTrafficPolicy")
	if p := spec.InternalTrafficPolicy; p == nil {
		switch spec.Type {
		case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer:
			errs = append(errs, field.Required(itpPath, ""))
		}
	} else if !slices.Contains(supportedInternalPolicies, *p) {
		errs = append(errs, field.NotSupported(itpPath, *p, supportedInternalPolicies))
	}
	return errs
}

// externallyAccessible reports whether clients outside the cluster can
// reach the service: through node ports, a load balancer or external IPs.
func externallyAccessible(svc *corev1.Service) bool {
	switch svc.Spec.Type {
	case corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer:
		return true
	case corev1.ServiceTypeClusterIP:
		return len(svc.Spec.ExternalIPs) > 0
	}
	return false
}

// validateServiceUpdate checks an update of a Service. Its cluster IP is
// fixed once allocated: clients and the proxies of every node use it. A
// second IP family may be added or removed, but the first never changes.
func validateServiceUpdate(svc, old *corev1.Service) field.ErrorList {
	errs := validateService(svc)
	errs = append(errs, validateObjectMetaUpdate(&svc.ObjectMeta, &old.ObjectMeta)...)

	// Moving to or from ExternalName releases or allocates the IPs.
	if svc.Spec.Type == corev1.ServiceTypeExternalName || old.Spec.Type == corev1.ServiceTypeExternalName {
		return errs
	}
	if isHeadless(svc) && isHeadless(old) {
		return errs
	}
	newIPs, oldIPs := svc.Spec.ClusterIPs, old.Spec.ClusterIPs
	ipsPath := specPath.Child("clusterIPs")
	switch {
	case old.Spec.ClusterIP != "" && svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != old.Spec.ClusterIP:
		// The address every node's proxy and every client knows.
		errs = append(errs, field.Invalid(specPath.Child("clusterIP"), svc.Spec.ClusterIP, "field is immutable"))
	case len(newIPs) == len(oldIPs):
		for i := range oldIPs {
			if newIPs[i] != oldIPs[i] {
				errs = append(errs, field.Invalid(ipsPath.Index(i), newIPs, "may not change once set"))
			}
		}
	case len(newIPs) < len(oldIPs):
		if len(newIPs) == 0 {
			errs = append(errs, field.Invalid(ipsPath.Index(0), newIPs, "primary clusterIP can not be unset"))
		} else if newIPs[0] != oldIPs[0] {
			errs = append(errs, field.Invalid(ipsPath.Index(0), newIPs, "may not change once set"))
		}
		if len(newIPs) == 1 && (svc.Spec.IPFamilyPolicy == nil || *svc.Spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack) {
			errs = append(errs, field.Invalid(specPath.Child("ipFamilyPolicy"), svc.Spec.IPFamilyPolicy, "must be set to 'SingleStack' when releasing the secondary clusterIP"))
		}
	default:
		if len(oldIPs) > 0 && newIPs[0] != oldIPs[0] {
			errs = append(errs, field.Invalid(ipsPath.Index(0), newIPs, "may not change once set"))
		}
	}
	if len(old.Spec.IPFamilies) > 0 && len(svc.Spec.IPFamilies) > 0 && svc.Spec.IPFamilies[0] != old.Spec.IPFamilies[0] {
		errs = append(errs, field.Invalid(specPath.Child("ipFamilies").Index(0), svc.Spec.IPFamilies, "may not change once set"))
	}
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer && old.Spec.Type == corev1.ServiceTypeLoadBalancer {
		if !equalStringPtr(svc.Spec.LoadBalancerClass, old.Spec.LoadBalancerClass) {
			errs = append(errs, field.Invalid(specPath.Child("loadBalancerClass"), svc.Spec.LoadBalancerClass, "may not change once set"))
		}
	}
	return errs
}

func equalStringPtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// validateServiceStatusUpdate checks a write to a Service's status: the
// addresses of its load balancer.
func validateServiceStatusUpdate(svc, old *corev1.Service) field.ErrorList {
	errs := validateObjectMetaUpdate(&svc.ObjectMeta, &old.ObjectMeta)
	for i, ing := range svc.Status.LoadBalancer.Ingress {
		idx := statusPath.Child("loadBalancer", "ingress").Index(i)
		if ing.IP != "" {
			errs = append(errs, validateIP(ing.IP, idx.Child("ip"))...)
		}
		if ing.Hostname != "" {
			errs = append(errs, validateDNS1123Subdomain(ing.Hostname, idx.Child("hostname"))...)
			if _, err := netip.ParseAddr(ing.Hostname); err == nil {
				errs = append(errs, field.Invalid(idx.Child("hostname"), ing.Hostname, "must be a DNS name, not an IP address"))
			}
		}
	}
	return errs
}
