package algorithm

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// The reasons a node cannot take a pod, worded as Kubernetes words them
// so that users recognise the FailedScheduling message.
const (
	ReasonUnschedulable      = "node(s) were unschedulable"
	ReasonNotReady           = "node(s) were not ready"
	ReasonNodeName           = "node(s) didn't match the requested node name"
	ReasonNodeAffinity       = "node(s) didn't match Pod's node affinity/selector"
	ReasonHostPorts          = "node(s) didn't have free ports for the requested pod ports"
	ReasonInsufficientCPU    = "Insufficient cpu"
	ReasonInsufficientMemory = "Insufficient memory"
	ReasonTooManyPods        = "Too many pods"
)

// UntoleratedTaintReason is the reason for a node whose taint the pod
// does not tolerate: "node(s) had untolerated taint {key: value}".
func UntoleratedTaintReason(t *corev1.Taint) string {
	return fmt.Sprintf("node(s) had untolerated taint {%s: %s}", t.Key, t.Value)
}

// failure is the set of reasons one node failed for, one bit per reason,
// so that filtering a node allocates nothing.
type failure uint16

const (
	failUnschedulable failure = 1 << iota
	failNodeName
	failNotReady
	failTaint
	failNodeAffinity
	failHostPorts
	failCPU
	failMemory
	failPods
)

// numFailureBits is the number of failure bits above.
const numFailureBits = 9

// failureReasons are the reasons of the failure bits, by bit number; the
// taint's reason depends on the taint and is formatted when needed.
var failureReasons = [numFailureBits]string{
	ReasonUnschedulable, ReasonNodeName, ReasonNotReady, "",
	ReasonNodeAffinity, ReasonHostPorts,
	ReasonInsufficientCPU, ReasonInsufficientMemory, ReasonTooManyPods,
}

// filter decides whether the node can take the pod. It runs the checks in
// the order Kubernetes runs its filter plugins and stops at the first that
// fails, except that the resource check reports every resource that is
// short. For failTaint it also returns the first untolerated taint.
func filter(p *preparedPod, ni *NodeInfo) (failure, *corev1.Taint) {
	node := ni.Node
	if !fitsSchedulable(p, node) {
		return failUnschedulable, nil
	}
	if !fitsNodeName(p, node) {
		return failNodeName, nil
	}
	if !fitsReady(p, node) {
		return failNotReady, nil
	}
	if t := untoleratedTaint(p.tolerations, node.Spec.Taints); t != nil {
		return failTaint, t
	}
	if !fitsNodeAffinity(p, node) {
		return failNodeAffinity, nil
	}
	if !fitsHostPorts(p, ni) {
		return failHostPorts, nil
	}
	return insufficientResources(p, ni), nil
}

// fitsSchedulable: a cordoned node (spec.unschedulable) takes only pods
// that tolerate the node.kubernetes.io/unschedulable:NoSchedule taint.
func fitsSchedulable(p *preparedPod, node *corev1.Node) bool {
	return !node.Spec.Unschedulable || p.toleratesUnschedulable
}

// fitsNodeName: a pod that names its node fits only there.
func fitsNodeName(p *preparedPod, node *corev1.Node) bool {
	return p.nodeName == "" || p.nodeName == node.Name
}

// fitsReady: a node whose Ready condition is not True takes only pods that
// tolerate the NoSchedule taint Kubernetes would give it:
// node.kubernetes.io/unreachable when Ready is Unknown,
// node.kubernetes.io/not-ready when it is False or missing. (Kubernetes
// relies on the taint alone; checking the condition as well means a node
// is not offered pods in the moment before the taint lands.)
func fitsReady(p *preparedPod, node *corev1.Node) bool {
	switch ReadyStatus(node) {
	case corev1.ConditionTrue:
		return true
	case corev1.ConditionUnknown:
		return p.toleratesUnreachable
	default:
		return p.toleratesNotReady
	}
}

// ReadyStatus is the status of node's Ready condition, "" if it has none
// (which fitsReady treats like False).
func ReadyStatus(node *corev1.Node) corev1.ConditionStatus {
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == corev1.NodeReady {
			return node.Status.Conditions[i].Status
		}
	}
	return ""
}

// untoleratedTaint returns the first NoSchedule or NoExecute taint that no
// toleration tolerates, or nil. PreferNoSchedule taints never stop a pod.
func untoleratedTaint(tolerations []corev1.Toleration, taints []corev1.Taint) *corev1.Taint {
	for i := range taints {
		t := &taints[i]
		if t.Effect != corev1.TaintEffectNoSchedule && t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		if !tolerated(tolerations, t) {
			return t
		}
	}
	return nil
}

