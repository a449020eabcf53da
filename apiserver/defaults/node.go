package defaults

import (
	corev1 "k8s.io/api/core/v1"
)

// DefaultNode sets the defaults of a Node. A node that reports its capacity
// but not what is allocatable to pods offers all of it; quantities are
// rounded up to milli-units; and spec.podCIDR and spec.podCIDRs (the old
// single-stack field and its dual-stack successor) are kept in step, so a
// client may set either one.
func DefaultNode(node *corev1.Node) {
	status := &node.Status
	if status.Allocatable == nil && status.Capacity != nil {
		status.Allocatable = status.Capacity.DeepCopy()
	}
	defaultResourceList(status.Capacity)
	defaultResourceList(status.Allocatable)

	spec := &node.Spec
	switch {
	case spec.PodCIDR != "" && len(spec.PodCIDRs) == 0:
		spec.PodCIDRs = []string{spec.PodCIDR}
	case spec.PodCIDR == "" && len(spec.PodCIDRs) > 0:
		spec.PodCIDR = spec.PodCIDRs[0]
	}
}
