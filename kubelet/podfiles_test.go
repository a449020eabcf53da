package kubelet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A container may leave a symlink in a volume; a later subPath through it
// must stay inside the volume (CVE-2017-1002101).
func TestSubPathStaysInTheVolume(t *testing.T) {
	dir := t.TempDir()
	k := &Kubelet{cfg: Config{RootDir: dir, StateDir: dir}}
	vol := filepath.Join(dir, "vol")
	outside := filepath.Join(dir, "outside")
	for _, d := range []string{vol, outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(vol, "evil")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../..", filepath.Join(vol, "up")); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "u1"}}
	for _, sub := range []string{"evil", "evil/x", "up", "up/etc", "plain/dir"} {
		c := &corev1.Container{Name: "c", VolumeMounts: []corev1.VolumeMount{{Name: "v", MountPath: "/m", SubPath: sub}}}
		mounts, err := k.mounts(pod, c, map[string]podVolume{"v": {path: vol}})
		if err != nil {
			// Refusing is safe too, but a plain path must work.
			if sub == "plain/dir" {
				t.Errorf("subPath %q: %v", sub, err)
			}
			continue
		}
		src := mounts[0].Source
		if src != vol && !strings.HasPrefix(src, vol+"/") {
			t.Errorf("subPath %q: mount source %s is outside the volume %s", sub, src, vol)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("a directory was made outside the volume: %v", entries)
	}
	for _, sub := range []string{"../x", "/abs"} {
		c := &corev1.Container{Name: "c", VolumeMounts: []corev1.VolumeMount{{Name: "v", MountPath: "/m", SubPath: sub}}}
		if _, err := k.mounts(pod, c, map[string]podVolume{"v": {path: vol}}); err == nil {
			t.Errorf("subPath %q: got no error, want one", sub)
		}
	}
}
