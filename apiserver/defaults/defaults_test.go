package defaults

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestDefaultPod(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{{Name: "scratch"}},
			Containers: []corev1.Container{{
				Name:  "app",
				Image: "nginx:1.27",
				Ports: []corev1.ContainerPort{{ContainerPort: 80}},
				Env: []corev1.EnvVar{{Name: "POD", ValueFrom: &corev1.EnvVarSource{
					FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
				Resources: corev1.ResourceRequirements{
					Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")},
				},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
					HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(80)}}},
			}},
		},
	}
	Default(pod)

	want := corev1.PodSpec{
		Volumes: []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		Containers: []corev1.Container{{
			Name:  "app",
			Image: "nginx:1.27",
			Ports: []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}},
			Env: []corev1.EnvVar{{Name: "POD", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}}},
			Resources: corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")},
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")},
			},
			ReadinessProbe: &corev1.Probe{
				ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
					Path: "/", Port: intstr.FromInt32(80), Scheme: corev1.URISchemeHTTP}},
				TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3,
			},
			TerminationMessagePath:   "/dev/termination-log",
			TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			ImagePullPolicy:          corev1.PullIfNotPresent,
		}},
		RestartPolicy:                 corev1.RestartPolicyAlways,
		TerminationGracePeriodSeconds: new(int64(30)),
		DNSPolicy:                     corev1.DNSClusterFirst,
		SecurityContext:               &corev1.PodSecurityContext{},
		SchedulerName:                 "default-scheduler",
		EnableServiceLinks:            new(true),
	}
	if !apiequality.Semantic.DeepEqual(pod.Spec, want) {
		t.Errorf("got %#v\nwant %#v", pod.Spec, want)
	}
}

func TestDefaultPullPolicy(t *testing.T) {
	tests := []struct {
		image string
		want  corev1.PullPolicy
	}{
		{"nginx", corev1.PullAlways},
		{"nginx:latest", corev1.PullAlways},
		{"nginx:1.27", corev1.PullIfNotPresent},
		{"registry.example.com:5000/team/app", corev1.PullAlways},
		{"registry.example.com:5000/team/app:v2", corev1.PullIfNotPresent},
		{"nginx@sha256:4bfa3e2c0164fb103fb9bfd4dc956facce32b6c5d47cc09fcec883ce9535d5ac", corev1.PullIfNotPresent},
		{"nginx:latest@sha256:4bfa3e2c0164fb103fb9bfd4dc956facce32b6c5d47cc09fcec883ce9535d5ac", corev1.PullAlways},
		{"", corev1.PullIfNotPresent},
	}
	for _, tc := range tests {
		t.Run(tc.image, func(t *testing.T) {
			c := corev1.Container{Image: tc.image}
			DefaultContainer(&c)
			if c.ImagePullPolicy != tc.want {
				t.Errorf("got %v, want %v", c.ImagePullPolicy, tc.want)
			}
		})
	}
}

func TestDefaultsKeepWhatIsSet(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		RestartPolicy:                 corev1.RestartPolicyNever,
		DNSPolicy:                     corev1.DNSDefault,
		TerminationGracePeriodSeconds: new(int64(5)),
		EnableServiceLinks:            new(false),
		Containers: []corev1.Container{{
			Name: "app", Image: "nginx", ImagePullPolicy: corev1.PullNever,
			Resources: corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")},
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
			},
		}},
	}}
	DefaultPod(pod)
	spec := pod.Spec
	c := spec.Containers[0]
	for _, check := range []struct {
		name      string
		got, want any
	}{
		{"restartPolicy", spec.RestartPolicy, corev1.RestartPolicyNever},
		{"dnsPolicy", spec.DNSPolicy, corev1.DNSDefault},
		{"terminationGracePeriodSeconds", *spec.TerminationGracePeriodSeconds, int64(5)},
		{"enableServiceLinks", *spec.EnableServiceLinks, false},
		{"imagePullPolicy", c.ImagePullPolicy, corev1.PullNever},
		{"cpu request", c.Resources.Requests.Cpu().String(), "100m"},
	} {
		if check.got != check.want {
			t.Errorf("%s: got %v, want %v", check.name, check.got, check.want)
		}
	}
}

