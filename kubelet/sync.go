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
// level-triggered heart of the kubelet. It looks at the pod object and at
// what the runtime has, never at what happened before, so it can be
// called any number of times, also after a restart.
func (k *Kubelet) syncPod(ctx context.Context, uid types.UID, last *corev1.Pod, state *podState) (syncResult, error) {
	pod := k.currentPod(uid, last)
	switch {
	case pod == nil || pod.DeletionTimestamp != nil:
		return k.syncTerminating(ctx, uid, pod, last, state)
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		return syncResult{}, k.syncTerminal(ctx, pod, state)
	}
	return k.syncRunning(ctx, pod, state)
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

// syncTerminating stops and removes everything of a pod that is being
// deleted or is gone from the API, and then lets the API server remove
// the object. When the API no longer has the pod, the sync is done: the
// worker drops the pod's state with it.
func (k *Kubelet) syncTerminating(ctx context.Context, uid types.UID, pod, last *corev1.Pod, state *podState) (syncResult, error) {
	grace := k.gracePeriod(uid, pod, last)
	if err := k.killPod(ctx, uid, pod, grace, state); err != nil {
		return syncResult{}, err
	}
	if pod != nil {
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
	k.probes.RemovePod(uid)
	return syncResult{done: true}, nil
}

// gracePeriod is how long a pod's containers get between SIGTERM and
// SIGKILL.
func (k *Kubelet) gracePeriod(uid types.UID, pod, last *corev1.Pod) time.Duration {
	for _, p := range []*corev1.Pod{pod, last} {
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
	for _, st := range k.containers.ofPod(uid) {
		if g, err := strconv.Atoi(st.Labels[labelGrace]); err == nil {
			return time.Duration(g) * time.Second
		}
	}
	return 30 * time.Second
}

// killPod stops the pod's containers (all at once, each with the grace
// period) and removes them, the pod's network, namespaces, cgroup and
// files.
func (k *Kubelet) killPod(ctx context.Context, uid types.UID, pod *corev1.Pod, grace time.Duration, state *podState) error {
	if err := k.stopContainers(ctx, uid, pod, grace); err != nil {
		return err
	}
	k.probes.RemovePod(uid)
	for _, st := range k.containers.ofPod(uid) {
		if err := k.runtime.Remove(st.ID); err != nil {
			return fmt.Errorf("removing container %s: %w", st.ID, err)
		}
		k.containers.forget(uid, st.ID)
	}
	if err := k.removeSandbox(uid, state); err != nil {
		return err
	}
	for _, dir := range []string{k.podDir(uid), filepath.Dir(k.podEtcDir(uid))} {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("removing the pod's directory: %w", err)
		}
	}
	return nil
}

// stopContainers stops every container of the pod that still runs.
func (k *Kubelet) stopContainers(ctx context.Context, uid types.UID, pod *corev1.Pod, grace time.Duration) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(k.containers.ofPod(uid)))
	for _, st := range k.containers.ofPod(uid) {
		if st.State == runtime.StateExited {
			continue
		}
		if pod != nil {
			k.events.Eventf(pod, corev1.EventTypeNormal, "Killing", "Stopping container %s", st.Labels[labelContainer])
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := k.runtime.Stop(ctx, st.ID, grace); err != nil {
				errs <- fmt.Errorf("stopping container %s: %w", st.Labels[labelContainer], err)
				return
			}
			k.refresh(st.ID)
		}()
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

// syncTerminal handles a pod that has finished for good: nothing more
// runs, the network and namespaces are released, and the exited
// containers stay for their status and logs until the pod is deleted.
func (k *Kubelet) syncTerminal(ctx context.Context, pod *corev1.Pod, state *podState) error {
	if err := k.stopContainers(ctx, pod.UID, pod, k.gracePeriod(pod.UID, pod, nil)); err != nil {
		return err
	}
	k.probes.RemovePod(pod.UID)
	return k.removeSandbox(pod.UID, state)
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
// sandbox and volumes, the pod's state, and the notes the sync takes for
// the status.
type podSync struct {
	pod   *corev1.Pod
	sb    sandbox
	vols  map[string]string // volume name → its directory on the node
	state *podState
	notes *syncNotes
}

// syncRunning makes a pod that should run, run: its sandbox, then its
// init containers one by one, then its containers; restarts by policy and
// backoff; kills what fails its liveness probe; and reports the status.
func (k *Kubelet) syncRunning(ctx context.Context, pod *corev1.Pod, state *podState) (syncResult, error) {
	st := &syncNotes{waiting: map[string]*corev1.ContainerStateWaiting{}}
	sb, err := k.ensureSandbox(ctx, pod, state)
	if err != nil {
		k.events.Eventf(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: %v", err)
		return syncResult{}, err
	}
	if err := k.writePodFiles(pod, sb.ip); err != nil {
		return syncResult{}, fmt.Errorf("writing the pod's /etc files: %w", err)
	}
	vols, err := k.volumeSources(pod)
	if err != nil {
		msg := err.Error()
		k.events.Eventf(pod, corev1.EventTypeWarning, "FailedMount", "%s", msg)
		for _, c := range allContainers(pod) {
			st.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: msg}
		}
		st.requeue(k.cfg.InitialBackoff)
		ps := &podSync{pod: pod, sb: sb, state: state, notes: st}
		return syncResult{after: st.after}, k.writeStatus(ctx, ps, k.computeStatus(ps))
	}

	ps := &podSync{pod: pod, sb: sb, vols: vols, state: state, notes: st}
	runs := runsByName(k.containers.ofPod(pod.UID))
	initialized := true
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		r := runs[c.Name]
		if r != nil && succeeded(r.current) {
			continue
		}
		initialized = false
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			st.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError",
				Message: "sidecar containers (init containers with restartPolicy Always) are not supported by Skiff yet"}
			break
		}
		switch {
		case r == nil:
			k.startContainer(ctx, ps, c, true, 0)
		case r.current.State == runtime.StateExited:
			if pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
				st.initFailed = true
			} else {
				k.restartContainer(ctx, ps, c, true, r.current)
			}
		}
		break
	}
	if initialized {
		for i := range pod.Spec.Containers {
			c := &pod.Spec.Containers[i]
			r := runs[c.Name]
			if r == nil {
				k.startContainer(ctx, ps, c, false, 0)
				continue
			}
			cur := r.current
			if cur.State == runtime.StateRunning {
				// Idempotent; also how containers adopted after a kubelet
				// restart get their probes.
				k.probes.Add(prober.Target{Pod: pod, Container: c, ContainerID: cur.ID, PodIP: sb.ip.String(), NetNS: sb.NetNS, StartedAt: cur.StartedAt})
			}
			changed := cur.Labels[labelHash] != containerHash(c)
			grace := k.gracePeriod(pod.UID, pod, nil)
			if cur.State != runtime.StateExited {
				why := ""
				if changed {
					why = fmt.Sprintf("Container %s definition changed, will be restarted", c.Name)
				} else if failed, msg := k.probes.LivenessFailed(cur.ID); failed {
					k.events.Eventf(pod, corev1.EventTypeWarning, "Unhealthy", "%s", msg)
					why = fmt.Sprintf("Container %s failed liveness probe, will be restarted", c.Name)
					if p := c.LivenessProbe; p != nil && p.TerminationGracePeriodSeconds != nil {
						grace = time.Duration(*p.TerminationGracePeriodSeconds) * time.Second
					}
				}
				if why == "" {
					continue
				}
				k.events.Eventf(pod, corev1.EventTypeNormal, "Killing", "%s", why)
				if err := k.runtime.Stop(ctx, cur.ID, grace); err != nil {
					return syncResult{}, fmt.Errorf("stopping container %s: %w", c.Name, err)
				}
				cur = k.refresh(cur.ID)
				if cur == nil {
					continue
				}
			}
			// An ended run has nothing left to probe.
			k.probes.Remove(cur.ID)
			// A changed container is replaced whatever the restart policy,
			// as in Kubernetes.
			if changed || shouldRestart(pod, cur) {
				k.restartContainer(ctx, ps, c, false, cur)
			}
		}
	}
	// Runs older than the previous one are not reported; their logs go
	// with them.
	for _, r := range runs {
		if r.previous != nil {
			k.probes.Remove(r.previous.ID)
		}
		for _, old := range r.older {
			k.probes.Remove(old.ID)
			if err := k.runtime.Remove(old.ID); err != nil {
				k.log.Warn("removing an old container", "container", old.ID, "err", err)
				continue
			}
			k.containers.forget(pod.UID, old.ID)
			_ = os.Remove(old.LogPath)
		}
	}
	status := k.computeStatus(ps)
	if err := k.writeStatus(ctx, ps, status); err != nil {
		return syncResult{}, err
	}
	return syncResult{after: st.after}, nil
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

