package kubelet

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffdev/skiff/kubelet/runtime"
)

// computePodActions is the kubelet's decision for one pod: given the pod
// object and what the runtime, the probes and the restart backoff say
// now, it returns what to do — which runs to kill, which containers to
// start, which to hold back and until when, what to probe, which old
// runs to remove, and the facts the pod's status reports.
//
//	computePodActions(podObservation) → podActions
//
// It is a pure function: it reads nothing but its argument (no runtime,
// no API, no clock, no logs) and changes nothing, not even its argument.
// That is why it can be tested with script files (testdata/*.txt, see
// TestPodActions) and why the sync around it can call it as often as it
// likes. Its inputs are plain data:
//
//   - Pod, the object as the API has it now (nil: gone from the API), and
//     Last, the last one seen, whose grace period counts when Pod is nil;
//   - Runs, the pod's containers in the runtime by container name, each
//     with its current run, the previous one and any older ones;
//   - Liveness, the failed liveness (or startup) probes, by run ID;
//   - Backoff, by container name, until when the restart of its exited
//     current run must wait (restartWaits computes it from the pod's
//     restart backoff);
//   - ConfigErrors, by container name, why its environment cannot be
//     made now (a missing ConfigMap, Secret or key);
//   - Now.
//
// # What it decides
//
// First the pod's goal (goalOf). A pod being deleted, or gone from the
// API, is removed: every run still going is killed, all at once, with
// the pod's grace period, and then everything of the pod leaves the node.
// A pod that has finished (phase Succeeded or Failed) is stopped: what
// still runs is killed and the sandbox released, while the exited runs
// stay for their status and logs.
//
// A pod that should run runs its init containers one at a time, in
// order, each to success. Only the first init container that has not
// succeeded is acted on: started if it never ran; if it failed, started
// again (unless the restartPolicy is Never, which fails the pod); if it
// is running, waited for. An init container with restartPolicy Always (a
// sidecar) is held back with CreateContainerConfigError: not supported.
//
// Once every init container has succeeded, each container in turn, by
// its current run ("going": not exited — running, still being created,
// or in a state the runtime cannot tell):
//
//	none: never ran                  start it (run 0)
//	going, its spec changed          kill it: "definition changed"
//	going, liveness failed           kill it, with the probe's grace period if it has one
//	running, otherwise               probe it
//	exited, its spec changed         start it again, whatever the restartPolicy
//	exited, restartPolicy says so    start it again (Always; OnFailure after a failure)
//	exited, otherwise                leave it
//
// A start after an exit waits for the backoff: while Now is before the
// container's restartWait.Until it is held back as CrashLoopBackOff, and
// WakeAt says when to look again. Any start, first or not, of a
// container with a ConfigErrors entry is held back as
// CreateContainerConfigError with that message; no WakeAt: what it waits
// for wakes the worker when it appears. A container's spec has changed when
// its hash (containerHash) differs from the one its run was started with.
//
// Kills come alone: when a running pod has runs to kill, the actions
// hold only those. Whether and when a killed container comes back is
// decided at the next call, from how its run ended.
//
// Runs older than a container's previous one are removed (with their
// logs); only the current and the previous run are ever reported.
//
// # The caller's duties, in order
//
//  1. Find the goal with goalOf. For goalRun, prepare the pod first —
//     sandbox, /etc files, volumes — since that can take long; if the
//     volumes cannot be prepared, every container waits and nothing is
//     decided.
//  2. Observe, fresh, right before the call: the runs from the container
//     index, the liveness results of the runs that have not exited, the
//     restart waits, the containers whose environment cannot be made from
//     the objects prepared in 1, and the time.
//  3. Call computePodActions. For goalRun with Kill set, kill the runs
//     one after another (events Unhealthy and Killing), record how each
//     ended, and go back to 2.
//  4. Carry out the rest, in order. For goalRun: probe the Probe runs and
//     stop probing the Unprobe ones; Start each container (recording the
//     end of the run it replaces in the restart backoff first); record a
//     BackOff event for each Wait with a BackOff run, once per run;
//     remove the Remove runs and their logs. For goalStop: kill every run
//     of Kill at once, stop all probes, release the sandbox. For
//     goalRemove: kill every run of Kill at once, then remove every
//     container, the sandbox and the pod's files, and then delete the
//     object (DeleteObject) or drop the pod's state (Forget).
//  5. Report, for goalRun: the status is computed from a fresh look at
//     the runtime and the probes, with the Wait states, InitFailed, and
//     what the starts learned (a failed pull, a bad spec); it is written
//     when it changed. Sync again at WakeAt at the latest.
func computePodActions(o podObservation) podActions {
	a := podActions{Goal: goalOf(o.Pod)}
	switch a.Goal {
	case goalRemove:
		a.Kill = killAll(o.Runs, podGracePeriod(o.Runs, o.Pod, o.Last))
		a.DeleteObject = o.Pod != nil
		a.Forget = o.Pod == nil
		return a
	case goalStop:
		a.Kill = killAll(o.Runs, podGracePeriod(o.Runs, o.Pod))
		return a
	}

	pod := o.Pod
	initialized := true
	if c, r := nextInitContainer(pod, o.Runs); c != nil {
		initialized = false
		switch {
		case c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways:
			a.Wait = append(a.Wait, waitAction{Name: c.Name, Waiting: corev1.ContainerStateWaiting{
				Reason:  "CreateContainerConfigError",
				Message: "sidecar containers (init containers with restartPolicy Always) are not supported by Skiff yet",
			}})
		case r == nil:
			a.start(o, startAction{Container: c, Init: true})
		case r.current.State == runtime.StateExited:
			if pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
				a.InitFailed = true
			} else {
				a.restart(o, c, true, r.current)
			}
		default:
			// Running (or being created): its exit wakes the worker.
		}
	}

	if initialized {
		for i := range pod.Spec.Containers {
			c := &pod.Spec.Containers[i]
			r := o.Runs[c.Name]
			if r == nil {
				a.start(o, startAction{Container: c})
				continue
			}
			cur := r.current
			changed := cur.Labels[labelHash] != containerHash(c)
			if cur.State != runtime.StateExited {
				if kill, ok := killForCause(o, c, cur, changed); ok {
					a.Kill = append(a.Kill, kill)
				} else if cur.State == runtime.StateRunning {
					a.Probe = append(a.Probe, probeAction{Container: c, Run: cur})
				}
				continue
			}
			// An ended run has nothing left to probe.
			a.Unprobe = append(a.Unprobe, cur.ID)
			// A changed container is replaced whatever the restart
			// policy, as in Kubernetes.
			if changed || shouldRestart(pod, cur) {
				a.restart(o, c, false, cur)
			}
		}
	}
	if len(a.Kill) > 0 {
		return podActions{Goal: goalRun, Kill: a.Kill}
	}

	// Only the current and the previous run of a container are reported;
	// runs older than that go, with their logs.
	for _, name := range sortedNames(o.Runs) {
		r := o.Runs[name]
		if r.previous != nil {
			a.Unprobe = append(a.Unprobe, r.previous.ID)
		}
		for i := range r.older {
			a.Unprobe = append(a.Unprobe, r.older[i].ID)
			a.Remove = append(a.Remove, &r.older[i])
		}
	}
	return a
}

