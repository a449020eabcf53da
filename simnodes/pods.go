package simnodes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/skiffdev/skiff/internal/logging"
)

// podWorkers is how many pods are worked on at once.
const podWorkers = 8

// boundPods is the field selector of the one pod watch: every pod bound
// to some node. The handler keeps those of simulated nodes; a field
// selector cannot name thousands of nodes.
const boundPods = "spec.nodeName!="

// enqueue is the pod informer's event handler: it queues the key of a pod
// bound to a simulated node, and nothing else.
func (s *sim) enqueue(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if _, ok := s.nodeIndex(pod.Spec.NodeName); !ok {
		return
	}
	key, err := cache.MetaNamespaceKeyFunc(pod)
	if err != nil {
		return
	}
	s.queue.Add(key)
}

// podWorker takes pod keys from the queue and syncs them until the queue
// shuts down.
func (s *sim) podWorker(ctx context.Context) {
	for {
		key, shutdown := s.queue.Get()
		if shutdown {
			return
		}
		if ctx.Err() != nil {
			// Shutting down: the keys still queued are left for the
			// next run, which syncs every pod from its cache anyway.
			s.queue.Done(key)
			continue
		}
		after, err := s.syncPod(ctx, key)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				logging.From(ctx).Warn("pod sync failed; retrying", "pod", key, "err", err)
			}
			s.queue.AddRateLimited(key)
		case after > 0:
			s.queue.Forget(key)
			s.queue.AddAfter(key, after)
		default:
			s.queue.Forget(key)
		}
		s.queue.Done(key)
	}
}

// reservePodIPs records the addresses of pods that are already running
// on simulated nodes (from before a restart), so that no new pod gets
// one of them. It runs after the pod cache has synced and before the
// workers start.
func (s *sim) reservePodIPs() {
	for _, obj := range s.pods.List() {
		pod := obj.(*corev1.Pod)
		if i, ok := s.nodeIndex(pod.Spec.NodeName); ok && running(pod) && !pod.Spec.HostNetwork {
			key, _ := cache.MetaNamespaceKeyFunc(pod)
			if ip, err := netip.ParseAddr(pod.Status.PodIP); err == nil {
				s.ipam.reserve(key, i, ip)
			}
		}
	}
}

// syncPod does what a kubelet would for the pod called key, judging by
// the cached pod alone, so that calling it again is harmless:
//
//   - a pod that is gone, or not on a simulated node, releases its
//     address;
//   - a pod being deleted is deleted at once (grace period 0): that is
//     the kubelet's confirmation that its containers stopped;
//   - a pod not running yet is marked Running, with an address, once
//     StartDelay has passed since it was first seen bound; until then
//     syncPod asks to be called again when it is due;
//   - a running or finished pod needs nothing.
func (s *sim) syncPod(ctx context.Context, key string) (time.Duration, error) {
	obj, exists, err := s.pods.GetByKey(key)
	if err != nil {
		return 0, err
	}
	var pod *corev1.Pod
	if exists {
		pod = obj.(*corev1.Pod)
	}
	node, ours := 0, false
	if pod != nil {
		node, ours = s.nodeIndex(pod.Spec.NodeName)
	}
	switch {
	case !ours:
		s.forgetPod(key)
		return 0, nil
	case pod.DeletionTimestamp != nil:
		return 0, s.confirmDeletion(ctx, pod)
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		return 0, nil
	case running(pod):
		if ip, err := netip.ParseAddr(pod.Status.PodIP); err == nil && !pod.Spec.HostNetwork {
			s.ipam.reserve(key, node, ip)
		}
		s.started(key)
		return 0, nil
	}

	if wait := s.startsIn(key, pod.UID, time.Now()); wait > 0 {
		return wait, nil
	}
	podIP := s.plan.nodeIP(node)
	if !pod.Spec.HostNetwork {
		if podIP, err = s.ipam.assign(key, node); err != nil {
			return 0, err
		}
	}
	if err := s.markRunning(ctx, pod, node, podIP); err != nil {
		return 0, err
	}
	s.started(key)
	return 0, nil
}

// running reports whether pod has been marked running.
func running(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodRunning && pod.Status.PodIP != ""
}

