package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// overlayIndexOff is ",index=off" when the kernel's overlayfs knows the
// option. With the inodes index on, overlayfs refuses to mount a lower
// directory that another overlay with another upper directory uses, which
// is exactly how image layers are shared between containers.
var overlayIndexOff = sync.OnceValue(func() string {
	if _, err := os.Stat("/sys/module/overlay/parameters/index"); err == nil {
		return ",index=off"
	}
	return ""
})

// mountRootfs mounts the container's root file system at dir/rootfs: an
// overlay of the image layers (given lowest first) with writable/upper as
// the writable layer.
func mountRootfs(dir, writable string, layers []string) (string, error) {
	rootfs := filepath.Join(dir, "rootfs")
	upper := filepath.Join(writable, "upper")
	work := filepath.Join(writable, "work")
	for _, d := range []string{rootfs, upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
	}
	if len(layers) == 0 {
		return "", errors.New("no image layers")
	}
	// overlayfs lists the lower directories topmost first.
	lower := make([]string, len(layers))
	for i, l := range layers {
		if strings.ContainsAny(l, ":,") {
			return "", fmt.Errorf("layer path %q contains ':' or ','", l)
		}
		lower[len(layers)-1-i] = l
	}
	data := "lowerdir=" + strings.Join(lower, ":") + ",upperdir=" + upper + ",workdir=" + work + overlayIndexOff()
	if len(data) >= os.Getpagesize() {
		return "", fmt.Errorf("overlay mount options too long (%d layers)", len(layers))
	}
	if err := unix.Mount("overlay", rootfs, "overlay", 0, data); err != nil {
		return "", fmt.Errorf("mounting the root file system: %w", err)
	}
	return rootfs, nil
}

// unmountRootfs unmounts dir/rootfs, however many times it is mounted; it
// is not an error when it is not mounted or does not exist.
func unmountRootfs(dir string) error {
	rootfs := filepath.Join(dir, "rootfs")
	for {
		err := unix.Unmount(rootfs, 0)
		if errors.Is(err, unix.EBUSY) {
			err = unix.Unmount(rootfs, unix.MNT_DETACH)
		}
		switch {
		case err == nil:
			continue
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil
		default:
			return fmt.Errorf("unmounting %s: %w", rootfs, err)
		}
	}
}
