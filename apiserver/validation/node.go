package validation

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateNode checks a new Node.
func validateNode(node *corev1.Node) field.ErrorList {
	errs := validateObjectMeta(&node.ObjectMeta, false, nameIsDNSSubdomain)
	errs = append(errs, validateTaints(node.Spec.Taints, specPath.Child("taints"))...)
	errs = append(errs, validatePodCIDRs(&node.Spec)...)
	errs = append(errs, validateNodeStatus(&node.Status)...)
	return errs
}

// validateTaints checks a node's taints. A taint is identified by its key
// and effect, so that pair may appear only once.
func validateTaints(taints []corev1.Taint, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	type keyEffect struct {
		key    string
		effect corev1.TaintEffect
	}
	seen := map[keyEffect]bool{}
	for i, t := range taints {
		idx := path.Index(i)
		errs = append(errs, validateQualifiedName(t.Key, idx.Child("key"))...)
		errs = append(errs, validateLabelValue(t.Value, idx.Child("value"))...)
		errs = append(errs, validateTaintEffect(t.Effect, false, idx.Child("effect"))...)
		k := keyEffect{t.Key, t.Effect}
		if seen[k] {
			dup := field.Duplicate(idx, t)
			dup.Detail = "taints must be unique by key and effect pair"
			errs = append(errs, dup)
		}
		seen[k] = true
	}
	return errs
}

// validatePodCIDRs checks the address ranges the node's pods get their IPs
// from: valid CIDRs, at most one per IP family, podCIDRs[0] equal to
// podCIDR (the defaulter keeps the two in step).
func validatePodCIDRs(spec *corev1.NodeSpec) field.ErrorList {
	var errs field.ErrorList
	if spec.PodCIDR != "" {
		errs = append(errs, validateCIDR(spec.PodCIDR, specPath.Child("podCIDR"))...)
	}
	cidrsPath := specPath.Child("podCIDRs")
	for i, cidr := range spec.PodCIDRs {
		errs = append(errs, validateCIDR(cidr, cidrsPath.Index(i))...)
		if i > 0 && cidr == spec.PodCIDRs[0] {
			errs = append(errs, field.Duplicate(cidrsPath.Index(i), cidr))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	if spec.PodCIDR != "" && len(spec.PodCIDRs) > 0 && spec.PodCIDRs[0] != spec.PodCIDR {
		errs = append(errs, field.Invalid(cidrsPath, spec.PodCIDRs, "first value must match `podCIDR`"))
	}
	if n := len(spec.PodCIDRs); n > 2 || (n == 2 && isIPv6CIDR(spec.PodCIDRs[0]) == isIPv6CIDR(spec.PodCIDRs[1])) {
		errs = append(errs, field.Invalid(cidrsPath, spec.PodCIDRs, "may specify no more than one CIDR for each IP family"))
	}
	return errs
}

func isIPv6CIDR(cidr string) bool {
	ip, _, _ := strings.Cut(cidr, "/")
	return isIPv6(ip)
}

// validateNodeStatus checks what the kubelet reports about its node:
// capacities that are not negative and no address listed twice.
func validateNodeStatus(s *corev1.NodeStatus) field.ErrorList {
	var errs field.ErrorList
	for _, name := range sortedKeys(s.Capacity) {
		errs = append(errs, validateNonnegativeQuantity(s.Capacity[name], statusPath.Child("capacity").Key(string(name)))...)
	}
	for _, name := range sortedKeys(s.Allocatable) {
		errs = append(errs, validateNonnegativeQuantity(s.Allocatable[name], statusPath.Child("allocatable").Key(string(name)))...)
	}
	seen := map[corev1.NodeAddress]bool{}
	for i, a := range s.Addresses {
		if seen[a] {
			errs = append(errs, field.Duplicate(statusPath.Child("addresses").Index(i), a))
		}
		seen[a] = true
	}
	return errs
}

// nodeCIDRChangeMsg is Kubernetes' message for a changed pod CIDR.
const nodeCIDRChangeMsg = `node updates may not change podCIDR except from "" to valid`

// validateNodeUpdate checks an update of a Node. The pod CIDR and the
// provider ID may be set once (the node IPAM controller assigns the CIDR
// after the node registers) and never change after that: pods already
// have addresses from the range.
func validateNodeUpdate(node, old *corev1.Node) field.ErrorList {
	errs := validateNode(node)
	errs = append(errs, validateObjectMetaUpdate(&node.ObjectMeta, &old.ObjectMeta)...)
	errs = append(errs, validateNodeUpdateRules(node, old)...)
	return errs
}

func validateNodeUpdateRules(node, old *corev1.Node) field.ErrorList {
	var errs field.ErrorList
	switch {
	case old.Spec.PodCIDR != "" && node.Spec.PodCIDR != old.Spec.PodCIDR:
		errs = append(errs, field.Forbidden(specPath.Child("podCIDR"), nodeCIDRChangeMsg))
	case len(old.Spec.PodCIDRs) > 0 && !slices.Equal(node.Spec.PodCIDRs, old.Spec.PodCIDRs):
		errs = append(errs, field.Forbidden(specPath.Child("podCIDRs"), nodeCIDRChangeMsg))
	}
	if old.Spec.ProviderID != "" && node.Spec.ProviderID != old.Spec.ProviderID {
		errs = append(errs, field.Forbidden(specPath.Child("providerID"), `node updates may not change providerID except from "" to valid`))
	}
	if node.Spec.DoNotUseExternalID != old.Spec.DoNotUseExternalID {
		errs = append(errs, field.Forbidden(specPath.Child("externalID"), "may not be updated"))
	}
	return errs
}

// validateNodeStatusUpdate checks a write to a Node's status, the kubelet's
// heartbeat of capacity, conditions and addresses.
func validateNodeStatusUpdate(node, old *corev1.Node) field.ErrorList {
	errs := validateObjectMetaUpdate(&node.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validateNodeStatus(&node.Status)...)
	errs = append(errs, validateNodeUpdateRules(node, old)...)
	return errs
}
