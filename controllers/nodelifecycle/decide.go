package nodelifecycle

import (
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition reasons and messages, as Kubernetes writes them.
const (
	ReasonNodeStatusUnknown       = "NodeStatusUnknown"
	MessageNodeStatusUnknown      = "Kubelet stopped posting node status."
	ReasonNodeStatusNeverUpdated  = "NodeStatusNeverUpdated"
	MessageNodeStatusNeverUpdated = "Kubelet never posted node status."
)

// Heartbeat is what a node last posted to show it is alive: its Lease's
// resourceVersion and renewTime and its Ready condition's
// lastHeartbeatTime. These are compared only with each other, for a
// change, never with this controller's clock: the node's clock may be
// skewed from it.
type Heartbeat struct {
	LeaseResourceVersion string
	LeaseRenewTime       time.Time
	ReadyHeartbeat       time.Time
}

// HeartbeatOf returns the node's current heartbeat. A Ready condition this
// controller wrote for a node that never posted one
// (ReasonNodeStatusNeverUpdated) is no heartbeat.
func HeartbeatOf(node *corev1.Node, lease *coordinationv1.Lease) Heartbeat {
	var hb Heartbeat
	if c := condition(node.Status.Conditions, corev1.NodeReady); c != nil && c.Reason != ReasonNodeStatusNeverUpdated {
		hb.ReadyHeartbeat = c.LastHeartbeatTime.Time
	}
	if lease != nil {
		hb.LeaseResourceVersion = lease.ResourceVersion
		if lease.Spec.RenewTime != nil {
			hb.LeaseRenewTime = lease.Spec.RenewTime.Time
		}
	}
	return hb
}

// Observation is the controller's record of a node's heartbeat: the last
// heartbeat it saw and when, on its own clock, it first saw it.
type Observation struct {
	Heartbeat  Heartbeat
	ObservedAt time.Time
}

// Observe updates a node's record (prev; found false when there is none)
// with its current heartbeat hb seen at now: a node seen for the first
// time, or that posted a new heartbeat (a changed Lease, a changed Ready
// lastHeartbeatTime), was alive at now; otherwise ObservedAt stays (a
// Lease or heartbeat that disappeared is no sign of life). Staleness is
// then now - ObservedAt, both on the controller's clock, as in
// Kubernetes.
func Observe(prev Observation, found bool, hb Heartbeat, now time.Time) Observation {
	if !found {
		return Observation{Heartbeat: hb, ObservedAt: now}
	}
	p := prev.Heartbeat
	leaseRenewed := hb.LeaseResourceVersion != "" && (hb.LeaseResourceVersion != p.LeaseResourceVersion || !hb.LeaseRenewTime.Equal(p.LeaseRenewTime))
	statusPosted := !hb.ReadyHeartbeat.IsZero() && !hb.ReadyHeartbeat.Equal(p.ReadyHeartbeat)
	if leaseRenewed || statusPosted {
		return Observation{Heartbeat: hb, ObservedAt: now}
	}
	return Observation{Heartbeat: hb, ObservedAt: prev.ObservedAt}
}

// Stale reports whether a node whose heartbeat was last seen changing at
// observed (on the controller's clock) is past the grace period at now
// and, if not, how long until it will be.
func Stale(observed, now time.Time, grace time.Duration) (bool, time.Duration) {
	left := observed.Add(grace).Sub(now)
	return left < 0, left
}

// MarkUnknown sets the node's Ready and pressure conditions to Unknown,
// as Kubernetes does for a node that stopped reporting. It reports
// whether Ready changed to Unknown (the moment for a NodeNotReady event)
// and whether anything changed at all.
func MarkUnknown(status *corev1.NodeStatus, now time.Time) (readyChanged, changed bool) {
	t := metav1.NewTime(now)
	if condition(status.Conditions, corev1.NodeReady) == nil {
		status.Conditions = append(status.Conditions, corev1.NodeCondition{
			Type: corev1.NodeReady, Status: corev1.ConditionUnknown,
			Reason: ReasonNodeStatusNeverUpdated, Message: MessageNodeStatusNeverUpdated,
			LastHeartbeatTime: t, LastTransitionTime: t,
		})
		return true, true
	}
	for i := range status.Conditions {
		c := &status.Conditions[i]
		switch c.Type {
		case corev1.NodeReady, corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure:
		default:
			continue
		}
		if c.Status == corev1.ConditionUnknown {
			continue
		}
		c.Status = corev1.ConditionUnknown
		c.Reason, c.Message = ReasonNodeStatusUnknown, MessageNodeStatusUnknown
		c.LastTransitionTime = t
		changed = true
		if c.Type == corev1.NodeReady {
			readyChanged = true
		}
	}
	return readyChanged, changed
}

// managedTaints are the taints this controller adds and removes; it leaves
// every other taint alone.
var managedTaints = []corev1.Taint{
	{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute},
}

// DesiredTaints returns the node's taints as its health calls for:
// unreachable (NoSchedule and NoExecute) when its Lease is stale,
// not-ready when it reports Ready=False, neither otherwise. Other taints
// are kept, and so is the timeAdded of a taint that stays; new NoExecute
// taints get timeAdded now, the time their pods' tolerationSeconds count
// from. It reports whether the taints changed.
func DesiredTaints(node *corev1.Node, stale bool, now time.Time) ([]corev1.Taint, bool) {
	var key string
	switch {
	case stale:
		key = corev1.TaintNodeUnreachable
	case conditionStatus(node, corev1.NodeReady) == corev1.ConditionFalse:
		key = corev1.TaintNodeNotReady
	}
	var out []corev1.Taint
	changed := false
	for _, t := range node.Spec.Taints {
		if isManaged(t) && t.Key != key {
			changed = true
			continue
		}
		out = append(out, t)
	}
	if key == "" {
		return out, changed
	}
	for _, effect := range []corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectNoExecute} {
		if hasTaint(out, key, effect) {
			continue
		}
		t := corev1.Taint{Key: key, Effect: effect}
		if effect == corev1.TaintEffectNoExecute {
			t.TimeAdded = new(metav1.NewTime(now))
		}
		out = append(out, t)
		changed = true
	}
	return out, changed
}

