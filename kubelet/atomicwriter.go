package kubelet

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// volumeFile is one file of a volume the kubelet writes (configMap,
// secret, downwardAPI, projected): its content and permission bits.
type volumeFile struct {
	data []byte
	mode fs.FileMode
}

// The names of the atomic writer's layout inside a volume's directory.
// Every name it owns starts with "..", which no key of a ConfigMap or
// Secret and no path of an item may (validation refuses them), so they
// never clash with a user-visible name.
const (
	dataDirName    = "..data"
	newDataDirName = "..data_tmp"
)

// writeAtomic makes dir hold exactly files (by relative path), so that a
// program reading dir never sees half an update: Kubernetes' atomic
// writer layout. Every file opened is one whole version of it; a program
// that needs several files of the same version resolves ..data once and
// reads them from the directory it names.
//
//	dir/..2026_01_02_15_04_05.123456789/   one version, written in full first
//	dir/..data -> ..2026_01_02_...         the version in use
//	dir/KEY -> ..data/KEY                  what programs open
//
// A new version is written to a new timestamped directory; then a
// symlink ..data_tmp to it is renamed over ..data, which the kernel does
// in one step; then user-visible names are added or removed, and the old
// version is deleted. A path with directories (items' path "a/b") is
// reached through its first component: dir/a -> ..data/a.
//
// Nothing is written when the version in use already holds exactly
// these files, contents and modes: changed is false.
// A program that keeps a file open, or a subPath mount of one, keeps the
// version it had; one that opens it again gets the new one.
func writeAtomic(dir string, files map[string]volumeFile) (changed bool, err error) {
	top := map[string]bool{}
	for p := range files {
		if err := checkVolumePath(p); err != nil {
			return false, err
		}
		first, _, _ := strings.Cut(p, "/")
		top[first] = true
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	oldVersion, _ := os.Readlink(filepath.Join(dir, dataDirName))
	if oldVersion != "" && sameFiles(filepath.Join(dir, oldVersion), files) {
		return false, nil
	}

	// 1. The new version, in full, where nobody looks yet.
	version, err := os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return false, err
	}
	if err := os.Chmod(version, 0o755); err != nil {
		return false, err
	}
	for _, p := range slices.Sorted(maps.Keys(files)) {
		f := files[p]
		path := filepath.Join(version, p)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return false, err
		}
		if err := os.WriteFile(path, f.data, 0o600); err != nil {
			return false, err
		}
		// WriteFile's mode is filtered by the umask; the item's mode is
		// not.
		if err := os.Chmod(path, f.mode); err != nil {
			return false, err
		}
	}

	// 2. The swap: rename is atomic, so ..data names the old version or
	// the new one, never neither.
	tmp := filepath.Join(dir, newDataDirName)
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Base(version), tmp); err != nil {
		return false, err
	}
	if err := os.Rename(tmp, filepath.Join(dir, dataDirName)); err != nil {
		return false, err
	}

	// 3. User-visible names: new ones point through ..data, stale ones
	// go. Until this step a new key is not there yet and a removed one
	// is a dangling link: never a half-written file.
	entries, err := os.ReadDir(dir)
	if err != nil {
		return true, err
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "..") || top[name] {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			return true, err
		}
	}
	for name := range top {
		link := filepath.Join(dir, name)
		target := filepath.Join(dataDirName, name)
		if cur, err := os.Readlink(link); err == nil && cur == target {
			continue
		}
		_ = os.Remove(link)
		if err := os.Symlink(target, link); err != nil {
			return true, err
		}
	}

	// 4. The old version, and any left by a write cut short.
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "..") && name != dataDirName && name != filepath.Base(version) && e.IsDir() {
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				return true, err
			}
		}
	}
	return true, nil
}

// checkVolumePath refuses a path that would leave the volume or clash
// with the writer's own names (the API server's validation already
// refuses them; the kubelet does not rely on it).
func checkVolumePath(p string) error {
	switch {
	case p == "":
		return errors.New("an empty file path")
	case filepath.IsAbs(p):
		return fmt.Errorf("file path %q must be relative", p)
	case filepath.Clean(p) != p:
		return fmt.Errorf("file path %q must be clean", p)
	case strings.HasPrefix(p, ".."):
		return fmt.Errorf("file path %q must not start with '..'", p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return fmt.Errorf("file path %q must not contain '..'", p)
		}
	}
	return nil
}

// sameFiles reports whether the version in dir holds exactly files, with
// their contents and modes.
func sameFiles(dir string, files map[string]volumeFile) bool {
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		f, ok := files[rel]
		if !ok {
			return errors.New("extra file")
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm() != f.mode.Perm() {
			return errors.New("mode differs")
		}
		b, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(b, f.data) {
			return errors.New("content differs")
		}
		n++
		return nil
	})
	return err == nil && n == len(files)
}
