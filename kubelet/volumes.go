package kubelet

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
)

// podVolume is one of a pod's volumes as set up on the node.
type podVolume struct {
	// path is its directory (or, for a hostPath, file) on the node.
	path string
	// readOnly volumes are mounted read-only whatever the volumeMount
	// says: the kubelet writes them (configMap, secret, downwardAPI,
	// projected), as in Kubernetes.
	readOnly bool
}

// defaultFileMode is the mode of a volume file that neither its item nor
// its volume gives one (Kubernetes' default, 0644).
const defaultFileMode fs.FileMode = 0o644

// volumeSources prepares the pod's volumes and returns them by name. f
// holds the ConfigMaps and Secrets of this sync; the files of configMap,
// secret, downwardAPI and projected volumes are rewritten from them at
// every sync that finds them changed, which is how a mounted file follows
// its object.
func (k *Kubelet) volumeSources(pod *corev1.Pod, f podFacts) (map[string]podVolume, error) {
	out := map[string]podVolume{}
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		var pv podVolume
		var err error
		switch {
		case v.EmptyDir != nil:
			pv.path, err = k.emptyDir(pod.UID, v.Name, v.EmptyDir)
		case v.HostPath != nil:
			pv.path, err = prepareHostPath(v.Name, v.HostPath)
		case v.ConfigMap != nil, v.Secret != nil, v.DownwardAPI != nil, v.Projected != nil:
			pv, err = k.writtenVolume(pod, v, f)
		default:
			err = configErrorf("volume %q: only emptyDir, hostPath, configMap, secret, downwardAPI and projected volumes are supported", v.Name)
		}
		if err != nil {
			return nil, err
		}
		out[v.Name] = pv
	}
	return out, nil
}

// volumeDir is where the volume called name of kind lives on the node.
func (k *Kubelet) volumeDir(uid types.UID, kind, name string) string {
	return filepath.Join(k.podDir(uid), "volumes", kind, name)
}

// emptyDir makes an emptyDir volume: a directory under the pod's, or with
// medium Memory a tmpfs mounted there, of sizeLimit when it has one.
func (k *Kubelet) emptyDir(uid types.UID, name string, src *corev1.EmptyDirVolumeSource) (string, error) {
	dir := k.volumeDir(uid, "empty-dir", name)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return "", err
	}
	if src.Medium == corev1.StorageMediumMemory {
		var size int64
		if src.SizeLimit != nil {
			size = src.SizeLimit.Value()
		}
		if err := ensureTmpfs(dir, 0o777, size); err != nil {
			return "", fmt.Errorf("volume %q: %w", name, err)
		}
	}
	// Writable by any user the containers run as, as Kubernetes'.
	return dir, os.Chmod(dir, 0o777)
}

