package runtime

import (
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
)

// defaultCapabilities is the set Docker and containerd give a container by
// default.
var defaultCapabilities = []string{
	"CAP_AUDIT_WRITE",
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_FOWNER",
	"CAP_FSETID",
	"CAP_KILL",
	"CAP_MKNOD",
	"CAP_NET_BIND_SERVICE",
	"CAP_NET_RAW",
	"CAP_SETFCAP",
	"CAP_SETGID",
	"CAP_SETPCAP",
	"CAP_SETUID",
	"CAP_SYS_CHROOT",
}

// maskedPaths are hidden from containers (they reveal or change the host);
// readonlyPaths can be read but not written. Same lists as runc's and
// Docker's defaults.
var (
	maskedPaths = []string{
		"/proc/acpi",
		"/proc/asound",
		"/proc/interrupts",
		"/proc/kcore",
		"/proc/keys",
		"/proc/latency_stats",
		"/proc/sched_debug",
		"/proc/scsi",
		"/proc/timer_list",
		"/proc/timer_stats",
		"/sys/devices/virtual/powercap",
		"/sys/firmware",
	}
	readonlyPaths = []string{
		"/proc/bus",
		"/proc/fs",
		"/proc/irq",
		"/proc/sys",
		"/proc/sysrq-trigger",
	}
)

// defaultPath is the PATH a container gets when its environment has none.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ociSpec describes the container as an OCI runtime spec (the format of
// runc's config.json); libcontainer's specconv turns it into its own
// configuration, filling in the default devices and their cgroup rules the
// way runc does.
func ociSpec(rec *containerRecord, rootfs string) *specs.Spec {
	s := rec.Spec
	caps := &specs.LinuxCapabilities{Bounding: defaultCapabilities}
	if s.UID == 0 {
		// A non-root process gets no effective capabilities, as in Docker.
		caps.Permitted = defaultCapabilities
		caps.Effective = defaultCapabilities
	}
	const noexec = "noexec"
	mounts := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", noexec, "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", noexec, "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", noexec, "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", noexec, "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", noexec, "nodev", "ro"}},
	}
	for _, m := range s.Mounts {
		opts := []string{"rbind", "rprivate"}
		if m.ReadOnly {
			// "rro": read-only all the way down (mount_setattr), so that
			// nothing mounted below the source is writable either.
			opts = append(opts, "ro", "rro")
		}
		mounts = append(mounts, specs.Mount{Destination: m.Destination, Type: "bind", Source: m.Source, Options: opts})
	}

	res := &specs.LinuxResources{
		// Deny every device; specconv then allows the default ones.
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
	}
	r := s.Resources
	if r.CPUShares != 0 || r.CPUQuota != 0 || r.CPUPeriod != 0 {
		res.CPU = &specs.LinuxCPU{}
		if r.CPUShares != 0 {
			res.CPU.Shares = &r.CPUShares
		}
		if r.CPUQuota != 0 {
			res.CPU.Quota = &r.CPUQuota
		}
		if r.CPUPeriod != 0 {
			res.CPU.Period = &r.CPUPeriod
		}
	}
	if r.MemoryLimit != 0 {
		limit := r.MemoryLimit
		res.Memory = &specs.LinuxMemory{Limit: &limit}
		if memorySwapAccounting() {
			// Memory plus swap equals memory: no swap, so a container
			// over its limit is OOM-killed instead of swapping.
			swap := limit
			res.Memory.Swap = &swap
		}
	}

	var gids []uint32
	gids = append(gids, s.AdditionalGIDs...)
	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: rootfs},
		Process: &specs.Process{
			Args:            s.Args,
			Env:             containerEnv(s.Env, nil),
			Cwd:             workingDir(s.WorkingDir),
			User:            specs.User{UID: s.UID, GID: s.GID, AdditionalGids: gids},
			Capabilities:    caps,
			NoNewPrivileges: false,
			OOMScoreAdj:     s.OOMScoreAdj,
		},
		Mounts: mounts,
		Linux: &specs.Linux{
			CgroupsPath: rec.Cgroup,
			Resources:   res,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace},
				{Type: specs.MountNamespace},
				{Type: specs.NetworkNamespace, Path: rec.Sandbox.NetNS},
				{Type: specs.IPCNamespace, Path: rec.Sandbox.IPCNS},
				{Type: specs.UTSNamespace, Path: rec.Sandbox.UTSNS},
			},
			MaskedPaths:   maskedPaths,
			ReadonlyPaths: readonlyPaths,
		},
	}
}

// libcontainerConfig builds the libcontainer configuration of a container
// whose root file system is mounted at rootfs.
func libcontainerConfig(rec *containerRecord, rootfs string) (*configs.Config, error) {
	cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{
		CgroupName: rec.Spec.ID,
		Spec:       ociSpec(rec, rootfs),
	})
	if err != nil {
		return nil, fmt.Errorf("container configuration: %w", err)
	}
	return cfg, nil
}

// containerEnv merges environments: extra's variables replace base's of
// the same name. PATH gets a default when neither sets it.
func containerEnv(base, extra []string) []string {
	var out []string
	index := map[string]int{}
	for _, list := range [][]string{base, extra} {
		for _, kv := range list {
			name, _, _ := strings.Cut(kv, "=")
			if i, ok := index[name]; ok {
				out[i] = kv
				continue
			}
			index[name] = len(out)
			out = append(out, kv)
		}
	}
	if _, ok := index["PATH"]; !ok {
		out = append(out, defaultPath)
	}
	return out
}

func workingDir(dir string) string {
	if dir == "" {
		return "/"
	}
	return dir
}
