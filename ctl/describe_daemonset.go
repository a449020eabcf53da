package ctl

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// describeDaemonSet writes a DaemonSet in kubectl's layout: its selectors,
// the node counts of its status, its pods by phase and its pod template.
// The counts are lines of their own (no tab), as in kubectl, so they are
// not aligned with the fields above them.
func describeDaemonSet(ds *appsv1.DaemonSet, pods phaseCounts, events *corev1.EventList, now time.Time) string {
	w := newDescribeWriter()
	w.write(0, "Name:\t%s\n", ds.Name)
	selector := "<invalid>"
	if s, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector); err == nil {
		selector = s.String()
	}
	w.write(0, "Selector:\t%s\n", selector)
	w.write(0, "Node-Selector:\t%s\n", labels.FormatLabels(ds.Spec.Template.Spec.NodeSelector))
	w.labels("", "Labels", ds.Labels)
	w.annotations("", "Annotations", ds.Annotations)
	st := ds.Status
	w.write(0, "Desired Number of Nodes Scheduled: %d\n", st.DesiredNumberScheduled)
	w.write(0, "Current Number of Nodes Scheduled: %d\n", st.CurrentNumberScheduled)
	w.write(0, "Number of Nodes Scheduled with Up-to-date Pods: %d\n", st.UpdatedNumberScheduled)
	w.write(0, "Number of Nodes Scheduled with Available Pods: %d\n", st.NumberAvailable)
	w.write(0, "Number of Nodes Misscheduled: %d\n", st.NumberMisscheduled)
	w.write(0, "Pods Status:\t%d Running / %d Waiting / %d Succeeded / %d Failed\n", pods.running, pods.waiting, pods.succeeded, pods.failed)
	w.podTemplate(&ds.Spec.Template)
	w.events(events, now)
	return w.String()
}
