package validation

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/diff"
	"k8s.io/apimachinery/pkg/util/sets"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validatePodCreate checks a new Pod.
func validatePodCreate(pod *corev1.Pod) field.ErrorList {
	errs := validatePod(pod)
	// Ephemeral (debug) containers are added to a running pod through a
	// subresource of their own, never when the pod is created.
	if len(pod.Spec.EphemeralContainers) > 0 {
		errs = append(errs, field.Forbidden(specPath.Child("ephemeralContainers"), "cannot be set on create"))
	}
	if pod.Spec.NodeName != "" && len(pod.Spec.SchedulingGates) > 0 {
		errs = append(errs, field.Forbidden(specPath.Child("nodeName"), "cannot be set until all schedulingGates have been cleared"))
	}
	return errs
}

// validatePod checks what every version of a Pod must satisfy, new or
// updated: its metadata, its spec, and the addresses in its status.
func validatePod(pod *corev1.Pod) field.ErrorList {
	errs := validateObjectMeta(&pod.ObjectMeta, true, nameIsDNSSubdomain)
	errs = append(errs, validatePodSpec(&pod.Spec, specPath)...)
	// A template's image may be written by a tool later; a Pod's image is
	// about to be pulled, so stray spaces are a mistake.
	errs = append(errs, validateImageWhitespace(pod.Spec.Containers, specPath.Child("containers"))...)
	errs = append(errs, validateImageWhitespace(pod.Spec.InitContainers, specPath.Child("initContainers"))...)
	errs = append(errs, validatePodIPs(&pod.Status)...)
	return errs
}

func validateImageWhitespace(containers []corev1.Container, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, c := range containers {
		if strings.TrimSpace(c.Image) != c.Image {
			errs = append(errs, field.Invalid(path.Index(i).Child("image"), c.Image, "must not have leading or trailing whitespace"))
		}
	}
	return errs
}

// validatePodTemplateSpec checks the pod template of a Deployment or
// ReplicaSet: its labels and annotations, and its spec.
func validatePodTemplateSpec(t *corev1.PodTemplateSpec, path *field.Path) field.ErrorList {
	errs := metav1validation.ValidateLabels(t.Labels, path.Child("metadata", "labels"))
	errs = append(errs, apivalidation.ValidateAnnotations(t.Annotations, path.Child("metadata", "annotations"))...)
	errs = append(errs, validatePodSpec(&t.Spec, path.Child("spec"))...)
	if len(t.Spec.EphemeralContainers) > 0 {
		errs = append(errs, field.Forbidden(path.Child("spec", "ephemeralContainers"), "ephemeral containers not allowed in pod template"))
	}
	return errs
}