// podGoal is what should become of a pod as a whole.
type podGoal int

const (
	// goalRun: the pod should run. Its containers start, restart and are
	// killed as its spec, its restartPolicy and its probes say.
	goalRun podGoal = iota
	// goalStop: the pod has finished. What still runs is killed and the
	// sandbox released; exited runs stay for their status and logs until
	// the pod is deleted.
	goalStop
	// goalRemove: the pod is being deleted, or the API no longer has it.
	// Everything is killed at once, then removed from the node.
	goalRemove
)

func (g podGoal) String() string {
	switch g {
	case goalRun:
		return "run"
	case goalStop:
		return "stop"
	case goalRemove:
		return "remove"
	}
	return "podGoal(" + strconv.Itoa(int(g)) + ")"
}

// goalOf is the goal for pod, the object as the API has it now (nil when
// it is gone). A deletion counts before a finished phase.
func goalOf(pod *corev1.Pod) podGoal {
	switch {
	case pod == nil || pod.DeletionTimestamp != nil:
		return goalRemove
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		return goalStop
	}
	return goalRun
}

// podObservation is what computePodActions decides from, gathered by the
// caller right before the call. computePodActions never changes it.
type podObservation struct {
	// Pod is the pod object as the API has it now; nil when the API no
	// longer has it.
	Pod *corev1.Pod
	// Last is the last object seen for the pod, or nil; only its grace
	// period matters, when Pod is nil.
	Last *corev1.Pod
	// Runs are the pod's containers in the runtime, by container name
	// (runsByName).
	Runs map[string]*runs
	// Liveness holds, by run ID, the message of each run whose liveness
	// probe (or startup probe) has failed.
	Liveness map[string]string
	// Backoff holds, by container name, the wait before its exited
	// current run may be followed by another (restartWaits). A container
	// not in it may restart at once.
	Backoff map[string]restartWait
	// ConfigErrors holds, by container name, why the container cannot be
	// started now: a ConfigMap, Secret or key its environment needs is
	// missing (Kubernetes' message: `configmap "x" not found`). Such a
	// container waits in CreateContainerConfigError; what it waits for
	// wakes the worker when it appears.
	ConfigErrors map[string]string
	// Now is when the decision is made.
	Now time.Time
}

