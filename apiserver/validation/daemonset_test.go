package validation

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func newDaemonSet() *appsv1.DaemonSet {
	return &appsv1.DaemonSet{
		ObjectMeta: newMeta("agent"),
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{newContainer("agent")}},
			},
		},
	}
}

func dsRollingUpdate(maxUnavailable, maxSurge intstr.IntOrString) appsv1.DaemonSetUpdateStrategy {
	return appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &maxUnavailable, MaxSurge: &maxSurge}}
}

func TestValidateDaemonSet(t *testing.T) {
	const ru = "spec.updateStrategy.rollingUpdate."
	tests := []struct {
		name   string
		mutate func(*appsv1.DaemonSet)
		want   []string
	}{
		{"valid", func(*appsv1.DaemonSet) {}, nil},
		{"no selector", func(ds *appsv1.DaemonSet) { ds.Spec.Selector = nil },
			[]string{"spec.selector: Required value"}},
		{"empty selector", func(ds *appsv1.DaemonSet) { ds.Spec.Selector = &metav1.LabelSelector{} },
			[]string{"spec.selector: Invalid value: {}: empty selector is invalid for daemonset"}},
		{"selector does not match template", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Labels = map[string]string{"app": "other"} },
			[]string{"spec.template.metadata.labels: Invalid value: {\"app\":\"other\"}: `selector` does not match template `labels`"}},
		{"template restart policy", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure },
			[]string{`spec.template.spec.restartPolicy: Unsupported value: "OnFailure": supported values: "Always"`}},
		{"template active deadline", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.ActiveDeadlineSeconds = new(int64(60)) },
			[]string{"spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in DaemonSet is not Supported"}},
		{"template container without image", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.Containers[0].Image = "" },
			[]string{"spec.template.spec.containers[0].image: Required value"}},
		{"negative min ready", func(ds *appsv1.DaemonSet) { ds.Spec.MinReadySeconds = -1 },
			[]string{"spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0"}},
		{"negative revision history", func(ds *appsv1.DaemonSet) { ds.Spec.RevisionHistoryLimit = new(int32(-1)) },
			[]string{"spec.revisionHistoryLimit: Invalid value: -1: must be greater than or equal to 0"}},
		{"OnDelete", func(ds *appsv1.DaemonSet) { ds.Spec.UpdateStrategy.Type = appsv1.OnDeleteDaemonSetStrategyType }, nil},
		{"unknown strategy", func(ds *appsv1.DaemonSet) { ds.Spec.UpdateStrategy.Type = "Recreate" },
			[]string{`spec.updateStrategy.type: Unsupported value: "Recreate": supported values: "RollingUpdate", "OnDelete"`}},
		{"surge only", func(ds *appsv1.DaemonSet) {
			ds.Spec.UpdateStrategy = dsRollingUpdate(intstr.FromInt32(0), intstr.FromString("10%"))
		}, nil},
		{"unavailable as a percentage", func(ds *appsv1.DaemonSet) {
			ds.Spec.UpdateStrategy = dsRollingUpdate(intstr.FromString("10%"), intstr.FromInt32(0))
		}, nil},
		{"surge and unavailable both set", func(ds *appsv1.DaemonSet) {
			ds.Spec.UpdateStrategy = dsRollingUpdate(intstr.FromInt32(1), intstr.FromInt32(1))
		}, []string{ru + "maxSurge: Invalid value: 1: may not be set when maxUnavailable is non-zero"}},
		{"surge and unavailable both zero", func(ds *appsv1.DaemonSet) {
			ds.Spec.UpdateStrategy = dsRollingUpdate(intstr.FromString("0%"), intstr.FromInt32(0))
		}, []string{ru + "maxUnavailable: Required value: cannot be 0 when maxSurge is 0"}},
		{"unavailable above 100%", func(ds *appsv1.DaemonSet) {
			ds.Spec.UpdateStrategy = dsRollingUpdate(intstr.FromString("150%"), intstr.FromInt32(0))
		}, []string{ru + `maxUnavailable: Invalid value: "150%": must not be greater than 100%`}},
		{"surge above 100%", func(ds *appsv1.DaemonSet) {
			ds.Spec.UpdateStrategy = dsRollingUpdate(intstr.FromInt32(0), intstr.FromString("101%"))
		}, []string{ru + `maxSurge: Invalid value: "101%": must not be greater than 100%`}},
		{"negative unavailable", func(ds *appsv1.DaemonSet) {
			ds.Spec.UpdateStrategy = dsRollingUpdate(intstr.FromInt32(-1), intstr.FromInt32(0))
		}, []string{ru + "maxUnavailable: Invalid value: -1: must be greater than or equal to 0"}},
		{"unavailable not a percentage", func(ds *appsv1.DaemonSet) {
			ds.Spec.UpdateStrategy = dsRollingUpdate(intstr.FromString("a tenth"), intstr.FromInt32(0))
		}, []string{ru + `maxUnavailable: Invalid value: "a tenth": a valid percent string must be`,
			ru + "maxUnavailable: Required value: cannot be 0 when maxSurge is 0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ds := newDaemonSet()
			tc.mutate(ds)
			checkErrors(t, create(ds), tc.want...)
		})
	}
}