// validatePodSpec checks a pod spec, of a Pod or of a template.
func validatePodSpec(spec *corev1.PodSpec, path *field.Path) field.ErrorList {
	volumes, errs := validateVolumes(spec.Volumes, path.Child("volumes"))

	// Container names are unique across all kinds of containers, because
	// logs, exec and statuses name a container without saying its kind.
	names := sets.New[string]()
	errs = append(errs, validateContainers(spec.Containers, volumes, names, spec.TerminationGracePeriodSeconds, path.Child("containers"))...)
	errs = append(errs, validateInitContainers(spec.InitContainers, volumes, names, spec.TerminationGracePeriodSeconds, path.Child("initContainers"))...)
	for i, ec := range spec.EphemeralContainers {
		namePath := path.Child("ephemeralContainers").Index(i).Child("name")
		errs = append(errs, validateContainerName(ec.Name, names, namePath)...)
	}
	errs = append(errs, validateHostPorts(spec, path)...)

	errs = append(errs, validateRestartPolicy(spec.RestartPolicy, path.Child("restartPolicy"))...)
	errs = append(errs, validateDNSPolicy(spec.DNSPolicy, path.Child("dnsPolicy"))...)
	errs = append(errs, validatePodDNSConfig(spec.DNSConfig, spec.DNSPolicy, path.Child("dnsConfig"))...)
	errs = append(errs, metav1validation.ValidateLabels(spec.NodeSelector, path.Child("nodeSelector"))...)
	errs = append(errs, validatePodSecurityContext(spec, path)...)
	errs = append(errs, validateAffinity(spec.Affinity, path.Child("affinity"))...)
	errs = append(errs, validateTolerations(spec.Tolerations, path.Child("tolerations"))...)
	errs = append(errs, validateTopologySpreadConstraints(spec.TopologySpreadConstraints, path.Child("topologySpreadConstraints"))...)

	for _, f := range []struct {
		value string
		name  string
	}{
		{spec.ServiceAccountName, "serviceAccountName"},
		{spec.NodeName, "nodeName"},
		{spec.PriorityClassName, "priorityClassName"},
	} {
		if f.value != "" {
			errs = append(errs, invalidEach(path.Child(f.name), f.value, nameIsDNSSubdomain(f.value, false))...)
		}
	}
	if spec.Hostname != "" {
		errs = append(errs, validateDNS1123Label(spec.Hostname, path.Child("hostname"))...)
	}
	if spec.Subdomain != "" {
		errs = append(errs, validateDNS1123Label(spec.Subdomain, path.Child("subdomain"))...)
	}
	if d := spec.ActiveDeadlineSeconds; d != nil && (*d < 1 || *d > math.MaxInt32) {
		errs = append(errs, field.Invalid(path.Child("activeDeadlineSeconds"), *d, utilvalidation.InclusiveRangeError(1, math.MaxInt32)))
	}
	if g := spec.TerminationGracePeriodSeconds; g != nil {
		// Kubernetes stores a negative grace period and treats it as 1;
		// Skiff refuses it instead.
		errs = append(errs, validateNonnegativeField(*g, path.Child("terminationGracePeriodSeconds"))...)
	}
	for i, gate := range spec.ReadinessGates {
		errs = append(errs, validateQualifiedName(string(gate.ConditionType), path.Child("readinessGates").Index(i).Child("conditionType"))...)
	}
	for i, alias := range spec.HostAliases {
		idx := path.Child("hostAliases").Index(i)
		errs = append(errs, validateIP(alias.IP, idx.Child("ip"))...)
		for j, host := range alias.Hostnames {
			errs = append(errs, validateDNS1123Subdomain(host, idx.Child("hostnames").Index(j))...)
		}
	}
	return errs
}

var (
	supportedRestartPolicies = []corev1.RestartPolicy{corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}
	supportedDNSPolicies     = []corev1.DNSPolicy{corev1.DNSClusterFirstWithHostNet, corev1.DNSClusterFirst, corev1.DNSDefault, corev1.DNSNone}
)

func validateRestartPolicy(p corev1.RestartPolicy, path *field.Path) field.ErrorList {
	switch {
	case p == "":
		return field.ErrorList{field.Required(path, "")}
	case !slices.Contains(supportedRestartPolicies, p):
		return field.ErrorList{field.NotSupported(path, p, supportedRestartPolicies)}
	}
	return nil
}

func validateDNSPolicy(p corev1.DNSPolicy, path *field.Path) field.ErrorList {
	switch {
	case p == "":
		return field.ErrorList{field.Required(path, "")}
	case !slices.Contains(supportedDNSPolicies, p):
		return field.ErrorList{field.NotSupported(path, p, supportedDNSPolicies)}
	}
	return nil
}

// Limits of a pod's own DNS configuration, the same as the C library's.
const (
	maxDNSNameservers     = 3
	maxDNSSearchPaths     = 32
	maxDNSSearchListChars = 2048
)

// validatePodDNSConfig checks spec.dnsConfig. With dnsPolicy None the pod
// gets only what dnsConfig says, so it must name a nameserver.
func validatePodDNSConfig(c *corev1.PodDNSConfig, policy corev1.DNSPolicy, path *field.Path) field.ErrorList {
	if policy == corev1.DNSNone {
		if c == nil {
			return field.ErrorList{field.Required(path, "must provide `dnsConfig` when `dnsPolicy` is None")}
		}
		if len(c.Nameservers) == 0 {
			return field.ErrorList{field.Required(path.Child("nameservers"), "must provide at least one DNS nameserver when `dnsPolicy` is None")}
		}
	}
	if c == nil {
		return nil
	}
	var errs field.ErrorList
	if len(c.Nameservers) > maxDNSNameservers {
		errs = append(errs, field.Invalid(path.Child("nameservers"), c.Nameservers, fmt.Sprintf("must not have more than %v nameservers", maxDNSNameservers)))
	}
	for i, ns := range c.Nameservers {
		errs = append(errs, validateIP(ns, path.Child("nameservers").Index(i))...)
	}
	if len(c.Searches) > maxDNSSearchPaths {
		errs = append(errs, field.Invalid(path.Child("searches"), c.Searches, fmt.Sprintf("must not have more than %v search paths", maxDNSSearchPaths)))
	}
	if n := len(strings.Join(c.Searches, " ")); n > maxDNSSearchListChars {
		errs = append(errs, field.Invalid(path.Child("searches"), c.Searches, fmt.Sprintf("must not have more than %v characters (including spaces) in the search list", maxDNSSearchListChars)))
	}
	for i, search := range c.Searches {
		// A search domain may end in a dot, like a fully qualified name.
		errs = append(errs, validateDNS1123Subdomain(strings.TrimSuffix(search, "."), path.Child("searches").Index(i))...)
	}
	for i, opt := range c.Options {
		if opt.Name == "" {
			errs = append(errs, field.Required(path.Child("options").Index(i), "Option.Name must not be empty"))
		}
	}
	return errs
}

