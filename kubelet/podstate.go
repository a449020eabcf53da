package kubelet

import (
	"time"
)

// podState is what the kubelet keeps about one pod from one sync to the
// next, beyond what the runtime and the API server hold. Each pod worker
// owns one and hands it to every sync of its pod; a pod's syncs never
// overlap, so nothing in it needs a lock.
//
// Nothing in it has to outlive the worker. When a sync reports the pod
// gone from the node and the API (syncResult.done), the worker drops it;
// a pod that comes back under the same UID starts from a new one, as
// every pod does after a kubelet restart: the sandbox is found again, a
// backoff starts over, a status is written once more.
type podState struct {
	// sandbox is the pod's namespaces and IP once set up; nil until then,
	// and again once removed.
	sandbox *sandbox

	// restarts spaces out the restarts of each container, by container
	// name.
	restarts *backoff

	// pulls spaces out the pulls of each image that failed, by image;
	// pullErrors holds the last failure of each, for ImagePullBackOff.
	pulls      *backoff
	pullErrors map[string]pullError

	// reportedRestarts (by container name: a run's ID) and reportedPulls
	// (by image: a failure's time) say what the last BackOff event was
	// about, so that one is recorded per crash or failed pull rather than
	// one per sync while it lasts.
	reportedRestarts map[string]string
	reportedPulls    map[string]string

	// written is the status this kubelet last wrote for the pod and the
	// resourceVersion the write produced, so that a status is written
	// only when it changes, even while the informer has not caught up;
	// nil before the first write.
	written *writtenStatus
}

func newPodState(initialBackoff, maxBackoff time.Duration) *podState {
	return &podState{
		restarts:         newBackoff(initialBackoff, maxBackoff),
		pulls:            newBackoff(initialBackoff, maxBackoff),
		pullErrors:       map[string]pullError{},
		reportedRestarts: map[string]string{},
		reportedPulls:    map[string]string{},
	}
}

// pullError is the last failed pull of an image.
type pullError struct {
	err string
	at  time.Time
}

// firstReport reports whether what (a container run, a failed pull) is
// new under key in reported, and records it: an event is recorded once
// for it rather than at every sync while it lasts.
func firstReport(reported map[string]string, key, what string) bool {
	if reported[key] == what {
		return false
	}
	reported[key] = what
	return true
}
