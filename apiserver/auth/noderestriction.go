package auth

import (
	"fmt"
	"slices"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiffdev/skiff/internal/podrefs"
	"github.com/skiffdev/skiff/internal/scheme"
)

// NodeRestriction is the admission check of a node's writes: the part of
// Kubernetes' NodeRestriction plugin that the node authorizer cannot do,
// because it needs the object. It runs after authorization, on create,
// update and patch, with obj the object as it would be stored and old
// the stored one (nil on create). It returns nil for users that are not
// nodes, and a Forbidden error for a write a node may not make.
//
// The rules, and why:
//
//   - A node may create only mirror pods (annotation
//     kubernetes.io/config.mirror) bound to itself. A mirror pod only
//     reports a pod the kubelet already runs from a file; an ordinary
//     pod would be scheduled onto any node, so a stolen node credential
//     could run a workload elsewhere in the cluster.
//   - A mirror pod must be owned by its Node (one controller owner
//     reference, as Kubernetes requires), so that no ReplicaSet adopts
//     it, and may not reference secrets, configmaps, service accounts or
//     claims, whose contents the node could otherwise read.
//   - A node may not add, change or remove labels under
//     node-restriction.kubernetes.io/ on its Node, nor labels of the
//     kubernetes.io and k8s.io domains other than a kubelet's own.
//     Administrators put labels there precisely because nodes cannot
//     set them, and steer sensitive workloads with them; a node that
//     could set them would attract those workloads.
//   - A node may not change its own taints. The node lifecycle
//     controller taints an unreachable node, and administrators taint
//     nodes to keep workloads away; a node that removed them would draw
//     pods it should not get.
//   - A node may create only the Node and the Lease named like itself.
//     The node authorizer checks the name of the request, but a create
//     request need not carry one (Skiff's client sends the name only
//     inside the object), and the name inside the object is what gets
//     stored: this is the check that holds.
//
// Writes through the nodes/status subresource are not checked for
// labels and taints: the API server keeps everything of a Node but its
// status on those writes.
func NodeRestriction(u User, verb, resource, subresource string, obj, old runtime.Object) error {
	node, ok := u.NodeName()
	if !ok {
		return nil
	}
	switch {
	case resource == "pods" && subresource == "" && verb == "create":
		return admitMirrorPod(node, obj)
	case resource == "nodes" && subresource == "" && verb == "create":
		return admitNodeCreate(node, obj)
	case resource == "nodes" && subresource == "" && (verb == "update" || verb == "patch"):
		return admitNodeUpdate(node, obj, old)
	case resource == "leases" && verb == "create":
		return admitLeaseCreate(node, obj)
	}
	return nil
}

// mirrorPodAnnotation marks a pod that a kubelet runs from a file and
// reports to the API.
const mirrorPodAnnotation = corev1.MirrorPodAnnotationKey

// restrictedLabelDomain is the label prefix reserved for administrators.
const restrictedLabelDomain = corev1.LabelNamespaceNodeRestriction

func admitMirrorPod(node string, obj runtime.Object) error {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod == nil {
		return admissionForbidden("pods", "", fmt.Errorf("unexpected type %T", obj))
	}
	if _, mirror := pod.Annotations[mirrorPodAnnotation]; !mirror {
		return admissionForbidden("pods", pod.Name, fmt.Errorf("pod does not have %q annotation, node %q can only create mirror pods", mirrorPodAnnotation, node))
	}
	if pod.Spec.NodeName != node {
		return admissionForbidden("pods", pod.Name, fmt.Errorf("node %q can only create pods with spec.nodeName set to itself", node))
	}
	// Owned by the Node, as its controller: no ReplicaSet or other
	// controller may adopt the pod (a node could otherwise make a
	// ReplicaSet count its pod as a replica and delete real ones).
	if len(pod.OwnerReferences) > 1 {
		return admissionForbidden("pods", pod.Name, fmt.Errorf("node %q can only create pods with a single owner reference set to itself", node))
	}
	if len(pod.OwnerReferences) == 0 {
		return admissionForbidden("pods", pod.Name, fmt.Errorf("node %q can only create pods with an owner reference set to itself", node))
	}
	owner := pod.OwnerReferences[0]
	if owner.APIVersion != "v1" || owner.Kind != "Node" || owner.Name != node {
		return admissionForbidden("pods", pod.Name, fmt.Errorf("node %q can only create pods with an owner reference set to itself", node))
	}
	if owner.Controller == nil || !*owner.Controller {
		return admissionForbidden("pods", pod.Name, fmt.Errorf("node %q can only create pods with a controller owner reference set to itself", node))
	}
	if owner.BlockOwnerDeletion != nil && *owner.BlockOwnerDeletion {
		return admissionForbidden("pods", pod.Name, fmt.Errorf("node %q must not set blockOwnerDeletion on an owner reference", node))
	}
	// A mirror pod runs what a file on the node says; it may not name
	// the cluster's objects, whose contents the node would then be
	// allowed to read. podrefs is the very list the Node authorizer
	// answers from, so the two cannot drift apart.
	refuse := func(what string) error {
		return admissionForbidden("pods", pod.Name, fmt.Errorf("node %q can not create pods that reference %s", node, what))
	}
	spec := &pod.Spec
	switch {
	case spec.ServiceAccountName != "":
		return refuse("serviceaccounts")
	case len(podrefs.Secrets(spec)) > 0 || len(podrefs.PullSecrets(spec)) > 0:
		return refuse("secrets")
	case len(podrefs.ConfigMaps(spec)) > 0:
		return refuse("configmaps")
	}
	for _, v := range spec.Volumes {
		switch {
		case v.PersistentVolumeClaim != nil || v.Ephemeral != nil:
			return refuse("persistentvolumeclaims")
		case v.Projected != nil:
			for _, src := range v.Projected.Sources {
				if src.ServiceAccountToken != nil {
					return refuse("serviceaccounts")
				}
			}
		}
	}
	return nil
}