// validatePodSecurityContext checks spec.securityContext and the namespace
// sharing switches that sit next to it in the spec.
func validatePodSecurityContext(spec *corev1.PodSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if spec.ShareProcessNamespace != nil && *spec.ShareProcessNamespace && spec.HostPID {
		errs = append(errs, field.Invalid(path.Child("shareProcessNamespace"), *spec.ShareProcessNamespace, "ShareProcessNamespace and HostPID cannot both be enabled"))
	}
	sc := spec.SecurityContext
	if sc == nil {
		return errs
	}
	path = path.Child("securityContext")
	if sc.RunAsUser != nil {
		errs = append(errs, invalidEach(path.Child("runAsUser"), *sc.RunAsUser, utilvalidation.IsValidUserID(*sc.RunAsUser))...)
	}
	if sc.RunAsGroup != nil {
		errs = append(errs, invalidEach(path.Child("runAsGroup"), *sc.RunAsGroup, utilvalidation.IsValidGroupID(*sc.RunAsGroup))...)
	}
	if sc.FSGroup != nil {
		errs = append(errs, invalidEach(path.Child("fsGroup"), *sc.FSGroup, utilvalidation.IsValidGroupID(*sc.FSGroup))...)
	}
	for i, gid := range sc.SupplementalGroups {
		errs = append(errs, invalidEach(path.Child("supplementalGroups").Index(i), gid, utilvalidation.IsValidGroupID(gid))...)
	}
	if p := sc.FSGroupChangePolicy; p != nil {
		supported := []corev1.PodFSGroupChangePolicy{corev1.FSGroupChangeOnRootMismatch, corev1.FSGroupChangeAlways}
		if !slices.Contains(supported, *p) {
			errs = append(errs, field.NotSupported(path.Child("fsGroupChangePolicy"), *p, supported))
		}
	}
	for i, s := range sc.Sysctls {
		if s.Name == "" {
			errs = append(errs, field.Required(path.Child("sysctls").Index(i).Child("name"), ""))
		}
	}
	errs = append(errs, validateSeccompProfile(sc.SeccompProfile, path.Child("seccompProfile"))...)
	return errs
}

// validateHostPorts refuses two containers that ask for the same port on
// the node: only one of them could ever start.
func validateHostPorts(spec *corev1.PodSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	used := sets.New[string]()
	check := func(containers []corev1.Container, path *field.Path) {
		for i, c := range containers {
			for j, p := range c.Ports {
				idx := path.Index(i).Child("ports").Index(j)
				// With hostNetwork every container port is a host port,
				// so it must say so.
				if spec.HostNetwork && p.HostPort != 0 && p.HostPort != p.ContainerPort {
					errs = append(errs, field.Invalid(idx.Child("containerPort"), p.ContainerPort, "must match `hostPort` when `hostNetwork` is true"))
				}
				if p.HostPort == 0 {
					continue
				}
				key := fmt.Sprintf("%s/%s/%d", p.HostIP, p.Protocol, p.HostPort)
				if used.Has(key) {
					errs = append(errs, field.Duplicate(idx.Child("hostPort"), key))
				}
				used.Insert(key)
			}
		}
	}
	check(spec.Containers, path.Child("containers"))
	check(spec.InitContainers, path.Child("initContainers"))
	return errs
}

// updatablePodSpecFields are the only parts of a pod spec an update may
// change, in the words of Kubernetes' error message. Everything else is
// fixed when the pod is created: to change it, replace the pod (which is
// what a Deployment does).
var updatablePodSpecFields = []string{
	"`spec.containers[*].image`",
	"`spec.initContainers[*].image`",
	"`spec.activeDeadlineSeconds`",
	"`spec.tolerations` (only additions to existing tolerations)",
	"`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
}

