package job

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Condition reasons and messages, as Kubernetes words them.
const (
	ReasonBackoffLimitExceeded = "BackoffLimitExceeded"
	ReasonDeadlineExceeded     = "DeadlineExceeded"
	ReasonCompletionsReached   = "CompletionsReached"
	ReasonJobSuspended         = "JobSuspended"
	ReasonJobResumed           = "JobResumed"

	msgBackoffLimitExceeded = "Job has reached the specified backoff limit"
	msgDeadlineExceeded     = "Job was active longer than specified deadline"
	msgCompletionsReached   = "Reached expected number of succeeded pods"
)

// NoIndex stands for a pod of a NonIndexed Job in Plan.Create.
const NoIndex = -1

// Input is what one decision is made from: the Job, the pods it owns
// (active, terminating and finished, from the cache), and the time.
type Input struct {
	Job  *batchv1.Job
	Pods []*corev1.Pod
	// Removed holds the UIDs of pods whose tracking finalizer this
	// controller has removed and the cache may not show removed yet.
	// Such a pod is treated as having no finalizer.
	Removed map[types.UID]bool
	Now     time.Time
	// Backoff is the delay before a pod replaces the first failed one
	// (Kubernetes: 10 s); it doubles with each failure since the last
	// success, up to MaxBackoff (6 min).
	Backoff, MaxBackoff time.Duration
}

// Plan is what the controller does about one Job, in this order: write
// Status (if it differs from the Job's), then remove the tracking
// finalizer from RemoveFinalizers (only once Status is stored: it
// records them), create pods, delete pods, and delete the Job.
type Plan struct {
	Status batchv1.JobStatus
	// RemoveFinalizers are pods whose finish Status records (in
	// uncountedTerminatedPods, completedIndexes or the counters), or that
	// no longer need tracking.
	RemoveFinalizers []*corev1.Pod
	// Create holds one entry per pod to create: its completion index,
	// or NoIndex.
	Create []int
	// Delete are active pods to delete.
	Delete []*corev1.Pod
	// DeleteJob is set once ttlSecondsAfterFinished has passed.
	DeleteJob bool
	// Events to record on the Job.
	Events []Event
	// RequeueAfter, when positive, is when the decision changes with
	// time alone: a backoff ends, a deadline or a TTL passes.
	RequeueAfter time.Duration
}

// Event is one event to record about the Job.
type Event struct {
	Type, Reason, Message string
}

// podState sorts a pod for counting.
type podState struct {
	pod *corev1.Pod
	// tracked: the pod has the tracking finalizer (and this controller
	// has not removed it).
	tracked     bool
	succeeded   bool
	failed      bool // terminal Failed, or terminating and counted as failed
	active      bool // neither finished nor being deleted
	terminating bool // being deleted, not in a terminal phase
	index       int  // completion index, NoIndex when none or invalid
}

