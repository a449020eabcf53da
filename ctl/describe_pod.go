package ctl

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/skiffdev/skiff/ctl/printers"
)

// This file describes pods: their containers, volumes and status, in
// kubectl's layout. Pod templates (of deployments and replica sets) reuse
// the container and volume sections.

func describePod(pod *corev1.Pod, events *corev1.EventList, now time.Time) string {
	w := newDescribeWriter()
	w.write(0, "Name:\t%s\n", pod.Name)
	w.write(0, "Namespace:\t%s\n", pod.Namespace)
	if pod.Spec.Priority != nil {
		w.write(0, "Priority:\t%d\n", *pod.Spec.Priority)
	}
	if pod.Spec.PriorityClassName != "" {
		w.write(0, "Priority Class Name:\t%s\n", pod.Spec.PriorityClassName)
	}
	if pod.Spec.RuntimeClassName != nil && *pod.Spec.RuntimeClassName != "" {
		w.write(0, "Runtime Class Name:\t%s\n", *pod.Spec.RuntimeClassName)
	}
	if pod.Spec.ServiceAccountName != "" {
		w.write(0, "Service Account:\t%s\n", pod.Spec.ServiceAccountName)
	}
	if pod.Spec.NodeName == "" {
		w.write(0, "Node:\t<none>\n")
	} else {
		w.write(0, "Node:\t%s/%s\n", pod.Spec.NodeName, pod.Status.HostIP)
	}
	if pod.Status.StartTime != nil {
		w.write(0, "Start Time:\t%s\n", rfc1123(*pod.Status.StartTime))
	}
	w.labels("", "Labels", pod.Labels)
	w.annotations("", "Annotations", pod.Annotations)
	if pod.DeletionTimestamp != nil && pod.Status.Phase != corev1.PodFailed && pod.Status.Phase != corev1.PodSucceeded {
		w.write(0, "Status:\tTerminating (lasts %s)\n", printers.HumanAge(*pod.DeletionTimestamp, now))
		if pod.DeletionGracePeriodSeconds != nil {
			w.write(0, "Termination Grace Period:\t%ds\n", *pod.DeletionGracePeriodSeconds)
		}
	} else {
		w.write(0, "Status:\t%s\n", pod.Status.Phase)
	}
	if pod.Status.Reason != "" {
		w.write(0, "Reason:\t%s\n", pod.Status.Reason)
	}
	if pod.Status.Message != "" {
		w.write(0, "Message:\t%s\n", pod.Status.Message)
	}
	w.write(0, "IP:\t%s\n", pod.Status.PodIP)
	if len(pod.Status.PodIPs) == 0 {
		w.write(0, "IPs:\t<none>\n")
	} else {
		w.write(0, "IPs:\n")
		for _, ip := range pod.Status.PodIPs {
			w.write(1, "IP:\t%s\n", ip.IP)
		}
	}
	if by := controllerName(pod); by != "" {
		w.write(0, "Controlled By:\t%s\n", by)
	}
	if pod.Status.NominatedNodeName != "" {
		w.write(0, "NominatedNodeName:\t%s\n", pod.Status.NominatedNodeName)
	}
	if len(pod.Spec.InitContainers) > 0 {
		w.containers("", "Init Containers", pod.Spec.InitContainers, pod.Status.InitContainerStatuses, pod)
	}
	w.containers("", "Containers", pod.Spec.Containers, pod.Status.ContainerStatuses, pod)
	if len(pod.Spec.ReadinessGates) > 0 {
		w.write(0, "Readiness Gates:\n  Type\tStatus\n")
		for _, g := range pod.Spec.ReadinessGates {
			status := "<none>"
			for _, c := range pod.Status.Conditions {
				if c.Type == g.ConditionType {
					status = string(c.Status)
					break
				}
			}
			w.write(1, "%s \t%s \n", g.ConditionType, status)
		}
	}
	if len(pod.Status.Conditions) > 0 {
		w.write(0, "Conditions:\n  Type\tStatus\n")
		for _, c := range pod.Status.Conditions {
			w.write(1, "%s \t%s \n", c.Type, c.Status)
		}
	}
	w.volumes("", pod.Spec.Volumes)
	w.write(0, "QoS Class:\t%s\n", podQOS(pod))
	w.labels("", "Node-Selectors", pod.Spec.NodeSelector)
	w.tolerations("", pod.Spec.Tolerations)
	w.events(events, now)
	return w.String()
}

