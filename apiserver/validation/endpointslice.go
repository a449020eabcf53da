package validation

import (
	"fmt"
	"net/netip"
	"slices"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Size limits of one EndpointSlice. A Service with more endpoints gets
// more slices; small slices keep each update that watchers receive small.
const (
	maxEndpoints      = 1000
	maxAddresses      = 100
	maxPorts          = 20000
	maxTopologyLabels = 16
	maxZoneHints      = 8
	maxNodeHints      = 8
)

var addressTypes = []discoveryv1.AddressType{discoveryv1.AddressTypeFQDN, discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6}

// validateEndpointSlice checks a new EndpointSlice: the addresses of the
// ready and not-ready pods behind a Service, and the ports they serve.
func validateEndpointSlice(s *discoveryv1.EndpointSlice) field.ErrorList {
	errs := validateObjectMeta(&s.ObjectMeta, true, nameIsDNSSubdomain)
	typePath := field.NewPath("addressType")
	switch {
	case s.AddressType == "":
		errs = append(errs, field.Required(typePath, ""))
	case !slices.Contains(addressTypes, s.AddressType):
		errs = append(errs, field.NotSupported(typePath, s.AddressType, addressTypes))
	}
	errs = append(errs, validateEndpoints(s.Endpoints, s.AddressType, field.NewPath("endpoints"))...)
	errs = append(errs, validateEndpointPorts(s.Ports, field.NewPath("ports"))...)
	return errs
}

// validateEndpointSliceUpdate checks an update of an EndpointSlice. Its
// address type is fixed: a consumer that read IPv4 addresses from a slice
// must not find FQDNs there later.
func validateEndpointSliceUpdate(s, old *discoveryv1.EndpointSlice) field.ErrorList {
	errs := validateEndpointSlice(s)
	errs = append(errs, validateObjectMetaUpdate(&s.ObjectMeta, &old.ObjectMeta)...)
	errs = append(errs, validateImmutable(s.AddressType, old.AddressType, field.NewPath("addressType"))...)
	return errs
}

func validateEndpoints(endpoints []discoveryv1.Endpoint, addrType discoveryv1.AddressType, path *field.Path) field.ErrorList {
	if len(endpoints) > maxEndpoints {
		return field.ErrorList{field.TooMany(path, len(endpoints), maxEndpoints)}
	}
	var errs field.ErrorList
	for i, ep := range endpoints {
		idx := path.Index(i)
		addrPath := idx.Child("addresses")
		switch {
		case len(ep.Addresses) == 0:
			errs = append(errs, field.Required(addrPath, "must contain at least 1 address"))
		case len(ep.Addresses) > maxAddresses:
			errs = append(errs, field.TooMany(addrPath, len(ep.Addresses), maxAddresses))
		}
		for j, addr := range ep.Addresses {
			errs = append(errs, validateEndpointAddress(addr, addrType, addrPath.Index(j))...)
		}
		if ep.NodeName != nil {
			errs = append(errs, invalidEach(idx.Child("nodeName"), *ep.NodeName, nameIsDNSSubdomain(*ep.NodeName, false))...)
		}
		if ep.Hostname != nil {
			errs = append(errs, validateDNS1123Label(*ep.Hostname, idx.Child("hostname"))...)
		}
		topoPath := idx.Child("deprecatedTopology")
		if len(ep.DeprecatedTopology) > maxTopologyLabels {
			errs = append(errs, field.TooMany(topoPath, len(ep.DeprecatedTopology), maxTopologyLabels))
		}
		errs = append(errs, metav1validation.ValidateLabels(ep.DeprecatedTopology, topoPath)...)
		if h := ep.Hints; h != nil {
			if len(h.ForZones) > maxZoneHints {
				errs = append(errs, field.TooMany(idx.Child("hints", "forZones"), len(h.ForZones), maxZoneHints))
			}
			if len(h.ForNodes) > maxNodeHints {
				errs = append(errs, field.TooMany(idx.Child("hints", "forNodes"), len(h.ForNodes), maxNodeHints))
			}
		}
	}
	return errs
}

// validateEndpointAddress checks one address against the slice's type.
func validateEndpointAddress(addr string, addrType discoveryv1.AddressType, path *field.Path) field.ErrorList {
	switch addrType {
	case discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6:
		if errs := validateIP(addr, path); len(errs) > 0 {
			return errs
		}
		if ipv6 := isIPv6(addr); ipv6 != (addrType == discoveryv1.AddressTypeIPv6) {
			return field.ErrorList{field.Invalid(path, addr, fmt.Sprintf("must be a valid %s address", addrType))}
		}
		return validateEndpointIP(addr, path)
	case discoveryv1.AddressTypeFQDN:
		return utilvalidation.IsFullyQualifiedDomainName(path, addr)
	}
	return nil // an unknown address type is reported once, on addressType
}

// validateEndpointIP refuses addresses that cannot be a pod's: unspecified
// and loopback addresses mean "this machine" to whoever connects, and
// link-local addresses are used by nodes for their own purposes (such as a
// cloud's metadata service).
func validateEndpointIP(ip string, path *field.Path) field.ErrorList {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return field.ErrorList{field.Invalid(path, ip, "must be a valid IP address")}
	}
	addr = addr.Unmap()
	var errs field.ErrorList
	if addr.IsUnspecified() {
		errs = append(errs, field.Invalid(path, ip, fmt.Sprintf("may not be unspecified (%v)", ip)))
	}
	if addr.IsLoopback() {
		errs = append(errs, field.Invalid(path, ip, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
	}
	if addr.IsLinkLocalUnicast() {
		errs = append(errs, field.Invalid(path, ip, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
	}
	if addr.IsLinkLocalMulticast() {
		errs = append(errs, field.Invalid(path, ip, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"))
	}
	return errs
}

// validateEndpointPorts checks the ports of a slice: names unique (they
// match the Service's port names), and a protocol.
func validateEndpointPorts(ports []discoveryv1.EndpointPort, path *field.Path) field.ErrorList {
	if len(ports) > maxPorts {
		return field.ErrorList{field.TooMany(path, len(ports), maxPorts)}
	}
	var errs field.ErrorList
	names := map[string]bool{}
	for i, p := range ports {
		idx := path.Index(i)
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		if name != "" {
			errs = append(errs, validateDNS1123Label(name, idx.Child("name"))...)
		}
		if names[name] {
			errs = append(errs, field.Duplicate(idx.Child("name"), name))
		}
		names[name] = true
		switch {
		case p.Protocol == nil:
			errs = append(errs, field.Required(idx.Child("protocol"), ""))
		case !slices.Contains(supportedPortProtocols, *p.Protocol):
			errs = append(errs, field.NotSupported(idx.Child("protocol"), *p.Protocol, supportedPortProtocols))
		}
		if p.Port != nil {
			errs = append(errs, invalidEach(idx.Child("port"), *p.Port, utilvalidation.IsValidPortNum(int(*p.Port)))...)
		}
		if p.AppProtocol != nil {
			errs = append(errs, validateQualifiedName(*p.AppProtocol, idx.Child("appProtocol"))...)
		}
	}
	return errs
}