// EvictionDelay says when a pod on a node with taints must be evicted:
// never (ok false) when no NoExecute taint applies or it tolerates them all
// forever; otherwise after the returned delay from now, zero or less
// meaning at once. A NoExecute taint the pod does not tolerate evicts it at
// once; tolerated ones evict it after the shortest tolerationSeconds of the
// tolerations used, counted from the taint's timeAdded (from now when
// the taint has none).
func EvictionDelay(pod *corev1.Pod, taints []corev1.Taint, now time.Time) (time.Duration, bool) {
	evict, first := false, time.Duration(0)
	for i := range taints {
		taint := &taints[i]
		if taint.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		seconds, tolerated, forever := tolerationTime(pod.Spec.Tolerations, taint)
		if forever {
			continue
		}
		delay := time.Duration(0)
		if tolerated {
			added := now
			if taint.TimeAdded != nil {
				added = taint.TimeAdded.Time
			}
			delay = added.Add(time.Duration(seconds) * time.Second).Sub(now)
		}
		if !evict || delay < first {
			evict, first = true, delay
		}
	}
	return first, evict
}

// tolerationTime returns how long the tolerations let a pod stay on a node
// with taint: not at all (tolerated false), forever, or seconds (the
// shortest of the matching tolerations, as Kubernetes takes).
func tolerationTime(tolerations []corev1.Toleration, taint *corev1.Taint) (seconds int64, tolerated, forever bool) {
	for i := range tolerations {
		t := &tolerations[i]
		if !tolerates(t, taint) {
			continue
		}
		if t.TolerationSeconds == nil {
			if !tolerated {
				forever = true
			}
			tolerated = true
			continue
		}
		s := max(*t.TolerationSeconds, 0)
		if !tolerated || forever || s < seconds {
			seconds = s
		}
		tolerated, forever = true, false
	}
	return seconds, tolerated, forever
}

// tolerates is Kubernetes' Toleration.ToleratesTaint: an empty effect
// matches every effect, an empty key with operator Exists every key, and
// Equal (the default operator) compares the value too.
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

func isManaged(t corev1.Taint) bool {
	for _, m := range managedTaints {
		if t.Key == m.Key && t.Effect == m.Effect {
			return true
		}
	}
	return false
}

func hasTaint(taints []corev1.Taint, key string, effect corev1.TaintEffect) bool {
	for _, t := range taints {
		if t.Key == key && t.Effect == effect {
			return true
		}
	}
	return false
}

func condition(conds []corev1.NodeCondition, t corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

func conditionStatus(node *corev1.Node, t corev1.NodeConditionType) corev1.ConditionStatus {
	if c := condition(node.Status.Conditions, t); c != nil {
		return c.Status
	}
	return ""
}
