package defaults

import (
	corev1 "k8s.io/api/core/v1"
)

// DefaultNamespace sets the defaults of a Namespace: the phase Active, and
// the label kubernetes.io/metadata.name, which lets selectors pick
// namespaces by name. The "kubernetes" finalizer is not a default: the
// registry adds it on create only, so that clearing it later (the namespace
// controller's last step) is not undone.
func DefaultNamespace(ns *corev1.Namespace) {
	if ns.Status.Phase == "" {
		ns.Status.Phase = corev1.NamespaceActive
	}
	// A namespace created with only generateName has no name yet.
	if ns.Name != "" {
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels[corev1.LabelMetadataName] = ns.Name
	}
}
