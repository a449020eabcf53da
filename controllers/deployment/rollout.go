package deployment

import (
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/dump"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
)

// The rollout arithmetic: the pure decisions of the controller, functions
// of their arguments only, written after Kubernetes'
// pkg/controller/deployment/util. deployment.go reads the caches, calls
// these, and makes the writes they decide.

// Annotations and labels the controller writes, as Kubernetes names them.
const (
	// RevisionAnnotation is a ReplicaSet's (and its Deployment's)
	// revision: the order in which templates were rolled out.
	RevisionAnnotation = "deployment.kubernetes.io/revision"
	// RevisionHistoryAnnotation lists the earlier revisions a ReplicaSet
	// had, when a rollback brought it back.
	RevisionHistoryAnnotation = "deployment.kubernetes.io/revision-history"
	// DesiredReplicasAnnotation is the Deployment's spec.replicas when
	// the ReplicaSet was last scaled.
	DesiredReplicasAnnotation = "deployment.kubernetes.io/desired-replicas"
	// MaxReplicasAnnotation is spec.replicas + maxSurge at that time.
	MaxReplicasAnnotation = "deployment.kubernetes.io/max-replicas"
	// PodTemplateHashLabel tells the ReplicaSets of a Deployment apart.
	PodTemplateHashLabel = appsv1.DefaultDeploymentUniqueLabelKey
)

// Condition reasons, as Kubernetes reports them.
const (
	ReasonMinimumReplicasAvailable   = "MinimumReplicasAvailable"
	ReasonMinimumReplicasUnavailable = "MinimumReplicasUnavailable"
	ReasonNewReplicaSetCreated       = "NewReplicaSetCreated"
	ReasonFoundNewReplicaSet         = "FoundNewReplicaSet"
	ReasonReplicaSetUpdated          = "ReplicaSetUpdated"
	ReasonNewReplicaSetAvailable     = "NewReplicaSetAvailable"
	ReasonProgressDeadlineExceeded   = "ProgressDeadlineExceeded"
	ReasonDeploymentPaused           = "DeploymentPaused"
	ReasonDeploymentResumed          = "DeploymentResumed"
)

// annotationsNotCopied are the Deployment annotations that do not go to
// its ReplicaSets.
var annotationsNotCopied = map[string]bool{
	corev1.LastAppliedConfigAnnotation: true,
	RevisionAnnotation:                 true,
	RevisionHistoryAnnotation:          true,
	DesiredReplicasAnnotation:          true,
	MaxReplicasAnnotation:              true,
}

