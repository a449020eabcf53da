package kubelet

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffdev/skiff/kubelet/runtime"
)

// writtenStatus is the last status the kubelet wrote for a pod.
type writtenStatus struct {
	status          corev1.PodStatus
	resourceVersion string
}

// computeStatus derives a pod's status from what the runtime has and what
// this sync learned, the way Kubernetes' kubelet reports it.
func (k *Kubelet) computeStatus(ps *podSync) corev1.PodStatus {
	pod, sb, st := ps.pod, ps.sb, ps.notes
	old := knownStatus(pod, ps.state)
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	s := corev1.PodStatus{
		HostIP:    k.cfg.NodeIP,
		HostIPs:   []corev1.HostIP{{IP: k.cfg.NodeIP}},
		StartTime: old.StartTime,
		QOSClass:  old.QOSClass,
	}
	if s.StartTime == nil {
		s.StartTime = &now
	}
	if sb.ip.IsValid() {
		s.PodIP = sb.ip.String()
		s.PodIPs = []corev1.PodIP{{IP: s.PodIP}}
	}
	runs := runsByName(k.containers.ofPod(pod.UID))

	initialized := true
	var incompleteInit []string
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		cs := k.containerStatus(c, runs[c.Name], st, true, "PodInitializing")
		if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
			initialized = false
			incompleteInit = append(incompleteInit, c.Name)
		}
		s.InitContainerStatuses = append(s.InitContainerStatuses, cs)
	}
	defaultWaiting := "ContainerCreating"
	if !initialized {
		defaultWaiting = "PodInitializing"
	}
	var unready []string
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		cs := k.containerStatus(c, runs[c.Name], st, false, defaultWaiting)
		if !cs.Ready {
			unready = append(unready, c.Name)
		}
		s.ContainerStatuses = append(s.ContainerStatuses, cs)
	}
	s.Phase = podPhase(pod, s, initialized, st.initFailed)

	cond := func(t corev1.PodConditionType, ok bool, reason, msg string) corev1.PodCondition {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, Reason: reason, Message: msg}
		if ok {
			c.Status, c.Reason, c.Message = corev1.ConditionTrue, "", ""
		}
		c.LastTransitionTime = now
		for _, o := range old.Conditions {
			if o.Type == t && o.Status == c.Status {
				c.LastTransitionTime = o.LastTransitionTime
			}
		}
		return c
	}
	terminal := s.Phase == corev1.PodSucceeded || s.Phase == corev1.PodFailed
	readyReason, readyMsg := "ContainersNotReady", fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
	if terminal {
		readyReason, readyMsg = "PodCompleted", ""
	}
	initReason, initMsg := "ContainersNotInitialized", fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(incompleteInit, " "))
	if terminal && initialized {
		initReason, initMsg = "PodCompleted", ""
	}
	ready := len(unready) == 0 && !terminal
	owned := []corev1.PodCondition{
		cond(corev1.PodReadyToStartContainers, sb.ip.IsValid() && !terminal, "", ""),
		cond(corev1.PodInitialized, initialized, initReason, initMsg),
		cond(corev1.ContainersReady, ready, readyReason, readyMsg),
		cond(corev1.PodReady, ready, readyReason, readyMsg),
	}
	// Conditions other components own (PodScheduled, DisruptionTarget)
	// are kept as they are.
	for _, o := range old.Conditions {
		switch o.Type {
		case corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady:
		default:
			s.Conditions = append(s.Conditions, o)
		}
	}
	s.Conditions = append(s.Conditions, owned...)
	return s
}

// containerStatus reports one container from its current and previous
// runs.
func (k *Kubelet) containerStatus(c *corev1.Container, r *runs, st *syncNotes, init bool, defaultWaiting string) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, Started: ptr.To(false)}
	if r == nil || r.current == nil {
		w := st.waiting[c.Name]
		if w == nil {
			w = &corev1.ContainerStateWaiting{Reason: defaultWaiting}
		}
		cs.State.Waiting = w
		return cs
	}
	cur := r.current
	cs.ContainerID = "skiff://" + cur.ID
	cs.ImageID = cur.Labels[labelImageRef]
	cs.RestartCount = int32(attempt(*cur))
	if r.previous != nil {
		cs.LastTerminationState.Terminated = terminated(r.previous)
	}
	switch cur.State {
	case runtime.StateRunning:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(cur.StartedAt.Truncate(time.Second))}
		if init {
			cs.Started = ptr.To(true)
		} else {
			cs.Started = ptr.To(k.probes.Started(cur.ID))
			cs.Ready = k.probes.Ready(cur.ID)
		}
	case runtime.StateExited:
		if w := st.waiting[c.Name]; w != nil {
			// Waiting for its next run: the run that ended is the last
			// state.
			cs.State.Waiting = w
			cs.LastTerminationState.Terminated = terminated(cur)
		} else {
			cs.State.Terminated = terminated(cur)
			cs.Ready = init && cur.ExitCode == 0
		}
	default:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
	}
	return cs
}

