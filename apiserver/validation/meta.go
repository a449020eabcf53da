package validation

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Paths that many rules start from.
var (
	metadataPath = field.NewPath("metadata")
	specPath     = field.NewPath("spec")
	statusPath   = field.NewPath("status")
)

// Messages Kubernetes uses in many places.
const (
	isNegativeErrorMsg    = apivalidation.IsNegativeErrorMsg // "must be greater than or equal to 0"
	isNotPositiveErrorMsg = "must be greater than 0"
	fieldImmutableMsg     = apivalidation.FieldImmutableErrorMsg // "field is immutable"
)

// Name rules. Each kind's metadata.name must be usable where Kubernetes uses
// it: a Service name becomes a DNS label that must start with a letter, a
// Namespace name a DNS label, most other names a DNS subdomain.
var (
	nameIsDNSSubdomain = apivalidation.NameIsDNSSubdomain
	nameIsDNSLabel     = apivalidation.NameIsDNSLabel
	nameIsDNS1035Label = apivalidation.NameIsDNS1035Label
)

// validateObjectMeta checks the metadata of a new object: a name (or a
// generateName) that follows nameFn, a namespace when the kind is
// namespaced and none when it is not, and valid labels, annotations, owner
// references and finalizers.
func validateObjectMeta(meta *metav1.ObjectMeta, namespaced bool, nameFn apivalidation.ValidateNameFunc) field.ErrorList {
	return apivalidation.ValidateObjectMeta(meta, namespaced, nameFn, metadataPath)
}

// validateObjectMetaUpdate checks the metadata rules of every update: the
// name, namespace, uid and creationTimestamp may not change, a
// resourceVersion is required, the generation may not go backwards, and no
// finalizer may be added once deletion has started.
func validateObjectMetaUpdate(newMeta, oldMeta *metav1.ObjectMeta) field.ErrorList {
	return apivalidation.ValidateObjectMetaUpdate(newMeta, oldMeta, metadataPath)
}

// validatePositiveField requires value > 0.
func validatePositiveField(value int64, path *field.Path) field.ErrorList {
	if value <= 0 {
		return field.ErrorList{field.Invalid(path, value, isNotPositiveErrorMsg)}
	}
	return nil
}

// validateNonnegativeField requires value >= 0.
func validateNonnegativeField(value int64, path *field.Path) field.ErrorList {
	return apivalidation.ValidateNonnegativeField(value, path)
}

// invalidEach turns the messages of one of apimachinery's Is* checks into
// Invalid errors on path.
func invalidEach(path *field.Path, value any, msgs []string) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range msgs {
		errs = append(errs, field.Invalid(path, value, msg))
	}
	return errs
}

// validateDNS1123Label requires a DNS label: up to 63 lower case letters,
// digits and '-', starting and ending with a letter or digit.
func validateDNS1123Label(value string, path *field.Path) field.ErrorList {
	return invalidEach(path, value, utilvalidation.IsDNS1123Label(value))
}

// validateDNS1123Subdomain requires a DNS subdomain: dot-separated labels,
// up to 253 characters.
func validateDNS1123Subdomain(value string, path *field.Path) field.ErrorList {
	return invalidEach(path, value, utilvalidation.IsDNS1123Subdomain(value))
}

// validateQualifiedName requires what Kubernetes calls a qualified name, the
// shape of a label key: "name" or "prefix.example.com/name".
func validateQualifiedName(value string, path *field.Path) field.ErrorList {
	return invalidEach(path, value, utilvalidation.IsQualifiedName(value))
}

// validateLabelValue requires a valid label value (63 characters at most).
func validateLabelValue(value string, path *field.Path) field.ErrorList {
	if msgs := utilvalidation.IsValidLabelValue(value); len(msgs) > 0 {
		return field.ErrorList{field.Invalid(path, value, strings.Join(msgs, ";"))}
	}
	return nil
}

// validatePortNumOrName accepts a port number (1-65535) or the name of a
// container port (an IANA service name such as "http").
func validatePortNumOrName(port intstr.IntOrString, path *field.Path) field.ErrorList {
	switch port.Type {
	case intstr.Int:
		return invalidEach(path, port.IntValue(), utilvalidation.IsValidPortNum(port.IntValue()))
	case intstr.String:
		return invalidEach(path, port.StrVal, utilvalidation.IsValidPortName(port.StrVal))
	}
	return field.ErrorList{field.InternalError(path, fmt.Errorf("unknown type: %v", port.Type))}
}

// validateNonnegativeQuantity requires a quantity >= 0.
func validateNonnegativeQuantity(q resource.Quantity, path *field.Path) field.ErrorList {
	if q.Sign() < 0 {
		return field.ErrorList{field.Invalid(path, q.String(), isNegativeErrorMsg)}
	}
	return nil
}

// validateIP requires an IP address in the form Kubernetes accepts for its
// older IP fields (clusterIP, podIP, hostIP): no leading zeros in IPv4
// octets and no IPv4-mapped IPv6 addresses, but not necessarily canonical.
func validateIP(value string, path *field.Path) field.ErrorList {
	return utilvalidation.IsValidIPForLegacyField(path, value, true, nil)
}

// validateCIDR requires a CIDR ("10.244.1.0/24") with no bits set beyond
// the prefix length.
func validateCIDR(value string, path *field.Path) field.ErrorList {
	return utilvalidation.IsValidCIDRForLegacyField(path, value, true, nil)
}

// validateImmutable reports an error when a field changed in an update.
func validateImmutable(newVal, oldVal any, path *field.Path) field.ErrorList {
	return apivalidation.ValidateImmutableField(newVal, oldVal, path)
}