// computeHash is the pod-template-hash of a template: FNV-32a of its
// printed form (and of collisionCount, when set), encoded in the
// alphabet Kubernetes uses for generated names. Equal templates give
// equal hashes; a collision is resolved by bumping collisionCount.
func computeHash(template *corev1.PodTemplateSpec, collisionCount *int32) string {
	h := fnv.New32a()
	h.Write([]byte(dump.ForHash(*template)))
	if collisionCount != nil {
		h.Write([]byte(strconv.FormatInt(int64(*collisionCount), 10)))
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// equalIgnoreHash reports whether two templates are equal apart from the
// pod-template-hash label.
func equalIgnoreHash(a, b *corev1.PodTemplateSpec) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	delete(a.Labels, PodTemplateHashLabel)
	delete(b.Labels, PodTemplateHashLabel)
	if len(a.Labels) == 0 {
		a.Labels = nil
	}
	if len(b.Labels) == 0 {
		b.Labels = nil
	}
	return equality.Semantic.DeepEqual(a, b)
}

// replicas returns spec.replicas, defaulting to 1 as the API does.
func replicas(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

// resolveFenceposts turns maxSurge and maxUnavailable into numbers of
// pods for desired replicas: a percentage of maxSurge rounds up, one of
// maxUnavailable rounds down. Both zero would block every rollout, so
// maxUnavailable then becomes 1, as in Kubernetes.
func resolveFenceposts(maxSurge, maxUnavailable *intstr.IntOrString, desired int32) (surge, unavailable int32, err error) {
	zero := intstr.FromInt32(0)
	if maxSurge == nil {
		maxSurge = &zero
	}
	if maxUnavailable == nil {
		maxUnavailable = &zero
	}
	s, err := intstr.GetScaledValueFromIntOrPercent(maxSurge, int(desired), true)
	if err != nil {
		return 0, 0, fmt.Errorf("maxSurge: %w", err)
	}
	u, err := intstr.GetScaledValueFromIntOrPercent(maxUnavailable, int(desired), false)
	if err != nil {
		return 0, 0, fmt.Errorf("maxUnavailable: %w", err)
	}
	if s == 0 && u == 0 {
		u = 1
	}
	return int32(s), int32(u), nil
}

// fenceposts resolves d's rolling-update parameters; a Recreate
// Deployment has neither surge nor unavailability budget.
func fenceposts(d *appsv1.Deployment) (surge, unavailable int32) {
	ru := d.Spec.Strategy.RollingUpdate
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil {
		return 0, 0
	}
	// Validation has checked the values; an error cannot happen here.
	surge, unavailable, _ = resolveFenceposts(ru.MaxSurge, ru.MaxUnavailable, replicas(d.Spec.Replicas))
	return surge, unavailable
}

// maxUnavailable is the unavailability budget, never above replicas.
func maxUnavailable(d *appsv1.Deployment) int32 {
	_, u := fenceposts(d)
	return min(u, replicas(d.Spec.Replicas))
}

// maxSurge is the surge budget.
func maxSurge(d *appsv1.Deployment) int32 {
	s, _ := fenceposts(d)
	return s
}

// Sums over ReplicaSets. A nil ReplicaSet (no new one yet) counts 0.

func specReplicas(rss []*appsv1.ReplicaSet) int32 {
	var n int32
	for _, rs := range rss {
		if rs != nil {
			n += replicas(rs.Spec.Replicas)
		}
	}
	return n
}

func statusReplicas(rss []*appsv1.ReplicaSet) (total, ready, available int32) {
	for _, rs := range rss {
		if rs != nil {
			total += rs.Status.Replicas
			ready += rs.Status.ReadyReplicas
			available += rs.Status.AvailableReplicas
		}
	}
	return total, ready, available
}

// podsBound is the most pods rss may have at once: for each ReplicaSet
// the larger of spec.replicas and status.replicas. Kubernetes counts
// spec.replicas only; a ReplicaSet just scaled down still has its pods
// until its controller deletes them, and counting those keeps total pods
// within maxSurge at every moment, not only once things settle.
func podsBound(rss []*appsv1.ReplicaSet) int32 {
	var n int32
	for _, rs := range rss {
		if rs != nil {
			n += max(replicas(rs.Spec.Replicas), rs.Status.Replicas)
		}
	}
	return n
}

// newRSNewReplicas is how many replicas the new ReplicaSet should have
// now: for Recreate, all of them; for RollingUpdate, as many more as the
// surge budget allows (counting every ReplicaSet's pods), never more
// than spec.replicas.
func newRSNewReplicas(d *appsv1.Deployment, allRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) int32 {
	want := replicas(d.Spec.Replicas)
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		return want
	}
	var cur int32
	if newRS != nil {
		cur = replicas(newRS.Spec.Replicas)
	}
	maxTotal := want + maxSurge(d)
	total := podsBound(allRSs)
	if total >= maxTotal {
		return cur
	}
	up := min(maxTotal-total, want-cur)
	return cur + max(up, 0)
}

// maxScaledDown is how many old pods a rolling update may remove now
// without going below spec.replicas - maxUnavailable available pods,
// counting the new ReplicaSet's pods that are not available yet as
// unavailable ones.
func maxScaledDown(d *appsv1.Deployment, allRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) int32 {
	minAvailable := replicas(d.Spec.Replicas) - maxUnavailable(d)
	newUnavailable := replicas(newRS.Spec.Replicas) - newRS.Status.AvailableReplicas
	return specReplicas(allRSs) - minAvailable - newUnavailable
}

// oldScaleDowns decides the rolling scale-down of old ReplicaSets
// (sorted oldest first): first their unavailable replicas, up to
// maxDown, then available ones while more than spec.replicas -
// maxUnavailable pods stay available. It returns the new size of each
// ReplicaSet that changes.
func oldScaleDowns(d *appsv1.Deployment, oldRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, maxDown int32) map[string]int32 {
	out := map[string]int32{}
	size := func(rs *appsv1.ReplicaSet) int32 {
		if n, ok := out[rs.Name]; ok {
			return n
		}
		return replicas(rs.Spec.Replicas)
	}
	// Unhealthy replicas first: removing them costs no availability.
	var cleaned int32
	for _, rs := range oldRSs {
		if cleaned >= maxDown {
			break
		}
		spec := size(rs)
		if spec == 0 || spec <= rs.Status.AvailableReplicas {
			continue
		}
		n := min(maxDown-cleaned, spec-rs.Status.AvailableReplicas)
		out[rs.Name] = spec - n
		cleaned += n
	}
	// Then available ones, down to the availability floor.
	minAvailable := replicas(d.Spec.Replicas) - maxUnavailable(d)
	available := newRS.Status.AvailableReplicas
	for _, rs := range oldRSs {
		// A ReplicaSet just scaled down reports its old pods available
		// until its controller has deleted them and written its status;
		// trusting that would count the same pods twice.
		available += min(rs.Status.AvailableReplicas, replicas(rs.Spec.Replicas))
	}
	if available <= minAvailable {
		return out
	}
	budget := available - minAvailable
	var done int32
	for _, rs := range oldRSs {
		if done >= budget {
			break
		}
		spec := size(rs)
		if spec == 0 {
			continue
		}
		n := min(spec, budget-done)
		out[rs.Name] = spec - n
		done += n
	}
	return out
}

// proportionalSizes spreads a change of spec.replicas over the active
// ReplicaSets of a rolling update in proportion to their sizes (from
// their max-replicas annotation), as Kubernetes does; the leftover goes
// to the largest.
func proportionalSizes(d *appsv1.Deployment, active []*appsv1.ReplicaSet) map[string]int32 {
	want := replicas(d.Spec.Replicas)
	allowed := want
	if want > 0 {
		allowed += maxSurge(d)
	}
	toAdd := allowed - specReplicas(active)
	rss := slices.Clone(active)
	slices.SortStableFunc(rss, func(a, b *appsv1.ReplicaSet) int {
		ra, rb := replicas(a.Spec.Replicas), replicas(b.Spec.Replicas)
		if ra != rb {
			if ra > rb {
				return -1
			}
			return 1
		}
		c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time)
		if toAdd > 0 {
			// Growing: newer first among equals.
			return -c
		}
		return c
	})
	sizes := map[string]int32{}
	var added int32
	for _, rs := range rss {
		cur := replicas(rs.Spec.Replicas)
		if toAdd == 0 || added == toAdd || cur == 0 {
			sizes[rs.Name] = cur
			continue
		}
		var fraction int32
		if want == 0 {
			fraction = -cur
		} else {
			annotated, ok := intAnnotation(rs, MaxReplicasAnnotation)
			if !ok || annotated == 0 {
				annotated = max(d.Status.Replicas, 1)
			}
			fraction = int32(float64(cur)*float64(allowed)/float64(annotated)+0.5) - cur
		}
		left := toAdd - added
		p := min(fraction, left)
		if toAdd < 0 {
			p = max(fraction, left)
		}
		sizes[rs.Name] = cur + p
		added += p
	}
	if added != toAdd && len(rss) > 0 {
		sizes[rss[0].Name] = max(sizes[rss[0].Name]+toAdd-added, 0)
	}
	return sizes
}

