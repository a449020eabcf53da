package runtime

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/cgroups"
)

// cgroupMountpoints lists where the cgroup hierarchies are mounted: one
// directory per v1 hierarchy, or the single v2 one (and on hybrid systems
// both kinds).
func cgroupMountpoints() ([]string, error) {
	mounts, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) {
		return (m.FSType != "cgroup" && m.FSType != "cgroup2") || m.Root != "/", false
	})
	if err != nil {
		return nil, fmt.Errorf("listing cgroup mounts: %w", err)
	}
	seen := map[string]bool{}
	var out []string
	for _, m := range mounts {
		if !seen[m.Mountpoint] {
			seen[m.Mountpoint] = true
			out = append(out, m.Mountpoint)
		}
	}
	return out, nil
}

// removeCgroup removes the cgroup at path (e.g. "/skiff/pod1") and every
// cgroup below it, in every hierarchy. A missing cgroup is not an error; a
// cgroup that still has processes is.
func removeCgroup(path string) error {
	mps, err := cgroupMountpoints()
	if err != nil {
		return err
	}
	var errs []error
	for _, mp := range mps {
		if err := cgroups.RemovePath(filepath.Join(mp, path)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// oomKills reads how many processes the kernel's OOM killer has killed in
// a cgroup, given its paths as libcontainer reports them (controller →
// directory; "" for cgroup v2). It is the "oom_kill" line of
// memory.oom_control (v1) or memory.events (v2).
func oomKills(paths map[string]string) (int, error) {
	var file string
	if dir, ok := paths[""]; ok && cgroups.IsCgroup2UnifiedMode() {
		file = filepath.Join(dir, "memory.events")
	} else if dir, ok := paths["memory"]; ok {
		file = filepath.Join(dir, "memory.oom_control")
	} else {
		return 0, errors.New("no memory cgroup")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, val, ok := bytes.Cut(sc.Bytes(), []byte(" "))
		if ok && string(key) == "oom_kill" {
			return strconv.Atoi(string(val))
		}
	}
	return 0, fmt.Errorf("%s has no oom_kill counter", file)
}

// memorySwapAccounting tells whether cgroup v1 accounts swap (the memsw
// files exist), so that a swap limit can be set.
func memorySwapAccounting() bool {
	if cgroups.IsCgroup2UnifiedMode() {
		return true
	}
	mp, err := cgroups.FindCgroupMountpoint("", "memory")
	if err != nil {
		return false
	}
	_, err = os.Stat(filepath.Join(mp, "memory.memsw.limit_in_bytes"))
	return err == nil
}
