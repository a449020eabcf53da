package validation

import (
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Warnings returns one message per Kubernetes field that is set on obj but
// that Skiff accepts without implementing yet, e.g.
// "spec.affinity.podAntiAffinity: not supported by Skiff yet; the field is
// stored but has no effect". Nil when there are none.
//
// This file is the list of what Skiff does not do yet. When a component
// starts to implement a field, delete its line here (and its test case).
func Warnings(obj runtime.Object) []string {
	var w warnings
	switch o := obj.(type) {
	case *corev1.Pod:
		w.podSpec(&o.Spec, specPath)
	case *appsv1.Deployment:
		w.podSpec(&o.Spec.Template.Spec, specPath.Child("template", "spec"))
	case *appsv1.ReplicaSet:
		w.podSpec(&o.Spec.Template.Spec, specPath.Child("template", "spec"))
	case *appsv1.DaemonSet:
		w.podSpec(&o.Spec.Template.Spec, specPath.Child("template", "spec"))
	case *batchv1.Job:
		w.jobSpec(&o.Spec, specPath)
	case *batchv1.CronJob:
		w.jobSpec(&o.Spec.JobTemplate.Spec, specPath.Child("jobTemplate", "spec"))
	case *corev1.Service:
		w.service(o)
	case *corev1.Node:
		w.setIf(o.Spec.ConfigSource != nil, specPath.Child("configSource"))
	case *discoveryv1.EndpointSlice:
		for i, ep := range o.Endpoints {
			w.setIf(ep.Hints != nil, field.NewPath("endpoints").Index(i).Child("hints"))
		}
	case *corev1.Secret:
		// Kubernetes fills such a Secret with a token for its
		// ServiceAccount; Skiff has no token issuer yet.
		w.valueIf(o.Type == corev1.SecretTypeServiceAccountToken, field.NewPath("type"), o.Type)
	case *corev1.ServiceAccount:
		w.setIf(len(o.ImagePullSecrets) > 0, field.NewPath("imagePullSecrets"))
		w.valueIf(o.AutomountServiceAccountToken != nil && *o.AutomountServiceAccountToken, field.NewPath("automountServiceAccountToken"), true)
	case *coordinationv1.Lease:
		w.setIf(o.Spec.Strategy != nil, specPath.Child("strategy"))
		w.setIf(o.Spec.PreferredHolder != nil, specPath.Child("preferredHolder"))
	}
	return w
}

// notImplemented ends every warning.
const notImplemented = "not supported by Skiff yet; the field is stored but has no effect"

// warnings collects the messages of one object.
type warnings []string

// setIf warns about the field at path when set is true.
func (w *warnings) setIf(set bool, path *field.Path) {
	if set {
		*w = append(*w, fmt.Sprintf("%s: %s", path, notImplemented))
	}
}

// valueIf warns about one value of the field at path (a field whose other
// values Skiff does implement) when set is true.
func (w *warnings) valueIf(set bool, path *field.Path, value any) {
	if set {
		*w = append(*w, fmt.Sprintf("%s: %q is %s", path, fmt.Sprint(value), notImplemented))
	}
}

// supportedVolumeSources are the volume types the kubelet can set up.
var supportedVolumeSources = []string{"emptyDir", "hostPath", "configMap", "secret", "downwardAPI", "projected"}

// podSpec lists what the scheduler and the kubelet do not implement yet.
func (w *warnings) podSpec(spec *corev1.PodSpec, path *field.Path) {
	for i := range spec.Volumes {
		idx := path.Child("volumes").Index(i)
		for _, src := range volumeSources(&spec.Volumes[i].VolumeSource) {
			w.setIf(!slices.Contains(supportedVolumeSources, src), idx.Child(src))
		}
		if p := spec.Volumes[i].Projected; p != nil {
			// The kubelet refuses to start a pod with these (its
			// containers wait in CreateContainerConfigError): say so
			// at apply time already.
			for j, s := range p.Sources {
				sp := idx.Child("projected", "sources").Index(j)
				w.setIf(s.ServiceAccountToken != nil, sp.Child("serviceAccountToken"))
				w.setIf(s.ClusterTrustBundle != nil, sp.Child("clusterTrustBundle"))
				w.setIf(s.PodCertificate != nil, sp.Child("podCertificate"))
			}
		}
	}
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		idx := path.Child("initContainers").Index(i)
		w.valueIf(c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways, idx.Child("restartPolicy"), corev1.ContainerRestartPolicyAlways)
		w.container(c, idx)
	}
	for i := range spec.Containers {
		w.container(&spec.Containers[i], path.Child("containers").Index(i))
	}
	if a := spec.Affinity; a != nil {
		w.setIf(a.PodAffinity != nil, path.Child("affinity", "podAffinity"))
		w.setIf(a.PodAntiAffinity != nil, path.Child("affinity", "podAntiAffinity"))
	}
	w.setIf(len(spec.TopologySpreadConstraints) > 0, path.Child("topologySpreadConstraints"))
	w.setIf(len(spec.ImagePullSecrets) > 0, path.Child("imagePullSecrets"))
	// A pod runs as its ServiceAccount ("default" unless it names one),
	// but Skiff mounts no token for it yet: only asking for one is not
	// supported.
	w.valueIf(spec.AutomountServiceAccountToken != nil && *spec.AutomountServiceAccountToken, path.Child("automountServiceAccountToken"), true)
	w.setIf(spec.PriorityClassName != "", path.Child("priorityClassName"))
	w.setIf(spec.PreemptionPolicy != nil, path.Child("preemptionPolicy"))
	w.setIf(spec.RuntimeClassName != nil, path.Child("runtimeClassName"))
	w.setIf(len(spec.Overhead) > 0, path.Child("overhead"))
	w.setIf(len(spec.ReadinessGates) > 0, path.Child("readinessGates"))
	w.setIf(len(spec.HostAliases) > 0, path.Child("hostAliases"))
	w.setIf(spec.ShareProcessNamespace != nil && *spec.ShareProcessNamespace, path.Child("shareProcessNamespace"))
	w.setIf(spec.HostUsers != nil, path.Child("hostUsers"))
	w.setIf(spec.SetHostnameAsFQDN != nil && *spec.SetHostnameAsFQDN, path.Child("setHostnameAsFQDN"))
	w.setIf(spec.HostnameOverride != nil, path.Child("hostnameOverride"))
	w.setIf(spec.OS != nil, path.Child("os"))
	w.setIf(len(spec.SchedulingGates) > 0, path.Child("schedulingGates"))
	w.setIf(spec.SchedulingGroup != nil, path.Child("schedulingGroup"))
	w.setIf(len(spec.ResourceClaims) > 0, path.Child("resourceClaims"))
	w.setIf(spec.Resources != nil, path.Child("resources"))
	w.setIf(len(spec.EvictionResponders) > 0, path.Child("evictionResponders"))
	if sc := spec.SecurityContext; sc != nil {
		p := path.Child("securityContext")
		w.setIf(sc.SELinuxOptions != nil, p.Child("seLinuxOptions"))
		w.setIf(sc.WindowsOptions != nil, p.Child("windowsOptions"))
		w.setIf(sc.SeccompProfile != nil, p.Child("seccompProfile"))
		w.setIf(sc.AppArmorProfile != nil, p.Child("appArmorProfile"))
		w.setIf(len(sc.Sysctls) > 0, p.Child("sysctls"))
		w.setIf(sc.FSGroupChangePolicy != nil, p.Child("fsGroupChangePolicy"))
		w.setIf(sc.SELinuxChangePolicy != nil, p.Child("seLinuxChangePolicy"))
		w.setIf(sc.SupplementalGroupsPolicy != nil, p.Child("supplementalGroupsPolicy"))
	}
}

