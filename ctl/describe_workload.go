package ctl

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffdev/skiff/ctl/printers"
	"github.com/skiffdev/skiff/internal/client"
)

// This file describes deployments and replica sets, and finds what their
// descriptions show besides the object: a deployment's replica sets, a
// replica set's pods.

// deploymentReplicaSets finds the replica sets a deployment controls: the
// new one, whose pod template is the deployment's, and the old ones.
func deploymentReplicaSets(ctx context.Context, c *client.Client, d *appsv1.Deployment) (old []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, err error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, nil, err
	}
	list, err := c.ReplicaSets(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, nil, err
	}
	var owned []*appsv1.ReplicaSet
	for i := range list.Items {
		if metav1.IsControlledBy(&list.Items[i], d) {
			owned = append(owned, &list.Items[i])
		}
	}
	sort.SliceStable(owned, func(i, j int) bool {
		a, b := owned[i].CreationTimestamp, owned[j].CreationTimestamp
		if a.Equal(&b) {
			return owned[i].Name < owned[j].Name
		}
		return a.Before(&b)
	})
	for _, rs := range owned {
		if newRS == nil && sameTemplate(&rs.Spec.Template, &d.Spec.Template) {
			newRS = rs
			continue
		}
		old = append(old, rs)
	}
	return old, newRS, nil
}

// sameTemplate compares pod templates, ignoring the pod-template-hash
// label that the deployment controller adds to its replica sets.
func sameTemplate(a, b *corev1.PodTemplateSpec) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	delete(a.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	delete(b.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	return equality.Semantic.DeepEqual(a, b)
}

// phaseCounts counts a controller's pods by phase.
type phaseCounts struct{ running, waiting, succeeded, failed int }

// podPhases counts the pods that match selector and are controlled by the
// object with the given uid.
func podPhases(ctx context.Context, c *client.Client, ns string, selector *metav1.LabelSelector, uid types.UID) (phaseCounts, error) {
	var n phaseCounts
	sel, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		return n, err
	}
	pods, err := c.Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return n, err
	}
	for _, p := range pods.Items {
		ref := metav1.GetControllerOf(&p)
		if ref == nil || ref.UID != uid {
			continue
		}
		switch p.Status.Phase {
		case corev1.PodRunning:
			n.running++
		case corev1.PodPending:
			n.waiting++
		case corev1.PodSucceeded:
			n.succeeded++
		case corev1.PodFailed:
			n.failed++
		}
	}
	return n, nil
}

// podTemplate writes the pod template of a deployment or replica set.
func (w *describeWriter) podTemplate(t *corev1.PodTemplateSpec) {
	w.write(0, "Pod Template:\n")
	w.labels("  ", "Labels", t.Labels)
	if len(t.Annotations) > 0 {
		w.annotations("  ", "Annotations", t.Annotations)
	}
	if t.Spec.ServiceAccountName != "" {
		w.write(1, "Service Account:\t%s\n", t.Spec.ServiceAccountName)
	}
	if len(t.Spec.InitContainers) > 0 {
		w.containers("  ", "Init Containers", t.Spec.InitContainers, nil, nil)
	}
	w.containers("  ", "Containers", t.Spec.Containers, nil, nil)
	w.volumes("  ", t.Spec.Volumes)
	if t.Spec.PriorityClassName != "" {
		w.write(1, "Priority Class Name:\t%s\n", t.Spec.PriorityClassName)
	}
	w.labels("  ", "Node-Selectors", t.Spec.NodeSelector)
	w.tolerations("  ", t.Spec.Tolerations)
}

// conditions writes a workload's conditions table.
func (w *describeWriter) conditions(conds [][3]string) {
	if len(conds) == 0 {
		return
	}
	w.write(0, "Conditions:\n  Type\tStatus\tReason\n")
	w.write(1, "----\t------\t------\n")
	for _, c := range conds {
		w.write(1, "%s \t%s\t%s\n", c[0], c[1], c[2])
	}
}

