package validation

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestValidateDeployment(t *testing.T) {
	const ru = "spec.strategy.rollingUpdate."
	tests := []struct {
		name   string
		mutate func(*appsv1.Deployment)
		want   []string
	}{
		{"valid", func(*appsv1.Deployment) {}, nil},
		{"zero replicas", func(d *appsv1.Deployment) { d.Spec.Replicas = new(int32(0)) }, nil},
		{"negative replicas", func(d *appsv1.Deployment) { d.Spec.Replicas = new(int32(-1)) },
			[]string{"spec.replicas: Invalid value: -1: must be greater than or equal to 0"}},
		{"no selector", func(d *appsv1.Deployment) { d.Spec.Selector = nil },
			[]string{"spec.selector: Required value"}},
		{"empty selector", func(d *appsv1.Deployment) { d.Spec.Selector = &metav1.LabelSelector{} },
			[]string{"spec.selector: Invalid value: {}: empty selector is invalid for deployment"}},
		{"bad selector operator", func(d *appsv1.Deployment) {
			d.Spec.Selector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "tier", Operator: "Like", Values: []string{"web"}}}
		}, []string{
			`spec.selector.matchExpressions[0].operator: Invalid value: "Like": not a valid selector operator`,
			`spec.selector: Invalid value: {"matchLabels":{"app":"web"},"matchExpressions":[{"key":"tier","operator":"Like","values":["web"]}]}: invalid label selector`,
		}},
		{"selector does not match template", func(d *appsv1.Deployment) { d.Spec.Template.Labels = map[string]string{"app": "other"} },
			[]string{"spec.template.metadata.labels: Invalid value: {\"app\":\"other\"}: `selector` does not match template `labels`"}},
		{"template restart policy", func(d *appsv1.Deployment) { d.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever },
			[]string{`spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"`}},
		{"template active deadline", func(d *appsv1.Deployment) { d.Spec.Template.Spec.ActiveDeadlineSeconds = new(int64(60)) },
			[]string{"spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported"}},
		{"template container without image", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "" },
			[]string{"spec.template.spec.containers[0].image: Required value"}},
		{"template with bad label", func(d *appsv1.Deployment) { d.Spec.Template.Labels["tier"] = "-web" },
			[]string{`spec.template.metadata.labels: Invalid value: "-web": a valid label must be`}},
		{"unknown strategy", func(d *appsv1.Deployment) { d.Spec.Strategy.Type = "BlueGreen" },
			[]string{`spec.strategy.type: Unsupported value: "BlueGreen": supported values: "Recreate", "RollingUpdate"`}},
		{"recreate with rolling update", func(d *appsv1.Deployment) {
			d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{}}
		}, []string{"spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"}},
		{"recreate", func(d *appsv1.Deployment) { d.Spec.Strategy.Type = appsv1.RecreateDeploymentStrategyType }, nil},
		{"surge and unavailable both zero", func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate = rollingUpdate(intstr.FromInt32(0), intstr.FromString("0%"))
		},
			[]string{ru + "maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"}},
		{"unavailable above 100%", func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate = rollingUpdate(intstr.FromString("150%"), intstr.FromInt32(1))
		},
			[]string{ru + `maxUnavailable: Invalid value: "150%": must not be greater than 100%`}},
		{"surge above 100%", func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate = rollingUpdate(intstr.FromInt32(1), intstr.FromString("200%"))
		}, nil},
		{"negative surge", func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate = rollingUpdate(intstr.FromInt32(1), intstr.FromInt32(-1))
		},
			[]string{ru + "maxSurge: Invalid value: -1: must be greater than or equal to 0"}},
		{"surge not a percentage", func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate = rollingUpdate(intstr.FromInt32(1), intstr.FromString("half"))
		},
			[]string{ru + `maxSurge: Invalid value: "half": a valid percent string must be a numeric string followed by an ending '%'`}},
		{"negative revision history", func(d *appsv1.Deployment) { d.Spec.RevisionHistoryLimit = new(int32(-1)) },
			[]string{"spec.revisionHistoryLimit: Invalid value: -1: must be greater than or equal to 0"}},
		{"negative min ready", func(d *appsv1.Deployment) { d.Spec.MinReadySeconds = -1 },
			[]string{"spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0"}},
		{"progress deadline not above min ready", func(d *appsv1.Deployment) {
			d.Spec.MinReadySeconds = 10
			d.Spec.ProgressDeadlineSeconds = new(int32(10))
		}, []string{"spec.progressDeadlineSeconds: Invalid value: 10: must be greater than minReadySeconds"}},
		{"zero progress deadline", func(d *appsv1.Deployment) { d.Spec.ProgressDeadlineSeconds = new(int32(0)) },
			[]string{"spec.progressDeadlineSeconds: Invalid value: 0: must be greater than 0",
				"spec.progressDeadlineSeconds: Invalid value: 0: must be greater than minReadySeconds"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDeployment()
			tc.mutate(d)
			checkErrors(t, create(d), tc.want...)
		})
	}
}

