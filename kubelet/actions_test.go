package kubelet

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/skiffdev/skiff/internal/script"
	"github.com/skiffdev/skiff/kubelet/runtime"
)

// TestPodActions replays the scripts in testdata/: stories of one pod on
// a node, told as commands, with the decisions of computePodActions as
// their expected output. It needs no root: nothing runs but the
// decision, and the harness plays the runtime.
//
// A script is a series of cases; each case is some commands, a line
// "----", and what the commands are expected to print, ended by a blank
// line:
//
//	pod web
//	container app
//	sync
//	----
//	start app#0
//
// Lines starting with # are comments. go test -run TestPodActions
// -rewrite replaces every expected block with the actual output, to be
// reviewed as a diff.
//
// Commands (a run is written NAME#ATTEMPT: app#0 is app's first run):
//
//	pod NAME [restart=Always|OnFailure|Never] [grace=SECONDS]
//	    Begins a story: a pod (uid uid-NAME, namespace default, no
//	    containers yet) of which the node has nothing, at 12:00:00.
//	init NAME [sidecar]
//	    Adds an init container to the spec (sidecar: restartPolicy Always).
//	container NAME [liveness] [liveness-grace=SECONDS]
//	    Adds a container to the spec, with a liveness probe if asked.
//	image NAME IMAGE
//	    Changes a container's image in the spec, and so its hash.
//	at 12:00:10 | at +10s
//	    Sets the clock, or moves it on.
//	exit NAME CODE
//	    The current run of NAME exits now with CODE.
//	liveness NAME MESSAGE...
//	    The liveness probe of NAME's current run has failed with MESSAGE.
//	state NAME created|unknown
//	    NAME's current run is still being created, or in a state the
//	    runtime cannot tell (as a restarted kubelet may find it).
//	config NAME MESSAGE... | config NAME ok
//	    What NAME's environment needs is missing, with MESSAGE (a
//	    ConfigMap, Secret or key: `configmap "x" not found`); or it is
//	    all there now.
//	phase Succeeded|Failed
//	    The pod object's status says so (as the kubelet's last status
//	    write made it, or someone else).
//	delete [grace=SECONDS]
//	    The pod object gets a deletion timestamp (and grace period).
//	gone
//	    The API no longer has the pod.
//	node
//	    Prints the runs on the node, by container, newest first.
//	sync
//	    One sync: observe, decide, and carry the decision out as the
//	    kubelet would, the harness playing the runtime: a kill ends the
//	    run (exit code 137), a start makes a running run, a removal drops
//	    a run, a deleted pod object is gone. After kills it observes and
//	    decides again, as syncPod does.
//
// Whatever a script expects, the harness checks that a decision never
// kills a run that has exited, never starts a container whose current
// run has not exited, and numbers each run one past the one it follows.
func TestPodActions(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scripts in testdata/")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			runScript(t, file)
		})
	}
}

func runScript(t *testing.T, file string) {
	s := &story{t: t}
	script.Run(t, file, s.run)
}

// day is the date of every story; scripts give only times of day.
var day = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// story is one pod and the node around it, as a script builds them up.
type story struct {
	t *testing.T
	// pod is the object as the API has it, nil once gone; last is the
	// last one seen.
	pod, last *corev1.Pod
	now       time.Time
	// runs are the pod's containers in the runtime, in no order.
	runs []runtime.Status
	// liveness holds the failed liveness probes, by run ID.
	liveness map[string]string
	// configErrors holds, by container name, what its environment lacks.
	configErrors map[string]string
	state        *podState
}