func admitNodeCreate(node string, obj runtime.Object) error {
	n, ok := obj.(*corev1.Node)
	if !ok || n == nil {
		return admissionForbidden("nodes", "", fmt.Errorf("unexpected type %T", obj))
	}
	if n.Name != node {
		return admissionForbidden("nodes", n.Name, fmt.Errorf("node %q is not allowed to modify node %q", node, n.Name))
	}
	if labels := restrictedLabelsChanged(n.Labels, nil); len(labels) > 0 {
		return admissionForbidden("nodes", n.Name, fmt.Errorf("node %q is not allowed to set the following labels: %s", node, strings.Join(labels, ", ")))
	}
	return nil
}

func admitNodeUpdate(node string, obj, old runtime.Object) error {
	n, ok := obj.(*corev1.Node)
	if !ok || n == nil {
		return admissionForbidden("nodes", "", fmt.Errorf("unexpected type %T", obj))
	}
	prev, ok := old.(*corev1.Node)
	if !ok || prev == nil {
		return admissionForbidden("nodes", n.Name, fmt.Errorf("unexpected type %T", old))
	}
	if !apiequality.Semantic.DeepEqual(n.Spec.Taints, prev.Spec.Taints) {
		return admissionForbidden("nodes", n.Name, fmt.Errorf("node %q is not allowed to modify taints", node))
	}
	if labels := restrictedLabelsChanged(n.Labels, prev.Labels); len(labels) > 0 {
		// Kubernetes' message, without the node's name, word for word.
		return admissionForbidden("nodes", n.Name, fmt.Errorf("is not allowed to modify labels: %s", strings.Join(labels, ", ")))
	}
	return nil
}

func admitLeaseCreate(node string, obj runtime.Object) error {
	l, ok := obj.(*coordinationv1.Lease)
	if !ok || l == nil {
		return admissionForbidden("leases", "", fmt.Errorf("unexpected type %T", obj))
	}
	// The namespace was checked by the node authorizer, on the request;
	// the object's may still be empty here, to be filled from it.
	if l.Name != node {
		return admissionForbidden("leases", l.Name, fmt.Errorf("can only access node lease with the same name as the requesting node"))
	}
	return nil
}

// restrictedLabelsChanged returns, sorted, the keys under
// node-restriction.kubernetes.io/ (or a subdomain of it) whose value
// differs between labels and old, counting added and removed ones.
func restrictedLabelsChanged(labels, old map[string]string) []string {
	var changed []string
	check := func(key string) {
		if !isRestrictedLabel(key) || slices.Contains(changed, key) {
			return
		}
		v, in := labels[key]
		w, inOld := old[key]
		if in != inOld || v != w {
			changed = append(changed, key)
		}
	}
	for k := range labels {
		check(k)
	}
	for k := range old {
		check(k)
	}
	slices.Sort(changed)
	return changed
}

// isRestrictedLabel reports whether a node may not set the label key
// on itself: anything under node-restriction.kubernetes.io, and anything
// else in the kubernetes.io and k8s.io domains except the labels a
// kubelet sets about itself (its host name, OS, architecture, instance
// type, zone and region, and the kubelet.kubernetes.io and
// node.kubernetes.io prefixes). Administrators and Kubernetes' own
// controllers label nodes in those domains (node-role.kubernetes.io,
// for one) to steer workloads.
func isRestrictedLabel(key string) bool {
	prefix, _, ok := strings.Cut(key, "/")
	if !ok {
		return false
	}
	inDomain := func(domain string) bool { return prefix == domain || strings.HasSuffix(prefix, "."+domain) }
	switch {
	case inDomain(restrictedLabelDomain):
		return true
	case !inDomain("kubernetes.io") && !inDomain("k8s.io"):
		return false
	case kubeletLabels[key], inDomain("kubelet.kubernetes.io"), inDomain("node.kubernetes.io"):
		return false
	}
	return true
}

// kubeletLabels are the labels in Kubernetes' domains a kubelet may set
// on its own Node.
var kubeletLabels = map[string]bool{
	corev1.LabelHostname:                true,
	corev1.LabelOSStable:                true,
	corev1.LabelArchStable:              true,
	"beta.kubernetes.io/os":             true,
	"beta.kubernetes.io/arch":           true,
	corev1.LabelInstanceType:            true,
	corev1.LabelInstanceTypeStable:      true,
	corev1.LabelFailureDomainBetaZone:   true,
	corev1.LabelFailureDomainBetaRegion: true,
	corev1.LabelTopologyZone:            true,
	corev1.LabelTopologyRegion:          true,
}

// admissionForbidden is the error of a refused write of the object
// called name, of the resource with the given plural name, worded as
// Kubernetes' admission does:
//
//	pods "web" is forbidden: node "a" can only create pods with spec.nodeName set to itself
func admissionForbidden(resource, name string, err error) error {
	gr := schema.GroupResource{Resource: resource}
	for _, r := range scheme.Resources {
		if r.Resource == resource {
			gr = r.GroupResource()
			break
		}
	}
	return apierrors.NewForbidden(gr, name, err)
}
