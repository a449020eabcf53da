// Package images is the kubelet's image store: it pulls images from OCI and
// Docker registries (or imports them from a tarball), keeps them by digest,
// and unpacks every layer exactly once into a directory of its own that all
// images using the layer share. A container's rootfs is then an overlayfs
// mount whose lowerdirs are an image's LayerDirs.
//
// # On disk
//
// Everything lives under the store's root (for example /var/lib/skiff/images):
//
//	refs.json                      reference → manifest digest
//	images/sha256/<hex>/           one directory per manifest digest
//	    manifest.json, config.json
//	layers/sha256/<diffID hex>/    one directory per uncompressed layer
//	    rootfs/                    the unpacked layer (an overlayfs lowerdir)
//	    whiteouts.json             only when unpacked without root (see below)
//	    complete                   written last: the layer is whole
//	tmp/                           layers being unpacked, renamed into layers/
//
// A layer is unpacked into tmp/ and renamed into place with its completion
// marker already inside, so a crash never leaves a half-unpacked layer under
// layers/. Two pulls that need the same layer at once share one unpack.
//
// # Whiteouts
//
// Layer tarballs mark deletions with ".wh.NAME" entries and opaque
// directories with ".wh..wh..opq". As root these become what overlayfs
// understands: a 0:0 character device named NAME, and the xattr
// trusted.overlay.opaque=y on the directory. Without root neither can be
// created; they are then recorded in the layer's whiteouts.json so that a
// caller (or a later unpack as root) can apply them, and the unpacked layer
// alone is not a faithful overlayfs lowerdir.
//
// # Caller's duties
//
//  1. Open the store once per process with Open; it is safe for concurrent
//     use by many goroutines, but not by two processes at once.
//  2. Pull (or Import) an image before creating a container from it; use
//     Image.LayerDirs as the overlayfs lowerdirs (reversed: overlayfs lists
//     the top layer first) and Image.Config for the process defaults.
//  3. Report a failed pull as Kubernetes does: errors.Is(err, ErrImagePull)
//     gives ErrImagePull (then ImagePullBackOff) with err's message as the
//     reason; errors.Is(err, ErrImageNeverPull) gives ErrImageNeverPull.
//  4. Remove references that are no longer wanted; layers that no remaining
//     image uses are deleted at once. Do not remove an image that a running
//     container still mounts: the store does not track containers.
package images
