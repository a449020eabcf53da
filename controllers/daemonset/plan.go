package daemonset

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Labels the controller puts on the pods it creates, as Kubernetes names
// them.
const (
	// RevisionHashLabel is the hash of the ControllerRevision a pod was
	// made from; it tells updated pods from old ones.
	RevisionHashLabel = appsv1.DefaultDaemonSetUniqueLabelKey
	// TemplateGenerationLabel is the DaemonSet's metadata.generation when
	// the pod was made (deprecated in Kubernetes, still written).
	TemplateGenerationLabel = "pod-template-generation"
)

// Input is everything Decide looks at.
type Input struct {
	// DaemonSet is the DaemonSet, as cached.
	DaemonSet *appsv1.DaemonSet
	// Hash is the hash of its current ControllerRevision: pods with this
	// RevisionHashLabel are up to date.
	Hash string
	// Nodes are all the cluster's nodes.
	Nodes []*corev1.Node
	// Pods are the DaemonSet's pods (those it controls), terminating ones
	// included.
	Pods []*corev1.Pod
	// Now is the time minReadySeconds is measured against.
	Now time.Time
}

// Plan is what it takes to bring a DaemonSet to what its nodes call for.
type Plan struct {
	// Create lists the nodes that get a new pod of the current template,
	// in name order.
	Create []string
	// Delete lists the pods to delete, each once.
	Delete []*corev1.Pod
	// Failed are the pods of Delete that failed on a node they belong
	// on: the controller reports each (FailedDaemonPod) and backs off
	// before deleting the same node's next failed pod.
	Failed map[string]string
	// Status is the DaemonSet's status as the pods observed stand;
	// collisionCount is left to the caller.
	Status appsv1.DaemonSetStatus
	// RecheckAfter, when positive, is when a ready pod next becomes
	// available (minReadySeconds), which changes the status and may let
	// a rolling update take its next step.
	RecheckAfter time.Duration
}

// Decide returns the plan for in.DaemonSet. It is a pure function of in
// and never modifies it. Per node, in name order:
//
//   - a node the pod belongs on (nodeSelector, required node affinity,
//     taints it tolerates with the daemon tolerations added) and that has
//     no pod gets one;
//   - a node whose pod may not stay (the pod no longer matches, or a
//     NoExecute taint it does not tolerate) loses it; a NoSchedule taint
//     alone keeps new pods off but leaves a running one;
//   - failed and succeeded pods are deleted (a new one follows once they
//     are gone), and of several pods on one node the oldest is kept (with
//     maxSurge: the oldest updated one and, until it is available, the
//     oldest old one);
//   - pods for a node that no longer exists, not yet bound, are deleted
//     (bound ones are the pod garbage collector's);
//   - with the RollingUpdate strategy, pods of an old template are
//     replaced within maxUnavailable (delete first) or maxSurge (create
//     first), each a count or a percentage (rounded up) of the nodes the
//     pod belongs on. With OnDelete, old pods stay until someone deletes
//     them.
//
// Terminating pods still count as their node's pod: no replacement is
// created until they are gone, so a node never runs two.
func Decide(in Input) Plan {
	ds := in.DaemonSet
	spec := ds.Spec.Template.Spec.DeepCopy()
	spec.Tolerations = withDaemonTolerations(spec)

	nodes := slices.Clone(in.Nodes)
	slices.SortFunc(nodes, func(a, b *corev1.Node) int { return cmp.Compare(a.Name, b.Name) })
	byNode := map[string][]*corev1.Pod{}
	for _, p := range in.Pods {
		if isFinished(p) && p.DeletionTimestamp != nil {
			continue // gone in all but name
		}
		byNode[targetNode(p)] = append(byNode[targetNode(p)], p)
	}
	for _, pods := range byNode {
		slices.SortFunc(pods, olderFirst)
	}

	d := decider{in: in, surge: allowsSurge(ds), deleted: map[string]bool{}, failed: map[string]string{}}
	places := make(map[string]placement, len(nodes))
	desired := 0
	for _, node := range nodes {
		pl := placeOn(spec, node)
		places[node.Name] = pl
		if pl.shouldRun {
			desired++
		}
		d.manage(node.Name, pl, byNode[node.Name])
	}
	// Pods for nodes that are gone and that no scheduler will bind.
	known := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		known[n.Name] = true
	}
	var orphanNodes []string
	for name := range byNode {
		if !known[name] {
			orphanNodes = append(orphanNodes, name)
		}
	}
	slices.Sort(orphanNodes)
	for _, name := range orphanNodes {
		for _, p := range byNode[name] {
			if p.Spec.NodeName == "" && p.DeletionTimestamp == nil {
				d.delete(p)
			}
		}
	}

	if ds.Spec.UpdateStrategy.Type == appsv1.RollingUpdateDaemonSetStrategyType {
		maxSurge, maxUnavailable := fenceposts(ds, desired)
		if d.surge {
			d.rollSurging(nodes, places, byNode, maxSurge)
		} else {
			d.rollUnavailable(nodes, places, byNode, maxUnavailable)
		}
	}

	status, recheck := calculateStatus(in, nodes, places, byNode)
	return Plan{Create: d.create, Delete: d.del, Failed: d.failed, Status: status, RecheckAfter: recheck}
}

