package kubelet

import (
	"testing"

	"github.com/skiffdev/skiff/kubelet/images"
)

func TestImageRef(t *testing.T) {
	const digest = "sha256:0123"
	for _, tc := range []struct{ ref, want string }{
		{"docker.io/library/busybox:1.36", "docker.io/library/busybox@" + digest},
		{"busybox", "busybox@" + digest},
		{"localhost:5000/busybox", "localhost:5000/busybox@" + digest},
		{"localhost:5000/busybox:1.36", "localhost:5000/busybox@" + digest},
		{"localhost:5000/busybox@sha256:4567", "localhost:5000/busybox@" + digest},
		{"localhost:5000/busybox:1.36@sha256:4567", "localhost:5000/busybox:1.36@" + digest},
	} {
		if got := imageRef(&images.Image{Ref: tc.ref, Digest: digest}); got != tc.want {
			t.Errorf("imageRef(%q): got %q, want %q", tc.ref, got, tc.want)
		}
	}
}