// podQOS is the pod's QoS class as the API server recorded it, or as
// computed from its containers' resources when it did not.
func podQOS(pod *corev1.Pod) corev1.PodQOSClass {
	if pod.Status.QOSClass != "" {
		return pod.Status.QOSClass
	}
	any, guaranteed := false, true
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[r]
			lim, hasLim := c.Resources.Limits[r]
			any = any || hasReq || hasLim
			if !hasLim || (hasReq && req.Cmp(lim) != 0) {
				guaranteed = false
			}
		}
	}
	switch {
	case !any:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

// containers writes a list of containers: of a pod (with their statuses)
// or of a pod template (pod nil, indent "  ").
func (w *describeWriter) containers(indent, title string, cs []corev1.Container, statuses []corev1.ContainerStatus, pod *corev1.Pod) {
	byName := map[string]corev1.ContainerStatus{}
	for _, s := range statuses {
		byName[s.Name] = s
	}
	if len(cs) == 0 {
		w.write(0, "%s%s: <none>\n", indent, title)
	} else {
		w.write(0, "%s%s:\n", indent, title)
	}
	nameIndent := ""
	if indent != "" {
		nameIndent = " "
	}
	for _, c := range cs {
		st, ok := byName[c.Name]
		w.write(1, "%s%s:\n", nameIndent, c.Name)
		if ok {
			w.write(2, "Container ID:\t%s\n", st.ContainerID)
		}
		w.write(2, "Image:\t%s\n", c.Image)
		if ok {
			w.write(2, "Image ID:\t%s\n", st.ImageID)
		}
		ports, hostPorts := containerPorts(c.Ports)
		if strings.Contains(ports, ",") {
			w.write(2, "Ports:\t%s\n", ports)
		} else {
			w.write(2, "Port:\t%s\n", printers.OrNone(ports))
		}
		if strings.Contains(hostPorts, ",") {
			w.write(2, "Host Ports:\t%s\n", hostPorts)
		} else {
			w.write(2, "Host Port:\t%s\n", printers.OrNone(hostPorts))
		}
		for _, cmd := range []struct {
			title string
			words []string
		}{{"Command", c.Command}, {"Args", c.Args}} {
			if len(cmd.words) == 0 {
				continue
			}
			w.write(2, "%s:\n", cmd.title)
			for _, word := range cmd.words {
				for _, line := range strings.Split(word, "\n") {
					w.write(3, "%s\n", line)
				}
			}
		}
		if ok {
			w.containerState("State", st.State)
			if st.LastTerminationState.Terminated != nil {
				w.containerState("Last State", st.LastTerminationState)
			}
			w.write(2, "Ready:\t%s\n", boolWord(st.Ready))
			w.write(2, "Restart Count:\t%d\n", st.RestartCount)
		}
		w.resources(2, c.Resources)
		for _, p := range []struct {
			title string
			probe *corev1.Probe
		}{{"Liveness", c.LivenessProbe}, {"Readiness", c.ReadinessProbe}, {"Startup", c.StartupProbe}} {
			if p.probe != nil {
				w.write(2, "%s:\t%s\n", p.title, describeProbe(p.probe))
			}
		}
		if len(c.EnvFrom) > 0 {
			w.write(2, "Environment Variables from:\n")
			for _, e := range c.EnvFrom {
				from, name, optional := "", "", false
				if e.ConfigMapRef != nil {
					from, name, optional = "ConfigMap", e.ConfigMapRef.Name, e.ConfigMapRef.Optional != nil && *e.ConfigMapRef.Optional
				} else if e.SecretRef != nil {
					from, name, optional = "Secret", e.SecretRef.Name, e.SecretRef.Optional != nil && *e.SecretRef.Optional
				}
				if e.Prefix != "" {
					from += fmt.Sprintf(" with prefix '%s'", e.Prefix)
				}
				w.write(3, "%s\t%s\tOptional: %t\n", name, from, optional)
			}
		}
		w.env(c, pod)
		if len(c.VolumeMounts) == 0 {
			w.write(2, "Mounts:\t<none>\n")
		} else {
			w.write(2, "Mounts:\n")
			mounts := append([]corev1.VolumeMount(nil), c.VolumeMounts...)
			sort.SliceStable(mounts, func(i, j int) bool { return mounts[i].MountPath < mounts[j].MountPath })
			for _, m := range mounts {
				flags := []string{"rw"}
				if m.ReadOnly {
					flags[0] = "ro"
				}
				if m.SubPath != "" {
					flags = append(flags, fmt.Sprintf("path=%q", m.SubPath))
				}
				w.write(3, "%s from %s (%s)\n", m.MountPath, m.Name, strings.Join(flags, ","))
			}
		}
	}
}

// containerPorts lists a container's ports and host ports: "80/TCP
// (http), 443/TCP".
func containerPorts(ports []corev1.ContainerPort) (string, string) {
	var cp, hp []string
	for _, p := range ports {
		name := ""
		if p.Name != "" {
			name = " (" + p.Name + ")"
		}
		cp = append(cp, fmt.Sprintf("%d/%s%s", p.ContainerPort, p.Protocol, name))
		hp = append(hp, fmt.Sprintf("%d/%s%s", p.HostPort, p.Protocol, name))
	}
	return strings.Join(cp, ", "), strings.Join(hp, ", ")
}

func (w *describeWriter) containerState(title string, s corev1.ContainerState) {
	switch {
	case s.Running != nil:
		w.write(2, "%s:\tRunning\n", title)
		w.write(3, "Started:\t%s\n", rfc1123(s.Running.StartedAt))
	case s.Terminated != nil:
		t := s.Terminated
		w.write(2, "%s:\tTerminated\n", title)
		if t.Reason != "" {
			w.write(3, "Reason:\t%s\n", t.Reason)
		}
		if t.Message != "" {
			w.write(3, "Message:\t%s\n", t.Message)
		}
		w.write(3, "Exit Code:\t%d\n", t.ExitCode)
		if t.Signal > 0 {
			w.write(3, "Signal:\t%d\n", t.Signal)
		}
		if !t.StartedAt.IsZero() { // a run that failed to start never started
			w.write(3, "Started:\t%s\n", rfc1123(t.StartedAt))
		}
		w.write(3, "Finished:\t%s\n", rfc1123(t.FinishedAt))
	default:
		w.write(2, "%s:\tWaiting\n", title)
		if s.Waiting != nil && s.Waiting.Reason != "" {
			w.write(3, "Reason:\t%s\n", s.Waiting.Reason)
		}
	}
}

// resources writes a container's limits and requests, sorted by name.
func (w *describeWriter) resources(level int, r corev1.ResourceRequirements) {
	for _, l := range []struct {
		title string
		list  corev1.ResourceList
	}{{"Limits", r.Limits}, {"Requests", r.Requests}} {
		if len(l.list) == 0 {
			continue
		}
		w.write(level, "%s:\n", l.title)
		for _, name := range sortedResourceNames(l.list) {
			q := l.list[name]
			w.write(level+1, "%s:\t%s\n", name, q.String())
		}
	}
}

// describeProbe writes a probe on one line: "http-get http://:8080/healthz
// delay=0s timeout=1s period=10s successThreshold=1 failureThreshold=3".
func describeProbe(p *corev1.Probe) string {
	attrs := fmt.Sprintf("delay=%ds timeout=%ds period=%ds successThreshold=%d failureThreshold=%d",
		p.InitialDelaySeconds, p.TimeoutSeconds, p.PeriodSeconds, p.SuccessThreshold, p.FailureThreshold)
	switch {
	case p.Exec != nil:
		return fmt.Sprintf("exec %v %s", p.Exec.Command, attrs)
	case p.HTTPGet != nil:
		u := url.URL{Scheme: strings.ToLower(string(p.HTTPGet.Scheme)), Host: p.HTTPGet.Host, Path: p.HTTPGet.Path}
		if port := p.HTTPGet.Port.String(); port != "" {
			u.Host = net.JoinHostPort(p.HTTPGet.Host, port)
		}
		return fmt.Sprintf("http-get %s %s", u.String(), attrs)
	case p.TCPSocket != nil:
		return fmt.Sprintf("tcp-socket %s:%s %s", p.TCPSocket.Host, p.TCPSocket.Port.String(), attrs)
	case p.GRPC != nil:
		service := ""
		if p.GRPC.Service != nil {
			service = *p.GRPC.Service
		}
		return fmt.Sprintf("grpc <pod>:%d %s %s", p.GRPC.Port, service, attrs)
	}
	return "unknown " + attrs
}

// env writes a container's environment. Values taken from the pod's own
// fields are resolved when the pod is known (not for a template).
func (w *describeWriter) env(c corev1.Container, pod *corev1.Pod) {
	if len(c.Env) == 0 {
		w.write(2, "Environment:\t<none>\n")
		return
	}
	w.write(2, "Environment:\n")
	for _, e := range c.Env {
		switch from := e.ValueFrom; {
		case from == nil:
			for i, line := range strings.Split(e.Value, "\n") {
				if i == 0 {
					w.write(3, "%s:\t%s\n", e.Name, line)
				} else {
					w.write(3, "\t%s\n", line)
				}
			}
		case from.FieldRef != nil:
			w.write(3, "%s:\t%s (%s:%s)\n", e.Name, podField(pod, from.FieldRef.FieldPath), from.FieldRef.APIVersion, from.FieldRef.FieldPath)
		case from.ResourceFieldRef != nil:
			w.write(3, "%s:\t%s (%s)\n", e.Name, containerResource(c, from.ResourceFieldRef), from.ResourceFieldRef.Resource)
		case from.SecretKeyRef != nil:
			ref := from.SecretKeyRef
			w.write(3, "%s:\t<set to the key '%s' in secret '%s'>\tOptional: %t\n", e.Name, ref.Key, ref.Name, ref.Optional != nil && *ref.Optional)
		case from.ConfigMapKeyRef != nil:
			ref := from.ConfigMapKeyRef
			w.write(3, "%s:\t<set to the key '%s' of config map '%s'>\tOptional: %t\n", e.Name, ref.Key, ref.Name, ref.Optional != nil && *ref.Optional)
		}
	}
}

// podField reads the pod field a downward-API variable refers to, or ""
// for a template or a field it does not know.
func podField(pod *corev1.Pod, path string) string {
	if pod == nil {
		return ""
	}
	if key, ok := strings.CutPrefix(path, "metadata.labels['"); ok {
		return pod.Labels[strings.TrimSuffix(key, "']")]
	}
	if key, ok := strings.CutPrefix(path, "metadata.annotations['"); ok {
		return pod.Annotations[strings.TrimSuffix(key, "']")]
	}
	switch path {
	case "metadata.name":
		return pod.Name
	case "metadata.namespace":
		return pod.Namespace
	case "metadata.uid":
		return string(pod.UID)
	case "spec.nodeName":
		return pod.Spec.NodeName
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName
	case "status.hostIP":
		return pod.Status.HostIP
	case "status.podIP":
		return pod.Status.PodIP
	}
	return ""
}

// containerResource is the value of a resourceFieldRef variable: the
// container's limit or request, in units of the divisor (cores rounded up
// for cpu, bytes otherwise). An unset limit means the node's allocatable.
func containerResource(c corev1.Container, ref *corev1.ResourceFieldSelector) string {
	kind, name, _ := strings.Cut(ref.Resource, ".")
	list := c.Resources.Requests
	if kind == "limits" {
		list = c.Resources.Limits
	}
	q, ok := list[corev1.ResourceName(name)]
	if !ok {
		if kind == "limits" && (name == "cpu" || name == "memory") {
			return "node allocatable"
		}
		return "0"
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if name == "cpu" {
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10)
	}
	return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10)
}

