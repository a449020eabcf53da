package podrefs

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestReferences(t *testing.T) {
	ref := func(n string) corev1.LocalObjectReference { return corev1.LocalObjectReference{Name: n} }
	spec := &corev1.PodSpec{
		ServiceAccountName: "robot",
		ImagePullSecrets:   []corev1.LocalObjectReference{ref("pull")},
		InitContainers: []corev1.Container{{
			EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: ref("init-cm")}}},
		}},
		Containers: []corev1.Container{{
			EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: ref("envfrom-secret")}}},
			Env: []corev1.EnvVar{
				{Name: "A", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: ref("env-cm"), Key: "k"}}},
				{Name: "B", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: ref("env-secret"), Key: "k"}}},
				{Name: "C", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: ref("env-cm"), Key: "other"}}},
			},
		}},
		Volumes: []corev1.Volume{
			{Name: "a", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: ref("vol-cm")}}},
			{Name: "b", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "vol-secret"}}},
			{Name: "c", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: ref("proj-cm")}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: ref("proj-secret")}},
			}}}},
		},
	}
	if got, want := ConfigMaps(spec), []string{"env-cm", "init-cm", "proj-cm", "vol-cm"}; !slices.Equal(got, want) {
		t.Errorf("ConfigMaps: got %v, want %v", got, want)
	}
	if got, want := Secrets(spec), []string{"env-secret", "envfrom-secret", "proj-secret", "vol-secret"}; !slices.Equal(got, want) {
		t.Errorf("Secrets: got %v, want %v", got, want)
	}
	for _, tc := range []struct {
		resource, name string
		want           bool
	}{
		{"configmaps", "vol-cm", true},
		{"configmaps", "vol-secret", false},
		{"secrets", "pull", true},
		{"secrets", "proj-secret", true},
		{"secrets", "other", false},
		{"serviceaccounts", "robot", true},
		{"serviceaccounts", "default", false},
		{"pods", "vol-cm", false},
	} {
		if got := RefersTo(spec, tc.resource, tc.name); got != tc.want {
			t.Errorf("RefersTo(%s, %s): got %v, want %v", tc.resource, tc.name, got, tc.want)
		}
	}
}