func (s *story) run(line string) ([]string, error) {
	args := strings.Fields(line)
	cmd, args := args[0], args[1:]
	if cmd != "pod" && s.last == nil {
		return nil, errors.New("no pod yet: a story begins with pod NAME")
	}
	switch cmd {
	case "pod":
		return nil, s.newPod(args)
	case "init", "container":
		return nil, s.addContainer(cmd == "init", args)
	case "image":
		if len(args) != 2 {
			return nil, errors.New("usage: image NAME IMAGE")
		}
		if s.pod == nil || findContainer(s.pod, args[0]) == nil {
			return nil, fmt.Errorf("no container %q", args[0])
		}
		s.setPod(func(p *corev1.Pod) { findContainer(p, args[0]).Image = args[1] })
		return nil, nil
	case "at":
		if len(args) != 1 {
			return nil, errors.New("usage: at 12:00:10 | at +10s")
		}
		return nil, s.setClock(args[0])
	case "exit":
		if len(args) != 2 {
			return nil, errors.New("usage: exit NAME CODE")
		}
		code, err := strconv.Atoi(args[1])
		if err != nil {
			return nil, err
		}
		cur := s.current(args[0])
		if cur == nil || cur.State == runtime.StateExited {
			return nil, fmt.Errorf("%s has no run going", args[0])
		}
		s.end(cur, code)
		return nil, nil
	case "liveness":
		if len(args) < 2 {
			return nil, errors.New("usage: liveness NAME MESSAGE...")
		}
		if c := findContainer(s.last, args[0]); c == nil || c.LivenessProbe == nil {
			return nil, fmt.Errorf("container %q has no liveness probe", args[0])
		}
		cur := s.current(args[0])
		if cur == nil || cur.State != runtime.StateRunning {
			return nil, fmt.Errorf("%s is not running", args[0])
		}
		s.liveness[cur.ID] = strings.Join(args[1:], " ")
		return nil, nil
	case "state":
		if len(args) != 2 || (args[1] != string(runtime.StateCreated) && args[1] != string(runtime.StateUnknown)) {
			return nil, errors.New("usage: state NAME created|unknown")
		}
		cur := s.current(args[0])
		if cur == nil || cur.State == runtime.StateExited {
			return nil, fmt.Errorf("%s has no run going", args[0])
		}
		cur.State = runtime.State(args[1])
		return nil, nil
	case "config":
		if len(args) < 2 || findContainer(s.last, args[0]) == nil {
			return nil, errors.New("usage: config NAME MESSAGE... | config NAME ok (of a container of the pod)")
		}
		if args[1] == "ok" && len(args) == 2 {
			delete(s.configErrors, args[0])
		} else {
			s.configErrors[args[0]] = strings.Join(args[1:], " ")
		}
		return nil, nil
	case "phase":
		if len(args) != 1 || s.pod == nil {
			return nil, errors.New("usage: phase Succeeded|Failed (of a pod the API has)")
		}
		s.setPod(func(p *corev1.Pod) { p.Status.Phase = corev1.PodPhase(args[0]) })
		return nil, nil
	case "delete":
		if s.pod == nil {
			return nil, errors.New("the pod is gone already")
		}
		var grace *int64
		for _, arg := range args {
			v, ok := strings.CutPrefix(arg, "grace=")
			n, err := strconv.ParseInt(v, 10, 64)
			if !ok || err != nil {
				return nil, fmt.Errorf("unknown delete option %q", arg)
			}
			grace = &n
		}
		s.setPod(func(p *corev1.Pod) {
			p.DeletionTimestamp = &metav1.Time{Time: s.now}
			p.DeletionGracePeriodSeconds = grace
		})
		return nil, nil
	case "gone":
		s.pod = nil
		return nil, nil
	case "node":
		return s.printNode(), nil
	case "sync":
		return s.sync()
	}
	return nil, fmt.Errorf("unknown command %q", cmd)
}