// restartContainer starts the next run of an exited container unless it
// is backing off.
func (k *Kubelet) restartContainer(ctx context.Context, ps *podSync, c *corev1.Container, init bool, cur *runtime.Status) {
	pod, st := ps.pod, ps.notes
	now := time.Now()
	if wait, delay := ps.state.restarts.wait(c.Name, cur.FinishedAt, now); wait > 0 {
		msg := fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", delay, c.Name, pod.Name, pod.Namespace, pod.UID)
		st.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: msg}
		st.requeue(wait)
		if firstReport(ps.state.reportedRestarts, c.Name, cur.ID) {
			k.events.Eventf(pod, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s_%s(%s)", c.Name, pod.Name, pod.Namespace, pod.UID)
		}
		return
	}
	ps.state.restarts.next(c.Name, cur.FinishedAt)
	k.startContainer(ctx, ps, c, init, attempt(*cur)+1)
}

// startContainer pulls the image and starts one run of a container. What
// goes wrong is recorded in the sync's notes for the status, and as an
// event.
func (k *Kubelet) startContainer(ctx context.Context, ps *podSync, c *corev1.Container, init bool, attemptN int) {
	pod, st := ps.pod, ps.notes
	img := k.pullImage(ctx, ps, c)
	if img == nil {
		return
	}
	spec, err := k.containerSpec(ps, c, init, attemptN, img)
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
	if !init {
		k.probes.Add(prober.Target{Pod: pod, Container: c, ContainerID: spec.ID, PodIP: ps.sb.ip.String(), NetNS: ps.sb.NetNS, StartedAt: started})
	}
}

// containerSpec turns a pod's container into what the runtime runs.
func (k *Kubelet) containerSpec(ps *podSync, c *corev1.Container, init bool, attemptN int, img *images.Image) (runtime.Spec, error) {
	pod := ps.pod
	env, vals, err := environment(pod, c, img.Config, ps.sb.ip.String(), k.cfg.NodeIP)
	if err != nil {
		return runtime.Spec{}, err
	}
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