// validatePodUpdate checks an update of a Pod.
//
// The rule: copy the fields that may change from the new spec onto the old
// one and require the result to equal the new spec. spec.nodeName is not
// among them: a pod is assigned to a node only through the binding
// subresource, which the registry makes atomic.
func validatePodUpdate(newPod, oldPod *corev1.Pod) field.ErrorList {
	errs := validatePod(newPod)
	errs = append(errs, validateObjectMetaUpdate(&newPod.ObjectMeta, &oldPod.ObjectMeta)...)
	newSpec, oldSpec := &newPod.Spec, &oldPod.Spec

	for _, c := range []struct {
		new, old []corev1.Container
		path     *field.Path
	}{
		{newSpec.Containers, oldSpec.Containers, specPath.Child("containers")},
		{newSpec.InitContainers, oldSpec.InitContainers, specPath.Child("initContainers")},
	} {
		if len(c.new) != len(c.old) {
			// Nothing else can be compared container by container.
			return append(errs, field.Forbidden(c.path, "pod updates may not add or remove containers"))
		}
	}

	// activeDeadlineSeconds may be set, or shortened, but not lengthened
	// or removed: it is a promise the pod will be stopped by then.
	deadlinePath := specPath.Child("activeDeadlineSeconds")
	switch newD, oldD := newSpec.ActiveDeadlineSeconds, oldSpec.ActiveDeadlineSeconds; {
	case newD == nil && oldD != nil:
		errs = append(errs, field.Invalid(deadlinePath, newD, "must not update from a positive integer to nil value"))
	case newD != nil && oldD != nil && *newD > *oldD:
		errs = append(errs, field.Invalid(deadlinePath, *newD, "must be less than or equal to previous value"))
	}

	errs = append(errs, validateOnlyAddedTolerations(newSpec.Tolerations, oldSpec.Tolerations, specPath.Child("tolerations"))...)

	// munged is the old spec with every allowed change of the new one
	// applied. If it differs from the new spec, something else changed.
	munged := oldSpec.DeepCopy()
	for i := range munged.Containers {
		munged.Containers[i].Image = newSpec.Containers[i].Image
	}
	for i := range munged.InitContainers {
		munged.InitContainers[i].Image = newSpec.InitContainers[i].Image
	}
	munged.ActiveDeadlineSeconds = newSpec.ActiveDeadlineSeconds
	munged.Tolerations = newSpec.Tolerations
	if g := oldSpec.TerminationGracePeriodSeconds; g != nil && *g < 0 {
		if n := newSpec.TerminationGracePeriodSeconds; n != nil && *n == 1 {
			munged.TerminationGracePeriodSeconds = n
		}
	}
	if !apiequality.Semantic.DeepEqual(munged, newSpec) {
		// The diff is all a user gets to find the field they changed.
		specDiff := diff.Diff(munged, newSpec)
		errs = append(errs, field.Forbidden(specPath, fmt.Sprintf("pod updates may not change fields other than %s\n%v", strings.Join(updatablePodSpecFields, ","), specDiff)))
	}
	return errs
}

// validateOnlyAddedTolerations lets an update add tolerations and change
// the tolerationSeconds of existing ones, nothing else: a pod already
// running on a node must keep tolerating that node's taints.
func validateOnlyAddedTolerations(newT, oldT []corev1.Toleration, path *field.Path) field.ErrorList {
	for _, old := range oldT {
		found := false
		for _, t := range newT {
			o := old
			o.TolerationSeconds = t.TolerationSeconds
			if reflect.DeepEqual(o, t) {
				found = true
				break
			}
		}
		if !found {
			return field.ErrorList{field.Forbidden(path, "existing toleration can not be modified except its tolerationSeconds")}
		}
	}
	return nil
}

