package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestValidatePod(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*corev1.Pod)
		want   []string
	}{
		{"valid", func(*corev1.Pod) {}, nil},
		{"name not a DNS subdomain", func(p *corev1.Pod) { p.Name = "Web" },
			[]string{`metadata.name: Invalid value: "Web": a lowercase RFC 1123 subdomain must consist of`}},
		{"namespace missing", func(p *corev1.Pod) { p.Namespace = "" },
			[]string{"metadata.namespace: Required value"}},
		{"bad label", func(p *corev1.Pod) { p.Labels = map[string]string{"app": "web server"} },
			[]string{`metadata.labels: Invalid value: "web server": a valid label must be`}},
		{"no containers", func(p *corev1.Pod) { p.Spec.Containers = nil },
			[]string{"spec.containers: Required value"}},
		{"duplicate container name", func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, newContainer("app"))
			p.Spec.Containers[1].Ports = nil
		}, []string{`spec.containers[1].name: Duplicate value: "app"`}},
		{"init container named like a container", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "app", Image: "busybox"}}
		}, []string{`spec.initContainers[0].name: Duplicate value: "app"`}},
		{"container name not a DNS label", func(p *corev1.Pod) { p.Spec.Containers[0].Name = "my_app" },
			[]string{`spec.containers[0].name: Invalid value: "my_app": a lowercase RFC 1123 label must consist of`}},
		{"image missing", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" },
			[]string{"spec.containers[0].image: Required value"}},
		{"image with spaces", func(p *corev1.Pod) { p.Spec.Containers[0].Image = " nginx" },
			[]string{`spec.containers[0].image: Invalid value: " nginx": must not have leading or trailing whitespace`}},
		{"bad pull policy", func(p *corev1.Pod) { p.Spec.Containers[0].ImagePullPolicy = "Sometimes" },
			[]string{`spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"`}},
		{"container port out of range", func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 70000 },
			[]string{"spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"}},
		{"container port missing", func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 0 },
			[]string{"spec.containers[0].ports[0].containerPort: Required value"}},
		{"host port out of range", func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].HostPort = -1 },
			[]string{"spec.containers[0].ports[0].hostPort: Invalid value: -1: must be between 1 and 65535, inclusive"}},
		{"bad port protocol", func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].Protocol = "HTTP" },
			[]string{`spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"`}},
		{"port name not an IANA service name", func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].Name = "http_alt" },
			[]string{`spec.containers[0].ports[0].name: Invalid value: "http_alt": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)`}},
		{"duplicate port name", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, corev1.ContainerPort{Name: "http", ContainerPort: 8080})
		}, []string{`spec.containers[0].ports[1].name: Duplicate value: "http"`}},
		{"same host port twice", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports[0].HostPort = 8080
			p.Spec.Containers = append(p.Spec.Containers, newContainer("sidecar"))
			p.Spec.Containers[1].Ports[0].HostPort = 8080
		}, []string{`spec.containers[1].ports[0].hostPort: Duplicate value: "/TCP/8080"`}},
		{"host network port mismatch", func(p *corev1.Pod) {
			p.Spec.HostNetwork = true
			p.Spec.Containers[0].Ports[0].HostPort = 8080
		}, []string{"spec.containers[0].ports[0].containerPort: Invalid value: 80: must match `hostPort` when `hostNetwork` is true"}},
		{"host network defaults host port", func(p *corev1.Pod) { p.Spec.HostNetwork = true }, nil},
		{"env name with '='", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A=B", Value: "x"}}
		}, []string{`spec.containers[0].env[0].name: Invalid value: "A=B": a valid environment variable name must consist only of printable ASCII characters other than '='`}},
		{"env name missing", func(p *corev1.Pod) { p.Spec.Containers[0].Env = []corev1.EnvVar{{Value: "x"}} },
			[]string{"spec.containers[0].env[0].name: Required value"}},
		{"env value and valueFrom", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "POD", Value: "x",
				ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}
		}, []string{"spec.containers[0].env[0].valueFrom: Invalid value: \"\": may not be specified when `value` is not empty"}},
		{"env valueFrom without source", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "POD", ValueFrom: &corev1.EnvVarSource{}}}
		}, []string{"spec.containers[0].env[0].valueFrom: Invalid value: \"\": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"}},
		{"env field path not offered", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "PHASE",
				ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.phase"}}}}
		}, []string{`spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: "status.phase": supported values: "metadata.name"`}},
		{"env label field path", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "APP",
				ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}}}
		}, nil},
		{"requests above limits", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")},
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")},
			}
		}, []string{`spec.containers[0].resources.requests: Invalid value: "1": must be less than or equal to cpu limit of 500m`}},
		{"negative memory", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("-1Gi")}
		}, []string{`spec.containers[0].resources.requests[memory]: Invalid value: "-1Gi": must be greater than or equal to 0`}},
		{"unknown resource", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{"gpu": resource.MustParse("1")}
		}, []string{`spec.containers[0].resources.requests[gpu]: Invalid value: "gpu": must be a standard resource for containers`}},
		{"extended resource request without limit", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{"example.com/gpu": resource.MustParse("1")}
		}, []string{"spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources"}},
		{"extended resource limit only", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{"example.com/gpu": resource.MustParse("1")}
		}, nil},
		{"mount of an unknown volume", func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		}, []string{`spec.containers[0].volumeMounts[0].name: Not found: "data"`}},
		{"mount path missing", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data"}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data"}}
		}, []string{"spec.containers[0].volumeMounts[0].mountPath: Required value"}},
		{"relative mount path", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data"}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "data"}}
		}, []string{`spec.containers[0].volumeMounts[0].mountPath: Invalid value: "data": must be an absolute path`}},
		{"same mount path twice", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "a"}, {Name: "b"}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "a", MountPath: "/data"}, {Name: "b", MountPath: "/data"}}
		}, []string{`spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/data": must be unique`}},
		{"sub path climbing out", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data"}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data", SubPath: "../etc"}}
		}, []string{`spec.containers[0].volumeMounts[0].subPath: Invalid value: "../etc": must not contain '..'`}},
		{"duplicate volume name", func(p *corev1.Pod) { p.Spec.Volumes = []corev1.Volume{{Name: "data"}, {Name: "data"}} },
			[]string{`spec.volumes[1].name: Duplicate value: "data"`}},
		{"volume name not a DNS label", func(p *corev1.Pod) { p.Spec.Volumes = []corev1.Volume{{Name: "Data"}} },
			[]string{`spec.volumes[0].name: Invalid value: "Data": a lowercase RFC 1123 label`}},
		{"volume with two sources", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				EmptyDir: &corev1.EmptyDirVolumeSource{}, HostPath: &corev1.HostPathVolumeSource{Path: "/srv"}}}}
		}, []string{"spec.volumes[0].emptyDir: Forbidden: may not specify more than 1 volume type"}},
		{"host path without path", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{}}}}
		}, []string{"spec.volumes[0].hostPath.path: Required value"}},
		{"bad host path type", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: "/srv", Type: new(corev1.HostPathType("Folder"))}}}}
		}, []string{`spec.volumes[0].hostPath.type: Unsupported value: "Folder"`}},
		{"config map volume without name", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}}}
		}, []string{"spec.volumes[0].configMap.name: Required value"}},
		{"bad restart policy", func(p *corev1.Pod) { p.Spec.RestartPolicy = "Sometimes" },
			[]string{`spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"`}},
		{"bad DNS policy", func(p *corev1.Pod) { p.Spec.DNSPolicy = "Google" },
			[]string{`spec.dnsPolicy: Unsupported value: "Google": supported values: "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"`}},
		{"DNS policy None without config", func(p *corev1.Pod) { p.Spec.DNSPolicy = corev1.DNSNone },
			[]string{"spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"}},
		{"negative grace period", func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = new(int64(-1)) },
			[]string{"spec.terminationGracePeriodSeconds: Invalid value: -1: must be greater than or equal to 0"}},
		{"zero active deadline", func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = new(int64(0)) },
			[]string{"spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive"}},
		{"bad hostname", func(p *corev1.Pod) { p.Spec.Hostname = "web.1" },
			[]string{`spec.hostname: Invalid value: "web.1": must not contain dots`}},
		{"bad node selector", func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"disk type": "ssd"} },
			[]string{`spec.nodeSelector: Invalid value: "disk type": name part must consist of`}},
		{"negative run as user", func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: new(int64(-1))}
		}, []string{"spec.securityContext.runAsUser: Invalid value: -1: must be between 0 and 2147483647, inclusive"}},
		{"negative container run as group", func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{RunAsGroup: new(int64(-5))}
		}, []string{"spec.containers[0].securityContext.runAsGroup: Invalid value: -5: must be between 0 and 2147483647, inclusive"}},
		{"probe with two handlers", func(p *corev1.Pod) {
			p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				HTTPGet:   &corev1.HTTPGetAction{Port: intstr.FromInt32(80)},
				TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)},
			}}
		}, []string{"spec.containers[0].readinessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type"}},
		{"probe without handler", func(p *corev1.Pod) { p.Spec.Containers[0].LivenessProbe = &corev1.Probe{} },
			[]string{"spec.containers[0].livenessProbe: Required value: must specify a handler type"}},
		{"probe port out of range", func(p *corev1.Pod) {
			p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(0)}}}
		}, []string{"spec.containers[0].readinessProbe.httpGet.port: Invalid value: 0: must be between 1 and 65535, inclusive"}},
		{"probe by port name", func(p *corev1.Pod) {
			p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("http")}}}
		}, nil},
		{"liveness probe success threshold", func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe = &corev1.Probe{SuccessThreshold: 2, ProbeHandler: corev1.ProbeHandler{
				Exec: &corev1.ExecAction{Command: []string{"true"}}}}
		}, []string{"spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"}},
		{"negative failure threshold", func(p *corev1.Pod) {
			p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{FailureThreshold: -1, ProbeHandler: corev1.ProbeHandler{
				GRPC: &corev1.GRPCAction{Port: 9090}}}
		}, []string{"spec.containers[0].readinessProbe.failureThreshold: Invalid value: -1: must be greater than or equal to 0"}},
		{"exec probe without command", func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{}}}
		}, []string{"spec.containers[0].livenessProbe.exec.command: Required value"}},
		{"init container with probe", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox",
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}}}
		}, []string{"spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without restartPolicy=Always"}},
		{"toleration Exists with a value", func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "gpu", Operator: corev1.TolerationOpExists, Value: "yes"}}
		}, []string{"spec.tolerations[0].operator: Invalid value: "}},
		{"toleration seconds without NoExecute", func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "gpu", Operator: corev1.TolerationOpExists,
				Effect: corev1.TaintEffectNoSchedule, TolerationSeconds: new(int64(60))}}
		}, []string{`spec.tolerations[0].effect: Invalid value: "NoSchedule": effect must be 'NoExecute' when ` + "`tolerationSeconds`" + ` is set`}},
		{"bad toleration operator", func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "gpu", Operator: "Matches"}}
		}, []string{`spec.tolerations[0].operator: Unsupported value: "Matches": supported values: "Equal", "Exists"`}},
		{"bad toleration effect", func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists, Effect: "NoRun"}}
		}, []string{`spec.tolerations[0].effect: Unsupported value: "NoRun": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"`}},
		{"bad node affinity operator", func(p *corev1.Pod) {
			p.Spec.Affinity = nodeAffinity(corev1.NodeSelectorRequirement{Key: "zone", Operator: "Like", Values: []string{"a"}})
		}, []string{`spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator: Invalid value: "Like": not a valid selector operator`}},
		{"node affinity In without values", func(p *corev1.Pod) {
			p.Spec.Affinity = nodeAffinity(corev1.NodeSelectorRequirement{Key: "zone", Operator: corev1.NodeSelectorOpIn})
		}, []string{"spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"}},
		{"node affinity Exists with values", func(p *corev1.Pod) {
			p.Spec.Affinity = nodeAffinity(corev1.NodeSelectorRequirement{Key: "zone", Operator: corev1.NodeSelectorOpExists, Values: []string{"a"}})
		}, []string{"spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"}},
		{"node affinity Gt with two values", func(p *corev1.Pod) {
			p.Spec.Affinity = nodeAffinity(corev1.NodeSelectorRequirement{Key: "cores", Operator: corev1.NodeSelectorOpGt, Values: []string{"1", "2"}})
		}, []string{"spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values: Required value: must be specified single value when `operator` is 'Lt' or 'Gt'"}},
		{"node affinity without terms", func(p *corev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{}}}
		}, []string{"spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: Required value: must have at least one node selector term"}},
		{"pod anti-affinity without topology key", func(p *corev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{}}}}
		}, []string{"spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Required value: can not be empty"}},
		{"ephemeral containers on create", func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "busybox"}}}
		}, []string{"spec.ephemeralContainers: Forbidden: cannot be set on create"}},
		{"bad pod IP", func(p *corev1.Pod) { p.Status.PodIP = "10.244.1.300" },
			[]string{`status.podIP: Invalid value: "10.244.1.300": must be a valid IP address`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := newPod()
			tc.mutate(pod)
			checkErrors(t, create(pod), tc.want...)
		})
	}
}