func TestPodOnlyDefaults(t *testing.T) {
	// Templates do not get the defaults Kubernetes reserves for Pods.
	container := corev1.Container{
		Name: "app", Image: "nginx",
		Ports: []corev1.ContainerPort{{ContainerPort: 80}},
		Resources: corev1.ResourceRequirements{
			Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
		},
	}
	spec := corev1.PodSpec{HostNetwork: true, Containers: []corev1.Container{container}}

	pod := &corev1.Pod{Spec: *spec.DeepCopy()}
	DefaultPod(pod)
	template := &corev1.PodTemplateSpec{Spec: *spec.DeepCopy()}
	DefaultPodTemplateSpec(template)

	tests := []struct {
		name                string
		spec                corev1.PodSpec
		serviceLinks        bool
		requests            int
		hostPort            int32
		wantServiceLinksSet bool
	}{
		{"pod", pod.Spec, true, 1, 80, true},
		{"template", template.Spec, false, 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.spec.Containers[0]
			if got := tc.spec.EnableServiceLinks != nil; got != tc.wantServiceLinksSet {
				t.Errorf("enableServiceLinks set: got %v, want %v", got, tc.wantServiceLinksSet)
			}
			if got := len(c.Resources.Requests); got != tc.requests {
				t.Errorf("requests: got %d, want %d", got, tc.requests)
			}
			if got := c.Ports[0].HostPort; got != tc.hostPort {
				t.Errorf("hostPort: got %d, want %d", got, tc.hostPort)
			}
		})
	}
}

func TestDefaultVolume(t *testing.T) {
	tests := []struct {
		name string
		in   corev1.VolumeSource
		want corev1.VolumeSource
	}{
		{"no source", corev1.VolumeSource{}, corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{"host path", corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv"}},
			corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv", Type: new(corev1.HostPathUnset)}}},
		{"config map", corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}},
			corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{DefaultMode: new(int32(0o644))}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := corev1.Volume{Name: "v", VolumeSource: tc.in}
			DefaultVolume(&v)
			if !apiequality.Semantic.DeepEqual(v.VolumeSource, tc.want) {
				t.Errorf("got %#v, want %#v", v.VolumeSource, tc.want)
			}
		})
	}
}

func TestDefaultResourceRounding(t *testing.T) {
	c := corev1.Container{Resources: corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("0.0001")},
	}}
	DefaultContainer(&c)
	if got := c.Resources.Requests.Cpu().String(); got != "1m" {
		t.Errorf("got %s, want 1m", got)
	}
}

func TestDefaultDeployment(t *testing.T) {
	d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx"}}}},
	}}
	Default(d)
	quarter := intstr.FromString("25%")
	want := appsv1.DeploymentSpec{
		Replicas: new(int32(1)),
		Strategy: appsv1.DeploymentStrategy{
			Type:          appsv1.RollingUpdateDeploymentStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &quarter, MaxSurge: &quarter},
		},
		RevisionHistoryLimit:    new(int32(10)),
		ProgressDeadlineSeconds: new(int32(600)),
	}
	got := d.Spec
	got.Template = corev1.PodTemplateSpec{}
	if !apiequality.Semantic.DeepEqual(got, want) {
		t.Errorf("got %#v\nwant %#v", got, want)
	}
	if p := d.Spec.Template.Spec.Containers[0].ImagePullPolicy; p != corev1.PullAlways {
		t.Errorf("template imagePullPolicy: got %v, want Always", p)
	}
	if d.Spec.Template.Spec.EnableServiceLinks != nil {
		t.Errorf("template enableServiceLinks: got %v, want nil", *d.Spec.Template.Spec.EnableServiceLinks)
	}
}

func TestDefaultDeploymentStrategies(t *testing.T) {
	tests := []struct {
		name     string
		strategy appsv1.DeploymentStrategy
		want     appsv1.DeploymentStrategy
	}{
		{"recreate gets no rolling update", appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}},
		{"surge kept", appsv1.DeploymentStrategy{RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: new(intstr.FromInt32(1))}},
			appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxSurge: new(intstr.FromInt32(1)), MaxUnavailable: new(intstr.FromString("25%"))}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Strategy: tc.strategy}}
			DefaultDeployment(d)
			if !apiequality.Semantic.DeepEqual(d.Spec.Strategy, tc.want) {
				t.Errorf("got %#v, want %#v", d.Spec.Strategy, tc.want)
			}
		})
	}
}

func TestDefaultReplicaSet(t *testing.T) {
	rs := &appsv1.ReplicaSet{}
	Default(rs)
	if rs.Spec.Replicas == nil || *rs.Spec.Replicas != 1 {
		t.Errorf("replicas: got %v, want 1", rs.Spec.Replicas)
	}
	if rs.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		t.Errorf("template restartPolicy: got %q, want Always", rs.Spec.Template.Spec.RestartPolicy)
	}
}