// restartWait is the restart backoff of one container as it applies to
// its exited current run.
type restartWait struct {
	// Until is the earliest time the container may start again.
	Until time.Time
	// Delay is the backoff's current delay, which the CrashLoopBackOff
	// message reports.
	Delay time.Duration
}

// restartWaits applies a pod's restart backoff (keyed by container name)
// to the containers whose current run has exited: each must wait its
// delay after that run ended, unless the backoff expired.
func restartWaits(b *backoff, runs map[string]*runs) map[string]restartWait {
	out := map[string]restartWait{}
	for name, r := range runs {
		if r.current.State != runtime.StateExited {
			continue
		}
		if until, delay, ok := b.until(name, r.current.FinishedAt); ok {
			out[name] = restartWait{Until: until, Delay: delay}
		}
	}
	return out
}

// podActions is what computePodActions decided, in the order the caller
// carries it out (see computePodActions for the caller's duties).
type podActions struct {
	Goal podGoal
	// Kill lists the runs to stop. For goalRun they are stopped one after
	// another and nothing else is in the actions; for goalStop and
	// goalRemove, all at once, and the rest follows.
	Kill []killAction
	// Probe lists the running runs of an initialized pod's containers:
	// they are probed (adding a run already probed does nothing).
	Probe []probeAction
	// Unprobe lists the IDs of runs whose probes must stop: exited
	// current runs and every run before a current one.
	Unprobe []string
	// Start lists the containers to start, in order: one init container,
	// or the containers of an initialized pod in the order of its spec.
	Start []startAction
	// Wait lists the containers held back, with the waiting state their
	// status reports.
	Wait []waitAction
	// WakeAt is when the first backoff of Wait ends: the latest time to
	// sync again if nothing else wakes the worker. Zero when none.
	WakeAt time.Time
	// InitFailed means an init container failed under restartPolicy
	// Never: the pod has failed.
	InitFailed bool
	// Remove lists the runs older than a container's previous one, to be
	// removed with their log files.
	Remove []*runtime.Status
	// DeleteObject (goalRemove): once the pod is off the node, delete its
	// object with grace period 0.
	DeleteObject bool
	// Forget (goalRemove): the API has no such pod; once it is off the
	// node, the pod is done and its state dropped.
	Forget bool
}

// killAction stops one run.
type killAction struct {
	Name  string          // the container's
	Run   *runtime.Status // the run to stop
	Grace time.Duration   // between SIGTERM and SIGKILL
	// Message is the Killing event's.
	Message string
	// LivenessFailed is set when the run is killed for its failed
	// liveness (or startup) probe; ProbeMessage is that failure, recorded
	// as an Unhealthy event before the Killing one.
	LivenessFailed bool
	ProbeMessage   string
}

// startAction starts one run of a container.
type startAction struct {
	Container *corev1.Container
	Init      bool
	// Attempt is the run's number: 0 for the first, then one more than
	// the run it follows. It is the container's restartCount.
	Attempt int
	// After is the exited run this one follows, nil for a first run. Its
	// end is a restart for the backoff.
	After *runtime.Status
}

// waitAction holds a container back.
type waitAction struct {
	Name    string
	Waiting corev1.ContainerStateWaiting
	// BackOff is the ID of the run whose restart backoff holds the
	// container back ("" when it is not a backoff): a BackOff event is
	// recorded once for each such run.
	BackOff string
}

// probeAction has a running run probed.
type probeAction struct {
	Container *corev1.Container
	Run       *runtime.Status
}