func nodeAffinity(req corev1.NodeSelectorRequirement) *corev1.Affinity {
	return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{req}}},
		},
	}}
}

// podUpdateForbidden starts the message of a forbidden pod update; the
// diff of the two specs follows it.
const podUpdateForbidden = "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`," +
	"`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations)," +
	"`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"

func TestValidatePodUpdate(t *testing.T) {
	tests := []struct {
		name   string
		old    func(*corev1.Pod)
		mutate func(*corev1.Pod)
		want   []string
	}{
		{"no change", nil, func(*corev1.Pod) {}, nil},
		{"new image", nil, func(p *corev1.Pod) { p.Spec.Containers[0].Image = "nginx:1.28" }, nil},
		{"new labels", nil, func(p *corev1.Pod) { p.Labels = map[string]string{"tier": "web"} }, nil},
		{"new port", nil, func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 8080 },
			[]string{podUpdateForbidden}},
		{"new environment", nil, func(p *corev1.Pod) { p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", Value: "b"}} },
			[]string{podUpdateForbidden}},
		{"added container", nil, func(p *corev1.Pod) { p.Spec.Containers = append(p.Spec.Containers, newContainer("sidecar")) },
			[]string{"spec.containers: Forbidden: pod updates may not add or remove containers"}},
		{"active deadline set", nil, func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = new(int64(60)) }, nil},
		{"active deadline shortened",
			func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = new(int64(60)) },
			func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = new(int64(30)) }, nil},
		{"active deadline lengthened",
			func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = new(int64(60)) },
			func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = new(int64(90)) },
			[]string{"spec.activeDeadlineSeconds: Invalid value: 90: must be less than or equal to previous value"}},
		{"active deadline removed",
			func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = new(int64(60)) },
			func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = nil },
			[]string{"spec.activeDeadlineSeconds: Invalid value: null: must not update from a positive integer to nil value"}},
		{"toleration added", nil, func(p *corev1.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: "gpu", Operator: corev1.TolerationOpExists})
		}, nil},
		{"toleration removed",
			func(p *corev1.Pod) {
				p.Spec.Tolerations = []corev1.Toleration{{Key: "gpu", Operator: corev1.TolerationOpExists}}
			},
			func(p *corev1.Pod) { p.Spec.Tolerations = nil },
			[]string{"spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"}},
		// Only the binding subresource assigns a node.
		{"node name set", nil, func(p *corev1.Pod) { p.Spec.NodeName = "node-a" }, []string{podUpdateForbidden}},
		{"node name changed",
			func(p *corev1.Pod) { p.Spec.NodeName = "node-a" },
			func(p *corev1.Pod) { p.Spec.NodeName = "node-b" },
			[]string{podUpdateForbidden}},
		{"grace period changed", nil, func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = new(int64(5)) },
			[]string{podUpdateForbidden}},
		{"name changed", nil, func(p *corev1.Pod) { p.Name = "web-2" },
			[]string{`metadata.name: Invalid value: "web-2": field is immutable`}},
		{"resource version missing", nil, func(p *corev1.Pod) { p.ResourceVersion = "" },
			[]string{`metadata.resourceVersion: Invalid value: "": must be specified for an update`}},
		{"new spec is still validated", nil, func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" },
			[]string{"spec.containers[0].image: Required value"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := newPod()
			if tc.old != nil {
				tc.old(old)
			}
			pod := old.DeepCopy()
			tc.mutate(pod)
			checkErrors(t, update(pod, old), tc.want...)
		})
	}
}

