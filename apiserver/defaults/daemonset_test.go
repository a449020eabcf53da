package defaults

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestDefaultDaemonSet(t *testing.T) {
	one, zero := intstr.FromInt32(1), intstr.FromInt32(0)
	tests := []struct {
		name     string
		strategy appsv1.DaemonSetUpdateStrategy
		want     appsv1.DaemonSetUpdateStrategy
	}{
		{"empty gets a rolling update of one node at a time", appsv1.DaemonSetUpdateStrategy{},
			appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &one, MaxSurge: &zero}}},
		{"surge kept", appsv1.DaemonSetUpdateStrategy{RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxSurge: new(intstr.FromString("10%"))}},
			appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &one, MaxSurge: new(intstr.FromString("10%"))}}},
		{"OnDelete gets no rolling update", appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType},
			appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ds := &appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{
				UpdateStrategy: tc.strategy,
				Template:       corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: "busybox"}}}},
			}}
			Default(ds)
			if !apiequality.Semantic.DeepEqual(ds.Spec.UpdateStrategy, tc.want) {
				t.Errorf("got %#v, want %#v", ds.Spec.UpdateStrategy, tc.want)
			}
			if l := ds.Spec.RevisionHistoryLimit; l == nil || *l != 10 {
				t.Errorf("revisionHistoryLimit: got %v, want 10", l)
			}
			if p := ds.Spec.Template.Spec.RestartPolicy; p != corev1.RestartPolicyAlways {
				t.Errorf("template restartPolicy: got %q, want Always", p)
			}
		})
	}
}