// historyToDelete returns the old ReplicaSets that revision history
// cleanup deletes: the lowest revisions beyond limit among those not
// being deleted, skipping any that still has (or may have) pods.
func historyToDelete(oldRSs []*appsv1.ReplicaSet, limit int32) []*appsv1.ReplicaSet {
	var alive []*appsv1.ReplicaSet
	for _, rs := range oldRSs {
		if rs != nil && rs.DeletionTimestamp == nil {
			alive = append(alive, rs)
		}
	}
	diff := len(alive) - int(limit)
	if diff <= 0 {
		return nil
	}
	byCreation(alive)
	slices.SortStableFunc(alive, func(a, b *appsv1.ReplicaSet) int {
		ra, rb := revisionOf(a), revisionOf(b)
		switch {
		case ra < rb:
			return -1
		case ra > rb:
			return 1
		}
		return 0
	})
	var out []*appsv1.ReplicaSet
	for _, rs := range alive[:diff] {
		if rs.Status.Replicas != 0 || replicas(rs.Spec.Replicas) != 0 || rs.Generation > rs.Status.ObservedGeneration {
			continue
		}
		out = append(out, rs)
	}
	return out
}

// byCreation sorts ReplicaSets oldest first, by name on ties.
func byCreation(rss []*appsv1.ReplicaSet) {
	slices.SortStableFunc(rss, func(a, b *appsv1.ReplicaSet) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return cmpString(a.Name, b.Name)
	})
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// revisionOf returns an object's revision annotation, 0 when it has none
// or it is not a number.
func revisionOf(obj metav1.Object) int64 {
	v, err := strconv.ParseInt(obj.GetAnnotations()[RevisionAnnotation], 10, 64)
	if err != nil {
		return 0
	}
	return v
}