// restart starts c again after its run cur exited, unless the restart
// backoff holds it back.
func (a *podActions) restart(o podObservation, c *corev1.Container, init bool, cur *runtime.Status) {
	if w, ok := o.Backoff[c.Name]; ok && o.Now.Before(w.Until) {
		pod := o.Pod
		a.Wait = append(a.Wait, waitAction{
			Name: c.Name,
			Waiting: corev1.ContainerStateWaiting{
				Reason:  "CrashLoopBackOff",
				Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", w.Delay, c.Name, pod.Name, pod.Namespace, pod.UID),
			},
			BackOff: cur.ID,
		})
		if a.WakeAt.IsZero() || w.Until.Before(a.WakeAt) {
			a.WakeAt = w.Until
		}
		return
	}
	a.start(o, startAction{Container: c, Init: init, Attempt: attempt(*cur) + 1, After: cur})
}

// start starts a container, unless what its environment needs is
// missing: then it waits in CreateContainerConfigError.
func (a *podActions) start(o podObservation, s startAction) {
	if msg, ok := o.ConfigErrors[s.Container.Name]; ok {
		a.Wait = append(a.Wait, waitAction{Name: s.Container.Name, Waiting: corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: msg}})
		return
	}
	a.Start = append(a.Start, s)
}

// nextInitContainer is the first init container of pod that has not
// succeeded, with its runs (nil if it never ran); nil when all have.
func nextInitContainer(pod *corev1.Pod, runs map[string]*runs) (*corev1.Container, *runs) {
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if r := runs[c.Name]; r == nil || !succeeded(r.current) {
			return c, r
		}
	}
	return nil, nil
}

// killForCause decides whether the run cur of c, which has not exited,
// must be killed: because c's spec changed, or its liveness failed.
func killForCause(o podObservation, c *corev1.Container, cur *runtime.Status, changed bool) (killAction, bool) {
	kill := killAction{Name: c.Name, Run: cur, Grace: podGracePeriod(o.Runs, o.Pod)}
	if changed {
		kill.Message = fmt.Sprintf("Container %s definition changed, will be restarted", c.Name)
		return kill, true
	}
	msg, failed := o.Liveness[cur.ID]
	if !failed {
		return killAction{}, false
	}
	kill.Message = fmt.Sprintf("Container %s failed liveness probe, will be restarted", c.Name)
	kill.LivenessFailed, kill.ProbeMessage = true, msg
	if p := c.LivenessProbe; p != nil && p.TerminationGracePeriodSeconds != nil {
		kill.Grace = time.Duration(*p.TerminationGracePeriodSeconds) * time.Second
	}
	return kill, true
}

// killAll kills every run that has not exited, in the order of the
// container index (by container name, newest run first).
func killAll(runs map[string]*runs, grace time.Duration) []killAction {
	var out []killAction
	for _, st := range allRuns(runs) {
		if st.State == runtime.StateExited {
			continue
		}
		name := st.Labels[labelContainer]
		out = append(out, killAction{Name: name, Run: st, Grace: grace, Message: "Stopping container " + name})
	}
	return out
}

// podGracePeriod is how long a pod's containers get between SIGTERM and
// SIGKILL: from the first of pods that says (its deletion's grace period,
// else its spec's), else from the label its runs were started with, else
// 30 seconds.
func podGracePeriod(runs map[string]*runs, pods ...*corev1.Pod) time.Duration {
	for _, p := range pods {
		if p == nil {
			continue
		}
		if g := p.DeletionGracePeriodSeconds; g != nil {
			return time.Duration(*g) * time.Second
		}
		if g := p.Spec.TerminationGracePeriodSeconds; g != nil {
			return time.Duration(*g) * time.Second
		}
	}
	for _, st := range allRuns(runs) {
		if g, err := strconv.Atoi(st.Labels[labelGrace]); err == nil {
			return time.Duration(g) * time.Second
		}
	}
	return 30 * time.Second
}

// allRuns lists every run of a pod in the container index's order: by
// container name, newest run first.
func allRuns(runs map[string]*runs) []*runtime.Status {
	var out []*runtime.Status
	for _, name := range sortedNames(runs) {
		r := runs[name]
		out = append(out, r.current)
		if r.previous != nil {
			out = append(out, r.previous)
		}
		for i := range r.older {
			out = append(out, &r.older[i])
		}
	}
	return out
}

func sortedNames(runs map[string]*runs) []string {
	names := make([]string, 0, len(runs))
	for name := range runs {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func succeeded(st *runtime.Status) bool {
	return st != nil && st.State == runtime.StateExited && st.ExitCode == 0
}

// shouldRestart applies the pod's restartPolicy to an exited container.
func shouldRestart(pod *corev1.Pod, st *runtime.Status) bool {
	switch pod.Spec.RestartPolicy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return st.ExitCode != 0
	}
	return true
}