// decider collects one plan's writes, each once.
type decider struct {
	in      Input
	surge   bool
	create  []string
	del     []*corev1.Pod
	deleted map[string]bool // pod names in del
	failed  map[string]string
	created map[string]bool // node names in create
}

func (d *decider) delete(p *corev1.Pod) {
	if p.DeletionTimestamp != nil || d.deleted[p.Name] {
		return
	}
	d.deleted[p.Name] = true
	d.del = append(d.del, p)
}

func (d *decider) createOn(node string) {
	if d.created == nil {
		d.created = map[string]bool{}
	}
	if !d.created[node] {
		d.created[node] = true
		d.create = append(d.create, node)
	}
}

// manage decides one node's pods apart from the rolling update.
func (d *decider) manage(node string, pl placement, pods []*corev1.Pod) {
	switch {
	case pl.shouldRun && len(pods) == 0:
		d.createOn(node)
	case pl.shouldContinueRunning:
		var running []*corev1.Pod
		for _, p := range pods {
			switch {
			case p.DeletionTimestamp != nil:
			case p.Status.Phase == corev1.PodFailed:
				d.failed[p.Name] = node
				d.delete(p)
			case p.Status.Phase == corev1.PodSucceeded:
				d.delete(p)
			default:
				running = append(running, p)
			}
		}
		if !d.surge {
			for _, p := range running[min(1, len(running)):] {
				d.delete(p)
			}
			return
		}
		// With maxSurge a node may run one updated and one old pod; the
		// old one goes once the updated one is available (or at once if
		// it is not ready itself).
		var newest, oldest *corev1.Pod
		for _, p := range running {
			switch {
			case isUpdated(p, d.in.Hash, d.in.DaemonSet.Generation) && newest == nil:
				newest = p
			case !isUpdated(p, d.in.Hash, d.in.DaemonSet.Generation) && oldest == nil:
				oldest = p
			default:
				d.delete(p)
			}
		}
		if newest != nil && oldest != nil && (!isReady(oldest) || isAvailable(newest, d.in.DaemonSet.Spec.MinReadySeconds, d.in.Now)) {
			d.delete(oldest)
		}
	default:
		for _, p := range pods {
			d.delete(p)
		}
	}
}