func terminated(st *runtime.Status) *corev1.ContainerStateTerminated {
	return &corev1.ContainerStateTerminated{
		ExitCode:    int32(st.ExitCode),
		Reason:      st.Reason,
		Message:     st.Message,
		StartedAt:   metav1.NewTime(st.StartedAt.Truncate(time.Second)),
		FinishedAt:  metav1.NewTime(st.FinishedAt.Truncate(time.Second)),
		ContainerID: "skiff://" + st.ID,
	}
}

// podPhase is Kubernetes' phase rule: Pending until every container has
// started once, Running while any runs or will be restarted, Succeeded or
// Failed once all have ended for good.
func podPhase(pod *corev1.Pod, s corev1.PodStatus, initialized, initFailed bool) corev1.PodPhase {
	if initFailed {
		return corev1.PodFailed
	}
	if !initialized {
		return corev1.PodPending
	}
	var waiting, running, stopped, succeeded int
	for _, cs := range s.ContainerStatuses {
		switch {
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil:
			stopped++
			if cs.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case cs.LastTerminationState.Terminated != nil:
			stopped++ // waiting to restart
		default:
			waiting++
		}
	}
	switch {
	case waiting > 0:
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	case stopped > 0:
		switch {
		case pod.Spec.RestartPolicy == corev1.RestartPolicyAlways:
			return corev1.PodRunning
		case stopped == succeeded:
			return corev1.PodSucceeded
		case pod.Spec.RestartPolicy == corev1.RestartPolicyOnFailure:
			return corev1.PodRunning
		}
		return corev1.PodFailed
	}
	return corev1.PodPending
}

// writeStatus writes a pod's status through the status subresource when
// it differs from what the API has (or from what this kubelet last wrote,
// while the informer has not caught up).
func (k *Kubelet) writeStatus(ctx context.Context, ps *podSync, status corev1.PodStatus) error {
	pod := ps.pod
	if equality.Semantic.DeepEqual(knownStatus(pod, ps.state), status) {
		return nil
	}
	for try := 0; ; try++ {
		p := pod.DeepCopy()
		p.Status = status
		out, err := k.client.Pods(pod.Namespace).UpdateStatus(ctx, p)
		switch {
		case err == nil:
			ps.state.written = &writtenStatus{status: out.Status, resourceVersion: out.ResourceVersion}
			return nil
		case apierrors.IsNotFound(err):
			return nil
		case apierrors.IsConflict(err) && try < 3:
			fresh, gerr := k.client.Pods(pod.Namespace).Get(ctx, pod.Name)
			if gerr != nil {
				return gerr
			}
			if fresh.UID != pod.UID {
				return nil
			}
			// The conditions others own come from the fresh object.
			var conds []corev1.PodCondition
			for _, c := range fresh.Status.Conditions {
				if !ownedCondition(c.Type) {
					conds = append(conds, c)
				}
			}
			for _, c := range status.Conditions {
				if ownedCondition(c.Type) {
					conds = append(conds, c)
				}
			}
			status.Conditions = conds
			pod = fresh
		default:
			return fmt.Errorf("writing the pod's status: %w", err)
		}
	}
}

func ownedCondition(t corev1.PodConditionType) bool {
	switch t {
	case corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady:
		return true
	}
	return false
}

// knownStatus is the pod's status as the API has it: the pod object's,
// unless the informer has not yet caught up with what this kubelet last
// wrote.
func knownStatus(pod *corev1.Pod, state *podState) corev1.PodStatus {
	if last := state.written; last != nil && rvLess(pod.ResourceVersion, last.resourceVersion) {
		return last.status
	}
	return pod.Status
}

// rvLess reports whether resourceVersion a is older than b.
func rvLess(a, b string) bool {
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(b, 10, 64)
	return err1 == nil && err2 == nil && x < y
}