func (s *story) newPod(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: pod NAME [restart=POLICY] [grace=SECONDS]")
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: args[0], Namespace: "default", UID: types.UID("uid-" + args[0])},
		Spec:       corev1.PodSpec{RestartPolicy: corev1.RestartPolicyAlways},
	}
	for _, arg := range args[1:] {
		key, value, _ := strings.Cut(arg, "=")
		switch key {
		case "restart":
			pod.Spec.RestartPolicy = corev1.RestartPolicy(value)
		case "grace":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil {
				return fmt.Errorf("%s: %w", arg, err)
			}
			pod.Spec.TerminationGracePeriodSeconds = &n
		default:
			return fmt.Errorf("unknown pod option %q", arg)
		}
	}
	*s = story{t: s.t, pod: pod, last: pod, now: day.Add(12 * time.Hour),
		liveness: map[string]string{}, configErrors: map[string]string{}, state: newPodState(10*time.Second, 5*time.Minute)}
	return nil
}

func (s *story) addContainer(init bool, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: init|container NAME [options]")
	}
	if s.pod == nil {
		return errors.New("the pod is gone")
	}
	c := corev1.Container{Name: args[0], Image: "busybox"}
	for _, arg := range args[1:] {
		key, value, _ := strings.Cut(arg, "=")
		switch {
		case init && key == "sidecar":
			c.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
		case !init && (key == "liveness" || key == "liveness-grace"):
			if c.LivenessProbe == nil {
				c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/tmp/healthy"}}}}
			}
			if key == "liveness-grace" {
				n, err := strconv.ParseInt(value, 10, 64)
				if err != nil {
					return fmt.Errorf("%s: %w", arg, err)
				}
				c.LivenessProbe.TerminationGracePeriodSeconds = &n
			}
		default:
			return fmt.Errorf("unknown option %q", arg)
		}
	}
	s.setPod(func(p *corev1.Pod) {
		if init {
			p.Spec.InitContainers = append(p.Spec.InitContainers, c)
		} else {
			p.Spec.Containers = append(p.Spec.Containers, c)
		}
	})
	return nil
}

// setPod changes the pod object as an update through the API would: the
// decision keeps whatever object it was given.
func (s *story) setPod(change func(*corev1.Pod)) {
	p := s.pod.DeepCopy()
	change(p)
	s.pod, s.last = p, p
}

func (s *story) setClock(arg string) error {
	if d, ok := strings.CutPrefix(arg, "+"); ok {
		dur, err := time.ParseDuration(d)
		if err != nil {
			return err
		}
		s.now = s.now.Add(dur)
		return nil
	}
	t, err := time.Parse(time.TimeOnly, arg)
	if err != nil {
		return err
	}
	at := day.Add(time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute + time.Duration(t.Second())*time.Second)
	if at.Before(s.now) {
		return fmt.Errorf("the clock is at %s already", clock(s.now))
	}
	s.now = at
	return nil
}

// current is the newest run of container name, or nil.
func (s *story) current(name string) *runtime.Status {
	var cur *runtime.Status
	for i := range s.runs {
		r := &s.runs[i]
		if r.Labels[labelContainer] == name && (cur == nil || attempt(*r) > attempt(*cur)) {
			cur = r
		}
	}
	return cur
}

func (s *story) end(r *runtime.Status, code int) {
	r.State, r.ExitCode, r.FinishedAt = runtime.StateExited, code, s.now
	r.Reason = runtime.ReasonError
	if code == 0 {
		r.Reason = runtime.ReasonCompleted
	}
	delete(s.liveness, r.ID)
}

func (s *story) find(id string) *runtime.Status {
	for i := range s.runs {
		if s.runs[i].ID == id {
			return &s.runs[i]
		}
	}
	return nil
}

// observe is the story's side of syncPod's observe.
func (s *story) observe() podObservation {
	// In the order of the container index, which runsByName relies on.
	slices.SortFunc(s.runs, func(a, b runtime.Status) int {
		if c := strings.Compare(a.Labels[labelContainer], b.Labels[labelContainer]); c != 0 {
			return c
		}
		return attempt(b) - attempt(a)
	})
	runs := runsByName(slices.Clone(s.runs))
	return podObservation{Pod: s.pod, Last: s.last, Runs: runs, Liveness: maps.Clone(s.liveness),
		Backoff: restartWaits(s.state.restarts, runs), ConfigErrors: maps.Clone(s.configErrors), Now: s.now}
}