// validatePodStatusUpdate checks a write to a Pod's status, which the
// kubelet does as the pod runs.
func validatePodStatusUpdate(newPod, oldPod *corev1.Pod) field.ErrorList {
	errs := validateObjectMetaUpdate(&newPod.ObjectMeta, &oldPod.ObjectMeta)
	if newPod.Spec.NodeName != oldPod.Spec.NodeName {
		errs = append(errs, field.Forbidden(statusPath.Child("nodeName"), "may not be changed directly"))
	}
	status := &newPod.Status
	if status.NominatedNodeName != "" && status.NominatedNodeName != oldPod.Status.NominatedNodeName {
		errs = append(errs, invalidEach(statusPath.Child("nominatedNodeName"), status.NominatedNodeName, nameIsDNSSubdomain(status.NominatedNodeName, false))...)
	}
	supportedStatuses := []corev1.ConditionStatus{corev1.ConditionFalse, corev1.ConditionTrue, corev1.ConditionUnknown}
	for i, c := range status.Conditions {
		idx := statusPath.Child("conditions").Index(i)
		if c.Type == "" {
			errs = append(errs, field.Required(idx.Child("type"), "must not be empty"))
		} else {
			errs = append(errs, validateQualifiedName(string(c.Type), idx.Child("type"))...)
		}
		if !slices.Contains(supportedStatuses, c.Status) {
			errs = append(errs, field.NotSupported(idx.Child("status"), c.Status, supportedStatuses))
		}
	}
	restart := oldPod.Spec.RestartPolicy
	errs = append(errs, validateContainerStateTransition(status.ContainerStatuses, oldPod.Status.ContainerStatuses, restart, statusPath.Child("containerStatuses"))...)
	errs = append(errs, validateContainerStateTransition(status.InitContainerStatuses, oldPod.Status.InitContainerStatuses, restart, statusPath.Child("initContainerStatuses"))...)
	// Ephemeral containers are never restarted.
	errs = append(errs, validateContainerStateTransition(status.EphemeralContainerStatuses, oldPod.Status.EphemeralContainerStatuses, corev1.RestartPolicyNever, statusPath.Child("ephemeralContainerStatuses"))...)
	errs = append(errs, validatePodIPs(status)...)
	return errs
}

// validateContainerStateTransition keeps a container that finished for good
// from coming back to life in the status: under restartPolicy Never, or
// OnFailure after a success, a terminated container stays terminated.
func validateContainerStateTransition(newStatuses, oldStatuses []corev1.ContainerStatus, restart corev1.RestartPolicy, path *field.Path) field.ErrorList {
	if restart == corev1.RestartPolicyAlways {
		return nil
	}
	var errs field.ErrorList
	for i, old := range oldStatuses {
		t := old.State.Terminated
		if t == nil || (t.ExitCode != 0 && restart == corev1.RestartPolicyOnFailure) {
			continue
		}
		for _, s := range newStatuses {
			if s.Name == old.Name && s.State.Terminated == nil {
				errs = append(errs, field.Forbidden(path.Index(i).Child("state"), "may not be transitioned to non-terminated state"))
			}
		}
	}
	return errs
}

// validatePodIPs checks the pod and host addresses in a pod's status: valid
// IPs, and at most one of each family.
func validatePodIPs(status *corev1.PodStatus) field.ErrorList {
	var errs field.ErrorList
	if status.PodIP != "" {
		errs = append(errs, validateIP(status.PodIP, statusPath.Child("podIP"))...)
	}
	if status.HostIP != "" {
		errs = append(errs, validateIP(status.HostIP, statusPath.Child("hostIP"))...)
	}
	var podIPs, hostIPs []string
	for _, ip := range status.PodIPs {
		podIPs = append(podIPs, ip.IP)
	}
	for _, ip := range status.HostIPs {
		hostIPs = append(hostIPs, ip.IP)
	}
	errs = append(errs, validateDualStackIPs(podIPs, statusPath.Child("podIPs"))...)
	errs = append(errs, validateDualStackIPs(hostIPs, statusPath.Child("hostIPs"))...)
	return errs
}

// validateDualStackIPs checks a list of at most two addresses, one IPv4
// and one IPv6.
func validateDualStackIPs(ips []string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, ip := range ips {
		errs = append(errs, validateIP(ip, path.Index(i))...)
	}
	if len(errs) > 0 || len(ips) < 2 {
		return errs
	}
	seen := sets.New[string]()
	for i, ip := range ips {
		if seen.Has(ip) {
			errs = append(errs, field.Duplicate(path.Index(i), ip))
		}
		seen.Insert(ip)
	}
	if len(ips) > 2 || isIPv6(ips[0]) == isIPv6(ips[1]) {
		errs = append(errs, field.Invalid(path, ips, "may specify no more than one IP for each IP family"))
	}
	return errs
}

// validateBinding checks a binding of a pod to a node, the request the
// scheduler sends.
func validateBinding(b *corev1.Binding) field.ErrorList {
	var errs field.ErrorList
	if b.Target.Kind != "" && b.Target.Kind != "Node" {
		errs = append(errs, field.NotSupported(field.NewPath("target", "kind"), b.Target.Kind, []string{"Node", "<empty>"}))
	}
	if b.Target.Name == "" {
		errs = append(errs, field.Required(field.NewPath("target", "name"), ""))
	}
	return errs
}