// writtenVolume sets up a volume whose files the kubelet writes from the
// API: configMap, downwardAPI (on disk), secret and projected (on a tmpfs,
// so that secrets never reach the node's disk).
func (k *Kubelet) writtenVolume(pod *corev1.Pod, v *corev1.Volume, f podFacts) (podVolume, error) {
	kind, tmpfs := "configmap", false
	switch {
	case v.Secret != nil:
		kind, tmpfs = "secret", true
	case v.DownwardAPI != nil:
		kind = "downward-api"
	case v.Projected != nil:
		kind, tmpfs = "projected", true
	}
	dir := k.volumeDir(pod.UID, kind, v.Name)
	files, err := volumeFiles(pod, v, f)
	if err != nil {
		return podVolume{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return podVolume{}, err
	}
	if tmpfs {
		if err := ensureTmpfs(dir, 0o755, 0); err != nil {
			return podVolume{}, fmt.Errorf("volume %q: %w", v.Name, err)
		}
	}
	if _, err := writeAtomic(dir, files); err != nil {
		return podVolume{}, fmt.Errorf("volume %q: writing its files: %w", v.Name, err)
	}
	return podVolume{path: dir, readOnly: true}, nil
}

// setUpFailed is the error of a volume that cannot be set up, in
// Kubernetes' words (its FailedMount events say the same).
func setUpFailed(volume string, err error) error {
	return &configError{msg: fmt.Sprintf("MountVolume.SetUp failed for volume %q : %v", volume, err), cause: err}
}

// volumeFiles computes the files of a configMap, secret, downwardAPI or
// projected volume from the pod and the objects of this sync. It decides
// and writes nothing, so the tests call it without root.
func volumeFiles(pod *corev1.Pod, v *corev1.Volume, f podFacts) (map[string]volumeFile, error) {
	files, objs := map[string]volumeFile{}, f.objs
	var err error
	switch {
	case v.ConfigMap != nil:
		err = configMapFiles(files, pod, v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.Optional, fileMode(v.ConfigMap.DefaultMode), objs)
	case v.Secret != nil:
		err = secretFiles(files, pod, v.Secret.SecretName, v.Secret.Items, v.Secret.Optional, fileMode(v.Secret.DefaultMode), objs)
	case v.DownwardAPI != nil:
		err = downwardFiles(files, pod, v.DownwardAPI.Items, fileMode(v.DownwardAPI.DefaultMode), f)
	case v.Projected != nil:
		mode := fileMode(v.Projected.DefaultMode)
		for i, s := range v.Projected.Sources {
			switch {
			case s.ConfigMap != nil:
				err = configMapFiles(files, pod, s.ConfigMap.Name, s.ConfigMap.Items, s.ConfigMap.Optional, mode, objs)
			case s.Secret != nil:
				err = secretFiles(files, pod, s.Secret.Name, s.Secret.Items, s.Secret.Optional, mode, objs)
			case s.DownwardAPI != nil:
				err = downwardFiles(files, pod, s.DownwardAPI.Items, mode, f)
			case s.ServiceAccountToken != nil:
				// Service account tokens come with the API's token
				// issuer (issue 15); a volume without its token would
				// start programs that fail later, less clearly.
				return nil, configErrorf("volume %q: projected source %d: serviceAccountToken is not supported by Skiff yet", v.Name, i)
			default:
				return nil, configErrorf("volume %q: projected source %d: only configMap, secret and downwardAPI sources are supported", v.Name, i)
			}
			if err != nil {
				break
			}
		}
	}
	if err != nil {
		if _, ok := err.(*configError); ok {
			return nil, err
		}
		return nil, setUpFailed(v.Name, err)
	}
	return files, nil
}

// fileMode is a volume's defaultMode, or 0644.
func fileMode(m *int32) fs.FileMode {
	if m == nil {
		return defaultFileMode
	}
	return fs.FileMode(*m) & fs.ModePerm
}

// itemMode is an item's own mode, else the volume's.
func itemMode(m *int32, def fs.FileMode) fs.FileMode {
	if m == nil {
		return def
	}
	return fs.FileMode(*m) & fs.ModePerm
}

// configMapFiles adds the files of one ConfigMap: every key of data and
// binaryData, or only the items, each at its path.
func configMapFiles(files map[string]volumeFile, pod *corev1.Pod, name string, items []corev1.KeyToPath, optional *bool, mode fs.FileMode, objs *podObjects) error {
	cm, err := objs.configMap(pod.Namespace, name)
	if err != nil {
		if apierrors.IsNotFound(err) && ptrTrue(optional) {
			return nil
		}
		return err
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return keyFiles(files, data, items, optional, mode, "configmap references non-existent config key: %s")
}

// secretFiles adds the files of one Secret, like configMapFiles.
func secretFiles(files map[string]volumeFile, pod *corev1.Pod, name string, items []corev1.KeyToPath, optional *bool, mode fs.FileMode, objs *podObjects) error {
	sec, err := objs.secret(pod.Namespace, name)
	if err != nil {
		if apierrors.IsNotFound(err) && ptrTrue(optional) {
			return nil
		}
		return err
	}
	return keyFiles(files, sec.Data, items, optional, mode, "secret references non-existent secret key: %s")
}

// keyFiles adds a file per key of data, or per item. An item whose key is
// missing fails the volume (missingKey is Kubernetes' message) unless the
// source is optional.
func keyFiles(files map[string]volumeFile, data map[string][]byte, items []corev1.KeyToPath, optional *bool, mode fs.FileMode, missingKey string) error {
	if len(items) == 0 {
		for k, v := range data {
			files[k] = volumeFile{data: v, mode: mode}
		}
		return nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if ptrTrue(optional) {
				continue
			}
			return fmt.Errorf(missingKey, it.Key)
		}
		files[it.Path] = volumeFile{data: v, mode: itemMode(it.Mode, mode)}
	}
	return nil
}

// downwardFiles adds a file per downward API item: a field of the pod or
// a resource of one of its containers.
func downwardFiles(files map[string]volumeFile, pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, mode fs.FileMode, f podFacts) error {
	for _, it := range items {
		var v string
		var err error
		switch {
		case it.FieldRef != nil:
			v, err = fieldValue(pod, it.FieldRef.FieldPath, f.podIP, f.hostIP)
		case it.ResourceFieldRef != nil:
			v, err = resourceValue(pod, nil, it.ResourceFieldRef, f.allocatable)
		default:
			err = fmt.Errorf("item %q has neither fieldRef nor resourceFieldRef", it.Path)
		}
		if err != nil {
			return fmt.Errorf("item %q: %w", it.Path, err)
		}
		files[it.Path] = volumeFile{data: []byte(v), mode: itemMode(it.Mode, mode)}
	}
	return nil
}

// ensureTmpfs mounts a tmpfs on dir unless one is there already; size
// (bytes) bounds it when not zero.
func ensureTmpfs(dir string, mode fs.FileMode, size int64) error {
	mounted, err := mountinfo.Mounted(dir)
	if err != nil {
		return err
	}
	if mounted {
		return nil
	}
	opts := "mode=" + strconv.FormatUint(uint64(mode.Perm()), 8)
	if size > 0 {
		opts += ",size=" + strconv.FormatInt(size, 10)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mounting a tmpfs on %s: %w", dir, err)
	}
	return nil
}

// unmountVolumes unmounts every mount under the pod's directory (tmpfs
// volumes), deepest first, so that the directory can be removed.
func (k *Kubelet) unmountVolumes(uid types.UID) error {
	dir := k.podDir(uid)
	// The mount table holds paths with their symlinks resolved.
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	} else if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return err
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		// GetMounts lists parents before children.
		if err := unix.Unmount(mounts[i].Mountpoint, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			return fmt.Errorf("unmounting %s: %w", mounts[i].Mountpoint, err)
		}
	}
	return nil
}