// container lists the container fields the kubelet does not implement.
func (w *warnings) container(c *corev1.Container, path *field.Path) {
	for i, ev := range c.Env {
		if from := ev.ValueFrom; from != nil {
			p := path.Child("env").Index(i).Child("valueFrom")
			w.setIf(from.FileKeyRef != nil, p.Child("fileKeyRef"))
		}
	}
	w.setIf(len(c.Resources.Claims) > 0, path.Child("resources", "claims"))
	w.setIf(len(c.ResizePolicy) > 0, path.Child("resizePolicy"))
	w.setIf(len(c.RestartPolicyRules) > 0, path.Child("restartPolicyRules"))
	w.setIf(len(c.VolumeDevices) > 0, path.Child("volumeDevices"))
	for i, m := range c.VolumeMounts {
		p := path.Child("volumeMounts").Index(i)
		w.setIf(m.SubPathExpr != "", p.Child("subPathExpr"))
		w.valueIf(m.MountPropagation != nil && *m.MountPropagation != corev1.MountPropagationNone, p.Child("mountPropagation"), deref(m.MountPropagation))
		w.valueIf(m.RecursiveReadOnly != nil && *m.RecursiveReadOnly != corev1.RecursiveReadOnlyDisabled, p.Child("recursiveReadOnly"), deref(m.RecursiveReadOnly))
	}
	w.setIf(c.Lifecycle != nil, path.Child("lifecycle"))
	if sc := c.SecurityContext; sc != nil {
		p := path.Child("securityContext")
		w.setIf(sc.SELinuxOptions != nil, p.Child("seLinuxOptions"))
		w.setIf(sc.WindowsOptions != nil, p.Child("windowsOptions"))
		w.setIf(sc.SeccompProfile != nil, p.Child("seccompProfile"))
		w.setIf(sc.AppArmorProfile != nil, p.Child("appArmorProfile"))
		w.setIf(sc.ProcMount != nil, p.Child("procMount"))
	}
}

