package kubelet

import (
	"slices"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffdev/skiff/kubelet/runtime"
)

// Labels the kubelet keeps with every container in the runtime. They are
// how a restarted kubelet knows which pod and which attempt a container
// belongs to.
const (
	labelPodUID       = "skiff.pod.uid"
	labelPodNamespace = "skiff.pod.namespace"
	labelPodName      = "skiff.pod.name"
	labelContainer    = "skiff.container.name"
	labelAttempt      = "skiff.container.attempt"
	labelInit         = "skiff.container.init"
	labelHash         = "skiff.container.hash"
	labelImageRef     = "skiff.container.imageRef"
	labelGrace        = "skiff.pod.terminationGracePeriod"
)

// containerIndex is the kubelet's view of the runtime's containers, by
// pod. It is filled from the runtime at start, kept up to date by the
// kubelet's own starts and removals and by exit notifications, and
// replaced by a full relist every sync interval.
type containerIndex struct {
	mu    sync.Mutex
	byPod map[types.UID]map[string]runtime.Status
}

func newContainerIndex() *containerIndex {
	return &containerIndex{byPod: map[types.UID]map[string]runtime.Status{}}
}

func podOf(st runtime.Status) types.UID { return types.UID(st.Labels[labelPodUID]) }

// replace sets the whole index from a runtime listing.
func (c *containerIndex) replace(list []runtime.Status) {
	byPod := map[types.UID]map[string]runtime.Status{}
	for _, st := range list {
		uid := podOf(st)
		if byPod[uid] == nil {
			byPod[uid] = map[string]runtime.Status{}
		}
		byPod[uid][st.ID] = st
	}
	c.mu.Lock()
	c.byPod = byPod
	c.mu.Unlock()
}

// set records one container's status.
func (c *containerIndex) set(st runtime.Status) {
	uid := podOf(st)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byPod[uid] == nil {
		c.byPod[uid] = map[string]runtime.Status{}
	}
	c.byPod[uid][st.ID] = st
}

// forget drops a removed container.
func (c *containerIndex) forget(uid types.UID, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.byPod[uid], id)
	if len(c.byPod[uid]) == 0 {
		delete(c.byPod, uid)
	}
}

// get returns one container of a pod, or nil.
func (c *containerIndex) get(uid types.UID, id string) *runtime.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.byPod[uid][id]
	if !ok {
		return nil
	}
	return &st
}

// pods lists the pods that have containers.
func (c *containerIndex) pods() []types.UID {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]types.UID, 0, len(c.byPod))
	for uid := range c.byPod {
		out = append(out, uid)
	}
	return out
}

// ofPod returns a pod's containers, newest attempt first within each
// container name.
func (c *containerIndex) ofPod(uid types.UID) []runtime.Status {
	c.mu.Lock()
	out := make([]runtime.Status, 0, len(c.byPod[uid]))
	for _, st := range c.byPod[uid] {
		out = append(out, st)
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b runtime.Status) int {
		if a.Labels[labelContainer] != b.Labels[labelContainer] {
			if a.Labels[labelContainer] < b.Labels[labelContainer] {
				return -1
			}
			return 1
		}
		return attempt(b) - attempt(a)
	})
	return out
}

// attempt is which run of its container a runtime container is: 0 for
// the first, which is also the container's restartCount once it runs.
func attempt(st runtime.Status) int {
	n, _ := strconv.Atoi(st.Labels[labelAttempt])
	return n
}

// runs holds the runs of one container of a pod: the current (latest) and
// the one before it, whose state is the container's lastState.
type runs struct {
	current, previous *runtime.Status
	// older are runs before previous, kept only until they are removed.
	older []runtime.Status
}

// runsByName groups a pod's containers by container name.
func runsByName(list []runtime.Status) map[string]*runs {
	out := map[string]*runs{}
	for i := range list {
		st := list[i]
		name := st.Labels[labelContainer]
		r := out[name]
		if r == nil {
			r = &runs{}
			out[name] = r
		}
		switch {
		case r.current == nil:
			r.current = &st
		case r.previous == nil:
			r.previous = &st
		default:
			r.older = append(r.older, st)
		}
	}
	return out
}

// ranFor is how long a finished run lasted.
func ranFor(st *runtime.Status) time.Duration {
	if st.StartedAt.IsZero() || st.FinishedAt.IsZero() {
		return 0
	}
	return st.FinishedAt.Sub(st.StartedAt)
}