func TestValidatePodStatusUpdate(t *testing.T) {
	terminated := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	tests := []struct {
		name    string
		restart corev1.RestartPolicy
		old     corev1.ContainerState
		new     corev1.ContainerState
		podIP   string
		want    []string
	}{
		{"running", corev1.RestartPolicyAlways, running, running, "10.244.1.5", nil},
		{"restarted under Always", corev1.RestartPolicyAlways, terminated, running, "", nil},
		{"restarted under Never", corev1.RestartPolicyNever, terminated, running, "",
			[]string{"status.containerStatuses[0].state: Forbidden: may not be transitioned to non-terminated state"}},
		{"restarted after success under OnFailure", corev1.RestartPolicyOnFailure, terminated, running, "",
			[]string{"status.containerStatuses[0].state: Forbidden: may not be transitioned to non-terminated state"}},
		{"bad pod IP", corev1.RestartPolicyAlways, running, running, "10.244.1",
			[]string{`status.podIP: Invalid value: "10.244.1": must be a valid IP address`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := newPod()
			old.Spec.RestartPolicy = tc.restart
			old.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", State: tc.old}}
			pod := old.DeepCopy()
			pod.Status.ContainerStatuses[0].State = tc.new
			pod.Status.PodIP = tc.podIP
			checkErrors(t, ValidateStatusUpdate(pod, old), tc.want...)
		})
	}
}
