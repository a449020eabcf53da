package kubelet

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// readVolume reads every user-visible file of a volume directory, as a
// program in the container would, through the symlinks.
func readVolume(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if strings.HasPrefix(rel, "..") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if path == dir {
			return nil
		}
		fi, err := os.Stat(path) // through the link
		if err != nil {
			return err
		}
		if fi.IsDir() {
			real, err := filepath.EvalSymlinks(path)
			if err != nil {
				return err
			}
			sub := readVolume(t, real)
			for k, v := range sub {
				out[rel+"/"+k] = v
			}
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out[rel] = fmt.Sprintf("%s %o", b, fi.Mode().Perm())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWriteAtomicLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vol")
	v1 := map[string]volumeFile{
		"a":       {data: []byte("one"), mode: 0o644},
		"dir/b":   {data: []byte("two"), mode: 0o400},
		"dir/c/d": {data: []byte("three"), mode: 0o755},
	}
	changed, err := writeAtomic(dir, v1)
	if err != nil || !changed {
		t.Fatalf("first write: changed %v, err %v; want true, nil", changed, err)
	}
	want := map[string]string{"a": "one 644", "dir/b": "two 400", "dir/c/d": "three 755"}
	if got := readVolume(t, dir); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after the first write: got %v, want %v", got, want)
	}
	// The layout: ..data is a link to a timestamped version; each
	// user-visible name is a link through ..data.
	data, err := os.Readlink(filepath.Join(dir, "..data"))
	if err != nil || !strings.HasPrefix(data, "..") {
		t.Fatalf("..data: got %q, %v; want a link to a ..TIMESTAMP directory", data, err)
	}
	for name, target := range map[string]string{"a": "..data/a", "dir": "..data/dir"} {
		if got, err := os.Readlink(filepath.Join(dir, name)); err != nil || got != target {
			t.Errorf("%s: got link %q (%v), want %q", name, got, err, target)
		}
	}

	// The same files again: nothing is written.
	if changed, err := writeAtomic(dir, v1); err != nil || changed {
		t.Errorf("same files: changed %v, err %v; want false, nil", changed, err)
	}

	// A new version: a changed file and mode, a removed key, a new one.
	v2 := map[string]volumeFile{
		"a":   {data: []byte("uno"), mode: 0o600},
		"new": {data: []byte("nuevo"), mode: 0o644},
	}
	if changed, err := writeAtomic(dir, v2); err != nil || !changed {
		t.Fatalf("second write: changed %v, err %v; want true, nil", changed, err)
	}
	want = map[string]string{"a": "uno 600", "new": "nuevo 644"}
	if got := readVolume(t, dir); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after the second write: got %v, want %v", got, want)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	// Exactly: the new version, ..data, and the two links; the old
	// version and the stale "dir" link are gone.
	if len(names) != 4 || !slices.Contains(names, "..data") || !slices.Contains(names, "a") || !slices.Contains(names, "new") {
		t.Errorf("entries: got %v, want ..data, one version, a, new", names)
	}

	// Nothing at all: an empty volume.
	if _, err := writeAtomic(dir, nil); err != nil {
		t.Fatal(err)
	}
	if got := readVolume(t, dir); len(got) != 0 {
		t.Errorf("after an empty write: got %v, want nothing", got)
	}
}

func TestWriteAtomicRefusesPathsOutside(t *testing.T) {
	for _, p := range []string{"../x", "/etc/passwd", "a/../../x", "..data", "..x", "a//b", ""} {
		dir := t.TempDir()
		if _, err := writeAtomic(dir, map[string]volumeFile{p: {data: []byte("x"), mode: 0o644}}); err == nil {
			t.Errorf("path %q: got no error, want one", p)
		}
	}
}

// TestWriteAtomicNeverTorn has readers open two files, written together
// with the same content, while versions are swapped: every pair read
// must match. A writer that wrote the files in place would be caught
// between them.
func TestWriteAtomicNeverTorn(t *testing.T) {
	dir := t.TempDir()
	version := func(i int) map[string]volumeFile {
		v := []byte(strings.Repeat(fmt.Sprintf("v%04d", i), 1000))
		return map[string]volumeFile{"first": {data: v, mode: 0o644}, "second": {data: v, mode: 0o644}}
	}
	if _, err := writeAtomic(dir, version(0)); err != nil {
		t.Fatal(err)
	}
	const versions = 200
	done := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var torn []string
	reads := 0
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				// ..data resolved once, as a program that wants the
				// files of one version does (each path through
				// ..data on its own may meet a newer version).
				version, err := os.Readlink(filepath.Join(dir, "..data"))
				if err != nil {
					t.Error(err)
					return
				}
				data := filepath.Join(dir, version)
				a, errA := os.ReadFile(filepath.Join(data, "first"))
				b, errB := os.ReadFile(filepath.Join(data, "second"))
				mu.Lock()
				reads++
				// A version removed between the two reads is an error,
				// never a torn pair.
				if errA == nil && errB == nil && !bytes.Equal(a, b) {
					torn = append(torn, fmt.Sprintf("%.5s / %.5s", a, b))
				}
				mu.Unlock()
			}
		}()
	}
	for i := 1; i <= versions; i++ {
		if _, err := writeAtomic(dir, version(i)); err != nil {
			t.Fatal(err)
		}
		// Every user-visible file is one complete version.
		b, err := os.ReadFile(filepath.Join(dir, "first"))
		if err != nil || len(b) != 5000 || !bytes.Equal(b, bytes.Repeat(b[:5], 1000)) {
			t.Fatalf("version %d: read %q, %v", i, b, err)
		}
	}
	close(done)
	wg.Wait()
	if len(torn) > 0 {
		t.Errorf("%d of %d reads saw two versions at once, e.g. %s", len(torn), reads, torn[0])
	}
}
