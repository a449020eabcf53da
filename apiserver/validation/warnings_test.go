package validation

import (
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestWarnings(t *testing.T) {
	podWith := func(mutate func(*corev1.Pod)) *corev1.Pod {
		p := newPod()
		mutate(p)
		return p
	}
	tests := []struct {
		name string
		obj  runtime.Object
		want []string
	}{
		{"plain pod", newPod(), nil},
		{"pod with emptyDir and hostPath", podWith(func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{
				{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "logs", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/log"}}},
			}
		}), nil},
		{"pod with configMap, secret, downwardAPI and projected volumes", podWith(func(p *corev1.Pod) {
			ref := corev1.LocalObjectReference{Name: "web"}
			p.Spec.Volumes = []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: ref}}},
				{Name: "secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "web"}}},
				{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{}}},
				{Name: "all", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: ref}},
					{Secret: &corev1.SecretProjection{LocalObjectReference: ref}},
				}}}},
			}
		}), nil},
		{"pod with a projected service account token", podWith(func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "ca"}}},
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
			}}}}}
		}), []string{"spec.volumes[0].projected.sources[1].serviceAccountToken: not supported by Skiff yet; the field is stored but has no effect"}},
		{"pod with env from ConfigMaps, Secrets and resources", podWith(func(p *corev1.Pod) {
			ref := corev1.LocalObjectReference{Name: "db"}
			p.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: ref}}, {SecretRef: &corev1.SecretEnvSource{LocalObjectReference: ref}}}
			p.Spec.Containers[0].Env = []corev1.EnvVar{
				{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: ref, Key: "password"}}},
				{Name: "HOST", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: ref, Key: "host"}}},
				{Name: "MEM", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory"}}},
			}
		}), nil},
		{"deployment with pod anti-affinity", func() runtime.Object {
			d := newDeployment()
			d.Spec.Template.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
					LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
					TopologyKey:   "kubernetes.io/hostname",
				}},
			}}
			return d
		}(), []string{"spec.template.spec.affinity.podAntiAffinity: not supported by Skiff yet; the field is stored but has no effect"}},
		{"replicaset with node affinity", func() runtime.Object {
			rs := newReplicaSet()
			rs.Spec.Template.Spec.Affinity = nodeAffinity(corev1.NodeSelectorRequirement{Key: "zone", Operator: corev1.NodeSelectorOpExists})
			return rs
		}(), nil},
		{"job with a pod failure policy and a success policy", func() runtime.Object {
			j := newJob()
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{}
			j.Spec.SuccessPolicy = &batchv1.SuccessPolicy{}
			return j
		}(), []string{
			"spec.podFailurePolicy: not supported by Skiff yet; the field is stored but has no effect",
			"spec.successPolicy: not supported by Skiff yet; the field is stored but has no effect",
		}},
		{"plain job", newJob(), nil},
		{"cronjob managed by another controller", func() runtime.Object {
			c := newCronJob()
			c.Spec.JobTemplate.Spec.ManagedBy = new("example.com/queue")
			return c
		}(), []string{"spec.jobTemplate.spec.managedBy: not supported by Skiff yet; the field is stored but has no effect"}},
		{"load balancer service", func() runtime.Object {
			s := newService()
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			return s
		}(), []string{
			`spec.type: "LoadBalancer" is not supported by Skiff yet; the field is stored but has no effect`,
			`spec.sessionAffinity: "ClientIP" is not supported by Skiff yet; the field is stored but has no effect`,
		}},
		{"pod naming its service account, without a token", podWith(func(p *corev1.Pod) {
			p.Spec.ServiceAccountName, p.Spec.DeprecatedServiceAccount = "builder", "builder"
			p.Spec.AutomountServiceAccountToken = new(false)
		}), nil},
		{"pod asking for a service account token", podWith(func(p *corev1.Pod) {
			p.Spec.AutomountServiceAccountToken = new(true)
		}), []string{`spec.automountServiceAccountToken: "true" is not supported by Skiff yet; the field is stored but has no effect`}},
		{"plain service account", &corev1.ServiceAccount{}, nil},
		{"service account with image pull secrets and tokens", &corev1.ServiceAccount{
			ImagePullSecrets:             []corev1.LocalObjectReference{{Name: "registry"}},
			AutomountServiceAccountToken: new(true),
		}, []string{
			"imagePullSecrets: not supported by Skiff yet; the field is stored but has no effect",
			`automountServiceAccountToken: "true" is not supported by Skiff yet; the field is stored but has no effect`,
		}},
		{"opaque secret", &corev1.Secret{Type: corev1.SecretTypeOpaque}, nil},
		{"service account token secret", &corev1.Secret{Type: corev1.SecretTypeServiceAccountToken},
			[]string{`type: "kubernetes.io/service-account-token" is not supported by Skiff yet; the field is stored but has no effect`}},
		{"plain service", newService(), nil},
		{"plain deployment", &appsv1.Deployment{}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Warnings(tc.obj)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if tc.want == nil && got != nil {
				t.Errorf("got %#v, want nil", got)
			}
		})
	}
}