// Decide is the Job controller's whole decision, a pure function of its
// input. It follows Kubernetes' Job controller:
//
//  1. Counting with the batch.kubernetes.io/job-tracking finalizer.
//     A finished pod that still has the finalizer is not counted yet:
//     its UID goes into status.uncountedTerminatedPods (an Indexed Job's
//     succeeded pod goes into status.completedIndexes instead), and
//     once that status is stored its finalizer is removed. A UID in
//     uncountedTerminatedPods whose pod has lost its finalizer, or is
//     gone, moves into status.succeeded or status.failed. So each pod is
//     counted exactly once, whenever the controller stops in between.
//     A pod being deleted counts as failed (its kubelet may never report
//     a phase; with podReplacementPolicy Failed, only once its node has
//     confirmed it stopped), unless the controller deleted it itself
//     because the Job is suspended, has succeeded or is being deleted.
//  2. Finishing. Past activeDeadlineSeconds, or with more failures than
//     backoffLimit (for restartPolicy OnFailure: container restarts of
//     running pods reaching it), the Job gets FailureTarget; with
//     enough successes it gets SuccessCriteriaMet. Either way its active
//     pods are deleted, and once none is left running or terminating
//     and every finished pod is counted, Failed or Complete follows,
//     with the same reason, and an event.
//  3. Running. A suspended Job has its active pods deleted; a resumed
//     one restarts its activeDeadlineSeconds clock. Otherwise pods are
//     created or deleted until min(parallelism, what remains to
//     complete) are active; an Indexed Job gets one pod per index not
//     yet completed, lowest first. After failures, new pods wait the
//     exponential backoff.
//  4. A finished Job is deleted ttlSecondsAfterFinished after it
//     finished.
func Decide(in Input) Plan {
	job := in.Job
	now := metav1.NewTime(in.Now)
	p := Plan{Status: *job.Status.DeepCopy()}
	st := &p.Status
	if st.UncountedTerminatedPods == nil {
		st.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
	}
	indexed := isIndexed(job)
	if finishedCondition(job) != nil {
		decideFinished(in, &p)
		return p
	}
	succeeding := findCondition(st.Conditions, batchv1.JobSuccessCriteriaMet) != nil
	finishing := succeeding || findCondition(st.Conditions, batchv1.JobFailureTarget) != nil
	suspended := job.Spec.Suspend != nil && *job.Spec.Suspend
	deleting := job.DeletionTimestamp != nil
	// Pods this controller deleted because the Job is suspended, has
	// succeeded or is going are no failures; those it deleted because
	// the Job failed are, as in Kubernetes.
	states := classify(in, suspended || succeeding || deleting)

	// 1. Count: flush what the stored status holds uncounted, then add
	// the pods that finished since.
	byUID := map[types.UID]*podState{}
	for i := range states {
		byUID[states[i].pod.UID] = &states[i]
	}
	flush := func(uids []types.UID, counter *int32) []types.UID {
		var keep []types.UID
		for _, uid := range uids {
			if s, ok := byUID[uid]; ok && s.tracked {
				keep = append(keep, uid)
				p.RemoveFinalizers = append(p.RemoveFinalizers, s.pod)
				continue
			}
			*counter++
		}
		return keep
	}
	u := st.UncountedTerminatedPods
	u.Succeeded = flush(u.Succeeded, &st.Succeeded)
	u.Failed = flush(u.Failed, &st.Failed)
	inUncounted := map[types.UID]bool{}
	for _, uid := range slices.Concat(u.Succeeded, u.Failed) {
		inUncounted[uid] = true
	}
	completed := parseIndexes(st.CompletedIndexes)
	for i := range states {
		s := &states[i]
		if !s.tracked || inUncounted[s.pod.UID] {
			continue
		}
		switch {
		case s.succeeded && indexed:
			if s.index != NoIndex && s.index < completions(job) {
				completed[s.index] = true
			}
			p.RemoveFinalizers = append(p.RemoveFinalizers, s.pod)
		case s.succeeded:
			u.Succeeded = append(u.Succeeded, s.pod.UID)
			p.RemoveFinalizers = append(p.RemoveFinalizers, s.pod)
		case s.failed:
			u.Failed = append(u.Failed, s.pod.UID)
			p.RemoveFinalizers = append(p.RemoveFinalizers, s.pod)
		case (s.terminating && (suspended || succeeding)) || deleting:
			// Deleted by this controller, or the Job is going: not a
			// failure, nothing to count.
			p.RemoveFinalizers = append(p.RemoveFinalizers, s.pod)
		}
	}
	if indexed {
		st.CompletedIndexes = formatIndexes(completed, completions(job))
		st.Succeeded = int32(len(completed))
	}
	succeeded := st.Succeeded + int32(len(u.Succeeded))
	failed := st.Failed + int32(len(u.Failed))

	var active []*podState
	var terminating, ready int32
	for i := range states {
		s := &states[i]
		switch {
		case s.active:
			active = append(active, s)
			if isReady(s.pod) {
				ready++
			}
		case s.terminating:
			terminating++
		}
	}
	st.Active, st.Ready, st.Terminating = int32(len(active)), new(ready), new(terminating)
	if deleting {
		// The garbage collector deletes the pods; only their
		// finalizers are this controller's to remove.
		return p
	}

	// 2. Finishing.
	if !finishing && !suspended {
		switch {
		case st.StartTime != nil && job.Spec.ActiveDeadlineSeconds != nil &&
			!in.Now.Before(st.StartTime.Add(time.Duration(*job.Spec.ActiveDeadlineSeconds)*time.Second)):
			setCondition(st, batchv1.JobFailureTarget, ReasonDeadlineExceeded, msgDeadlineExceeded, now)
			finishing = true
		case failed > backoffLimit(job) || pastBackoffLimitOnFailure(job, active):
			setCondition(st, batchv1.JobFailureTarget, ReasonBackoffLimitExceeded, msgBackoffLimitExceeded, now)
			finishing = true
		case successCriteriaMet(job, succeeded, len(active)):
			setCondition(st, batchv1.JobSuccessCriteriaMet, ReasonCompletionsReached, msgCompletionsReached, now)
			finishing = true
		}
	}
	if finishing {
		for _, s := range active {
			p.Delete = append(p.Delete, s.pod)
		}
		if len(active) == 0 && terminating == 0 && len(u.Succeeded)+len(u.Failed) == 0 && len(p.RemoveFinalizers) == 0 {
			finish(st, &p, now)
		}
		return p
	}

	// 3. Running or suspended.
	if suspended {
		if setCondition(st, batchv1.JobSuspended, ReasonJobSuspended, "Job suspended", now) {
			p.Events = append(p.Events, Event{corev1.EventTypeNormal, "Suspended", "Job suspended"})
		}
		for _, s := range active {
			p.Delete = append(p.Delete, s.pod)
		}
		return p
	}
	if c := findCondition(st.Conditions, batchv1.JobSuspended); c != nil && c.Status == corev1.ConditionTrue {
		setConditionStatus(st, batchv1.JobSuspended, corev1.ConditionFalse, ReasonJobResumed, "Job resumed", now)
		p.Events = append(p.Events, Event{corev1.EventTypeNormal, "Resumed", "Job resumed"})
		// The deadline counts from the resume.
		st.StartTime = &now
	}
	if st.StartTime == nil {
		st.StartTime = &now
	}
	if ads := job.Spec.ActiveDeadlineSeconds; ads != nil {
		p.requeue(st.StartTime.Add(time.Duration(*ads) * time.Second).Sub(in.Now))
	}
	// With podReplacementPolicy Failed, a terminating pod still holds
	// its place until it has stopped.
	occupied := len(active)
	if job.Spec.PodReplacementPolicy != nil && *job.Spec.PodReplacementPolicy == batchv1.Failed {
		occupied += int(terminating)
	}
	if indexed {
		manageIndexed(in, &p, active, completed, occupied)
	} else {
		manageNonIndexed(in, &p, active, succeeded, occupied)
	}
	if len(p.Create) > 0 {
		if wait := backoffRemaining(in, states); wait > 0 {
			p.Create = nil
			p.requeue(wait)
		}
	}
	return p
}