// volumes writes the pod's volumes with their source.
func (w *describeWriter) volumes(indent string, vs []corev1.Volume) {
	if len(vs) == 0 {
		w.write(0, "%sVolumes:\t<none>\n", indent)
		return
	}
	w.write(0, "%sVolumes:\n", indent)
	nameIndent := ""
	if indent != "" {
		nameIndent = " "
	}
	for _, v := range vs {
		w.write(1, "%s%s:\n", nameIndent, v.Name)
		switch s := v.VolumeSource; {
		case s.HostPath != nil:
			typ := "<none>"
			if s.HostPath.Type != nil {
				typ = string(*s.HostPath.Type)
			}
			w.write(2, "Type:\tHostPath (bare host directory volume)\n")
			w.write(2, "Path:\t%s\n", s.HostPath.Path)
			w.write(2, "HostPathType:\t%s\n", typ)
		case s.EmptyDir != nil:
			limit := "<unset>"
			if s.EmptyDir.SizeLimit != nil && s.EmptyDir.SizeLimit.Sign() > 0 {
				limit = s.EmptyDir.SizeLimit.String()
			}
			w.write(2, "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n")
			w.write(2, "Medium:\t%s\n", s.EmptyDir.Medium)
			w.write(2, "SizeLimit:\t%s\n", limit)
		case s.ConfigMap != nil:
			w.write(2, "Type:\tConfigMap (a volume populated by a ConfigMap)\n")
			w.write(2, "Name:\t%s\n", s.ConfigMap.Name)
			w.write(2, "Optional:\t%t\n", s.ConfigMap.Optional != nil && *s.ConfigMap.Optional)
		case s.Secret != nil:
			w.write(2, "Type:\tSecret (a volume populated by a Secret)\n")
			w.write(2, "SecretName:\t%s\n", s.Secret.SecretName)
			w.write(2, "Optional:\t%t\n", s.Secret.Optional != nil && *s.Secret.Optional)
		case s.PersistentVolumeClaim != nil:
			w.write(2, "Type:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)\n")
			w.write(2, "ClaimName:\t%s\n", s.PersistentVolumeClaim.ClaimName)
			w.write(2, "ReadOnly:\t%t\n", s.PersistentVolumeClaim.ReadOnly)
		case s.DownwardAPI != nil:
			w.write(2, "Type:\tDownwardAPI (a volume populated by information about the pod)\n")
			w.write(2, "Items:\n")
			for _, item := range s.DownwardAPI.Items {
				if item.FieldRef != nil {
					w.write(3, "%s -> %s\n", item.FieldRef.FieldPath, item.Path)
				}
				if item.ResourceFieldRef != nil {
					w.write(3, "%s -> %s\n", item.ResourceFieldRef.Resource, item.Path)
				}
			}
		case s.Projected != nil:
			w.write(2, "Type:\tProjected (a volume that contains injected data from multiple sources)\n")
			for _, src := range s.Projected.Sources {
				switch {
				case src.Secret != nil:
					w.write(2, "SecretName:\t%s\n", src.Secret.Name)
					w.write(2, "Optional:\t%t\n", src.Secret.Optional != nil && *src.Secret.Optional)
				case src.ConfigMap != nil:
					w.write(2, "ConfigMapName:\t%s\n", src.ConfigMap.Name)
					w.write(2, "Optional:\t%t\n", src.ConfigMap.Optional != nil && *src.ConfigMap.Optional)
				case src.DownwardAPI != nil:
					w.write(2, "DownwardAPI:\ttrue\n")
				case src.ServiceAccountToken != nil && src.ServiceAccountToken.ExpirationSeconds != nil:
					w.write(2, "TokenExpirationSeconds:\t%d\n", *src.ServiceAccountToken.ExpirationSeconds)
				}
			}
		default:
			w.write(2, "<unknown>\n")
		}
	}
}