func maxRevision(rss []*appsv1.ReplicaSet) int64 {
	var m int64
	for _, rs := range rss {
		m = max(m, revisionOf(rs))
	}
	return m
}

// setNewRSAnnotations copies d's annotations to rs, raises its revision
// to revision (keeping the old one in the revision history), and, for a
// ReplicaSet not yet created, sets the replicas annotations. It reports
// whether anything changed.
func setNewRSAnnotations(d *appsv1.Deployment, rs *appsv1.ReplicaSet, revision int64, exists bool) bool {
	changed := copyAnnotations(d, rs)
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	old := rs.Annotations[RevisionAnnotation]
	if revisionOf(rs) < revision {
		rs.Annotations[RevisionAnnotation] = strconv.FormatInt(revision, 10)
		changed = true
		if old != "" {
			if h := rs.Annotations[RevisionHistoryAnnotation]; h != "" {
				rs.Annotations[RevisionHistoryAnnotation] = h + "," + old
			} else {
				rs.Annotations[RevisionHistoryAnnotation] = old
			}
		}
	}
	if !exists && setReplicasAnnotations(rs, replicas(d.Spec.Replicas), replicas(d.Spec.Replicas)+maxSurge(d)) {
		changed = true
	}
	return changed
}

func copyAnnotations(d *appsv1.Deployment, rs *appsv1.ReplicaSet) bool {
	changed := false
	for k, v := range d.Annotations {
		if annotationsNotCopied[k] {
			continue
		}
		if cur, ok := rs.Annotations[k]; ok && cur == v {
			continue
		}
		if rs.Annotations == nil {
			rs.Annotations = map[string]string{}
		}
		rs.Annotations[k] = v
		changed = true
	}
	return changed
}

// setReplicasAnnotations sets the desired- and max-replicas annotations,
// reporting whether they changed.
func setReplicasAnnotations(rs *appsv1.ReplicaSet, desired, maxReplicas int32) bool {
	d, m := strconv.Itoa(int(desired)), strconv.Itoa(int(maxReplicas))
	if rs.Annotations[DesiredReplicasAnnotation] == d && rs.Annotations[MaxReplicasAnnotation] == m {
		return false
	}
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	rs.Annotations[DesiredReplicasAnnotation] = d
	rs.Annotations[MaxReplicasAnnotation] = m
	return true
}

func intAnnotation(rs *appsv1.ReplicaSet, key string) (int32, bool) {
	v, ok := rs.Annotations[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 32)
	return int32(n), err == nil
}