// decideFinished handles a Job that is Complete or Failed: what is left
// is removing finalizers, deleting stray active pods, and the TTL.
func decideFinished(in Input, p *Plan) {
	for _, pod := range in.Pods {
		if hasFinalizer(pod) && !in.Removed[pod.UID] {
			p.RemoveFinalizers = append(p.RemoveFinalizers, pod)
		}
		if pod.DeletionTimestamp == nil && !isFinished(pod) {
			p.Delete = append(p.Delete, pod)
		}
	}
	ttl := in.Job.Spec.TTLSecondsAfterFinished
	if ttl == nil || in.Job.DeletionTimestamp != nil {
		return
	}
	expires := finishedCondition(in.Job).LastTransitionTime.Add(time.Duration(*ttl) * time.Second)
	if !in.Now.Before(expires) {
		p.DeleteJob = true
		return
	}
	p.requeue(expires.Sub(in.Now))
}

// finish turns the FailureTarget or SuccessCriteriaMet condition into
// Failed or Complete, once nothing of the Job runs and every pod is
// counted.
func finish(st *batchv1.JobStatus, p *Plan, now metav1.Time) {
	if t := findCondition(st.Conditions, batchv1.JobFailureTarget); t != nil {
		setCondition(st, batchv1.JobFailed, t.Reason, t.Message, now)
		p.Events = append(p.Events, Event{corev1.EventTypeWarning, t.Reason, t.Message})
		return
	}
	t := findCondition(st.Conditions, batchv1.JobSuccessCriteriaMet)
	setCondition(st, batchv1.JobComplete, t.Reason, t.Message, now)
	st.CompletionTime = &now
	p.Events = append(p.Events, Event{corev1.EventTypeNormal, "Completed", "Job completed"})
}