func describeDeployment(d *appsv1.Deployment, oldRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, events *corev1.EventList, now time.Time) string {
	w := newDescribeWriter()
	w.write(0, "Name:\t%s\n", d.Name)
	w.write(0, "Namespace:\t%s\n", d.Namespace)
	w.write(0, "CreationTimestamp:\t%s\n", rfc1123(d.CreationTimestamp))
	w.labels("", "Labels", d.Labels)
	w.annotations("", "Annotations", d.Annotations)
	selector := "<invalid>"
	if s, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err == nil {
		selector = s.String()
	}
	w.write(0, "Selector:\t%s\n", selector)
	w.write(0, "Replicas:\t%d desired | %d updated | %d total | %d available | %d unavailable\n",
		printers.Replicas(d.Spec.Replicas), d.Status.UpdatedReplicas, d.Status.Replicas, d.Status.AvailableReplicas, d.Status.UnavailableReplicas)
	w.write(0, "StrategyType:\t%s\n", d.Spec.Strategy.Type)
	w.write(0, "MinReadySeconds:\t%d\n", d.Spec.MinReadySeconds)
	if ru := d.Spec.Strategy.RollingUpdate; ru != nil {
		w.write(0, "RollingUpdateStrategy:\t%s max unavailable, %s max surge\n", intOrStringText(ru.MaxUnavailable), intOrStringText(ru.MaxSurge))
	}
	w.podTemplate(&d.Spec.Template)
	var conds [][3]string
	for _, c := range d.Status.Conditions {
		conds = append(conds, [3]string{string(c.Type), string(c.Status), c.Reason})
	}
	w.conditions(conds)
	if len(oldRSs) > 0 || newRS != nil {
		w.write(0, "OldReplicaSets:\t%s\n", replicaSetList(oldRSs))
		var newRSs []*appsv1.ReplicaSet
		if newRS != nil {
			newRSs = append(newRSs, newRS)
		}
		w.write(0, "NewReplicaSet:\t%s\n", replicaSetList(newRSs))
	}
	w.events(events, now)
	return w.String()
}

func intOrStringText(v *intstr.IntOrString) string {
	if v == nil {
		return "<nil>"
	}
	return v.String()
}

// replicaSetList names replica sets with their progress: "web-7d9f8b6c5
// (3/3 replicas created)".
func replicaSetList(rss []*appsv1.ReplicaSet) string {
	var parts []string
	for _, rs := range rss {
		parts = append(parts, fmt.Sprintf("%s (%d/%d replicas created)", rs.Name, rs.Status.Replicas, printers.Replicas(rs.Spec.Replicas)))
	}
	return printers.OrNone(strings.Join(parts, ", "))
}

func describeReplicaSet(rs *appsv1.ReplicaSet, pods phaseCounts, events *corev1.EventList, now time.Time) string {
	w := newDescribeWriter()
	w.write(0, "Name:\t%s\n", rs.Name)
	w.write(0, "Namespace:\t%s\n", rs.Namespace)
	w.write(0, "Selector:\t%s\n", metav1.FormatLabelSelector(rs.Spec.Selector))
	w.labels("", "Labels", rs.Labels)
	w.annotations("", "Annotations", rs.Annotations)
	if by := controllerName(rs); by != "" {
		w.write(0, "Controlled By:\t%s\n", by)
	}
	w.write(0, "Replicas:\t%d current / %d desired\n", rs.Status.Replicas, printers.Replicas(rs.Spec.Replicas))
	w.write(0, "Pods Status:\t%d Running / %d Waiting / %d Succeeded / %d Failed\n", pods.running, pods.waiting, pods.succeeded, pods.failed)
	w.podTemplate(&rs.Spec.Template)
	var conds [][3]string
	for _, c := range rs.Status.Conditions {
		conds = append(conds, [3]string{string(c.Type), string(c.Status), c.Reason})
	}
	w.conditions(conds)
	w.events(events, now)
	return w.String()
}
