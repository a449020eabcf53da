package kubelet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/kubelet/images"
	"github.com/skiffdev/skiff/kubelet/prober"
	"github.com/skiffdev/skiff/kubelet/runtime"
)

// sandbox is a pod's running environment: its namespaces and its IP.
type sandbox struct {
	runtime.Sandbox
	ip netip.Addr
}

// syncNotes collects what one sync learned that the pod's status reports
// and that the runtime does not hold: why a container is waiting.
type syncNotes struct {
	waiting map[string]*corev1.ContainerStateWaiting
	// after is the earliest time another sync is needed without a wake-up.
	after time.Duration
	// initFailed is set when an init container failed for good.
	initFailed bool
}

func (s *syncNotes) requeue(d time.Duration) {
	if d > 0 && (s.after == 0 || d < s.after) {
		s.after = d
	}
}

// syncPod brings one pod on this node to what its object asks: the
// level-triggered heart of the kubelet. It observes the pod object and
// what the runtime and the probes report, lets computePodActions decide,
// and carries the actions out (the caller's duties listed there), never
// looking at what happened before; so it can be called any number of
// times, also after a restart.
func (k *Kubelet) syncPod(ctx context.Context, uid types.UID, last *corev1.Pod, state *podState) (syncResult, error) {
	pod := k.currentPod(uid, last)
	var ps *podSync
	if goalOf(pod) == goalRun {
		var res syncResult
		var err error
		if ps, res, err = k.preparePod(ctx, pod, state); ps == nil {
			return res, err
		}
	}
	for round := 0; ; round++ {
		o := k.observe(uid, pod, last, state, ps)
		a := computePodActions(o)
		switch {
		case a.Goal == goalRemove:
			return k.removePod(ctx, uid, pod, a, state)
		case a.Goal == goalStop:
			return syncResult{}, k.stopPod(ctx, pod, a, state)
		case len(a.Kill) == 0:
			return k.runPod(ctx, ps, a, o.Now)
		case round >= len(pod.Spec.Containers):
			// A run that was stopped has exited, and nothing starts
			// before the kills are over: no container is killed twice.
			return syncResult{}, fmt.Errorf("container %s still runs after being stopped", a.Kill[0].Name)
		}
		// What comes after a kill is decided from how the run ended.
		if err := k.killEach(ctx, pod, a.Kill); err != nil {
			return syncResult{}, err
		}
	}
}

// currentPod returns the pod of uid as the informer has it now, or nil
// when the API no longer has it.
func (k *Kubelet) currentPod(uid types.UID, last *corev1.Pod) *corev1.Pod {
	ns, name := "", ""
	if last != nil {
		ns, name = last.Namespace, last.Name
	} else {
		// Known only from the runtime (after a restart): its labels say
		// which pod it was.
		for _, st := range k.containers.ofPod(uid) {
			ns, name = st.Labels[labelPodNamespace], st.Labels[labelPodName]
			break
		}
	}
	if name == "" {
		return nil
	}
	obj, ok, _ := k.pods.GetStore().GetByKey(ns + "/" + name)
	if !ok {
		return nil
	}
	pod := obj.(*corev1.Pod)
	if pod.UID != uid {
		return nil
	}
	return pod
}

// observe gathers what computePodActions decides from, as it is now: the
// pod's runs from the container index, the liveness results of those
// still going, and the restart backoff applied to those that exited.
//
// For a pod that runs (ps not nil), it also finds the containers whose
// environment cannot be made now: a ConfigMap, Secret or key they need is
// missing (the object's arrival wakes the worker).
func (k *Kubelet) observe(uid types.UID, pod, last *corev1.Pod, state *podState, ps *podSync) podObservation {
	runs := runsByName(k.containers.ofPod(uid))
	liveness := map[string]string{}
	for _, r := range runs {
		if r.current.State == runtime.StateExited {
			continue
		}
		if failed, msg := k.probes.LivenessFailed(r.current.ID); failed {
			liveness[r.current.ID] = msg
		}
	}
	var configErrors map[string]string
	if ps != nil {
		for _, c := range allContainers(pod) {
			if _, _, err := containerEnv(pod, &c, ps.facts); err != nil {
				if configErrors == nil {
					configErrors = map[string]string{}
				}
				configErrors[c.Name] = err.Error()
			}
		}
	}
	return podObservation{
		Pod:          pod,
		Last:         last,
		Runs:         runs,
		Liveness:     liveness,
		Backoff:      restartWaits(state.restarts, runs),
		ConfigErrors: configErrors,
		Now:          time.Now(),
	}
}