// manageNonIndexed creates or deletes pods so that min(parallelism,
// completions - succeeded) are active. Without completions (a work
// queue), the first success stops new pods.
func manageNonIndexed(in Input, p *Plan, active []*podState, succeeded int32, occupied int) {
	job := in.Job
	want := int(parallelism(job))
	if job.Spec.Completions != nil {
		want = min(want, int(*job.Spec.Completions-succeeded))
	} else if succeeded > 0 {
		want = min(want, len(active))
	}
	want = max(want, 0)
	switch {
	case occupied < want:
		for range want - occupied {
			p.Create = append(p.Create, NoIndex)
		}
	case len(active) > 0 && occupied > want:
		p.Delete = append(p.Delete, pickToDelete(active, occupied-want)...)
	}
}

// manageIndexed gives each index not yet completed one active pod, the
// lowest indexes first, at most parallelism at once; it deletes pods of
// completed or invalid indexes and duplicates.
func manageIndexed(in Input, p *Plan, active []*podState, completed map[int]bool, occupied int) {
	job := in.Job
	n := completions(job)
	running := map[int]bool{}
	var keep []*podState
	for _, s := range active {
		if s.index == NoIndex || s.index >= n || completed[s.index] || running[s.index] {
			p.Delete = append(p.Delete, s.pod)
			occupied--
			continue
		}
		running[s.index] = true
		keep = append(keep, s)
	}
	if job.Spec.PodReplacementPolicy != nil && *job.Spec.PodReplacementPolicy == batchv1.Failed {
		for _, pod := range in.Pods {
			if pod.DeletionTimestamp != nil && !isFinished(pod) {
				running[completionIndex(pod)] = true
			}
		}
	}
	want := min(int(parallelism(job)), n-len(completed))
	if occupied > want {
		p.Delete = append(p.Delete, pickToDelete(keep, occupied-want)...)
		return
	}
	for ix := 0; ix < n && occupied < want; ix++ {
		if completed[ix] || running[ix] {
			continue
		}
		p.Create = append(p.Create, ix)
		occupied++
	}
}

// pickToDelete chooses n pods to delete: the least far along first (not
// scheduled, then not ready), the youngest among equals, as Kubernetes
// does.
func pickToDelete(active []*podState, n int) []*corev1.Pod {
	pods := make([]*corev1.Pod, len(active))
	for i, s := range active {
		pods[i] = s.pod
	}
	rank := func(p *corev1.Pod) int {
		switch {
		case p.Spec.NodeName == "":
			return 0
		case !isReady(p):
			return 1
		}
		return 2
	}
	slices.SortStableFunc(pods, func(a, b *corev1.Pod) int {
		if c := cmp.Compare(rank(a), rank(b)); c != 0 {
			return c
		}
		return b.CreationTimestamp.Compare(a.CreationTimestamp.Time)
	})
	return pods[:min(n, len(pods))]
}

