package replicaset

import (
	"context"
	"sort"
	"strconv"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// This file is the controller's pure core: functions of pods, a
// ReplicaSet and a clock, with no I/O, so that each rule can be tested on
// its own.

// PodDeletionCost is the annotation that tells the controller which pods
// to delete first when scaling down: lower costs go first. As in
// Kubernetes, it is an int32; a missing or unparsable value counts as 0.
const PodDeletionCost = "controller.kubernetes.io/pod-deletion-cost"

// isActive reports whether pod counts towards a ReplicaSet's replicas: it
// is neither finished nor being deleted. A terminating pod is on its way
// out and its replacement must not wait for it.
func isActive(pod *corev1.Pod) bool {
	return pod.DeletionTimestamp == nil &&
		pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed
}

// readyCondition returns pod's Ready condition, or nil.
func readyCondition(pod *corev1.Pod) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodReady {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// isReady reports whether pod's Ready condition is True.
func isReady(pod *corev1.Pod) bool {
	c := readyCondition(pod)
	return c != nil && c.Status == corev1.ConditionTrue
}

// availableIn reports whether pod is available at now: Ready for more
// than minReady (Kubernetes' IsPodAvailable). A pod that is ready but not
// yet available becomes available after wait.
func availableIn(pod *corev1.Pod, minReady time.Duration, now time.Time) (available bool, wait time.Duration) {
	c := readyCondition(pod)
	if c == nil || c.Status != corev1.ConditionTrue {
		return false, 0
	}
	if minReady == 0 {
		return true, 0
	}
	if c.LastTransitionTime.IsZero() {
		return false, 0
	}
	at := c.LastTransitionTime.Add(minReady)
	if at.Before(now) {
		return true, 0
	}
	// Available strictly after at; a millisecond past it is enough.
	return false, at.Sub(now) + time.Millisecond
}

// calculateStatus returns rs's status for its active, owned pods at now,
// and how long until one of its ready pods becomes available (0: none is
// waiting). Fields other than the counts and observedGeneration (the
// conditions) are kept as they are.
func calculateStatus(rs *appsv1.ReplicaSet, pods []*corev1.Pod, now time.Time) (appsv1.ReplicaSetStatus, time.Duration) {
	st := *rs.Status.DeepCopy()
	templateLabels := labels.SelectorFromSet(rs.Spec.Template.Labels)
	minReady := time.Duration(rs.Spec.MinReadySeconds) * time.Second
	var fullyLabeled, ready, available int32
	var next time.Duration
	for _, pod := range pods {
		if templateLabels.Matches(labels.Set(pod.Labels)) {
			fullyLabeled++
		}
		if !isReady(pod) {
			continue
		}
		ready++
		ok, wait := availableIn(pod, minReady, now)
		if ok {
			available++
		} else if wait > 0 && (next == 0 || wait < next) {
			next = wait
		}
	}
	st.Replicas = int32(len(pods))
	st.FullyLabeledReplicas = fullyLabeled
	st.ReadyReplicas = ready
	st.AvailableReplicas = available
	st.ObservedGeneration = rs.Generation
	return st, next
}

// podsToDelete returns the n pods to delete first, in Kubernetes' order
// (ActivePodsWithRanks): the pods that matter least go first.
func podsToDelete(pods []*corev1.Pod, n int) []*corev1.Pod {
	if n >= len(pods) {
		return pods
	}
	// A pod's rank is how many of the pods share its node: deleting from
	// crowded nodes first keeps the replicas spread.
	onNode := map[string]int{}
	for _, p := range pods {
		if p.Spec.NodeName != "" {
			onNode[p.Spec.NodeName]++
		}
	}
	ranked := make([]rankedPod, len(pods))
	for i, p := range pods {
		ranked[i] = rankedPod{pod: p, rank: onNode[p.Spec.NodeName]}
	}
	sort.SliceStable(ranked, func(i, j int) bool { return deleteBefore(ranked[i], ranked[j]) })
	out := make([]*corev1.Pod, n)
	for i := range out {
		out[i] = ranked[i].pod
	}
	return out
}

type rankedPod struct {
	pod  *corev1.Pod
	rank int
}

// phaseOrder ranks pod phases: earlier phases are deleted first.
var phaseOrder = map[corev1.PodPhase]int{corev1.PodPending: 0, corev1.PodUnknown: 1, corev1.PodRunning: 2}

// deleteBefore reports whether a should be deleted before b:
//
//  1. not scheduled before scheduled;
//  2. Pending before Unknown before Running;
//  3. not ready before ready;
//  4. lower pod-deletion-cost first;
//  5. on a more crowded node first (higher rank);
//  6. ready for less time first;
//  7. more container restarts first;
//  8. newer first.
func deleteBefore(a, b rankedPod) bool {
	p, q := a.pod, b.pod
	if (p.Spec.NodeName == "") != (q.Spec.NodeName == "") {
		return p.Spec.NodeName == ""
	}
	if phaseOrder[p.Status.Phase] != phaseOrder[q.Status.Phase] {
		return phaseOrder[p.Status.Phase] < phaseOrder[q.Status.Phase]
	}
	if isReady(p) != isReady(q) {
		return !isReady(p)
	}
	if cp, cq := deletionCost(p), deletionCost(q); cp != cq {
		return cp < cq
	}
	if a.rank != b.rank {
		return a.rank > b.rank
	}
	if isReady(p) && isReady(q) {
		tp, tq := readyCondition(p).LastTransitionTime.Time, readyCondition(q).LastTransitionTime.Time
		if !tp.Equal(tq) {
			return afterOrZero(tp, tq)
		}
	}
	if rp, rq := maxRestarts(p), maxRestarts(q); rp != rq {
		return rp > rq
	}
	tp, tq := p.CreationTimestamp.Time, q.CreationTimestamp.Time
	if !tp.Equal(tq) {
		return afterOrZero(tp, tq)
	}
	return false
}

// afterOrZero reports whether t1 is later than t2, a zero time counting
// as the latest of all.
func afterOrZero(t1, t2 time.Time) bool {
	if t1.IsZero() || t2.IsZero() {
		return t1.IsZero()
	}
	return t1.After(t2)
}

func deletionCost(pod *corev1.Pod) int32 {
	v, err := strconv.ParseInt(pod.Annotations[PodDeletionCost], 10, 32)
	if err != nil {
		return 0
	}
	return int32(v)
}

func maxRestarts(pod *corev1.Pod) int32 {
	var n int32
	for _, c := range pod.Status.ContainerStatuses {
		n = max(n, c.RestartCount)
	}
	return n
}

// slowStartBatch calls fn count times, in batches that start at
// initialBatch and double while every call succeeds (1, 2, 4, …), the
// calls of a batch running at once. It stops after the first batch with a
// failure, or before a new batch once ctx has ended, and returns how many
// calls succeeded and the first error. A request that is bound to fail
// (a quota, a bad template) thus fails once rather than count times.
func slowStartBatch(ctx context.Context, count, initialBatch int, fn func() error) (int, error) {
	successes := 0
	for batch := min(count, initialBatch); batch > 0; batch = min(2*batch, count-successes) {
		if err := ctx.Err(); err != nil {
			return successes, err
		}
		errs := make(chan error, batch)
		var wg sync.WaitGroup
		for range batch {
			wg.Go(func() {
				if err := fn(); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		successes += batch - len(errs)
		if err, failed := <-errs; failed {
			return successes, err
		}
	}
	return successes, nil
}