func rollingUpdate(maxUnavailable, maxSurge intstr.IntOrString) *appsv1.RollingUpdateDeployment {
	return &appsv1.RollingUpdateDeployment{MaxUnavailable: &maxUnavailable, MaxSurge: &maxSurge}
}

func TestValidateDeploymentUpdate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*appsv1.Deployment)
		want   []string
	}{
		{"scale", func(d *appsv1.Deployment) { d.Spec.Replicas = new(int32(5)) }, nil},
		{"new image", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "nginx:1.28" }, nil},
		{"new selector", func(d *appsv1.Deployment) {
			d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web2"}}
			d.Spec.Template.Labels = map[string]string{"app": "web2"}
		}, []string{`spec.selector: Invalid value: {"matchLabels":{"app":"web2"}}: field is immutable`}},
		{"renamed", func(d *appsv1.Deployment) { d.Name = "web2" },
			[]string{`metadata.name: Invalid value: "web2": field is immutable`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := newDeployment()
			d := old.DeepCopy()
			tc.mutate(d)
			checkErrors(t, update(d, old), tc.want...)
		})
	}
}

func TestValidateDeploymentStatusUpdate(t *testing.T) {
	tests := []struct {
		name   string
		status appsv1.DeploymentStatus
		want   []string
	}{
		{"valid", appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 2, AvailableReplicas: 2}, nil},
		{"negative replicas", appsv1.DeploymentStatus{Replicas: -1},
			[]string{
				"status.replicas: Invalid value: -1: must be greater than or equal to 0",
				"status.updatedReplicas: Invalid value: 0: cannot be greater than status.replicas",
				"status.readyReplicas: Invalid value: 0: cannot be greater than status.replicas",
				"status.availableReplicas: Invalid value: 0: cannot be greater than status.replicas",
			}},
		{"more ready than replicas", appsv1.DeploymentStatus{Replicas: 2, ReadyReplicas: 3, AvailableReplicas: 1},
			[]string{"status.readyReplicas: Invalid value: 3: cannot be greater than status.replicas"}},
		{"more available than ready", appsv1.DeploymentStatus{Replicas: 3, ReadyReplicas: 1, AvailableReplicas: 2},
			[]string{"status.availableReplicas: Invalid value: 2: cannot be greater than readyReplicas"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := newDeployment()
			d := old.DeepCopy()
			d.Status = tc.status
			checkErrors(t, ValidateStatusUpdate(d, old), tc.want...)
		})
	}
}

func newReplicaSet() *appsv1.ReplicaSet {
	d := newDeployment()
	return &appsv1.ReplicaSet{
		ObjectMeta: newMeta("web-5d8f9"),
		Spec:       appsv1.ReplicaSetSpec{Replicas: d.Spec.Replicas, Selector: d.Spec.Selector, Template: d.Spec.Template},
	}
}

func TestValidateReplicaSet(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*appsv1.ReplicaSet)
		want   []string
	}{
		{"valid", func(*appsv1.ReplicaSet) {}, nil},
		{"negative replicas", func(rs *appsv1.ReplicaSet) { rs.Spec.Replicas = new(int32(-3)) },
			[]string{"spec.replicas: Invalid value: -3: must be greater than or equal to 0"}},
		{"selector does not match template", func(rs *appsv1.ReplicaSet) { rs.Spec.Template.Labels = nil },
			[]string{"spec.template.metadata.labels: Invalid value: null: `selector` does not match template `labels`"}},
		{"negative min ready", func(rs *appsv1.ReplicaSet) { rs.Spec.MinReadySeconds = -1 },
			[]string{"spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs := newReplicaSet()
			tc.mutate(rs)
			checkErrors(t, create(rs), tc.want...)
		})
	}
}

func TestValidateReplicaSetUpdates(t *testing.T) {
	old := newReplicaSet()
	t.Run("new selector", func(t *testing.T) {
		rs := old.DeepCopy()
		rs.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "pod-template-hash": "1"}}
		rs.Spec.Template.Labels = map[string]string{"app": "web", "pod-template-hash": "1"}
		checkErrors(t, update(rs, old), `spec.selector: Invalid value: {"matchLabels":{"app":"web","pod-template-hash":"1"}}: field is immutable`)
	})
	t.Run("status with more available than ready", func(t *testing.T) {
		rs := old.DeepCopy()
		rs.Status = appsv1.ReplicaSetStatus{Replicas: 2, ReadyReplicas: 1, AvailableReplicas: 2}
		checkErrors(t, ValidateStatusUpdate(rs, old), "status.availableReplicas: Invalid value: 2: cannot be greater than readyReplicas")
	})
}