func TestDefaultService(t *testing.T) {
	cluster := corev1.ServiceInternalTrafficPolicyCluster
	tests := []struct {
		name string
		in   corev1.ServiceSpec
		want corev1.ServiceSpec
	}{
		{"cluster IP service",
			corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}, {Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromString("dns")}}},
			corev1.ServiceSpec{
				Type:                  corev1.ServiceTypeClusterIP,
				SessionAffinity:       corev1.ServiceAffinityNone,
				InternalTrafficPolicy: &cluster,
				Ports: []corev1.ServicePort{
					{Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(80)},
					{Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromString("dns")},
				},
			}},
		{"node port service",
			corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.0.10"},
			corev1.ServiceSpec{
				Type:                  corev1.ServiceTypeNodePort,
				SessionAffinity:       corev1.ServiceAffinityNone,
				ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster,
				InternalTrafficPolicy: &cluster,
				ClusterIP:             "10.96.0.10",
				ClusterIPs:            []string{"10.96.0.10"},
			}},
		{"client IP affinity",
			corev1.ServiceSpec{SessionAffinity: corev1.ServiceAffinityClientIP, ClusterIPs: []string{"10.96.0.10"}},
			corev1.ServiceSpec{
				Type:            corev1.ServiceTypeClusterIP,
				SessionAffinity: corev1.ServiceAffinityClientIP,
				SessionAffinityConfig: &corev1.SessionAffinityConfig{
					ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: new(int32(10800))}},
				InternalTrafficPolicy: &cluster,
				ClusterIP:             "10.96.0.10",
				ClusterIPs:            []string{"10.96.0.10"},
			}},
		{"external name",
			corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"},
			corev1.ServiceSpec{
				Type:            corev1.ServiceTypeExternalName,
				ExternalName:    "db.example.com",
				SessionAffinity: corev1.ServiceAffinityNone,
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc := &corev1.Service{Spec: tc.in}
			Default(svc)
			if !apiequality.Semantic.DeepEqual(svc.Spec, tc.want) {
				t.Errorf("got %#v\nwant %#v", svc.Spec, tc.want)
			}
		})
	}
}

func TestDefaultNamespace(t *testing.T) {
	tests := []struct {
		name string
		in   *corev1.Namespace
		want *corev1.Namespace
	}{
		{"new namespace",
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}},
			&corev1.Namespace{
				ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"kubernetes.io/metadata.name": "shop"}},
				Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceActive},
			}},
		{"finalizers cleared by the namespace controller stay cleared",
			&corev1.Namespace{
				ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"team": "a"}},
				Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating},
			},
			&corev1.Namespace{
				ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"team": "a", "kubernetes.io/metadata.name": "shop"}},
				Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating},
			}},
		{"generateName only", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "test-"}},
			&corev1.Namespace{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "test-"},
				Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceActive},
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			Default(tc.in)
			if !apiequality.Semantic.DeepEqual(tc.in, tc.want) {
				t.Errorf("got %#v\nwant %#v", tc.in, tc.want)
			}
		})
	}
}

func TestDefaultNode(t *testing.T) {
	tests := []struct {
		name         string
		spec         corev1.NodeSpec
		wantPodCIDR  string
		wantPodCIDRs []string
	}{
		{"no CIDR", corev1.NodeSpec{}, "", nil},
		{"podCIDR", corev1.NodeSpec{PodCIDR: "10.244.1.0/24"}, "10.244.1.0/24", []string{"10.244.1.0/24"}},
		{"podCIDRs", corev1.NodeSpec{PodCIDRs: []string{"10.244.1.0/24", "fd00::/64"}}, "10.244.1.0/24", []string{"10.244.1.0/24", "fd00::/64"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			node := &corev1.Node{Spec: tc.spec, Status: corev1.NodeStatus{
				Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")},
			}}
			Default(node)
			if node.Spec.PodCIDR != tc.wantPodCIDR || !apiequality.Semantic.DeepEqual(node.Spec.PodCIDRs, tc.wantPodCIDRs) {
				t.Errorf("got %q %q, want %q %q", node.Spec.PodCIDR, node.Spec.PodCIDRs, tc.wantPodCIDR, tc.wantPodCIDRs)
			}
			if got := node.Status.Allocatable.Cpu().String(); got != "4" {
				t.Errorf("allocatable cpu: got %s, want 4", got)
			}
		})
	}
}

func TestDefaultEndpointSlice(t *testing.T) {
	slice := &discoveryv1.EndpointSlice{Ports: []discoveryv1.EndpointPort{{Port: new(int32(8080))}}}
	Default(slice)
	p := slice.Ports[0]
	if p.Name == nil || *p.Name != "" || p.Protocol == nil || *p.Protocol != corev1.ProtocolTCP {
		t.Errorf("got name %v protocol %v, want \"\" and TCP", p.Name, p.Protocol)
	}
}

func TestDefaultIgnoresOtherTypes(t *testing.T) {
	for _, obj := range []runtime.Object{&corev1.ConfigMap{}, &corev1.Event{}} {
		before := obj.DeepCopyObject()
		Default(obj)
		if !apiequality.Semantic.DeepEqual(obj, before) {
			t.Errorf("%T changed: got %#v", obj, obj)
		}
	}
}
