package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestValidateProjectedVolume checks a projected volume's sources as
// Kubernetes' validateProjectionSources does, in its words: no two items
// of the volume at one path, whichever sources they come from.
func TestValidateProjectedVolume(t *testing.T) {
	cm := func(name string, paths ...string) corev1.VolumeProjection {
		p := &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: name}}
		for _, path := range paths {
			p.Items = append(p.Items, corev1.KeyToPath{Key: "k", Path: path})
		}
		return corev1.VolumeProjection{ConfigMap: p}
	}
	secret := func(name string, paths ...string) corev1.VolumeProjection {
		p := &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: name}}
		for _, path := range paths {
			p.Items = append(p.Items, corev1.KeyToPath{Key: "k", Path: path})
		}
		return corev1.VolumeProjection{Secret: p}
	}
	downward := func(paths ...string) corev1.VolumeProjection {
		p := &corev1.DownwardAPIProjection{}
		for _, path := range paths {
			p.Items = append(p.Items, corev1.DownwardAPIVolumeFile{Path: path, FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}})
		}
		return corev1.VolumeProjection{DownwardAPI: p}
	}
	tests := []struct {
		name    string
		sources []corev1.VolumeProjection
		want    []string
	}{
		{"distinct paths", []corev1.VolumeProjection{cm("a", "x", "d/x"), secret("b", "y", "d/y"), downward("z")}, nil},
		{"whole objects, no items", []corev1.VolumeProjection{cm("a"), secret("b")}, nil},
		{"a path and one below it (only the kubelet sees it)", []corev1.VolumeProjection{cm("a", "d"), secret("b", "d/y")}, nil},
		{"configMap and secret items at one path", []corev1.VolumeProjection{cm("a", "x"), secret("b", "x")},
			[]string{`spec.volumes[0].projected: Invalid value: "b": conflicting duplicate paths`}},
		{"secret then configMap: the later source is named", []corev1.VolumeProjection{secret("b", "x"), cm("a", "x")},
			[]string{`spec.volumes[0].projected: Invalid value: "a": conflicting duplicate paths`}},
		{"two items of one configMap at one path", []corev1.VolumeProjection{cm("a", "x", "x")},
			[]string{`spec.volumes[0].projected: Invalid value: "a": conflicting duplicate paths`}},
		{"a downwardAPI item at a configMap item's path", []corev1.VolumeProjection{cm("a", "x"), downward("x")},
			[]string{`spec.volumes[0].projected: Invalid value: "x": conflicting duplicate paths`}},
		{"three at one path", []corev1.VolumeProjection{cm("a", "x"), secret("b", "x"), downward("x")},
			[]string{`spec.volumes[0].projected: Invalid value: "b": conflicting duplicate paths`,
				`spec.volumes[0].projected: Invalid value: "x": conflicting duplicate paths`}},
		{"configMap source without name", []corev1.VolumeProjection{cm("", "x")},
			[]string{"spec.volumes[0].projected.sources[0].configMap.name: Required value"}},
		{"secret item with an absolute path", []corev1.VolumeProjection{secret("b", "/etc/x")},
			[]string{`spec.volumes[0].projected.sources[0].secret.items[0].path: Invalid value: "/etc/x": must be a relative path`}},
		{"configMap item climbing out", []corev1.VolumeProjection{cm("a", "../x")},
			[]string{`spec.volumes[0].projected.sources[0].configMap.items[0].path: Invalid value: "../x": must not contain '..'`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := newPod()
			pod.Spec.Volumes = []corev1.Volume{{Name: "all", VolumeSource: corev1.VolumeSource{
				Projected: &corev1.ProjectedVolumeSource{Sources: tc.sources}}}}
			checkErrors(t, create(pod), tc.want...)
		})
	}
}
