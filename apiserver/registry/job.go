package registry

import (
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// prepareJobForCreate gives a new Job the selector and pod labels that
// Kubernetes generates, unless spec.manualSelector is true: its pods are
// labelled with the Job's UID and name (under batch.kubernetes.io/ and
// under the legacy unprefixed keys), and the selector matches the UID,
// so no other Job's pods can ever match. A label the user already set is
// left alone; validation then tells them if it is wrong.
func prepareJobForCreate(obj runtime.Object) {
	j := obj.(*batchv1.Job)
	if j.Spec.ManualSelector != nil && *j.Spec.ManualSelector {
		return
	}
	tl := j.Spec.Template.Labels
	if tl == nil {
		tl = map[string]string{}
		j.Spec.Template.Labels = tl
	}
	for key, value := range map[string]string{
		legacyJobNameLabel:         j.Name,
		batchv1.JobNameLabel:       j.Name,
		legacyControllerUIDLabel:   string(j.UID),
		batchv1.ControllerUidLabel: string(j.UID),
	} {
		if _, ok := tl[key]; !ok {
			tl[key] = value
		}
	}
	if j.Spec.Selector == nil {
		j.Spec.Selector = &metav1.LabelSelector{}
	}
	if j.Spec.Selector.MatchLabels == nil {
		j.Spec.Selector.MatchLabels = map[string]string{}
	}
	if _, ok := j.Spec.Selector.MatchLabels[batchv1.ControllerUidLabel]; !ok {
		j.Spec.Selector.MatchLabels[batchv1.ControllerUidLabel] = string(j.UID)
	}
}

// The unprefixed labels Kubernetes still puts on a Job's pods beside the
// batch.kubernetes.io/ ones, for selectors written before those existed.
const (
	legacyControllerUIDLabel = "controller-uid"
	legacyJobNameLabel       = "job-name"
)