// rollUnavailable replaces old pods delete-first: at most maxUnavailable
// of the nodes the pod belongs on may be without an available pod. An
// old pod that is not available is replaced at once: replacing it makes
// nothing worse.
func (d *decider) rollUnavailable(nodes []*corev1.Node, places map[string]placement, byNode map[string][]*corev1.Pod, maxUnavailable int) {
	minReady := d.in.DaemonSet.Spec.MinReadySeconds
	unavailable := 0
	var allowed, candidates []*corev1.Pod
	for _, node := range nodes {
		if !places[node.Name].shouldRun {
			continue
		}
		newPod, oldPod, ok := d.updatedAndOld(byNode[node.Name])
		switch {
		case !ok:
			// Duplicates, which manage deletes.
			unavailable++
		case oldPod == nil && newPod == nil, oldPod != nil && newPod != nil:
			// Missing or terminating (manage creates it once gone).
			unavailable++
		case newPod != nil:
			if !isAvailable(newPod, minReady, d.in.Now) {
				unavailable++
			}
		case !isAvailable(oldPod, minReady, d.in.Now):
			allowed = append(allowed, oldPod)
		case unavailable < maxUnavailable:
			candidates = append(candidates, oldPod)
		}
	}
	for _, p := range allowed {
		d.delete(p)
	}
	remaining := max(0, maxUnavailable-unavailable-len(allowed))
	for _, p := range candidates[:min(remaining, len(candidates))] {
		d.delete(p)
	}
}

// rollSurging replaces old pods create-first: a new pod starts beside the
// old one on at most maxSurge nodes at a time, and the old one goes once
// the new one is available. A node counts against maxSurge until its old
// pod is terminating, so no more than maxSurge nodes ever run two live
// pods (Kubernetes counts only nodes whose new pod is not available yet,
// and may briefly have more).
func (d *decider) rollSurging(nodes []*corev1.Node, places map[string]placement, byNode map[string][]*corev1.Pod, maxSurge int) {
	minReady := d.in.DaemonSet.Spec.MinReadySeconds
	surging := 0
	var allowed, candidates []string
	for _, node := range nodes {
		if !places[node.Name].shouldRun {
			continue
		}
		newPod, oldPod, ok := d.updatedAndOld(byNode[node.Name])
		switch {
		case !ok:
			surging++
		case oldPod == nil:
			// Up to date, or missing: manage creates it.
		case newPod == nil:
			switch {
			case !isAvailable(oldPod, minReady, d.in.Now):
				allowed = append(allowed, node.Name)
			case surging < maxSurge:
				candidates = append(candidates, node.Name)
			}
		default:
			// Two pods either way until the old one is gone: the
			// delete below and this pass's creates run together.
			surging++
			if isAvailable(newPod, minReady, d.in.Now) {
				d.delete(oldPod)
			}
		}
	}
	for _, n := range allowed {
		d.createOn(n)
	}
	remaining := max(0, maxSurge-surging)
	for _, n := range candidates[:min(remaining, len(candidates))] {
		d.createOn(n)
	}
	slices.Sort(d.create)
}

// updatedAndOld returns a node's live updated pod and live old pod; ok is
// false when it has more than one of either.
func (d *decider) updatedAndOld(pods []*corev1.Pod) (newPod, oldPod *corev1.Pod, ok bool) {
	for _, p := range pods {
		if p.DeletionTimestamp != nil || isFinished(p) {
			continue
		}
		if isUpdated(p, d.in.Hash, d.in.DaemonSet.Generation) {
			if newPod != nil {
				return nil, nil, false
			}
			newPod = p
		} else {
			if oldPod != nil {
				return nil, nil, false
			}
			oldPod = p
		}
	}
	return newPod, oldPod, true
}