// removePod carries out goalRemove: it stops the pod's containers (all at
// once, each with the grace period) and removes them, the pod's network,
// namespaces, cgroup and files; then it lets the API server remove the
// object, or, when the API no longer has the pod, is done with it: the
// worker drops the pod's state.
func (k *Kubelet) removePod(ctx context.Context, uid types.UID, pod *corev1.Pod, a podActions, state *podState) (syncResult, error) {
	if err := k.killAtOnce(ctx, pod, a.Kill); err != nil {
		return syncResult{}, err
	}
	k.probes.RemovePod(uid)
	k.objects.unregister(uid)
	for _, st := range k.containers.ofPod(uid) {
		if err := k.runtime.Remove(st.ID); err != nil {
			return syncResult{}, fmt.Errorf("removing container %s: %w", st.ID, err)
		}
		k.containers.forget(uid, st.ID)
	}
	if err := k.removeSandbox(uid, state); err != nil {
		return syncResult{}, err
	}
	if err := k.unmountVolumes(uid); err != nil {
		return syncResult{}, fmt.Errorf("unmounting the pod's volumes: %w", err)
	}
	for _, dir := range []string{k.podDir(uid), filepath.Dir(k.podEtcDir(uid))} {
		if err := os.RemoveAll(dir); err != nil {
			return syncResult{}, fmt.Errorf("removing the pod's directory: %w", err)
		}
	}
	if a.DeleteObject {
		// Everything is gone from the node: the object may go too.
		err := k.client.Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: ptr.To[int64](0),
			Preconditions:      &metav1.Preconditions{UID: &pod.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return syncResult{}, fmt.Errorf("removing the pod object: %w", err)
		}
		// The informer's delete event wakes the worker once more.
		return syncResult{after: k.cfg.SyncInterval}, nil
	}
	return syncResult{done: a.Forget}, nil
}

// stopPod carries out goalStop for a pod that has finished for good:
// nothing more runs, the network and namespaces are released, and the
// exited containers stay for their status and logs until the pod is
// deleted.
func (k *Kubelet) stopPod(ctx context.Context, pod *corev1.Pod, a podActions, state *podState) error {
	if err := k.killAtOnce(ctx, pod, a.Kill); err != nil {
		return err
	}
	k.probes.RemovePod(pod.UID)
	// A pod that has finished reads its objects no more.
	k.objects.unregister(pod.UID)
	return k.removeSandbox(pod.UID, state)
}

// killEach stops the runs of a pod that keeps running, one after another,
// and records how each ended.
func (k *Kubelet) killEach(ctx context.Context, pod *corev1.Pod, kills []killAction) error {
	for _, kill := range kills {
		if kill.LivenessFailed {
			k.events.Eventf(pod, corev1.EventTypeWarning, "Unhealthy", "%s", kill.ProbeMessage)
		}
		k.events.Eventf(pod, corev1.EventTypeNormal, "Killing", "%s", kill.Message)
		if err := k.runtime.Stop(ctx, kill.Run.ID, kill.Grace); err != nil {
			return fmt.Errorf("stopping container %s: %w", kill.Name, err)
		}
		k.refresh(kill.Run.ID)
	}
	return nil
}

// killAtOnce stops the runs of a pod that is going away, all at the same
// time, and records how each ended. pod is nil when the API no longer
// has it (and so no events).
func (k *Kubelet) killAtOnce(ctx context.Context, pod *corev1.Pod, kills []killAction) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(kills))
	for _, kill := range kills {
		if pod != nil {
			k.events.Eventf(pod, corev1.EventTypeNormal, "Killing", "%s", kill.Message)
		}
		wg.Go(func() {
			if err := k.runtime.Stop(ctx, kill.Run.ID, kill.Grace); err != nil {
				errs <- fmt.Errorf("stopping container %s: %w", kill.Name, err)
				return
			}
			k.refresh(kill.Run.ID)
		})
	}
	wg.Wait()
	close(errs)
	return errors.Join(collect(errs)...)
}

func collect(ch <-chan error) []error {
	var out []error
	for err := range ch {
		out = append(out, err)
	}
	return out
}