// sync plays syncPod: decide, print, carry out; after kills, again.
func (s *story) sync() ([]string, error) {
	var out []string
	for round := 0; ; round++ {
		if round > 0 {
			out = append(out, "(the kills are done: observe again)")
		}
		o := s.observe()
		before := deepCopyObservation(o)
		a := computePodActions(o)
		if !reflect.DeepEqual(before, o) {
			s.t.Errorf("computePodActions changed its input")
		}
		s.check(o, a)
		out = append(out, s.print(a)...)
		for _, kill := range a.Kill {
			s.end(s.find(kill.Run.ID), 137)
		}
		switch {
		case a.Goal == goalRemove:
			s.runs, s.liveness = nil, map[string]string{}
			if a.DeleteObject {
				s.pod = nil
			}
			if a.Forget {
				s.state = newPodState(10*time.Second, 5*time.Minute)
			}
			return out, nil
		case a.Goal == goalStop:
			return out, nil
		case len(a.Kill) > 0:
			if round >= len(s.pod.Spec.Containers) {
				return nil, errors.New("a container was killed twice in one sync")
			}
			continue
		}
		for _, st := range a.Start {
			if st.After != nil {
				s.state.restarts.next(st.Container.Name, st.After.FinishedAt)
			}
			s.runs = append(s.runs, s.newRun(st))
		}
		for _, id := range a.Unprobe {
			delete(s.liveness, id)
		}
		for _, old := range a.Remove {
			s.runs = slices.DeleteFunc(s.runs, func(r runtime.Status) bool { return r.ID == old.ID })
		}
		return out, nil
	}
}

// newRun is the run the runtime has once a start succeeded, labelled as
// containerSpec labels it.
func (s *story) newRun(st startAction) runtime.Status {
	grace := int64(30)
	if g := s.pod.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = *g
	}
	return runtime.Status{
		ID: runName(st.Container.Name, st.Attempt),
		Labels: map[string]string{
			labelPodUID:    string(s.pod.UID),
			labelContainer: st.Container.Name,
			labelAttempt:   strconv.Itoa(st.Attempt),
			labelInit:      strconv.FormatBool(st.Init),
			labelHash:      containerHash(st.Container),
			labelGrace:     strconv.FormatInt(grace, 10),
		},
		State:     runtime.StateRunning,
		StartedAt: s.now,
	}
}

func runName(container string, attempt int) string { return container + "#" + strconv.Itoa(attempt) }

// check holds every decision to rules no script may break.
func (s *story) check(o podObservation, a podActions) {
	for _, kill := range a.Kill {
		if kill.Run.State == runtime.StateExited {
			s.t.Errorf("kills %s, which has exited", kill.Run.ID)
		}
	}
	starts := map[string]bool{}
	for _, st := range a.Start {
		name := st.Container.Name
		if starts[name] {
			s.t.Errorf("starts %s twice", name)
		}
		starts[name] = true
		r := o.Runs[name]
		switch {
		case r == nil && (st.After != nil || st.Attempt != 0):
			s.t.Errorf("first run of %s: attempt %d after %v, want 0 after none", name, st.Attempt, st.After)
		case r != nil && r.current.State != runtime.StateExited:
			s.t.Errorf("starts %s while %s has not exited", name, r.current.ID)
		case r != nil && (st.After != r.current || st.Attempt != attempt(*r.current)+1):
			s.t.Errorf("start of %s: attempt %d, want one past its current run %s", name, st.Attempt, r.current.ID)
		}
	}
	if a.Goal != goalRun && (len(a.Start) > 0 || len(a.Wait) > 0) {
		s.t.Errorf("goal %v starts or holds back containers", a.Goal)
	}
}