// calculateStatus counts, per node, the first pod (oldest, live before
// terminating) as Kubernetes does.
func calculateStatus(in Input, nodes []*corev1.Node, places map[string]placement, byNode map[string][]*corev1.Pod) (appsv1.DaemonSetStatus, time.Duration) {
	ds := in.DaemonSet
	s := appsv1.DaemonSetStatus{ObservedGeneration: ds.Generation, CollisionCount: ds.Status.CollisionCount}
	var recheck time.Duration
	for _, node := range nodes {
		pods := byNode[node.Name]
		if !places[node.Name].shouldRun {
			if len(pods) > 0 {
				s.NumberMisscheduled++
			}
			continue
		}
		s.DesiredNumberScheduled++
		if len(pods) == 0 {
			continue
		}
		s.CurrentNumberScheduled++
		pod := pods[0]
		if isReady(pod) {
			s.NumberReady++
			if isAvailable(pod, ds.Spec.MinReadySeconds, in.Now) {
				s.NumberAvailable++
			} else if wait := untilAvailable(pod, ds.Spec.MinReadySeconds, in.Now); wait > 0 && (recheck == 0 || wait < recheck) {
				recheck = wait
			}
		}
		if isUpdated(pod, in.Hash, ds.Generation) {
			s.UpdatedNumberScheduled++
		}
	}
	s.NumberUnavailable = max(0, s.DesiredNumberScheduled-s.NumberAvailable)
	return s, recheck
}

// allowsSurge reports whether ds rolls out create-first.
func allowsSurge(ds *appsv1.DaemonSet) bool {
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	return ds.Spec.UpdateStrategy.Type == appsv1.RollingUpdateDaemonSetStrategyType && ru != nil &&
		ru.MaxSurge != nil && scaled(ru.MaxSurge, 100) > 0
}

// fenceposts resolves maxSurge and maxUnavailable against desired, the
// number of nodes the pod belongs on, rounding percentages up. Should
// both come out zero (validation forbids it as written), one node at a
// time may be unavailable, so that the update still moves.
func fenceposts(ds *appsv1.DaemonSet, desired int) (surge, unavailable int) {
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	if ru == nil {
		return 0, 1
	}
	surge, unavailable = scaled(ru.MaxSurge, desired), scaled(ru.MaxUnavailable, desired)
	if surge == 0 && unavailable == 0 {
		unavailable = 1
	}
	return surge, unavailable
}

// scaled is v (a count, or a percentage of total rounded up); nil and
// malformed values are 0.
func scaled(v *intstr.IntOrString, total int) int {
	if v == nil {
		return 0
	}
	if v.Type == intstr.Int {
		return max(0, v.IntValue())
	}
	s := v.StrVal
	if len(s) < 2 || s[len(s)-1] != '%' {
		return 0
	}
	pct, err := strconv.Atoi(s[:len(s)-1])
	if err != nil || pct < 0 {
		return 0
	}
	return int(math.Ceil(float64(pct) * float64(total) / 100))
}

// isUpdated reports whether pod was made from the current template: its
// revision hash label, or (for pods from before revisions) its template
// generation label, says so.
func isUpdated(pod *corev1.Pod, hash string, generation int64) bool {
	if hash != "" && pod.Labels[RevisionHashLabel] == hash {
		return true
	}
	return pod.Labels[TemplateGenerationLabel] == strconv.FormatInt(generation, 10) && pod.Labels[RevisionHashLabel] == ""
}

func isFinished(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

func readyCondition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func isReady(p *corev1.Pod) bool {
	c := readyCondition(p)
	return c != nil && c.Status == corev1.ConditionTrue
}

// isAvailable: ready for at least minReadySeconds.
func isAvailable(p *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	return isReady(p) && untilAvailable(p, minReadySeconds, now) <= 0
}

// untilAvailable is how long a ready pod has left before it counts as
// available.
func untilAvailable(p *corev1.Pod, minReadySeconds int32, now time.Time) time.Duration {
	if minReadySeconds == 0 {
		return 0
	}
	c := readyCondition(p)
	if c == nil || c.LastTransitionTime.IsZero() {
		return time.Duration(minReadySeconds) * time.Second
	}
	return c.LastTransitionTime.Add(time.Duration(minReadySeconds) * time.Second).Sub(now)
}

// olderFirst orders a node's pods: live before terminating, then by
// creation, then by name.
func olderFirst(a, b *corev1.Pod) int {
	if ad, bd := a.DeletionTimestamp != nil, b.DeletionTimestamp != nil; ad != bd {
		if ad {
			return 1
		}
		return -1
	}
	if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
		return c
	}
	return cmp.Compare(a.Name, b.Name)
}
