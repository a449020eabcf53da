package kubelet

import (
	"testing"

	"github.com/skiffdev/skiff/kubelet/runtime"
)

// A relist reads the runtime while workers change the index: what changed
// after the relist began must survive it.
func TestContainerIndexRelist(t *testing.T) {
	c := newContainerIndex()
	st := func(id string, state runtime.State) runtime.Status {
		return runtime.Status{ID: id, State: state, Labels: map[string]string{labelPodUID: "p", labelContainer: id}}
	}
	c.set(st("a", runtime.StateRunning))
	c.set(st("b", runtime.StateRunning))

	since := c.generation()
	// The listing is taken now: a created, b running, no c.
	listing := []runtime.Status{st("a", runtime.StateCreated), st("b", runtime.StateRunning)}
	// Meanwhile a worker starts c, and removes b.
	c.set(st("c", runtime.StateRunning))
	c.forget("p", "b")
	c.replace(listing, since)

	got := map[string]runtime.State{}
	for _, s := range c.ofPod("p") {
		got[s.ID] = s.State
	}
	want := map[string]runtime.State{"a": runtime.StateCreated, "c": runtime.StateRunning}
	if len(got) != len(want) || got["a"] != want["a"] || got["c"] != want["c"] {
		t.Errorf("after the relist: got %v, want %v", got, want)
	}
	// A later relist that no longer lists b drops the tombstone, and one
	// that lists a container the index never saw adds it.
	since = c.generation()
	c.replace([]runtime.Status{st("a", runtime.StateExited), st("c", runtime.StateRunning), st("d", runtime.StateRunning)}, since)
	if n := len(c.ofPod("p")); n != 3 {
		t.Errorf("containers after the second relist: %d, want 3", n)
	}
	if len(c.forgotten) != 0 {
		t.Errorf("tombstones left: %v", c.forgotten)
	}
}
