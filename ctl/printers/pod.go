package printers

import (
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// nodeLostReason is the status.reason the node lifecycle controller gives
// the pods of a node that stopped reporting.
const nodeLostReason = "NodeLost"

// PodSummary is what the READY, STATUS and RESTARTS columns say about a
// pod.
type PodSummary struct {
	// Ready and Total count the pod's ready containers and all of its
	// long-running ones (app containers and sidecars).
	Ready, Total int
	// Status is one word for the pod's state: a phase (Pending, Running),
	// a container's reason (ContainerCreating, CrashLoopBackOff,
	// Completed, Error), the progress of its init containers ("Init:0/2",
	// "Init:Error"), or Terminating.
	Status string
	// Restarts counts the restarts of the containers that matter at this
	// stage, and LastRestart is when the latest of them ended (zero if
	// unknown).
	Restarts    int
	LastRestart time.Time
}

// SummarizePod works out a pod's READY, STATUS and RESTARTS the way
// kubectl does.
//
// The status starts as the phase (or status.reason when set). While the
// init containers run, it reports on the first one that has not finished;
// after that, on the app containers, the first one in spec order with a
// waiting or terminated reason winning. Deletion overrides it all.
func SummarizePod(pod *corev1.Pod) PodSummary {
	s := PodSummary{Status: string(pod.Status.Phase), Total: len(pod.Spec.Containers)}
	if pod.Status.Reason != "" {
		s.Status = pod.Status.Reason
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Reason == corev1.PodReasonSchedulingGated {
			s.Status = corev1.PodReasonSchedulingGated
		}
	}

	sidecars := map[string]bool{}
	for _, c := range pod.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecars[c.Name] = true
			s.Total++
		}
	}

	// Restarts of init containers count while the pod initializes; once
	// it runs, only the restarts of its sidecars and app containers do.
	var allInit, sidecarOnly restartCount
	initializing := false
	for i, st := range pod.Status.InitContainerStatuses {
		allInit.add(st)
		if sidecars[st.Name] {
			sidecarOnly.add(st)
		}
		if t := st.State.Terminated; t != nil && t.ExitCode == 0 {
			continue // finished
		}
		if sidecars[st.Name] && st.Started != nil && *st.Started {
			if st.Ready {
				s.Ready++
			}
			continue // a sidecar that runs next to the app containers
		}
		initializing = true
		switch t, w := st.State.Terminated, st.State.Waiting; {
		case t != nil:
			s.Status = "Init:" + terminationReason(t)
		case w != nil && w.Reason != "" && w.Reason != "PodInitializing":
			s.Status = "Init:" + w.Reason
		default:
			s.Status = fmt.Sprintf("Init:%d/%d", i, len(pod.Spec.InitContainers))
		}
		break
	}

	count := allInit
	if !initializing || hasCondition(pod.Status.Conditions, corev1.PodInitialized) {
		count = sidecarOnly
		running := false
		// Walk backwards so that the first container's reason wins.
		for i := len(pod.Status.ContainerStatuses) - 1; i >= 0; i-- {
			st := pod.Status.ContainerStatuses[i]
			count.add(st)
			switch w, t := st.State.Waiting, st.State.Terminated; {
			case w != nil && w.Reason != "":
				s.Status = w.Reason
			case t != nil:
				s.Status = terminationReason(t)
			case st.Ready && st.State.Running != nil:
				running = true
				s.Ready++
			}
		}
		// A pod whose other containers still run is not completed.
		if s.Status == "Completed" && running {
			if hasCondition(pod.Status.Conditions, corev1.PodReady) {
				s.Status = "Running"
			} else {
				s.Status = "NotReady"
			}
		}
	}
	s.Restarts, s.LastRestart = count.n, count.last

	if pod.DeletionTimestamp != nil {
		switch {
		case pod.Status.Reason == nodeLostReason:
			s.Status = "Unknown"
		case pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed:
			s.Status = "Terminating"
		}
	}
	return s
}

// restartCount adds up the restarts of containers and remembers when the
// latest of them ended.
type restartCount struct {
	n    int
	last time.Time
}

func (r *restartCount) add(st corev1.ContainerStatus) {
	r.n += int(st.RestartCount)
	if t := st.LastTerminationState.Terminated; t != nil && t.FinishedAt.After(r.last) {
		r.last = t.FinishedAt.Time
	}
}

// terminationReason names how a container ended: its reason ("Completed",
// "Error", "OOMKilled"), else its signal or exit code.
func terminationReason(t *corev1.ContainerStateTerminated) string {
	switch {
	case t.Reason != "":
		return t.Reason
	case t.Signal != 0:
		return fmt.Sprintf("Signal:%d", t.Signal)
	}
	return fmt.Sprintf("ExitCode:%d", t.ExitCode)
}

// hasCondition reports whether the pod condition typ is True.
func hasCondition(conds []corev1.PodCondition, typ corev1.PodConditionType) bool {
	for _, c := range conds {
		if c.Type == typ {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// restartsCell is the RESTARTS cell: "0", or "2 (5m ago)" when the time
// of the last restart is known.
func restartsCell(s PodSummary, now time.Time) string {
	if s.Restarts == 0 || s.LastRestart.IsZero() {
		return strconv.Itoa(s.Restarts)
	}
	return fmt.Sprintf("%d (%s ago)", s.Restarts, HumanAge(metav1.NewTime(s.LastRestart), now))
}

func podRow(obj runtime.Object, wide bool, now time.Time) []string {
	pod := obj.(*corev1.Pod)
	s := SummarizePod(pod)
	cells := []string{
		pod.Name,
		fmt.Sprintf("%d/%d", s.Ready, s.Total),
		s.Status,
		restartsCell(s, now),
		HumanAge(pod.CreationTimestamp, now),
	}
	ip := ""
	if len(pod.Status.PodIPs) > 0 {
		ip = pod.Status.PodIPs[0].IP
	}
	gates := "<none>"
	if n := len(pod.Spec.ReadinessGates); n > 0 {
		met := 0
		for _, g := range pod.Spec.ReadinessGates {
			if hasCondition(pod.Status.Conditions, g.ConditionType) {
				met++
			}
		}
		gates = fmt.Sprintf("%d/%d", met, n)
	}
	return append(cells, OrNone(ip), OrNone(pod.Spec.NodeName), OrNone(pod.Status.NominatedNodeName), gates)
}