// classify sorts every pod. A pod being deleted counts as failed unless
// podReplacementPolicy is Failed (then only once its node has confirmed
// it stopped) or ourDeletions says the controller deleted it itself.
func classify(in Input, ourDeletions bool) []podState {
	onlyFailed := in.Job.Spec.PodReplacementPolicy != nil && *in.Job.Spec.PodReplacementPolicy == batchv1.Failed
	out := make([]podState, 0, len(in.Pods))
	for _, pod := range in.Pods {
		s := podState{pod: pod, tracked: hasFinalizer(pod) && !in.Removed[pod.UID], index: completionIndex(pod)}
		switch {
		case pod.Status.Phase == corev1.PodSucceeded:
			s.succeeded = true
		case pod.Status.Phase == corev1.PodFailed:
			s.failed = true
		case pod.DeletionTimestamp != nil:
			s.terminating = true
			// A deletion confirmed with grace period 0 means the node
			// has stopped the pod: it will report no phase any more.
			stopped := pod.DeletionGracePeriodSeconds != nil && *pod.DeletionGracePeriodSeconds == 0
			s.failed = (!onlyFailed || stopped) && !ourDeletions
		default:
			s.active = true
		}
		out = append(out, s)
	}
	return out
}

// backoffRemaining is how long new pods still wait after failures:
// Backoff doubled for each failure since the last success, at most
// MaxBackoff, counted from the last failure.
func backoffRemaining(in Input, states []podState) time.Duration {
	var lastSuccess, lastFailure time.Time
	for _, s := range states {
		if s.succeeded {
			if t := finishTime(s.pod); t.After(lastSuccess) {
				lastSuccess = t
			}
		}
	}
	failures := 0
	for _, s := range states {
		if !s.failed {
			continue
		}
		t := finishTime(s.pod)
		if t.After(lastSuccess) {
			failures++
			if t.After(lastFailure) {
				lastFailure = t
			}
		}
	}
	if failures == 0 {
		return 0
	}
	delay := in.Backoff
	for i := 1; i < failures && delay < in.MaxBackoff; i++ {
		delay *= 2
	}
	delay = min(delay, in.MaxBackoff)
	return lastFailure.Add(delay).Sub(in.Now)
}

// finishTime is when a pod finished: its last container's finish, or
// the start of its deletion, or (for a pod failed without containers)
// the last change of its conditions.
func finishTime(pod *corev1.Pod) time.Time {
	var t time.Time
	for _, cs := range slices.Concat(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses) {
		if term := cs.State.Terminated; term != nil && term.FinishedAt.After(t) {
			t = term.FinishedAt.Time
		}
	}
	if !t.IsZero() {
		return t
	}
	if pod.DeletionTimestamp != nil {
		return pod.DeletionTimestamp.Time
	}
	for _, c := range pod.Status.Conditions {
		if c.LastTransitionTime.After(t) {
			t = c.LastTransitionTime.Time
		}
	}
	if t.IsZero() {
		t = pod.CreationTimestamp.Time
	}
	return t
}

// pastBackoffLimitOnFailure reports whether, with restartPolicy
// OnFailure, the container restarts of the Job's running and pending
// pods have reached backoffLimit: such pods never fail, they restart.
func pastBackoffLimitOnFailure(job *batchv1.Job, active []*podState) bool {
	if job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		return false
	}
	var restarts int32
	for _, s := range active {
		if ph := s.pod.Status.Phase; ph != corev1.PodRunning && ph != corev1.PodPending {
			continue
		}
		for _, cs := range slices.Concat(s.pod.Status.InitContainerStatuses, s.pod.Status.ContainerStatuses) {
			restarts += cs.RestartCount
		}
	}
	if backoffLimit(job) == 0 {
		return restarts > 0
	}
	return restarts >= backoffLimit(job)
}

// successCriteriaMet: completions successes, or, without completions,
// one success and nothing left running.
func successCriteriaMet(job *batchv1.Job, succeeded int32, active int) bool {
	if job.Spec.Completions != nil {
		return succeeded >= *job.Spec.Completions
	}
	return succeeded > 0 && active == 0
}

func (p *Plan) requeue(d time.Duration) {
	if d > 0 && (p.RequeueAfter == 0 || d < p.RequeueAfter) {
		p.RequeueAfter = d
	}
}

func isIndexed(job *batchv1.Job) bool {
	return job.Spec.CompletionMode != nil && *job.Spec.CompletionMode == batchv1.IndexedCompletion
}

