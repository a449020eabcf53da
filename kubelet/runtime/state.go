package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The files of a container under ROOT/containers/<id>/.
const (
	containerFile = "container.json"
	lockFile      = "shim.lock"
	shimPidFile   = "shim.pid"
	startedFile   = "started.json"
	exitFile      = "exit.json"
	shimLogFile   = "shim.log"
)

// containerRecord is container.json: everything the shim needs to create
// the container, written by Start before the shim runs.
type containerRecord struct {
	Spec      Spec      `json:"spec"`
	CreatedAt time.Time `json:"createdAt"`
	// Cgroup is the container's cgroup path, below the pod's.
	Cgroup string `json:"cgroup"`
	// PodCgroup is the pod's cgroup path, CgroupRoot/<sandbox>.
	PodCgroup string  `json:"podCgroup"`
	Sandbox   Sandbox `json:"sandbox"`
	// StateRoot is libcontainer's state directory (shared by containers).
	StateRoot string `json:"stateRoot"`
	// Writable holds the container's writable layer (upper and work
	// directories of its overlay).
	Writable string `json:"writable"`
}

// startedRecord is started.json, written by the shim once the container's
// process runs.
type startedRecord struct {
	Pid       int       `json:"pid"`
	StartedAt time.Time `json:"startedAt"`
}

// exitRecord is exit.json, written by the shim when the container ended
// (or could not start), or by the Runtime when the shim died first.
type exitRecord struct {
	ExitCode   int       `json:"exitCode"`
	Signal     int       `json:"signal,omitempty"`
	OOMKilled  bool      `json:"oomKilled,omitempty"`
	Reason     string    `json:"reason"`
	Message    string    `json:"message,omitempty"`
	FinishedAt time.Time `json:"finishedAt"`
}

// writeJSONAtomic writes v as JSON to path atomically (see
// writeFileAtomic).
func writeJSONAtomic(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, data)
}

// writeFileAtomic writes data to path through a temporary file and a
// rename, so readers see the old file, the new one, or none, never a part.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

// readJSON reads path into v; a missing file gives an error wrapping
// fs.ErrNotExist.
func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	return nil
}

// shimAlive tells whether the shim of the container in dir still runs: the
// shim holds an exclusive lock on shim.lock for its whole life, so a shared
// lock can be taken only once it is gone. Unlike a pid, a lock cannot be
// confused with an unrelated process that got the same pid later.
func shimAlive(dir string) (bool, error) {
	f, err := os.Open(filepath.Join(dir, lockFile))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("testing the shim lock: %w", err)
	}
	return false, nil // closing f drops our lock
}

// readShimPid reads the pid the shim wrote for itself.
func readShimPid(dir string) (int, error) {
	data, err := os.ReadFile(filepath.Join(dir, shimPidFile))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}

// Status reports the state of container id from its files.
func (r *Runtime) Status(id string) (Status, error) {
	if err := validateID(id); err != nil {
		return Status{}, err
	}
	dir := r.containerDir(id)
	var rec containerRecord
	if err := readJSON(filepath.Join(dir, containerFile), &rec); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Status{}, fmt.Errorf("container %q: %w", id, ErrNotFound)
		}
		return Status{}, err
	}
	st := Status{
		ID:        id,
		SandboxID: rec.Spec.SandboxID,
		Labels:    rec.Spec.Labels,
		State:     StateCreated,
		CreatedAt: rec.CreatedAt,
		LogPath:   rec.Spec.LogPath,
	}
	var started startedRecord
	hasStarted := readJSON(filepath.Join(dir, startedFile), &started) == nil
	if hasStarted {
		st.StartedAt = started.StartedAt
	}

	var ex exitRecord
	err := readJSON(filepath.Join(dir, exitFile), &ex)
	if errors.Is(err, fs.ErrNotExist) {
		alive, lerr := shimAlive(dir)
		if lerr != nil {
			st.State = StateUnknown
			st.Message = lerr.Error()
			return st, nil
		}
		if alive {
			if hasStarted {
				st.State = StateRunning
				st.Pid = started.Pid
			}
			return st, nil
		}
		// The shim is gone: it may have written exit.json just now.
		err = readJSON(filepath.Join(dir, exitFile), &ex)
		if errors.Is(err, fs.ErrNotExist) {
			ex = lostShimExit(hasStarted)
			err = nil
		}
	}
	if err != nil {
		st.State = StateUnknown
		st.Message = err.Error()
		return st, nil
	}
	st.State = StateExited
	st.ExitCode = ex.ExitCode
	st.Reason = ex.Reason
	st.Message = ex.Message
	st.FinishedAt = ex.FinishedAt
	return st, nil
}

// lostShimExit is the exit reported for a container whose shim died
// without recording one.
func lostShimExit(started bool) exitRecord {
	ex := exitRecord{
		ExitCode: 255,
		Reason:   ReasonError,
		Message:  "the container's shim exited without recording the container's exit",
	}
	if !started {
		ex.Reason = ReasonStartError
	}
	return ex
}

// List reports every container the runtime has, running or not, sorted
// by id.
func (r *Runtime) List() ([]Status, error) {
	entries, err := os.ReadDir(r.containersDir())
	if err != nil {
		return nil, err
	}
	out := make([]Status, 0, len(entries))
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		st, err := r.Status(e.Name())
		if errors.Is(err, ErrNotFound) {
			continue // being created or removed right now
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// validateID accepts the ids libcontainer accepts: letters, digits and
// "_+-.", not "." or "..".
func validateID(id string) error {
	if id == "" || id == "." || id == ".." || len(id) > 1024 {
		return fmt.Errorf("invalid id %q", id)
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_' || c == '+' || c == '-' || c == '.':
		default:
			return fmt.Errorf("invalid id %q: only letters, digits and _+-. are allowed", id)
		}
	}
	return nil
}