// jobSpec lists what the Job controller does not implement, and what
// the scheduler and the kubelet do not in its pod template.
func (w *warnings) jobSpec(spec *batchv1.JobSpec, path *field.Path) {
	w.setIf(spec.PodFailurePolicy != nil, path.Child("podFailurePolicy"))
	w.setIf(spec.SuccessPolicy != nil, path.Child("successPolicy"))
	w.setIf(spec.BackoffLimitPerIndex != nil, path.Child("backoffLimitPerIndex"))
	w.setIf(spec.MaxFailedIndexes != nil, path.Child("maxFailedIndexes"))
	w.setIf(spec.ManagedBy != nil && *spec.ManagedBy != batchv1.JobControllerName, path.Child("managedBy"))
	w.podSpec(&spec.Template.Spec, path.Child("template", "spec"))
}

// service lists what the proxy and the allocators do not implement.
func (w *warnings) service(svc *corev1.Service) {
	spec := &svc.Spec
	w.valueIf(spec.Type == corev1.ServiceTypeLoadBalancer, specPath.Child("type"), spec.Type)
	w.valueIf(spec.Type == corev1.ServiceTypeExternalName, specPath.Child("type"), spec.Type)
	w.valueIf(spec.SessionAffinity == corev1.ServiceAffinityClientIP, specPath.Child("sessionAffinity"), spec.SessionAffinity)
	w.valueIf(spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal, specPath.Child("externalTrafficPolicy"), spec.ExternalTrafficPolicy)
	w.valueIf(spec.InternalTrafficPolicy != nil && *spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal, specPath.Child("internalTrafficPolicy"), deref(spec.InternalTrafficPolicy))
	w.setIf(len(spec.ExternalIPs) > 0, specPath.Child("externalIPs"))
	w.setIf(spec.LoadBalancerIP != "", specPath.Child("loadBalancerIP"))
	w.setIf(len(spec.LoadBalancerSourceRanges) > 0, specPath.Child("loadBalancerSourceRanges"))
	w.setIf(spec.LoadBalancerClass != nil, specPath.Child("loadBalancerClass"))
	w.setIf(spec.TrafficDistribution != nil, specPath.Child("trafficDistribution"))
	w.valueIf(spec.IPFamilyPolicy != nil && *spec.IPFamilyPolicy == corev1.IPFamilyPolicyRequireDualStack, specPath.Child("ipFamilyPolicy"), deref(spec.IPFamilyPolicy))
}

// deref returns what p points to, or the zero value.
func deref[T any](p *T) T {
	var v T
	if p != nil {
		v = *p
	}
	return v
}
