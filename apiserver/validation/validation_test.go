package validation

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiffdev/skiff/apiserver/defaults"
)

// checkErrors fails the test unless errs holds exactly one error per
// entry of want, each error starting with its entry ("spec.replicas:
// Invalid value: -1: must be greater than or equal to 0").
func checkErrors(t *testing.T, errs field.ErrorList, want ...string) {
	t.Helper()
	var got []string
	for _, err := range errs {
		got = append(got, err.Error())
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, w) }) {
			t.Errorf("missing error %q\ngot %q", w, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d errors %q, want %d %q", len(got), got, len(want), want)
	}
}

// create defaults obj, as the registry does, and validates it as new.
func create(obj runtime.Object) field.ErrorList {
	defaults.Default(obj)
	return ValidateObject(obj)
}

// update defaults both objects, as the registry does, and validates obj
// as an update of the stored old.
func update(obj, old runtime.Object) field.ErrorList {
	defaults.Default(old)
	defaults.Default(obj)
	return ValidateObjectUpdate(obj, old)
}

func newMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "default", ResourceVersion: "7"}
}

func newPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: newMeta("web"),
		Spec:       corev1.PodSpec{Containers: []corev1.Container{newContainer("app")}},
	}
}

func newContainer(name string) corev1.Container {
	return corev1.Container{
		Name:  name,
		Image: "nginx:1.27",
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80}},
	}
}

func newDeployment() *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: newMeta("web"),
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{newContainer("app")}},
			},
		},
	}
}

func TestValidateObjectDispatch(t *testing.T) {
	tests := []struct {
		name string
		obj  runtime.Object
		want []string
	}{
		{"pod", newPod(), nil},
		{"deployment", newDeployment(), nil},
		{"unsupported type", &corev1.PersistentVolume{}, []string{"<nil>: Internal error: no validation for type *v1.PersistentVolume"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkErrors(t, create(tc.obj), tc.want...)
		})
	}
}

func TestValidateObjectUpdateTypeMismatch(t *testing.T) {
	errs := ValidateObjectUpdate(newPod(), newDeployment())
	checkErrors(t, errs, "<nil>: Internal error: cannot compare a *v1.Pod with a *v1.Deployment")
}