// removeSandbox releases the pod's IP and removes its namespaces.
func (k *Kubelet) removeSandbox(uid types.UID, state *podState) error {
	netns := ""
	sandboxes, err := k.runtime.ListSandboxes()
	if err != nil {
		return err
	}
	for _, sb := range sandboxes {
		if sb.ID == string(uid) {
			netns = sb.NetNS
		}
	}
	if err := k.network.Detach(string(uid), netns); err != nil {
		return fmt.Errorf("removing the pod's network: %w", err)
	}
	if err := k.runtime.RemoveSandbox(string(uid)); err != nil {
		return fmt.Errorf("removing the pod's namespaces: %w", err)
	}
	state.sandbox = nil
	return nil
}

// ensureSandbox creates the pod's namespaces and network, or finds them.
func (k *Kubelet) ensureSandbox(ctx context.Context, pod *corev1.Pod, state *podState) (sandbox, error) {
	if state.sandbox != nil {
		return *state.sandbox, nil
	}
	release := k.throttle()
	defer release()
	rsb, err := k.runtime.CreateSandbox(string(pod.UID), podHostname(pod))
	if err != nil {
		return sandbox{}, fmt.Errorf("creating the pod's namespaces: %w", err)
	}
	ip, err := k.network.Attach(ctx, string(pod.UID), rsb.NetNS)
	if err != nil {
		return sandbox{}, fmt.Errorf("setting up the pod's network: %w", err)
	}
	sb := sandbox{Sandbox: rsb, ip: ip}
	state.sandbox = &sb
	return sb, nil
}

// throttle waits for one of the few places in which sandboxes are made
// and containers started, and returns the function that frees it. Making
// namespaces, mounts and cgroups serializes on kernel locks: a hundred at
// once take far longer, in total and for each, than a few at a time.
func (k *Kubelet) throttle() func() {
	k.starts <- struct{}{}
	return func() { <-k.starts }
}

// podSync is what one sync of a running pod works with: the pod, its
// sandbox, the ConfigMaps and Secrets it refers to and its volumes, the
// pod's state, and the notes the sync takes for the status.
type podSync struct {
	pod   *corev1.Pod
	sb    sandbox
	facts podFacts // the ConfigMaps and Secrets, IPs, the node's allocatable
	vols  map[string]podVolume
	state *podState
	notes *syncNotes
}

// preparePod readies a pod that should run for its containers: its
// sandbox, its /etc files and its volumes. When the volumes cannot be
// prepared, every container waits with the reason, the status says so,
// and preparePod returns a nil podSync with the sync's result.
func (k *Kubelet) preparePod(ctx context.Context, pod *corev1.Pod, state *podState) (*podSync, syncResult, error) {
	notes := &syncNotes{waiting: map[string]*corev1.ContainerStateWaiting{}}
	sb, err := k.ensureSandbox(ctx, pod, state)
	if err != nil {
		k.events.Eventf(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: %v", err)
		return nil, syncResult{}, err
	}
	if err := k.writePodFiles(pod, sb.ip); err != nil {
		return nil, syncResult{}, fmt.Errorf("writing the pod's /etc files: %w", err)
	}
	// The objects' watches start here; their changes wake this worker.
	k.objects.register(pod)
	facts := podFacts{objs: k.objects.snapshot(ctx, pod), podIP: sb.ip.String(), hostIP: k.cfg.NodeIP}
	if n := k.node.Load(); n != nil {
		facts.allocatable = n.Status.Allocatable
	}
	ps := &podSync{pod: pod, sb: sb, state: state, notes: notes, facts: facts}
	vols, err := k.volumeSources(pod, facts)
	if err != nil {
		msg := err.Error()
		k.events.Eventf(pod, corev1.EventTypeWarning, "FailedMount", "%s", msg)
		for _, c := range allContainers(pod) {
			notes.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: msg}
		}
		if !apierrors.IsNotFound(err) {
			// A missing object's arrival wakes the worker; anything
			// else is tried again.
			notes.requeue(k.cfg.InitialBackoff)
		}
		return nil, syncResult{after: notes.after}, k.writeStatus(ctx, ps, k.computeStatus(ps))
	}
	ps.vols = vols
	return ps, syncResult{}, nil
}

