package runtime

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func nsInode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// shimMountinfos returns the mountinfo of each thread of the shim.
func shimMountinfos(t *testing.T, pid int) map[string]string {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, task := range tasks {
		ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/task/%s/ns/mnt", pid, task.Name()))
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/mountinfo", pid, task.Name()))
		if err == nil {
			out[task.Name()+" "+ns] = string(data)
		}
	}
	return out
}

func TestReviewShimPinsOtherPodsNetns(t *testing.T) {
	tr := newTestRuntime(t)
	gone := tr.sandbox("gone")
	stays := tr.sandbox("stays")
	ino := nsInode(t, gone.NetNS)
	tr.start(tr.spec(stays, "long", "sleep", "1000"))
	shimPid, err := readShimPid(tr.containerDir("long"))
	if err != nil {
		t.Fatal(err)
	}
	needle := fmt.Sprintf("net:[%d]", ino)
	found := false
	for task, mi := range shimMountinfos(t, shimPid) {
		if strings.Contains(mi, needle) {
			found = true
			t.Logf("before: task %s has a copy of the pin", task)
		}
	}
	if !found {
		t.Log("no copy before RemoveSandbox")
	}
	if err := tr.RemoveSandbox(gone.ID); err != nil {
		t.Fatal(err)
	}
	for task, mi := range shimMountinfos(t, shimPid) {
		if strings.Contains(mi, needle) {
			t.Errorf("after RemoveSandbox: task %s of another pod's shim still pins the removed netns", task)
		}
	}
}

// TestReviewShimMainThreadInContainerMntns: libcontainer's
// goCreateMountSources goroutine setns()es its locked thread into the
// container's mount namespace and exits locked; when it ran on the main
// thread, which Go cannot end, the shim's leader stays in the container's
// mount namespace for good. /proc/<shim>/{mountinfo,root,ns/mnt} then show
// the container, not the shim.
func TestReviewShimMainThreadInContainerMntns(t *testing.T) {
	tr := newTestRuntime(t)
	sb := tr.sandbox("mt")
	hits := 0
	const n = 8
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("c%d", i)
		tr.start(tr.spec(sb, id, "sleep", "1000"))
		pid, err := readShimPid(tr.containerDir(id))
		if err != nil {
			t.Fatal(err)
		}
		leader, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid))
		st, _ := tr.Status(id)
		ctr, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", st.Pid))
		if leader == ctr {
			hits++
		}
	}
	if hits > 0 {
		t.Errorf("%d of %d shims have their main thread in the container's mount namespace", hits, n)
	}
}

// TestReviewRemoveRacesShimExited: a container that exits by itself is
// "exited" as soon as exit.json exists; Remove then waits only for the
// shim's lock, not for this Runtime's shimExited (recordLostShim), which
// can run while Remove's RemoveAll is half-way: it sees container.json but
// no exit.json and writes a new exit.json into the dir being deleted.
func TestReviewRemoveRacesShimExited(t *testing.T) {
	tr := newTestRuntime(t)
	sb := tr.sandbox("race")
	fails := 0
	for i := 0; i < 150; i++ {
		id := fmt.Sprintf("r%d", i)
		tr.start(tr.spec(sb, id, "true"))
		tr.waitExited(id)
		if err := tr.Remove(id); err != nil {
			fails++
			t.Logf("Remove %s: %v", id, err)
			_ = tr.Remove(id)
		}
	}
	if fails > 0 {
		t.Errorf("%d Removes failed", fails)
	}
}
