package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/skiffdev/skiff/internal/nsutil"
)

func (r *Runtime) sandbox(id string) Sandbox {
	dir := filepath.Join(r.sandboxesDir(), id)
	return Sandbox{
		ID:    id,
		NetNS: filepath.Join(dir, string(nsutil.Net)),
		IPCNS: filepath.Join(dir, string(nsutil.IPC)),
		UTSNS: filepath.Join(dir, string(nsutil.UTS)),
	}
}

// isPinned tells whether path is a namespace file (a pinned namespace),
// not the plain file under it.
func isPinned(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// CreateSandbox makes the network, IPC and UTS namespaces of pod id, with
// hostname as the host name, and pins them under ROOT/sandboxes/<id>. A
// sandbox that already exists is returned as it is; a partial one (left by
// a crash) is made again.
func (r *Runtime) CreateSandbox(id, hostname string) (Sandbox, error) {
	if err := validateID(id); err != nil {
		return Sandbox{}, err
	}
	sb := r.sandbox(id)
	if isPinned(sb.NetNS) && isPinned(sb.IPCNS) && isPinned(sb.UTSNS) {
		return sb, nil
	}
	if err := r.unpinSandbox(sb); err != nil {
		return Sandbox{}, err
	}
	paths := map[nsutil.Kind]string{nsutil.Net: sb.NetNS, nsutil.IPC: sb.IPCNS, nsutil.UTS: sb.UTSNS}
	if err := nsutil.NewPinned(paths, hostname); err != nil {
		return Sandbox{}, fmt.Errorf("sandbox %q: %w", id, err)
	}
	return sb, nil
}

func (r *Runtime) unpinSandbox(sb Sandbox) error {
	var errs []error
	for _, p := range []string{sb.NetNS, sb.IPCNS, sb.UTSNS} {
		if err := nsutil.Unpin(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RemoveSandbox unpins the namespaces of pod id and removes its directory
// and its cgroup. Its containers must have been removed first (a cgroup
// with processes cannot go). Removing a missing sandbox is not an error.
func (r *Runtime) RemoveSandbox(id string) error {
	if err := validateID(id); err != nil {
		return err
	}
	sb := r.sandbox(id)
	if err := r.unpinSandbox(sb); err != nil {
		return fmt.Errorf("sandbox %q: %w", id, err)
	}
	// The cgroup goes before the directory: a crash in between leaves the
	// directory, by which the sandbox is found and removed again.
	if err := removeCgroup(filepath.Join(r.cgroupRoot, id)); err != nil {
		return fmt.Errorf("sandbox %q: %w", id, err)
	}
	if err := os.RemoveAll(filepath.Join(r.sandboxesDir(), id)); err != nil {
		return fmt.Errorf("sandbox %q: %w", id, err)
	}
	return nil
}

// ListSandboxes reports the sandboxes on disk, sorted by id.
func (r *Runtime) ListSandboxes() ([]Sandbox, error) {
	entries, err := os.ReadDir(r.sandboxesDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Sandbox
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, r.sandbox(e.Name()))
		}
	}
	return out, nil
}