// startsIn returns how long the pod called key, with uid, still waits
// before it is marked Running: StartDelay after it was first seen bound.
func (s *sim) startsIn(key string, uid types.UID, now time.Time) time.Duration {
	if s.cfg.StartDelay == 0 {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seen, ok := s.firstSeen[key]
	if !ok || seen.uid != uid {
		seen = podSeen{uid: uid, at: now}
		s.firstSeen[key] = seen
	}
	return seen.at.Add(s.cfg.StartDelay).Sub(now)
}

// started drops the first-seen time of a pod that is running.
func (s *sim) started(key string) {
	s.mu.Lock()
	delete(s.firstSeen, key)
	s.mu.Unlock()
}

// forgetPod drops everything kept about the pod called key.
func (s *sim) forgetPod(key string) {
	s.started(key)
	s.ipam.release(key)
}

// confirmDeletion deletes pod with grace period 0, which tells the API
// server that the node has stopped it. The UID precondition keeps it from
// deleting a new pod of the same name.
func (s *sim) confirmDeletion(ctx context.Context, pod *corev1.Pod) error {
	if g := pod.DeletionGracePeriodSeconds; g != nil && *g == 0 {
		// Already confirmed; the pod waits for its finalizers.
		return nil
	}
	err := s.client.Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		// Gone already, or replaced by a new pod of the same name.
		return nil
	}
	return err
}

// markRunning writes pod's status as Running on node with podIP. On a
// Conflict it reads the pod again and retries, unless the fresh pod no
// longer needs it.
func (s *sim) markRunning(ctx context.Context, pod *corev1.Pod, node int, podIP netip.Addr) error {
	pods := s.client.Pods(pod.Namespace)
	uid := pod.UID
	first := true
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if !first {
			fresh, err := pods.Get(ctx, pod.Name)
			if apierrors.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return err
			}
			if fresh.UID != uid || fresh.DeletionTimestamp != nil || running(fresh) {
				return nil
			}
			pod = fresh
		}
		first = false
		update := pod.DeepCopy()
		update.Status = runningStatus(pod, s.plan.nodeIP(node), podIP, metav1.Now())
		_, err := pods.UpdateStatus(ctx, update)
		return err
	})
}

// runningStatus returns pod's status once its containers "run" on a node
// with address hostIP: phase Running, every condition True, each
// container running and ready (init containers completed, sidecars
// running), podIP its address. Conditions and fields already set are kept
// where they still hold.
func runningStatus(pod *corev1.Pod, hostIP, podIP netip.Addr, now metav1.Time) corev1.PodStatus {
	st := *pod.Status.DeepCopy()
	st.Phase = corev1.PodRunning
	st.Reason, st.Message = "", ""
	st.HostIP = hostIP.String()
	st.HostIPs = []corev1.HostIP{{IP: st.HostIP}}
	st.PodIP = podIP.String()
	st.PodIPs = []corev1.PodIP{{IP: st.PodIP}}
	if st.StartTime == nil {
		st.StartTime = &now
	}
	for _, t := range []corev1.PodConditionType{
		corev1.PodScheduled, corev1.PodReadyToStartContainers, corev1.PodInitialized,
		corev1.ContainersReady, corev1.PodReady,
	} {
		setCondition(&st, t, now)
	}

	st.InitContainerStatuses = nil
	for _, c := range pod.Spec.InitContainers {
		cs := containerStatus(pod.UID, c, now)
		if c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			// An ordinary init container ran to completion; only
			// sidecars (restartPolicy Always) keep running.
			cs.Started = ptr.To(false)
			cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now, ContainerID: cs.ContainerID,
			}}
		}
		st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
	}
	st.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, containerStatus(pod.UID, c, now))
	}
	return st
}

// setCondition sets condition t of st to True, keeping its transition
// time if it was True already.
func setCondition(st *corev1.PodStatus, t corev1.PodConditionType, now metav1.Time) {
	for i := range st.Conditions {
		c := &st.Conditions[i]
		if c.Type != t {
			continue
		}
		if c.Status != corev1.ConditionTrue {
			c.Status, c.LastTransitionTime = corev1.ConditionTrue, now
		}
		c.Reason, c.Message = "", ""
		return
	}
	st.Conditions = append(st.Conditions, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now})
}

// containerStatus returns the status of container c of the pod with uid
// as running and ready since now, with made-up but stable ids.
func containerStatus(uid types.UID, c corev1.Container, now metav1.Time) corev1.ContainerStatus {
	id := sha256.Sum256([]byte(string(uid) + "/" + c.Name))
	return corev1.ContainerStatus{
		Name:         c.Name,
		Image:        c.Image,
		ImageID:      imageID(c.Image),
		ContainerID:  "simulated://" + hex.EncodeToString(id[:]),
		Ready:        true,
		Started:      ptr.To(true),
		RestartCount: 0,
		State:        corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
	}
}

// imageID makes up the digest reference a runtime would report for
// image: its repository "@sha256:" a hash of the image name, or the image
// itself when it is already pinned by digest.
func imageID(image string) string {
	if strings.Contains(image, "@") {
		return image
	}
	repo := image
	if slash := strings.LastIndex(repo, "/"); strings.LastIndex(repo, ":") > slash {
		repo = repo[:strings.LastIndex(repo, ":")]
	}
	sum := sha256.Sum256([]byte(image))
	return repo + "@sha256:" + hex.EncodeToString(sum[:])
}
