package nodestatus

import (
	"maps"
	"runtime"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Reasons and messages of the conditions the node reports, as a
// Kubernetes kubelet words them.
const (
	ReasonReady    = "KubeletReady"
	ReasonNotReady = "KubeletNotReady"
	MessageReady   = "kubelet is posting ready status"
)

// pressureConditions are the conditions Skiff reports as always False:
// it does not evict pods under pressure (yet), so it never claims any.
var pressureConditions = []corev1.NodeCondition{
	{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", Message: "kubelet has sufficient memory available"},
	{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", Message: "kubelet has no disk pressure"},
	{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID", Message: "kubelet has sufficient PID available"},
}

// Allocatable returns capacity minus reserved, resource by resource,
// never below zero. A reservation of a resource the node does not have is
// ignored.
func Allocatable(capacity, reserved corev1.ResourceList) corev1.ResourceList {
	out := make(corev1.ResourceList, len(capacity))
	for name, c := range capacity {
		q := c.DeepCopy()
		if r, ok := reserved[name]; ok {
			q.Sub(r)
			if q.Sign() < 0 {
				q = *resource.NewQuantity(0, c.Format)
			}
		}
		out[name] = q
	}
	return out
}

// nodeLabels returns the labels the node puts on its Node: cfg.Labels and
// the well-known ones every kubelet sets.
func nodeLabels(cfg *Config) map[string]string {
	labels := map[string]string{
		corev1.LabelHostname:   cfg.NodeName,
		corev1.LabelOSStable:   runtime.GOOS,
		corev1.LabelArchStable: runtime.GOARCH,
	}
	maps.Copy(labels, cfg.Labels)
	return labels
}

// desiredStatus returns the status the node should report, given what it
// knows about itself (cfg, m), the result of its health check and the
// status the Node has now. It starts from current, so that what other
// writers put there (another condition, images) is kept, and replaces
// what the kubelet owns: capacity, allocatable, addresses, endpoints,
// node info and its four conditions. A condition whose status did not
// change keeps its lastTransitionTime and lastHeartbeatTime from current,
// so that an unchanged node yields an equal status (see statusChanged);
// a new or changed condition gets now for both.
func desiredStatus(cfg *Config, m machine, healthErr error, now metav1.Time, current *corev1.NodeStatus) corev1.NodeStatus {
	s := *current.DeepCopy()
	s.Capacity = m.capacity.DeepCopy()
	s.Allocatable = Allocatable(m.capacity, cfg.Reserved)
	s.NodeInfo = m.info
	s.DaemonEndpoints.KubeletEndpoint.Port = cfg.KubeletPort
	s.Addresses = nil
	if cfg.NodeIP != "" {
		s.Addresses = append(s.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: cfg.NodeIP})
	}
	s.Addresses = append(s.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: cfg.NodeName})

	ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: ReasonReady, Message: MessageReady}
	if healthErr != nil {
		ready.Status, ready.Reason, ready.Message = corev1.ConditionFalse, ReasonNotReady, healthErr.Error()
	}
	for _, want := range append(pressureConditions[:len(pressureConditions):len(pressureConditions)], ready) {
		setCondition(&s.Conditions, want, now)
	}
	return s
}

// setCondition puts want into conds, in place of the condition of the
// same type or at the end. Times come from the old condition when its
// status is the same, else they are now.
func setCondition(conds *[]corev1.NodeCondition, want corev1.NodeCondition, now metav1.Time) {
	want.LastHeartbeatTime, want.LastTransitionTime = now, now
	for i := range *conds {
		old := &(*conds)[i]
		if old.Type != want.Type {
			continue
		}
		if old.Status == want.Status {
			want.LastHeartbeatTime, want.LastTransitionTime = old.LastHeartbeatTime, old.LastTransitionTime
		}
		*old = want
		return
	}
	*conds = append(*conds, want)
}

// statusChanged reports whether want, made by desiredStatus from have,
// differs from it. Since desiredStatus keeps the times of unchanged
// conditions, a node whose facts and health stay the same compares equal.
func statusChanged(want, have *corev1.NodeStatus) bool {
	return !apiequality.Semantic.DeepEqual(want, have)
}

// touchHeartbeats sets the lastHeartbeatTime of the kubelet's conditions
// to now: the status is about to be written.
func touchHeartbeats(s *corev1.NodeStatus, now metav1.Time) {
	for i := range s.Conditions {
		switch s.Conditions[i].Type {
		case corev1.NodeReady, corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure:
			s.Conditions[i].LastHeartbeatTime = now
		}
	}
}

// readyCondition returns the Ready condition of s, or nil.
func readyCondition(s *corev1.NodeStatus) *corev1.NodeCondition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == corev1.NodeReady {
			return &s.Conditions[i]
		}
	}
	return nil
}