// newReplicaSetFor returns the ReplicaSet to create for d's template with
// the given hash.
func newReplicaSetFor(d *appsv1.Deployment, hash string, revision int64, size int32) *appsv1.ReplicaSet {
	tmpl := *d.Spec.Template.DeepCopy()
	tmpl.Labels = withLabel(tmpl.Labels, PodTemplateHashLabel, hash)
	sel := d.Spec.Selector.DeepCopy()
	sel.MatchLabels = withLabel(sel.MatchLabels, PodTemplateHashLabel, hash)
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:            d.Name + "-" + hash,
			Namespace:       d.Namespace,
			Labels:          withLabel(d.Spec.Template.Labels, PodTemplateHashLabel, hash),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, controllerKind)},
		},
		Spec: appsv1.ReplicaSetSpec{
			Replicas:        new(size),
			MinReadySeconds: d.Spec.MinReadySeconds,
			Selector:        sel,
			Template:        tmpl,
		},
	}
	setNewRSAnnotations(d, rs, revision, false)
	return rs
}

func withLabel(m map[string]string, k, v string) map[string]string {
	out := maps.Clone(m)
	if out == nil {
		out = map[string]string{}
	}
	out[k] = v
	return out
}

// Conditions.

func newCondition(t appsv1.DeploymentConditionType, status corev1.ConditionStatus, reason, message string, now time.Time) appsv1.DeploymentCondition {
	ts := metav1.NewTime(now).Rfc3339Copy()
	return appsv1.DeploymentCondition{Type: t, Status: status, Reason: reason, Message: message, LastUpdateTime: ts, LastTransitionTime: ts}
}

// getCondition returns the condition of type t, or nil.
func getCondition(s appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == t {
			return &s.Conditions[i]
		}
	}
	return nil
}

// setCondition sets c in s as Kubernetes does: a condition with the same
// status and reason is left alone (its times too); one with the same
// status keeps its lastTransitionTime.
func setCondition(s *appsv1.DeploymentStatus, c appsv1.DeploymentCondition) {
	cur := getCondition(*s, c.Type)
	if cur != nil && cur.Status == c.Status && cur.Reason == c.Reason {
		return
	}
	if cur != nil && cur.Status == c.Status {
		c.LastTransitionTime = cur.LastTransitionTime
	}
	removeCondition(s, c.Type)
	s.Conditions = append(s.Conditions, c)
}

func removeCondition(s *appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) {
	s.Conditions = slices.DeleteFunc(slices.Clone(s.Conditions), func(c appsv1.DeploymentCondition) bool { return c.Type == t })
	if len(s.Conditions) == 0 {
		s.Conditions = nil
	}
}

func hasProgressDeadline(d *appsv1.Deployment) bool {
	return d.Spec.ProgressDeadlineSeconds != nil && *d.Spec.ProgressDeadlineSeconds != math.MaxInt32
}

// calculateStatus is d's status from its ReplicaSets, keeping d's
// conditions and setting Available.
func calculateStatus(d *appsv1.Deployment, allRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, now time.Time) appsv1.DeploymentStatus {
	total, ready, available := statusReplicas(allRSs)
	updated, _, _ := statusReplicas([]*appsv1.ReplicaSet{newRS})
	s := appsv1.DeploymentStatus{
		ObservedGeneration:  d.Generation,
		Replicas:            total,
		UpdatedReplicas:     updated,
		ReadyReplicas:       ready,
		AvailableReplicas:   available,
		UnavailableReplicas: max(specReplicas(allRSs)-available, 0),
		CollisionCount:      d.Status.CollisionCount,
		Conditions:          slices.Clone(d.Status.Conditions),
	}
	if available >= replicas(d.Spec.Replicas)-maxUnavailable(d) {
		setCondition(&s, newCondition(appsv1.DeploymentAvailable, corev1.ConditionTrue, ReasonMinimumReplicasAvailable, "Deployment has minimum availability.", now))
	} else {
		setCondition(&s, newCondition(appsv1.DeploymentAvailable, corev1.ConditionFalse, ReasonMinimumReplicasUnavailable, "Deployment does not have minimum availability.", now))
	}
	return s
}