func TestValidateDaemonSetUpdate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*appsv1.DaemonSet)
		want   []string
	}{
		{"new image", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.Containers[0].Image = "nginx:1.28" }, nil},
		{"new strategy", func(ds *appsv1.DaemonSet) {
			ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
		}, nil},
		{"new selector", func(ds *appsv1.DaemonSet) {
			ds.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent2"}}
			ds.Spec.Template.Labels = map[string]string{"app": "agent2"}
		}, []string{`spec.selector: Invalid value: {"matchLabels":{"app":"agent2"}}: field is immutable`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := newDaemonSet()
			ds := old.DeepCopy()
			tc.mutate(ds)
			checkErrors(t, update(ds, old), tc.want...)
		})
	}
}

func TestValidateDaemonSetStatusUpdate(t *testing.T) {
	tests := []struct {
		name      string
		status    appsv1.DaemonSetStatus
		oldStatus appsv1.DaemonSetStatus
		want      []string
	}{
		{"valid", appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, NumberReady: 2, NumberAvailable: 2, NumberUnavailable: 1}, appsv1.DaemonSetStatus{}, nil},
		{"negative counts", appsv1.DaemonSetStatus{NumberMisscheduled: -1, NumberUnavailable: -2}, appsv1.DaemonSetStatus{}, []string{
			"status.numberMisscheduled: Invalid value: -1: must be greater than or equal to 0",
			"status.numberUnavailable: Invalid value: -2: must be greater than or equal to 0",
		}},
		{"collision count decremented", appsv1.DaemonSetStatus{CollisionCount: new(int32(1))}, appsv1.DaemonSetStatus{CollisionCount: new(int32(2))},
			[]string{"status.collisionCount: Invalid value: 1: cannot be decremented"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := newDaemonSet()
			old.Status = tc.oldStatus
			ds := old.DeepCopy()
			ds.Status = tc.status
			checkErrors(t, ValidateStatusUpdate(ds, old), tc.want...)
		})
	}
}

func TestValidateControllerRevision(t *testing.T) {
	newRevision := func() *appsv1.ControllerRevision {
		return &appsv1.ControllerRevision{ObjectMeta: newMeta("agent-5d4f8b7c9"),
			Data: runtime.RawExtension{Raw: []byte(`{"spec":{"template":{"$patch":"replace"}}}`)}, Revision: 1}
	}
	tests := []struct {
		name   string
		mutate func(*appsv1.ControllerRevision)
		want   []string
	}{
		{"valid", func(*appsv1.ControllerRevision) {}, nil},
		{"no data", func(cr *appsv1.ControllerRevision) { cr.Data = runtime.RawExtension{} },
			[]string{"data: Required value: data is mandatory"}},
		{"negative revision", func(cr *appsv1.ControllerRevision) { cr.Revision = -1 },
			[]string{"revision: Invalid value: -1: must be greater than or equal to 0"}},
		{"bad name", func(cr *appsv1.ControllerRevision) { cr.Name = "Agent_1" },
			[]string{`metadata.name: Invalid value: "Agent_1": a lowercase RFC 1123 subdomain`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cr := newRevision()
			tc.mutate(cr)
			checkErrors(t, create(cr), tc.want...)
		})
	}
	t.Run("renumbered", func(t *testing.T) {
		old := newRevision()
		cr := old.DeepCopy()
		cr.Revision = 3
		checkErrors(t, update(cr, old))
	})
	t.Run("new data", func(t *testing.T) {
		old := newRevision()
		cr := old.DeepCopy()
		cr.Data.Raw = []byte(`{"spec":{}}`)
		checkErrors(t, update(cr, old), "data: Invalid value:")
	})
}
