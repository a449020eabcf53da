package kubelet

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiffdev/skiff/kubelet/runtime"
)

// writePodFiles writes the pod's /etc/hosts, /etc/hostname and
// /etc/resolv.conf, which every container of the pod mounts.
func (k *Kubelet) writePodFiles(pod *corev1.Pod, ip netip.Addr) error {
	dir := k.podEtcDir(pod.UID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	hostname := podHostname(pod)
	var hosts bytes.Buffer
	hosts.WriteString("# Kubernetes-managed hosts file (written by Skiff's kubelet).\n")
	hosts.WriteString("127.0.0.1\tlocalhost\n")
	hosts.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	hosts.WriteString("fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
	names := hostname
	if pod.Spec.Subdomain != "" {
		names = fmt.Sprintf("%s.%s.%s.svc.%s\t%s", hostname, pod.Spec.Subdomain, pod.Namespace, k.cfg.ClusterDomain, hostname)
	}
	fmt.Fprintf(&hosts, "%s\t%s\n", ip, names)
	for _, a := range pod.Spec.HostAliases {
		fmt.Fprintf(&hosts, "\n# Entries added by HostAliases.\n%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
	}
	files := map[string][]byte{
		"hosts":       hosts.Bytes(),
		"hostname":    []byte(hostname + "\n"),
		"resolv.conf": k.resolvConf(pod),
	}
	for name, b := range files {
		if err := writeIfChanged(filepath.Join(dir, name), b); err != nil {
			return err
		}
	}
	return nil
}

// podHostname is the pod's host name: spec.hostname, else its name.
func podHostname(pod *corev1.Pod) string {
	if pod.Spec.Hostname != "" {
		return pod.Spec.Hostname
	}
	return pod.Name
}

func writeIfChanged(path string, b []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// prepareHostPath checks or creates a hostPath volume by its type.
func prepareHostPath(name string, hp *corev1.HostPathVolumeSource) (string, error) {
	path := filepath.Clean(hp.Path)
	if !filepath.IsAbs(path) {
		return "", configErrorf("volume %q: hostPath %q is not an absolute path", name, hp.Path)
	}
	typ := corev1.HostPathUnset
	if hp.Type != nil {
		typ = *hp.Type
	}
	fi, err := os.Stat(path)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	wrong := func(want string) error {
		return configErrorf("volume %q: hostPath type check failed: %s is not a %s", name, path, want)
	}
	switch typ {
	case corev1.HostPathDirectoryOrCreate:
		if !exists {
			return path, os.MkdirAll(path, 0o755)
		}
		if !fi.IsDir() {
			return "", wrong("directory")
		}
	case corev1.HostPathFileOrCreate:
		if !exists {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return "", err
			}
			f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return "", err
			}
			return path, f.Close()
		}
		if fi.IsDir() {
			return "", wrong("file")
		}
	case corev1.HostPathDirectory:
		if !exists || !fi.IsDir() {
			return "", wrong("directory")
		}
	case corev1.HostPathFile:
		if !exists || !fi.Mode().IsRegular() {
			return "", wrong("file")
		}
	case corev1.HostPathSocket:
		if !exists || fi.Mode()&fs.ModeSocket == 0 {
			return "", wrong("socket")
		}
	case corev1.HostPathCharDev:
		if !exists || fi.Mode()&fs.ModeCharDevice == 0 {
			return "", wrong("character device")
		}
	case corev1.HostPathBlockDev:
		if !exists || fi.Mode()&fs.ModeDevice == 0 || fi.Mode()&fs.ModeCharDevice != 0 {
			return "", wrong("block device")
		}
	default:
		if !exists {
			// Kubernetes' unset type creates nothing; the bind mount of a
			// missing path would fail less clearly.
			return "", configErrorf("volume %q: hostPath %s does not exist", name, path)
		}
	}
	return path, nil
}

// mounts lists the bind mounts of one container: its volumeMounts and the
// pod's /etc files.
func (k *Kubelet) mounts(pod *corev1.Pod, c *corev1.Container, vols map[string]podVolume) ([]runtime.Mount, error) {
	etc := k.podEtcDir(pod.UID)
	var out []runtime.Mount
	has := map[string]bool{}
	for _, vm := range c.VolumeMounts {
		vol, ok := vols[vm.Name]
		src := vol.path
		if !ok {
			return nil, configErrorf("container %q: volumeMount %q names no volume of the pod", c.Name, vm.Name)
		}
		if vm.SubPath != "" {
			clean := filepath.Clean(vm.SubPath)
			if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
				return nil, configErrorf("container %q: volumeMount %q: subPath %q must be a relative path inside the volume", c.Name, vm.Name, vm.SubPath)
			}
			// The volume's contents belong to the pod's containers, which
			// may have put symlinks there (evil -> /): the subPath is
			// resolved as if the volume were the root, so it cannot lead
			// out of it, and missing directories are made the same way.
			// (A container swapping a directory for a symlink between this
			// and the mount is not guarded against yet.)
			resolved, err := securejoin.SecureJoin(src, clean)
			if err != nil {
				return nil, configErrorf("container %q: volumeMount %q: subPath %q: %v", c.Name, vm.Name, vm.SubPath, err)
			}
			if _, err := os.Lstat(resolved); errors.Is(err, fs.ErrNotExist) {
				if err := pathrs.MkdirAll(src, clean, 0o777); err != nil {
					return nil, configErrorf("container %q: volumeMount %q: creating subPath %q: %v", c.Name, vm.Name, vm.SubPath, err)
				}
			}
			src = resolved
		}
		out = append(out, runtime.Mount{Source: src, Destination: vm.MountPath, ReadOnly: vm.ReadOnly || vol.readOnly})
		has[filepath.Clean(vm.MountPath)] = true
	}
	for _, f := range []string{"hosts", "hostname", "resolv.conf"} {
		dst := "/etc/" + f
		if !has[dst] {
			out = append(out, runtime.Mount{Source: filepath.Join(etc, f), Destination: dst})
		}
	}
	return out, nil
}