// tolerated reports whether any of tolerations tolerates taint.
func tolerated(tolerations []corev1.Toleration, taint *corev1.Taint) bool {
	for i := range tolerations {
		if tolerates(&tolerations[i], taint) {
			return true
		}
	}
	return false
}

// tolerates applies Kubernetes' matching rule: an empty effect or key in
// the toleration matches any; Exists matches any value, Equal (or no
// operator) the same value, and Gt/Lt compare integer values (the taint's
// value greater or less than the toleration's).
func tolerates(tol *corev1.Toleration, taint *corev1.Taint) bool {
	if tol.Effect != "" && tol.Effect != taint.Effect {
		return false
	}
	if tol.Key != "" && tol.Key != taint.Key {
		return false
	}
	switch tol.Operator {
	case "", corev1.TolerationOpEqual:
		return tol.Value == taint.Value
	case corev1.TolerationOpExists:
		return true
	case corev1.TolerationOpGt, corev1.TolerationOpLt:
		want, err1 := strconv.ParseInt(tol.Value, 10, 64)
		have, err2 := strconv.ParseInt(taint.Value, 10, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		if tol.Operator == corev1.TolerationOpGt {
			return have > want
		}
		return have < want
	}
	return false
}

// fitsNodeAffinity: the node has every label of spec.nodeSelector and, if
// the pod has required node affinity, matches at least one of its terms.
func fitsNodeAffinity(p *preparedPod, node *corev1.Node) bool {
	for _, l := range p.nodeSelector {
		if v, ok := node.Labels[l.key]; !ok || v != l.value {
			return false
		}
	}
	if !p.hasRequired {
		return true
	}
	for i := range p.required {
		if p.required[i].matches(node) {
			return true
		}
	}
	return false
}

// matches reports whether every requirement of the term holds on node.
func (t *selectorTerm) matches(node *corev1.Node) bool {
	if t.invalid {
		return false
	}
	for i := range t.requirements {
		if !t.requirements[i].matches(node) {
			return false
		}
	}
	return true
}

func (r *requirement) matches(node *corev1.Node) bool {
	value, present := node.Name, true
	if !r.field {
		value, present = node.Labels[r.key]
	}
	switch r.op {
	case corev1.NodeSelectorOpIn:
		return present && contains(r.values, value)
	case corev1.NodeSelectorOpNotIn:
		return !present || !contains(r.values, value)
	case corev1.NodeSelectorOpExists:
		return present
	case corev1.NodeSelectorOpDoesNotExist:
		return !present
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if !present {
			return false
		}
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return false
		}
		if r.op == corev1.NodeSelectorOpGt {
			return n > r.number
		}
		return n < r.number
	}
	return false
}

func contains(values []string, v string) bool {
	for _, x := range values {
		if x == v {
			return true
		}
	}
	return false
}

// fitsHostPorts: none of the pod's host ports is taken on the node. A port
// on 0.0.0.0 conflicts with the same protocol and port on any address; a
// port on one address conflicts with that address and with 0.0.0.0.
func fitsHostPorts(p *preparedPod, ni *NodeInfo) bool {
	if len(p.ports) == 0 || len(ni.UsedPorts) == 0 {
		return true
	}
	for i := range p.ports {
		hp := &p.ports[i]
		if hp.ip != wildcardHostIP {
			if ni.UsedPorts[hp.key] || ni.UsedPorts[hp.wildcardKey] {
				return false
			}
			continue
		}
		for used := range ni.UsedPorts {
			if strings.HasPrefix(used, hp.prefix) && strings.HasSuffix(used, hp.suffix) {
				return false
			}
		}
	}
	return true
}

// insufficientResources returns the resources the node is short of for
// the pod: its pod count, and the cpu and memory the pod requests beyond
// what is left of allocatable after the pods already there (assumed ones
// included). A pod that requests no cpu fits however busy the cpu is.
func insufficientResources(p *preparedPod, ni *NodeInfo) failure {
	var f failure
	if ni.Requested.Pods+p.requests.Pods > ni.Allocatable.Pods {
		f |= failPods
	}
	if p.requests.MilliCPU > 0 && p.requests.MilliCPU > ni.Allocatable.MilliCPU-ni.Requested.MilliCPU {
		f |= failCPU
	}
	if p.requests.Memory > 0 && p.requests.Memory > ni.Allocatable.Memory-ni.Requested.Memory {
		f |= failMemory
	}
	return f
}
