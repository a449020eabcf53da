package runtime

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// nsInode is the inode of the namespace pinned at path ("net:[N]" in
// mountinfo).
func nsInode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// TestReviewShimPinsOtherPodsNetns: a shim's mount namespace is a copy of
// the node's, taken when the shim starts, so it holds a copy of the pin of
// every sandbox that existed then. When the sandboxes directory is not a
// shared mount (this machine: / is private), RemoveSandbox's unmount does
// not propagate into the shim's copy (MS_SLAVE only receives events from a
// shared master), and the removed pod's network namespace lives on for as
// long as any later-started shim does.
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
	before, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", shimPid))
	t.Logf("shim %d err %v:\n%s", shimPid, err, before)
	for _, line := range strings.Split(string(before), "\n") {
		if strings.Contains(line, "nsfs") {
			t.Logf("before: %s", line)
		}
	}
	self, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(self), "\n") {
		if strings.Contains(line, "nsfs") {
			t.Logf("self: %s", line)
		}
	}
	if err := tr.RemoveSandbox(gone.ID); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", shimPid))
	if err != nil {
		t.Fatal(err)
	}
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", shimPid))
	for _, task := range tasks {
		l, _ := os.Readlink(fmt.Sprintf("/proc/%d/task/%s/ns/mnt", shimPid, task.Name()))
		n, _ := os.Readlink(fmt.Sprintf("/proc/%d/task/%s/ns/net", shimPid, task.Name()))
		st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", shimPid, task.Name()))
		t.Logf("task %s mnt %s net %s stat %.60s", task.Name(), l, n, st)
	}
	cpid, _ := os.ReadFile(tr.containerDir("long") + "/started.json")
	t.Logf("started %s", cpid)
	needle := fmt.Sprintf("net:[%d]", ino)
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, needle) {
			t.Errorf("the removed sandbox's netns is still pinned in the shim of another pod: %s", line)
		}
	}
}