// complete reports whether status shows d fully rolled out.
func complete(d *appsv1.Deployment, s *appsv1.DeploymentStatus) bool {
	want := replicas(d.Spec.Replicas)
	return s.UpdatedReplicas == want && s.Replicas == want && s.AvailableReplicas == want && s.ObservedGeneration >= d.Generation
}

// progressing reports whether s shows progress over d's current status.
func progressing(d *appsv1.Deployment, s *appsv1.DeploymentStatus) bool {
	old := d.Status
	return s.UpdatedReplicas > old.UpdatedReplicas ||
		s.Replicas-s.UpdatedReplicas < old.Replicas-old.UpdatedReplicas ||
		s.ReadyReplicas > old.ReadyReplicas ||
		s.AvailableReplicas > old.AvailableReplicas
}

// timedOut reports whether d's rollout has made no progress for
// progressDeadlineSeconds.
func timedOut(d *appsv1.Deployment, s *appsv1.DeploymentStatus, now time.Time) bool {
	if !hasProgressDeadline(d) {
		return false
	}
	c := getCondition(*s, appsv1.DeploymentProgressing)
	if c == nil || c.Reason == ReasonNewReplicaSetAvailable {
		return false
	}
	if c.Reason == ReasonProgressDeadlineExceeded {
		return true
	}
	deadline := time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second
	return c.LastUpdateTime.Add(deadline).Before(now)
}

// rolloutStatus is calculateStatus plus the Progressing condition:
// complete (NewReplicaSetAvailable), progressing (ReplicaSetUpdated,
// keeping the time of the last transition) or stuck for longer than the
// deadline (ProgressDeadlineExceeded).
func rolloutStatus(d *appsv1.Deployment, allRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, now time.Time) appsv1.DeploymentStatus {
	s := calculateStatus(d, allRSs, newRS, now)
	if !hasProgressDeadline(d) {
		removeCondition(&s, appsv1.DeploymentProgressing)
		return s
	}
	cur := getCondition(d.Status, appsv1.DeploymentProgressing)
	if s.Replicas == s.UpdatedReplicas && cur != nil && cur.Reason == ReasonNewReplicaSetAvailable {
		return s
	}
	subject := fmt.Sprintf("Deployment %q", d.Name)
	if newRS != nil {
		subject = fmt.Sprintf("ReplicaSet %q", newRS.Name)
	}
	switch {
	case complete(d, &s):
		setCondition(&s, newCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonNewReplicaSetAvailable, subject+" has successfully progressed.", now))
	case progressing(d, &s):
		c := newCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonReplicaSetUpdated, subject+" is progressing.", now)
		if cur != nil && cur.Status == corev1.ConditionTrue {
			c.LastTransitionTime = cur.LastTransitionTime
		}
		// Removed first so that lastUpdateTime moves on: progress
		// restarts the deadline.
		removeCondition(&s, appsv1.DeploymentProgressing)
		setCondition(&s, c)
	case timedOut(d, &s, now):
		setCondition(&s, newCondition(appsv1.DeploymentProgressing, corev1.ConditionFalse, ReasonProgressDeadlineExceeded, subject+" has timed out progressing.", now))
	}
	return s
}

// recheckAfter is when a rollout still within its deadline must be
// looked at again to notice that it is stuck; 0 when it need not.
func recheckAfter(d *appsv1.Deployment, s *appsv1.DeploymentStatus, now time.Time) time.Duration {
	c := getCondition(*s, appsv1.DeploymentProgressing)
	if !hasProgressDeadline(d) || c == nil || c.Reason == ReasonNewReplicaSetAvailable || c.Reason == ReasonProgressDeadlineExceeded || complete(d, s) {
		return 0
	}
	if c.Reason == ReasonDeploymentPaused {
		// The deadline does not run while paused.
		return 0
	}
	after := c.LastUpdateTime.Add(time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second).Sub(now)
	if after < time.Second {
		return 200 * time.Millisecond
	}
	return after + time.Second
}
