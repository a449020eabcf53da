package kubelet

import (
	"slices"
	"strconv"
	"sync"

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
// refreshed by a full relist every sync interval.
//
// A relist reads the runtime while workers keep changing the index, so a
// listing can be older than what a worker just recorded. Every change is
// stamped with a generation number; a relist only replaces what had not
// changed since it began.
type containerIndex struct {
	// mu guards gen, byPod and forgotten: workers, the exit watcher and
	// the relist all use the index.
	mu    sync.Mutex
	gen   uint64
	byPod map[types.UID]map[string]indexedStatus
	// forgotten holds the generation at which removed containers were
	// forgotten, until a relist newer than that no longer lists them.
	forgotten map[string]uint64
}

type indexedStatus struct {
	runtime.Status
	gen uint64 // when set; 0 for what came from a relist
}

func newContainerIndex() *containerIndex {
	return &containerIndex{byPod: map[types.UID]map[string]indexedStatus{}, forgotten: map[string]uint64{}}
}

func podOf(st runtime.Status) types.UID { return types.UID(st.Labels[labelPodUID]) }

// generation is the current generation, taken before a relist reads the
// runtime.
func (c *containerIndex) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// replace sets the index from a runtime listing begun at generation
// since, keeping whatever changed after that.
func (c *containerIndex) replace(list []runtime.Status, since uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	byPod := map[types.UID]map[string]indexedStatus{}
	put := func(uid types.UID, st indexedStatus) {
		if byPod[uid] == nil {
			byPod[uid] = map[string]indexedStatus{}
		}
		byPod[uid][st.ID] = st
	}
	for _, st := range list {
		if g, ok := c.forgotten[st.ID]; ok && g > since {
			continue // removed after the listing began
		}
		put(podOf(st), indexedStatus{Status: st})
	}
	for uid, m := range c.byPod {
		for _, st := range m {
			if st.gen > since {
				put(uid, st)
			}
		}
	}
	for id, g := range c.forgotten {
		if g <= since {
			delete(c.forgotten, id)
		}
	}
	c.byPod = byPod
}

// set records one container's status.
func (c *containerIndex) set(st runtime.Status) {
	uid := podOf(st)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if c.byPod[uid] == nil {
		c.byPod[uid] = map[string]indexedStatus{}
	}
	c.byPod[uid][st.ID] = indexedStatus{Status: st, gen: c.gen}
	delete(c.forgotten, st.ID)
}

// forget drops a removed container.
func (c *containerIndex) forget(uid types.UID, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.byPod[uid], id)
	if len(c.byPod[uid]) == 0 {
		delete(c.byPod, uid)
	}
	c.forgotten[id] = c.gen
}

// get returns one container of a pod, or nil.
func (c *containerIndex) get(uid types.UID, id string) *runtime.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.byPod[uid][id]
	if !ok {
		return nil
	}
	return &st.Status
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
		out = append(out, st.Status)
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