// print renders the actions as the trace the scripts expect.
func (s *story) print(a podActions) []string {
	var out []string
	switch {
	case a.Goal == goalStop:
		out = append(out, "goal stop: kill what runs, all at once; release the sandbox")
	case a.Goal == goalRemove && a.DeleteObject:
		out = append(out, "goal remove: kill what runs, all at once; remove the pod from the node; delete the pod object")
	case a.Goal == goalRemove:
		out = append(out, "goal remove: kill what runs, all at once; remove the pod from the node; forget it (gone from the API)")
	}
	for _, kill := range a.Kill {
		if kill.LivenessFailed {
			out = append(out, fmt.Sprintf("unhealthy %s: %s", kill.Run.ID, kill.ProbeMessage))
		}
		out = append(out, fmt.Sprintf("kill %s (grace %s): %s", kill.Run.ID, kill.Grace, kill.Message))
	}
	if len(a.Probe) > 0 {
		var ids []string
		for _, p := range a.Probe {
			ids = append(ids, p.Run.ID)
		}
		out = append(out, "probe "+strings.Join(ids, ", "))
	}
	if len(a.Unprobe) > 0 {
		out = append(out, "unprobe "+strings.Join(a.Unprobe, ", "))
	}
	for _, st := range a.Start {
		line := "start "
		if st.Init {
			line += "init "
		}
		line += runName(st.Container.Name, st.Attempt)
		if st.After != nil {
			line += " after " + st.After.ID
		}
		out = append(out, line)
	}
	for _, w := range a.Wait {
		line := fmt.Sprintf("wait %s: %s %q", w.Name, w.Waiting.Reason, w.Waiting.Message)
		if w.BackOff != "" {
			line += " (BackOff event, once for " + w.BackOff + ")"
		}
		out = append(out, line)
	}
	if !a.WakeAt.IsZero() {
		out = append(out, fmt.Sprintf("wake at %s (in %s)", clock(a.WakeAt), a.WakeAt.Sub(s.now)))
	}
	if a.InitFailed {
		out = append(out, "init failed: the pod's phase becomes Failed")
	}
	for _, r := range a.Remove {
		out = append(out, "remove "+r.ID+" and its log")
	}
	if len(out) == 0 {
		out = append(out, "nothing to do")
	}
	return out
}

func (s *story) printNode() []string {
	o := s.observe()
	var out []string
	for _, st := range allRuns(o.Runs) {
		line := st.ID + " " + string(st.State) + " since " + clock(st.StartedAt)
		if st.State == runtime.StateExited {
			line = fmt.Sprintf("%s exited %d (%s) at %s", st.ID, st.ExitCode, st.Reason, clock(st.FinishedAt))
		}
		out = append(out, line)
	}
	if len(out) == 0 {
		out = append(out, "no runs")
	}
	return out
}

func clock(t time.Time) string { return t.Format(time.TimeOnly) }

// deepCopyObservation copies o, so that a test can tell whether the
// decision changed its input.
func deepCopyObservation(o podObservation) podObservation {
	c := o
	c.Pod, c.Last = o.Pod.DeepCopy(), o.Last.DeepCopy()
	c.Runs = map[string]*runs{}
	for name, r := range o.Runs {
		cr := &runs{}
		cur := copyStatus(*r.current)
		cr.current = &cur
		if r.previous != nil {
			prev := copyStatus(*r.previous)
			cr.previous = &prev
		}
		for _, st := range r.older {
			cr.older = append(cr.older, copyStatus(st))
		}
		c.Runs[name] = cr
	}
	c.Liveness = maps.Clone(o.Liveness)
	c.Backoff = maps.Clone(o.Backoff)
	c.ConfigErrors = maps.Clone(o.ConfigErrors)
	return c
}

func copyStatus(st runtime.Status) runtime.Status {
	st.Labels = maps.Clone(st.Labels)
	return st
}
