package registry

import (
	"context"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiffdev/skiff/internal/scheme"
)

// Bind assigns a pod to a node: the pods/binding subresource the scheduler
// writes. It is atomic: a pod that is already bound, or being deleted, is
// refused with Conflict, so two schedulers can never both bind one pod.
func (s *Store) Bind(ctx context.Context, namespace string, b *corev1.Binding) (*metav1.Status, error) {
	if s.info.Resource != "pods" {
		return nil, apierrors.NewMethodNotSupported(s.info.GroupResource(), "binding")
	}
	if b.Namespace != "" && b.Namespace != namespace {
		return nil, apierrors.NewBadRequest("the namespace of the binding does not match the namespace sent on the request")
	}
	if b.Target.Kind != "" && b.Target.Kind != "Node" {
		return nil, apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Binding").GroupKind(), b.Name, field.ErrorList{
			field.NotSupported(field.NewPath("target", "kind"), b.Target.Kind, []string{"Node"})})
	}
	if b.Target.Name == "" {
		return nil, apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Binding").GroupKind(), b.Name, field.ErrorList{
			field.Required(field.NewPath("target", "name"), "")})
	}
	_, err := s.update(ctx, namespace, b.Name, false, func(current runtime.Object) (runtime.Object, error) {
		pod := current.(*corev1.Pod)
		if b.UID != "" && b.UID != pod.UID {
			return nil, apierrors.NewConflict(s.info.GroupResource(), b.Name, fmt.Errorf("the binding is for pod UID %s, not %s", b.UID, pod.UID))
		}
		if pod.DeletionTimestamp != nil {
			return nil, apierrors.NewConflict(s.info.GroupResource(), b.Name, fmt.Errorf("pod %s is being deleted, cannot be assigned to a host", b.Name))
		}
		if pod.Spec.NodeName != "" {
			return nil, apierrors.NewConflict(s.info.GroupResource(), b.Name, fmt.Errorf("pod %s is already assigned to node %q", b.Name, pod.Spec.NodeName))
		}
		pod.Spec.NodeName = b.Target.Name
		setPodCondition(&pod.Status, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()})
		return pod, nil
	})
	if err != nil {
		return nil, err
	}
	return &metav1.Status{Status: metav1.StatusSuccess, Code: 201}, nil
}

func setPodCondition(st *corev1.PodStatus, c corev1.PodCondition) {
	for i := range st.Conditions {
		if st.Conditions[i].Type == c.Type {
			st.Conditions[i] = c
			return
		}
	}
	st.Conditions = append(st.Conditions, c)
}

// GetScale returns the scale subresource of a deployment or replica set.
func (s *Store) GetScale(ctx context.Context, namespace, name string) (*autoscalingv1.Scale, error) {
	if !s.info.HasSubresource("scale") {
		return nil, apierrors.NewMethodNotSupported(s.info.GroupResource(), "scale")
	}
	obj, err := s.Get(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	return scaleOf(obj)
}

// UpdateScale sets the replica count through the scale subresource.
func (s *Store) UpdateScale(ctx context.Context, namespace, name string, scale *autoscalingv1.Scale, dryRun bool) (*autoscalingv1.Scale, error) {
	return s.scale(ctx, namespace, name, dryRun, func(*autoscalingv1.Scale) (*autoscalingv1.Scale, error) { return scale, nil })
}

// PatchScale patches the scale subresource.
func (s *Store) PatchScale(ctx context.Context, namespace, name string, pt types.PatchType, patch []byte, dryRun bool) (*autoscalingv1.Scale, error) {
	return s.scale(ctx, namespace, name, dryRun, func(cur *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
		doc, err := json.Marshal(cur)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		patched, err := ApplyPatch(doc, pt, patch, &autoscalingv1.Scale{})
		if err != nil {
			return nil, err
		}
		out, err := scheme.DecodeStrictJSON(patched, &autoscalingv1.Scale{})
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("Scale in version \"v1\" cannot be handled as a Scale: %v", err))
		}
		sc, ok := out.(*autoscalingv1.Scale)
		if !ok {
			return nil, apierrors.NewBadRequest("the patch turns the Scale into another kind; kind and apiVersion may not change")
		}
		return sc, nil
	})
}

func (s *Store) scale(ctx context.Context, namespace, name string, dryRun bool, want func(*autoscalingv1.Scale) (*autoscalingv1.Scale, error)) (*autoscalingv1.Scale, error) {
	if !s.info.HasSubresource("scale") {
		return nil, apierrors.NewMethodNotSupported(s.info.GroupResource(), "scale")
	}
	out, err := s.update(ctx, namespace, name, dryRun, func(current runtime.Object) (runtime.Object, error) {
		cur, err := scaleOf(current)
		if err != nil {
			return nil, err
		}
		sc, err := want(cur)
		if err != nil {
			return nil, err
		}
		if sc.Name != "" && sc.Name != name {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", sc.Name, name))
		}
		if sc.Spec.Replicas < 0 {
			return nil, apierrors.NewInvalid(autoscalingv1.SchemeGroupVersion.WithKind("Scale").GroupKind(), name, field.ErrorList{
				field.Invalid(field.NewPath("spec", "replicas"), sc.Spec.Replicas, "must be greater than or equal to 0")})
		}
		if sc.ResourceVersion != "" && sc.ResourceVersion != cur.ResourceVersion {
			return nil, apierrors.NewConflict(s.info.GroupResource(), name,
				fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again"))
		}
		next := current.DeepCopyObject()
		switch o := next.(type) {
		case *appsv1.Deployment:
			o.Spec.Replicas = &sc.Spec.Replicas
		case *appsv1.ReplicaSet:
			o.Spec.Replicas = &sc.Spec.Replicas
		}
		obj, _, err := s.prepareUpdate(ctx, current, next, false)
		return obj, err
	})
	if err != nil {
		return nil, err
	}
	return scaleOf(out)
}

// scaleOf builds the Scale view of a deployment or replica set.
func scaleOf(obj runtime.Object) (*autoscalingv1.Scale, error) {
	var (
		m        metav1.ObjectMeta
		replicas *int32
		status   int32
		selector *metav1.LabelSelector
	)
	switch o := obj.(type) {
	case *appsv1.Deployment:
		m, replicas, status, selector = o.ObjectMeta, o.Spec.Replicas, o.Status.Replicas, o.Spec.Selector
	case *appsv1.ReplicaSet:
		m, replicas, status, selector = o.ObjectMeta, o.Spec.Replicas, o.Status.Replicas, o.Spec.Selector
	default:
		return nil, apierrors.NewInternalError(fmt.Errorf("no scale subresource for %T", obj))
	}
	sc := &autoscalingv1.Scale{
		TypeMeta: metav1.TypeMeta{APIVersion: "autoscaling/v1", Kind: "Scale"},
		ObjectMeta: metav1.ObjectMeta{
			Name: m.Name, Namespace: m.Namespace, UID: m.UID,
			ResourceVersion: m.ResourceVersion, CreationTimestamp: m.CreationTimestamp,
		},
		Status: autoscalingv1.ScaleStatus{Replicas: status},
	}
	if replicas != nil {
		sc.Spec.Replicas = *replicas
	}
	if selector != nil {
		if sel, err := metav1.LabelSelectorAsSelector(selector); err == nil {
			sc.Status.Selector = sel.String()
		}
	}
	return sc, nil
}
