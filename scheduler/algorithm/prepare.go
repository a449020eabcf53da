package algorithm

import (
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// preparedPod is everything the filters and scores need to know about the
// pod, worked out once per decision so that the per-node checks only
// compare strings and numbers: they parse nothing and allocate nothing.
type preparedPod struct {
	pod *corev1.Pod

	// requests are what the pod needs to fit; nonZero what scoring counts.
	requests, nonZero Resources

	// tolerations are the pod's own; the three flags say whether they
	// tolerate the NoSchedule taints that stand for an unschedulable, a
	// not-ready and an unreachable node.
	tolerations            []corev1.Toleration
	toleratesUnschedulable bool
	toleratesNotReady      bool
	toleratesUnreachable   bool

	// nodeName is spec.nodeName: when set, only that node will do.
	nodeName string

	// nodeSelector is spec.nodeSelector, sorted by key.
	nodeSelector []labelPair
	// required holds the terms of requiredDuringScheduling node affinity
	// (hasRequired false: there is none); a node must match one of them.
	required    []selectorTerm
	hasRequired bool
	// preferred holds the preferredDuringScheduling terms with a weight.
	preferred []weightedTerm

	ports []hostPort

	// owner is the UID of the pod's controller, or "".
	owner types.UID
}

type labelPair struct{ key, value string }

// selectorTerm is a parsed NodeSelectorTerm: its requirements all hold.
// An empty or malformed term matches no node, as in Kubernetes.
type selectorTerm struct {
	requirements []requirement
	invalid      bool
}

type weightedTerm struct {
	selectorTerm
	weight int64
}

// requirement is one matchExpressions or matchFields entry.
type requirement struct {
	key    string
	op     corev1.NodeSelectorOperator
	values []string
	// field is set for matchFields, whose only key is metadata.name.
	field bool
	// number is the single value of Gt and Lt, parsed.
	number int64
}

// preparePod works out the preparedPod for pod.
func preparePod(pod *corev1.Pod) *preparedPod {
	p := &preparedPod{
		pod:         pod,
		requests:    PodRequests(pod),
		nonZero:     podRequests(pod, true),
		tolerations: pod.Spec.Tolerations,
		nodeName:    pod.Spec.NodeName,
		ports:       hostPorts(pod),
		owner:       controllerUID(pod),
	}
	p.toleratesUnschedulable = tolerated(p.tolerations, &corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule})
	p.toleratesNotReady = tolerated(p.tolerations, &corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule})
	p.toleratesUnreachable = tolerated(p.tolerations, &corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoSchedule})

	for k, v := range pod.Spec.NodeSelector {
		p.nodeSelector = append(p.nodeSelector, labelPair{k, v})
	}
	sort.Slice(p.nodeSelector, func(i, j int) bool { return p.nodeSelector[i].key < p.nodeSelector[j].key })

	if a := pod.Spec.Affinity; a != nil && a.NodeAffinity != nil {
		if req := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution; req != nil {
			p.hasRequired = true
			for i := range req.NodeSelectorTerms {
				p.required = append(p.required, parseTerm(&req.NodeSelectorTerms[i]))
			}
		}
		for _, pref := range a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			if pref.Weight == 0 {
				continue
			}
			p.preferred = append(p.preferred, weightedTerm{parseTerm(&pref.Preference), int64(pref.Weight)})
		}
	}
	return p
}

// parseTerm checks a term's requirements the way Kubernetes' label and
// field selectors would and keeps them in a form that is quick to match.
func parseTerm(t *corev1.NodeSelectorTerm) selectorTerm {
	var st selectorTerm
	for _, e := range t.MatchExpressions {
		r, ok := parseRequirement(e, false)
		st.requirements = append(st.requirements, r)
		st.invalid = st.invalid || !ok
	}
	for _, e := range t.MatchFields {
		r, ok := parseRequirement(e, true)
		st.requirements = append(st.requirements, r)
		st.invalid = st.invalid || !ok
	}
	if len(st.requirements) == 0 {
		st.invalid = true
	}
	return st
}

func parseRequirement(e corev1.NodeSelectorRequirement, field bool) (requirement, bool) {
	r := requirement{key: e.Key, op: e.Operator, values: e.Values, field: field}
	if field {
		// Nodes offer one field to select on, and only equality.
		return r, e.Key == "metadata.name" && len(e.Values) == 1 &&
			(e.Operator == corev1.NodeSelectorOpIn || e.Operator == corev1.NodeSelectorOpNotIn)
	}
	switch e.Operator {
	case corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn:
		return r, len(e.Values) > 0
	case corev1.NodeSelectorOpExists, corev1.NodeSelectorOpDoesNotExist:
		return r, len(e.Values) == 0
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if len(e.Values) != 1 {
			return r, false
		}
		n, err := strconv.ParseInt(e.Values[0], 10, 64)
		r.number = n
		return r, err == nil
	}
	return r, false
}