func completions(job *batchv1.Job) int {
	if job.Spec.Completions == nil {
		return 0
	}
	return int(*job.Spec.Completions)
}

func parallelism(job *batchv1.Job) int32 {
	if job.Spec.Parallelism == nil {
		return 1
	}
	return *job.Spec.Parallelism
}

func backoffLimit(job *batchv1.Job) int32 {
	if job.Spec.BackoffLimit == nil {
		return 6
	}
	return *job.Spec.BackoffLimit
}

func hasFinalizer(pod *corev1.Pod) bool {
	return slices.Contains(pod.Finalizers, batchv1.JobTrackingFinalizer)
}

func isFinished(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

func isReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// completionIndex reads a pod's batch.kubernetes.io/job-completion-index
// annotation; NoIndex when it is missing or not a number.
func completionIndex(pod *corev1.Pod) int {
	v, ok := pod.Annotations[batchv1.JobCompletionIndexAnnotation]
	if !ok {
		return NoIndex
	}
	ix, err := strconv.Atoi(v)
	if err != nil || ix < 0 {
		return NoIndex
	}
	return ix
}

// finishedCondition returns the Job's Complete or Failed condition when
// it is True.
func finishedCondition(job *batchv1.Job) *batchv1.JobCondition {
	for _, t := range []batchv1.JobConditionType{batchv1.JobComplete, batchv1.JobFailed} {
		if c := findCondition(job.Status.Conditions, t); c != nil {
			return c
		}
	}
	return nil
}

// findCondition returns the condition of type t when it is True.
func findCondition(conds []batchv1.JobCondition, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range conds {
		if conds[i].Type == t && conds[i].Status == corev1.ConditionTrue {
			return &conds[i]
		}
	}
	return nil
}

// setCondition makes the condition of type t True with reason and
// message; it reports whether that changed anything.
func setCondition(st *batchv1.JobStatus, t batchv1.JobConditionType, reason, message string, now metav1.Time) bool {
	return setConditionStatus(st, t, corev1.ConditionTrue, reason, message, now)
}

func setConditionStatus(st *batchv1.JobStatus, t batchv1.JobConditionType, status corev1.ConditionStatus, reason, message string, now metav1.Time) bool {
	for i := range st.Conditions {
		c := &st.Conditions[i]
		if c.Type != t {
			continue
		}
		if c.Status == status && c.Reason == reason && c.Message == message {
			return false
		}
		if c.Status != status {
			c.LastTransitionTime = now
		}
		c.Status, c.Reason, c.Message, c.LastProbeTime = status, reason, message, now
		return true
	}
	st.Conditions = append(st.Conditions, batchv1.JobCondition{
		Type: t, Status: status, Reason: reason, Message: message, LastProbeTime: now, LastTransitionTime: now,
	})
	return true
}

// parseIndexes reads completedIndexes ("1,3-5,7"). Malformed parts are
// skipped: the string is this controller's own writing.
func parseIndexes(s string) map[int]bool {
	out := map[int]bool{}
	if s == "" {
		return out
	}
	for _, part := range splitComma(s) {
		var lo, hi int
		if n, _ := fmt.Sscanf(part, "%d-%d", &lo, &hi); n == 2 {
			for ix := lo; ix <= hi; ix++ {
				out[ix] = true
			}
		} else if n == 1 {
			out[lo] = true
		}
	}
	return out
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

// formatIndexes writes indexes below n as Kubernetes does: ascending,
// runs of consecutive indexes as "first-last", comma-separated.
func formatIndexes(indexes map[int]bool, n int) string {
	var b []byte
	for ix := 0; ix < n; ix++ {
		if !indexes[ix] {
			continue
		}
		end := ix
		for end+1 < n && indexes[end+1] {
			end++
		}
		if len(b) > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(ix), 10)
		if end > ix {
			b = append(b, '-')
			b = strconv.AppendInt(b, int64(end), 10)
		}
		ix = end
	}
	return string(b)
}
