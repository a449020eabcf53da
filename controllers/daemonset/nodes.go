package daemonset

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// Which nodes a DaemonSet's pods belong on: the pure checks behind
// Decide, after Kubernetes' NodeShouldRunDaemonPod. They look at the pod
// a DaemonSet would create (the template with the daemon tolerations
// added), never at the node's free resources: whether the pod fits is
// the scheduler's judgement, which it reports on the pod.

// daemonTolerations are the tolerations every daemon pod gets, as
// Kubernetes gives them: a per-node agent keeps running on a node that is
// not ready, unreachable or under pressure, and may start on a cordoned
// one. The NoExecute ones have no tolerationSeconds: a daemon pod is
// never evicted for its node's health.
var daemonTolerations = []corev1.Toleration{
	{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeDiskPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeMemoryPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodePIDPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
}

// hostNetworkToleration is added for pods on the host's network, which
// works before the node's pod network does.
var hostNetworkToleration = corev1.Toleration{Key: corev1.TaintNodeNetworkUnavailable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}

// withDaemonTolerations returns tolerations with the daemon tolerations
// added; one the user wrote for the same key, effect, operator and value
// (with tolerationSeconds, say) is replaced.
func withDaemonTolerations(spec *corev1.PodSpec) []corev1.Toleration {
	out := slices.Clone(spec.Tolerations)
	add := daemonTolerations
	if spec.HostNetwork {
		add = append(slices.Clone(add), hostNetworkToleration)
	}
	for _, t := range add {
		if i := slices.IndexFunc(out, func(o corev1.Toleration) bool { return o.MatchToleration(&t) }); i >= 0 {
			out[i] = t
		} else {
			out = append(out, t)
		}
	}
	return out
}

// placement is what a DaemonSet wants on one node.
type placement struct {
	// shouldRun: a daemon pod belongs on the node.
	shouldRun bool
	// shouldContinueRunning: a daemon pod already on the node may stay.
	// A NoSchedule taint the pod does not tolerate keeps new pods off
	// the node but leaves a running one alone; a NoExecute taint, a node
	// selector or an affinity that no longer matches does not.
	shouldContinueRunning bool
}

// placeOn decides whether spec, a daemon pod's spec (with the daemon
// tolerations), belongs on node.
func placeOn(spec *corev1.PodSpec, node *corev1.Node) placement {
	if !matchesNodeSelector(spec, node) {
		return placement{}
	}
	var noSchedule, noExecute bool
	for i := range node.Spec.Taints {
		taint := &node.Spec.Taints[i]
		if taint.Effect != corev1.TaintEffectNoSchedule && taint.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		if slices.ContainsFunc(spec.Tolerations, func(t corev1.Toleration) bool { return tolerates(&t, taint) }) {
			continue
		}
		if taint.Effect == corev1.TaintEffectNoExecute {
			noExecute = true
		} else {
			noSchedule = true
		}
	}
	return placement{shouldRun: !noSchedule && !noExecute, shouldContinueRunning: !noExecute}
}

// matchesNodeSelector reports whether node satisfies spec.nodeSelector and
// the required node affinity (any one of its terms, each term wholly).
// A malformed requirement matches nothing, as in the scheduler.
func matchesNodeSelector(spec *corev1.PodSpec, node *corev1.Node) bool {
	if !labels.SelectorFromSet(spec.NodeSelector).Matches(labels.Set(node.Labels)) {
		return false
	}
	a := spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return true
	}
	return slices.ContainsFunc(a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms,
		func(term corev1.NodeSelectorTerm) bool { return termMatches(&term, node) })
}

// termMatches reports whether node satisfies every requirement of term.
// An empty term matches no node, as in Kubernetes.
func termMatches(term *corev1.NodeSelectorTerm, node *corev1.Node) bool {
	if len(term.MatchExpressions) == 0 && len(term.MatchFields) == 0 {
		return false
	}
	for _, r := range term.MatchExpressions {
		if !requirementMatches(r, labels.Set(node.Labels)) {
			return false
		}
	}
	for _, r := range term.MatchFields {
		// metadata.name is the one field Kubernetes defines here.
		if r.Key != metadataName || !requirementMatches(r, labels.Set{metadataName: node.Name}) {
			return false
		}
	}
	return true
}

const metadataName = "metadata.name"

// tolerates reports whether t tolerates taint: the same key (or an empty
// key with Exists, which is every key), the same effect (or none, which
// is every effect), and for Equal (the default) the same value.
func tolerates(t *corev1.Toleration, taint *corev1.Taint) bool {
	if t.Effect != "" && t.Effect != taint.Effect {
		return false
	}
	if t.Key != "" && t.Key != taint.Key {
		return false
	}
	switch t.Operator {
	case corev1.TolerationOpExists:
		return true
	case "", corev1.TolerationOpEqual:
		return t.Key != "" && t.Value == taint.Value
	}
	return false
}

// nodeSelectorOps maps a node selector operator to a label selector one.
var nodeSelectorOps = map[corev1.NodeSelectorOperator]selection.Operator{
	corev1.NodeSelectorOpIn:           selection.In,
	corev1.NodeSelectorOpNotIn:        selection.NotIn,
	corev1.NodeSelectorOpExists:       selection.Exists,
	corev1.NodeSelectorOpDoesNotExist: selection.DoesNotExist,
	corev1.NodeSelectorOpGt:           selection.GreaterThan,
	corev1.NodeSelectorOpLt:           selection.LessThan,
}

func requirementMatches(r corev1.NodeSelectorRequirement, set labels.Set) bool {
	op, ok := nodeSelectorOps[r.Operator]
	if !ok {
		return false
	}
	req, err := labels.NewRequirement(r.Key, op, r.Values)
	return err == nil && req.Matches(set)
}

// targetNode is the node a daemon pod is for: its spec.nodeName once
// bound, before that the node its required affinity names through
// matchFields metadata.name, as this controller writes it.
func targetNode(pod *corev1.Pod) string {
	if pod.Spec.NodeName != "" {
		return pod.Spec.NodeName
	}
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return ""
	}
	for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, r := range term.MatchFields {
			if r.Key == metadataName && r.Operator == corev1.NodeSelectorOpIn && len(r.Values) == 1 {
				return r.Values[0]
			}
		}
	}
	return ""
}

// pinnedTo returns affinity with its required node affinity replaced by
// one term that names node, which is how a daemon pod is placed: the
// scheduler binds it, and it can bind it only there. Preferred terms and
// pod (anti-)affinity are kept. Decide has checked that node satisfies
// the terms replaced.
func pinnedTo(affinity *corev1.Affinity, node string) *corev1.Affinity {
	out := affinity.DeepCopy()
	if out == nil {
		out = &corev1.Affinity{}
	}
	if out.NodeAffinity == nil {
		out.NodeAffinity = &corev1.NodeAffinity{}
	}
	out.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchFields: []corev1.NodeSelectorRequirement{{Key: metadataName, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
		}},
	}
	return out
}
