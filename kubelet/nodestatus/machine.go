package nodestatus

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/skiffdev/skiff/internal/version"
)

// machine is what the node learns about itself once, at start: the
// resources it has and what it runs.
type machine struct {
	capacity corev1.ResourceList
	info     corev1.NodeSystemInfo
}

// Files the machine facts are read from. They are variables so that a
// test can point them elsewhere.
var (
	meminfoPath     = "/proc/meminfo"
	osReleasePaths  = []string{"/etc/os-release", "/usr/lib/os-release"}
	machineIDPaths  = []string{"/etc/machine-id", "/var/lib/dbus/machine-id"}
	bootIDPath      = "/proc/sys/kernel/random/boot_id"
	productUUIDPath = "/sys/class/dmi/id/product_uuid"
)

// readMachine gathers the capacity and node info of this machine. Only
// the memory size is required; facts that cannot be read (the product
// UUID needs root, a container may lack a machine ID) are left empty.
func readMachine(cfg *Config) (machine, error) {
	mem, err := memTotal(meminfoPath)
	if err != nil {
		return machine{}, err
	}
	capacity := corev1.ResourceList{
		// NumCPU counts the CPUs this process may run on (its affinity
		// mask), which is what pods on this node can use. Like Kubernetes,
		// a CPU quota on the kubelet's own cgroup is not subtracted.
		corev1.ResourceCPU:    *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(mem, resource.BinarySI),
		corev1.ResourcePods:   *resource.NewQuantity(cfg.MaxPods, resource.DecimalSI),
	}
	if cfg.RootDir != "" {
		size, err := fsSize(cfg.RootDir)
		if err != nil {
			return machine{}, err
		}
		capacity[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(size, resource.BinarySI)
	}

	info := corev1.NodeSystemInfo{
		MachineID:               firstLine(machineIDPaths...),
		SystemUUID:              strings.ToLower(firstLine(productUUIDPath)),
		BootID:                  firstLine(bootIDPath),
		KernelVersion:           kernelRelease(),
		OSImage:                 osImage(osReleasePaths...),
		ContainerRuntimeVersion: RuntimeVersionString(cfg.RuntimeVersion),
		KubeletVersion:          version.Get().GitVersion,
		OperatingSystem:         runtime.GOOS,
		Architecture:            runtime.GOARCH,
	}
	return machine{capacity: capacity, info: info}, nil
}

// RuntimeVersionString turns the runtime's version, e.g.
// "libcontainer 1.5.2", into the "<runtime>://<version>" form Kubernetes
// uses in nodeInfo.containerRuntimeVersion (as in "containerd://1.7.2").
// The runtime is Skiff's own, embedded in the kubelet, so the result reads
// "skiff://libcontainer-1.5.2". A string that already has a "://" is kept.
func RuntimeVersionString(v string) string {
	v = strings.TrimSpace(v)
	switch {
	case strings.Contains(v, "://"):
		return v
	case v == "":
		return "skiff://unknown"
	}
	return "skiff://" + strings.Join(strings.Fields(v), "-")
}

// memTotal returns MemTotal from a /proc/meminfo file, in bytes.
func memTotal(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		// "MemTotal:       16318412 kB"
		fields := strings.Fields(s.Text())
		if len(fields) < 2 || fields[0] != "MemTotal:" {
			continue
		}
		n, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: MemTotal %q: %w", path, fields[1], err)
		}
		if len(fields) > 2 && fields[2] == "kB" {
			n *= 1024
		}
		return n, nil
	}
	if err := s.Err(); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return 0, fmt.Errorf("%s: no MemTotal line", path)
}

// fsSize returns the size in bytes of the filesystem holding dir.
func fsSize(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Blocks) * int64(st.Bsize), nil
}

// kernelRelease returns the running kernel's release, as uname -r prints it.
func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// osImage returns PRETTY_NAME from the first os-release file that exists,
// or "Linux" when there is none.
func osImage(paths ...string) string {
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(data)) {
			v, ok := strings.CutPrefix(strings.TrimSpace(line), "PRETTY_NAME=")
			if !ok {
				continue
			}
			if u, err := strconv.Unquote(v); err == nil {
				return u
			}
			return strings.Trim(v, `"'`)
		}
	}
	return "Linux"
}

// firstLine returns the first line of the first of paths that can be
// read, trimmed, or "" when none can.
func firstLine(paths ...string) string {
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		line, _, _ := bytes.Cut(data, []byte("\n"))
		if s := strings.TrimSpace(string(line)); s != "" {
			return s
		}
	}
	return ""
}
