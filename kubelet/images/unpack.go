package images

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// Whiteout is a deletion recorded in a layer's whiteouts.json because it
// could not be made an overlayfs whiteout (not running as root).
type Whiteout struct {
	Path   string `json:"path"`             // relative to the layer's rootfs
	Opaque bool   `json:"opaque,omitempty"` // Path is an opaque directory
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// unpackVerified unpacks the uncompressed layer r into dir and checks that
// its sha256 is diffID.
func unpackVerified(r io.Reader, dir string, diffID v1.Hash) ([]Whiteout, error) {
	h := sha256.New()
	wh, err := unpack(io.TeeReader(r, h), dir)
	if err != nil {
		return nil, err
	}
	// Tar readers stop at the end-of-archive marker; hash the padding too.
	if _, err := io.Copy(h, r); err != nil {
		return nil, err
	}
	if diffID.Algorithm == "sha256" {
		if got := hex.EncodeToString(h.Sum(nil)); got != diffID.Hex {
			return nil, fmt.Errorf("content has diffID sha256:%s, want %s", got, diffID)
		}
	}
	return wh, nil
}

// unpack applies a layer tarball to the new directory dir. Every entry is
// created through an os.Root, so neither a "../" name nor a symlink planted
// by an earlier entry can make it write outside dir; an entry whose name
// leaves dir is refused. Whiteouts become overlayfs whiteouts as root and
// are returned instead otherwise.
func unpack(r io.Reader, dir string) ([]Whiteout, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	isRoot := os.Geteuid() == 0
	var whiteouts []Whiteout
	type dirTimes struct {
		name string
		mode os.FileMode
		mt   time.Time
	}
	var dirs []dirTimes // modes and times are set last: entries change them

	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read tar: %w", err)
		}
		name, err := cleanName(hdr.Name)
		if err != nil {
			return nil, err
		}
		if name == "." {
			if hdr.Typeflag == tar.TypeDir {
				dirs = append(dirs, dirTimes{".", hdr.FileInfo().Mode(), hdr.ModTime})
			}
			continue
		}
		parent, base := path.Split(name)
		parent = strings.TrimSuffix(parent, "/")
		if parent == "" {
			parent = "."
		}
		if parent != "." {
			if err := root.MkdirAll(parent, 0o755); err != nil {
				return nil, fmt.Errorf("entry %q: %w", hdr.Name, err)
			}
		}

		if base == whiteoutOpaque {
			if !isRoot {
				whiteouts = append(whiteouts, Whiteout{Path: parent, Opaque: true})
				continue
			}
			if err := withDir(root, parent, func(fd int) error {
				return unix.Fsetxattr(fd, "trusted.overlay.opaque", []byte("y"), 0)
			}); err != nil {
				return nil, fmt.Errorf("opaque directory %q: %w", parent, err)
			}
			continue
		}
		if strings.HasPrefix(base, whiteoutPrefix) {
			target := path.Join(parent, strings.TrimPrefix(base, whiteoutPrefix))
			if !isRoot {
				whiteouts = append(whiteouts, Whiteout{Path: target})
				continue
			}
			if err := root.RemoveAll(target); err != nil {
				return nil, err
			}
			if err := mknod(root, target, unix.S_IFCHR, 0); err != nil {
				return nil, fmt.Errorf("whiteout %q: %w", target, err)
			}
			continue
		}

		// A later entry replaces an earlier one, except a directory
		// over a directory, which merges.
		if fi, err := root.Lstat(name); err == nil && !(fi.IsDir() && hdr.Typeflag == tar.TypeDir) {
			if err := root.RemoveAll(name); err != nil {
				return nil, err
			}
		}
		mode := hdr.FileInfo().Mode()
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.Mkdir(name, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
				return nil, fmt.Errorf("entry %q: %w", hdr.Name, err)
			}
			dirs = append(dirs, dirTimes{name, mode, hdr.ModTime})
		case tar.TypeReg, tar.TypeRegA:
			f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return nil, fmt.Errorf("entry %q: %w", hdr.Name, err)
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, fmt.Errorf("entry %q: %w", hdr.Name, err)
			}
		case tar.TypeSymlink:
			// The target is not checked: an absolute or "../" target is
			// resolved inside the container's rootfs, and os.Root refuses
			// to follow it out of dir while unpacking.
			if err := root.Symlink(hdr.Linkname, name); err != nil {
				return nil, fmt.Errorf("entry %q: %w", hdr.Name, err)
			}
		case tar.TypeLink:
			old, err := cleanName(hdr.Linkname)
			if err != nil {
				return nil, fmt.Errorf("entry %q: link target: %w", hdr.Name, err)
			}
			if err := root.Link(old, name); err != nil {
				return nil, fmt.Errorf("entry %q: %w", hdr.Name, err)
			}
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			if !isRoot {
				continue // devices cannot be made without root; skipped
			}
			kind := uint32(unix.S_IFIFO)
			switch hdr.Typeflag {
			case tar.TypeChar:
				kind = unix.S_IFCHR
			case tar.TypeBlock:
				kind = unix.S_IFBLK
			}
			if err := mknod(root, name, kind, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))); err != nil {
				return nil, fmt.Errorf("entry %q: %w", hdr.Name, err)
			}
		default:
			continue // xattr-only and unknown entries carry no file
		}

		if isRoot {
			if err := root.Lchown(name, hdr.Uid, hdr.Gid); err != nil {
				return nil, fmt.Errorf("entry %q: %w", hdr.Name, err)
			}
		}
		if hdr.Typeflag == tar.TypeSymlink || hdr.Typeflag == tar.TypeDir || hdr.Typeflag == tar.TypeLink {
			continue
		}
		// Chmod after Lchown: chown clears setuid and setgid bits.
		if err := root.Chmod(name, mode&(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky)); err != nil {
			return nil, fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
		if err := root.Chtimes(name, hdr.ModTime, hdr.ModTime); err != nil {
			return nil, fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		if err := root.Chmod(d.name, d.mode&(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky)); err != nil {
			return nil, fmt.Errorf("directory %q: %w", d.name, err)
		}
		if err := root.Chtimes(d.name, d.mt, d.mt); err != nil {
			return nil, fmt.Errorf("directory %q: %w", d.name, err)
		}
	}
	return whiteouts, nil
}

// cleanName turns a tar entry name into a path relative to the layer root,
// refusing names that leave it. A leading "/" is allowed, as Docker does.
func cleanName(n string) (string, error) {
	c := path.Clean(strings.TrimLeft(n, "/"))
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("tar entry %q leaves the layer directory", n)
	}
	return c, nil
}

// withDir calls fn with a file descriptor for the directory name in root.
func withDir(root *os.Root, name string, fn func(fd int) error) error {
	d, err := root.Open(name)
	if err != nil {
		return err
	}
	defer d.Close()
	return fn(int(d.Fd()))
}

// mknod creates a device node name in root (os.Root has no Mknod: the
// parent is opened through the root and the node made relative to it).
func mknod(root *os.Root, name string, kind uint32, dev int) error {
	parent, base := path.Split(name)
	if parent == "" {
		parent = "."
	}
	return withDir(root, parent, func(fd int) error {
		return unix.Mknodat(fd, base, kind|0o600, dev)
	})
}