// runPod carries out the actions decided for a running pod that kills
// nothing, and reports its status: the caller's duties 4 and 5 of
// computePodActions. now is when the actions were decided.
func (k *Kubelet) runPod(ctx context.Context, ps *podSync, a podActions, now time.Time) (syncResult, error) {
	pod := ps.pod
	// Probes first: a start can take long (an image pull), and the runs
	// already going should not wait for it to be probed.
	for _, p := range a.Probe {
		k.probes.Add(prober.Target{Pod: pod, Container: p.Container, ContainerID: p.Run.ID, PodIP: ps.sb.ip.String(), NetNS: ps.sb.NetNS, StartedAt: p.Run.StartedAt})
	}
	for _, id := range a.Unprobe {
		k.probes.Remove(id)
	}
	for _, s := range a.Start {
		k.startContainer(ctx, ps, s)
	}
	for _, w := range a.Wait {
		ps.notes.waiting[w.Name] = &w.Waiting
		if w.BackOff != "" && firstReport(ps.state.reportedRestarts, w.Name, w.BackOff) {
			k.events.Eventf(pod, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s_%s(%s)", w.Name, pod.Name, pod.Namespace, pod.UID)
		}
	}
	if !a.WakeAt.IsZero() {
		ps.notes.requeue(a.WakeAt.Sub(now))
	}
	ps.notes.initFailed = a.InitFailed
	for _, old := range a.Remove {
		if err := k.runtime.Remove(old.ID); err != nil {
			logging.From(ctx).Warn("removing an old container", "container", old.ID, "err", err)
			continue
		}
		k.containers.forget(pod.UID, old.ID)
		_ = os.Remove(old.LogPath)
	}
	status := k.computeStatus(ps)
	if err := k.writeStatus(ctx, ps, status); err != nil {
		return syncResult{}, err
	}
	return syncResult{after: ps.notes.after}, nil
}

// startContainer pulls the image and starts one run of a container; a
// run that follows an exited one is first counted by the restart
// backoff. What goes wrong is recorded in the sync's notes for the
// status, and as an event.
func (k *Kubelet) startContainer(ctx context.Context, ps *podSync, s startAction) {
	pod, st, c := ps.pod, ps.notes, s.Container
	if s.After != nil {
		ps.state.restarts.next(c.Name, s.After.FinishedAt)
	}
	img := k.pullImage(ctx, ps, c)
	if img == nil {
		return
	}
	spec, err := k.containerSpec(ps, c, s.Init, s.Attempt, img)
	if err != nil {
		var cfgErr *configError
		reason := "CreateContainerError"
		if errors.As(err, &cfgErr) {
			reason = "CreateContainerConfigError"
		}
		st.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: reason, Message: err.Error()}
		st.requeue(k.cfg.InitialBackoff)
		k.events.Eventf(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		return
	}
	release := k.throttle()
	_, err = k.runtime.Start(ctx, spec)
	release()
	recorded := k.refresh(spec.ID) != nil
	if err != nil {
		k.events.Eventf(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		if recorded {
			// The runtime keeps the failed run as exited (StartError);
			// the next sync restarts it with backoff.
			st.requeue(100 * time.Millisecond)
		} else {
			// Refused before the runtime recorded anything: no run to
			// back off from, so wait here.
			st.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "CreateContainerError", Message: err.Error()}
			st.requeue(k.cfg.InitialBackoff)
		}
		return
	}
	k.events.Eventf(pod, corev1.EventTypeNormal, "Started", "Started container %s", c.Name)
	cur := k.containers.get(pod.UID, spec.ID)
	started := time.Now()
	if cur != nil {
		started = cur.StartedAt
	}
	if !s.Init {
		k.probes.Add(prober.Target{Pod: pod, Container: c, ContainerID: spec.ID, PodIP: ps.sb.ip.String(), NetNS: ps.sb.NetNS, StartedAt: started})
	}
}

// containerSpec turns a pod's container into what the runtime runs.
func (k *Kubelet) containerSpec(ps *podSync, c *corev1.Container, init bool, attemptN int, img *images.Image) (runtime.Spec, error) {
	pod := ps.pod
	own, skipped, err := containerEnv(pod, c, ps.facts)
	if err != nil {
		return runtime.Spec{}, err
	}
	for _, msg := range skipped {
		k.events.Eventf(pod, corev1.EventTypeWarning, "InvalidEnvironmentVariableNames", "%s", msg)
	}
	env, vals := environment(pod, c, img.Config, own)
	args, err := processArgs(c, img.Config, vals)
	if err != nil {
		return runtime.Spec{}, err
	}
	uid, gid, groups, err := user(pod, c, img)
	if err != nil {
		return runtime.Spec{}, err
	}
	mounts, err := k.mounts(pod, c, ps.vols)
	if err != nil {
		return runtime.Spec{}, err
	}
	workdir := c.WorkingDir
	if workdir == "" {
		workdir = img.Config.WorkingDir
	}
	if workdir == "" {
		workdir = "/"
	}
	logDir := filepath.Join(k.podDir(pod.UID), "logs", c.Name)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return runtime.Spec{}, err
	}
	grace := int64(30)
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = *g
	}
	return runtime.Spec{
		ID:        newContainerID(),
		SandboxID: string(pod.UID),
		Labels: map[string]string{
			labelPodUID:       string(pod.UID),
			labelPodNamespace: pod.Namespace,
			labelPodName:      pod.Name,
			labelContainer:    c.Name,
			labelAttempt:      strconv.Itoa(attemptN),
			labelInit:         strconv.FormatBool(init),
			labelHash:         containerHash(c),
			labelImageRef:     imageRef(img),
			labelGrace:        strconv.FormatInt(grace, 10),
		},
		Layers:         img.LayerDirs,
		Args:           args,
		Env:            env,
		WorkingDir:     workdir,
		UID:            uid,
		GID:            gid,
		AdditionalGIDs: groups,
		Hostname:       podHostname(pod),
		Mounts:         mounts,
		Resources:      resources(c),
		OOMScoreAdj:    ptr.To(oomScoreAdj(pod, c, k.memory)),
		LogPath:        filepath.Join(logDir, strconv.Itoa(attemptN)+".log"),
		LogMaxBytes:    k.cfg.logMaxBytes(),
	}, nil
}

// imageRef is the image's ID as a pod's status reports it: the
// repository at the manifest digest.
func imageRef(img *images.Image) string {
	repo := img.Ref
	if i := strings.LastIndexByte(repo, '@'); i >= 0 {
		repo = repo[:i]
	} else if j := strings.LastIndexByte(repo, ':'); j > strings.LastIndexByte(repo, '/') {
		repo = repo[:j] // a tag, not a registry's port
	}
	return repo + "@" + img.Digest
}

func newContainerID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// pullImage gets the container's image by its pull policy, with backoff
// between failed pulls. It returns nil, with the reason in st, when the
// image is not there.
func (k *Kubelet) pullImage(ctx context.Context, ps *podSync, c *corev1.Container) *images.Image {
	pod, st := ps.pod, ps.notes
	policy := c.ImagePullPolicy
	if policy == "" {
		policy = corev1.PullIfNotPresent
	}
	if policy != corev1.PullAlways {
		if img, err := k.images.Get(c.Image); err == nil {
			return img
		}
	}
	if policy == corev1.PullNever {
		msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)
		st.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "ErrImageNeverPull", Message: msg}
		k.events.Eventf(pod, corev1.EventTypeWarning, "ErrImageNeverPull", "%s", msg)
		st.requeue(k.cfg.InitialBackoff)
		return nil
	}
	pulls := ps.state.pulls
	last := ps.state.pullErrors[c.Image]
	if last.err != "" {
		if wait, _ := pulls.wait(c.Image, last.at, time.Now()); wait > 0 {
			st.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: fmt.Sprintf("Back-off pulling image %q: ErrImagePull: %s", c.Image, last.err)}
			st.requeue(wait)
			if firstReport(ps.state.reportedPulls, c.Image, last.at.String()) {
				k.events.Eventf(pod, corev1.EventTypeNormal, "BackOff", "Back-off pulling image %q", c.Image)
			}
			return nil
		}
	}
	k.events.Eventf(pod, corev1.EventTypeNormal, "Pulling", "Pulling image %q", c.Image)
	began := time.Now()
	img, err := k.images.Pull(ctx, c.Image, policy)
	if err != nil {
		now := time.Now()
		pulls.next(c.Image, now)
		ps.state.pullErrors[c.Image] = pullError{err: err.Error(), at: now}
		st.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: err.Error()}
		_, delay := pulls.wait(c.Image, now, now)
		st.requeue(delay)
		k.events.Eventf(pod, corev1.EventTypeWarning, "Failed", "Failed to pull image %q: %v", c.Image, err)
		return nil
	}
	delete(ps.state.pullErrors, c.Image)
	pulls.forget(c.Image)
	k.events.Eventf(pod, corev1.EventTypeNormal, "Pulled", "Successfully pulled image %q in %v", c.Image, time.Since(began).Round(time.Millisecond))
	return img
}

// refresh reads one container's status from the runtime into the index.
func (k *Kubelet) refresh(id string) *runtime.Status {
	st, err := k.runtime.Status(id)
	if err != nil {
		return nil
	}
	k.containers.set(st)
	return &st
}

func allContainers(pod *corev1.Pod) []corev1.Container {
	return append(append([]corev1.Container(nil), pod.Spec.InitContainers...), pod.Spec.Containers...)
}
