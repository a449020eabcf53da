package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/skiffdev/skiff/internal/logging"
)

// Options configures a Runtime.
type Options struct {
	// Root holds the runtime's state: sandboxes (pinned namespaces),
	// containers' records and logs of their shims, libcontainer's files.
	// None of it needs to outlive a reboot, after which no container
	// runs anyway, so a tmpfs such as /run is the right place: creating
	// and deleting the dozens of small files each container needs is much
	// cheaper there than on a disk file system.
	Root string
	// WritableRoot holds each container's writable layer, which can grow
	// large and belongs on disk. Root when empty.
	WritableRoot string
	// CgroupRoot is the cgroup under which each pod gets its own,
	// "/skiff" when empty.
	CgroupRoot string
}

// Sandbox is the set of namespaces that the containers of one pod share,
// each one pinned at a path.
type Sandbox struct {
	ID                  string
	NetNS, IPCNS, UTSNS string
}

// Mount is a bind mount of a host path into a container.
type Mount struct {
	Source, Destination string
	ReadOnly            bool
}

// Resources are a container's cgroup limits; a zero field is unset.
type Resources struct {
	CPUShares   uint64
	CPUQuota    int64
	CPUPeriod   uint64
	MemoryLimit int64
}

// Spec describes a container to start.
type Spec struct {
	ID, SandboxID string
	// Labels are kept with the container and returned by List.
	Labels map[string]string
	// Layers are the image's layer directories, lowest first.
	Layers     []string
	Args, Env  []string
	WorkingDir string
	UID, GID   uint32
	// AdditionalGIDs are supplementary groups of the container's process.
	AdditionalGIDs []uint32
	// Hostname is ignored: containers share the host name of their
	// sandbox, set by CreateSandbox.
	Hostname  string
	Mounts    []Mount
	Resources Resources
	// OOMScoreAdj is the container's oom_score_adj: which processes the
	// kernel kills first when the node runs out of memory. Nil leaves the
	// kernel's default, 0.
	OOMScoreAdj *int
	// LogPath is the container's log file (kubelet/logs format); output is
	// discarded when empty. LogMaxBytes > 0 rotates it at that size.
	LogPath     string
	LogMaxBytes int64
}

// State is where a container is in its life.
type State string

// The states of a container.
const (
	StateCreated State = "created"
	StateRunning State = "running"
	StateExited  State = "exited"
	StateUnknown State = "unknown"
)

// The reasons reported for an exited container, as Kubernetes names them.
const (
	ReasonCompleted  = "Completed"
	ReasonError      = "Error"
	ReasonOOMKilled  = "OOMKilled"
	ReasonStartError = "StartError"
)

// Status is what the runtime knows about one container.
type Status struct {
	ID, SandboxID string
	Labels        map[string]string
	State         State
	// Pid is the container's first process as seen from the host, while
	// it runs.
	Pid                              int
	CreatedAt, StartedAt, FinishedAt time.Time
	// ExitCode is the exit status, or 128+N when killed by signal N.
	ExitCode int
	// Reason is "Completed", "Error", "OOMKilled" or "StartError".
	Reason, Message string
	LogPath         string
}

// TerminalSize is the size of a terminal in characters.
type TerminalSize struct{ Width, Height uint16 }

// ExecOptions describe a process to run in a running container: Args is
// its command line; Env adds to the container's environment (a variable
// set in both takes Env's value). The process runs as the container's user
// in its working directory. With TTY the process gets a terminal: Stdin
// feeds it, Stdout receives it (Stderr is unused) and each size sent on
// Resize is applied to it (one already waiting is the initial size).
type ExecOptions struct {
	Args, Env []string
	Stdin     io.Reader
	Stdout    io.Writer
	Stderr    io.Writer
	TTY       bool
	Resize    <-chan TerminalSize
}

// ErrNotFound is wrapped by errors about a container or sandbox that does
// not exist.
var ErrNotFound = errors.New("not found")

// Runtime runs containers. All its methods are safe for concurrent use.
type Runtime struct {
	root       string
	writable   string // parent of the containers' writable layers
	cgroupRoot string
	// log is the logger of the context New was given, set once: the
	// runtime logs from the goroutines that wait for its shims (started
	// by New for adopted containers, by Start for new ones), which
	// outlive the call that started them, and from methods that take no
	// context (Remove).
	log   *slog.Logger
	exits chan string

	// containerLocks holds a mutex per container id (see lockContainer).
	containerLocks sync.Map

	// mu guards shims.
	mu sync.Mutex
	// shims holds the shims this Runtime waits for (its children, or those
	// adopted at New), by container id.
	shims map[string]*shimHandle
}

// shimHandle tracks one live shim; done is closed when it has exited.
type shimHandle struct {
	done chan struct{}
}

// exitsBuffer is how many exit notifications wait for a reader before new
// ones are dropped.
const exitsBuffer = 1024

// New returns a Runtime keeping its state in opts.Root. Containers left
// running by an earlier Runtime on the same Root are adopted: their exits
// are reported on Exits like those of containers this one starts. The
// Runtime logs through the logger ctx carries, with part=runtime.
func New(ctx context.Context, opts Options) (*Runtime, error) {
	if opts.Root == "" {
		return nil, errors.New("runtime root directory not set")
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, err
	}
	cgroupRoot := opts.CgroupRoot
	if cgroupRoot == "" {
		cgroupRoot = "/skiff"
	}
	cgroupRoot = filepath.Clean("/" + cgroupRoot)
	writable := opts.WritableRoot
	if writable == "" {
		writable = filepath.Join(root, "writable")
	}
	if writable, err = filepath.Abs(writable); err != nil {
		return nil, err
	}
	r := &Runtime{
		root:       root,
		writable:   writable,
		cgroupRoot: cgroupRoot,
		log:        logging.From(ctx).With("part", "runtime"),
		exits:      make(chan string, exitsBuffer),
		shims:      map[string]*shimHandle{},
	}
	for _, dir := range []string{r.sandboxesDir(), r.containersDir(), r.libcontainerDir(), r.writable} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return nil, err
		}
	}
	if err := r.adoptAll(); err != nil {
		return nil, err
	}
	if err := r.removeOrphanedLayers(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Runtime) sandboxesDir() string          { return filepath.Join(r.root, "sandboxes") }
func (r *Runtime) containersDir() string         { return filepath.Join(r.root, "containers") }
func (r *Runtime) libcontainerDir() string       { return filepath.Join(r.root, "libcontainer") }
func (r *Runtime) containerDir(id string) string { return filepath.Join(r.containersDir(), id) }
func (r *Runtime) writableDir(id string) string  { return filepath.Join(r.writable, id) }

// lockContainer serializes the changes to one container's directory made
// by Remove and by the recording of a lost shim's exit, and returns the
// unlock function.
func (r *Runtime) lockContainer(id string) func() {
	m, _ := r.containerLocks.LoadOrStore(id, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// removeOrphanedLayers deletes the writable layers of containers the
// runtime no longer has: after a reboot wiped Root, or a Remove cut short.
func (r *Runtime) removeOrphanedLayers() error {
	entries, err := os.ReadDir(r.writable)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if _, err := os.Stat(r.containerDir(e.Name())); errors.Is(err, fs.ErrNotExist) {
			if err := os.RemoveAll(r.writableDir(e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// Exits returns the channel on which the ids of containers that exited are
// sent, for containers this Runtime started and for those it adopted. The
// channel is buffered; when it is full, ids are dropped rather than block
// the runtime, so callers must also relist from time to time.
func (r *Runtime) Exits() <-chan string { return r.exits }

// Version names the container library and its version.
func (r *Runtime) Version() string { return "libcontainer " + libcontainerVersion() }

func libcontainerVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == "github.com/opencontainers/runc" {
				if m.Replace != nil {
					m = m.Replace
				}
				if len(m.Version) > 1 && m.Version[0] == 'v' {
					return m.Version[1:]
				}
				return m.Version
			}
		}
	}
	return "1.5.2"
}

// track registers a live shim and returns its handle.
func (r *Runtime) track(id string) *shimHandle {
	h := &shimHandle{done: make(chan struct{})}
	r.mu.Lock()
	r.shims[id] = h
	r.mu.Unlock()
	return h
}

// shimExited is called once the shim of container id has ended: it makes
// sure an exit is on record, wakes whoever waits for the container and
// reports the id on Exits.
func (r *Runtime) shimExited(id string, h *shimHandle) {
	if err := r.recordLostShim(id); err != nil {
		r.log.Error("recording the exit of a container whose shim died", "container", id, "err", err)
	}
	r.mu.Lock()
	if r.shims[id] == h {
		delete(r.shims, id)
	}
	r.mu.Unlock()
	close(h.done)
	select {
	case r.exits <- id:
	default:
		r.log.Warn("exit notification dropped: nobody reads Exits", "container", id)
	}
}

// waitExited waits until container id has exited (its shim is gone and the
// exit is on record) or ctx ends.
func (r *Runtime) waitExited(ctx context.Context, id string) error {
	r.mu.Lock()
	h := r.shims[id]
	r.mu.Unlock()
	if h != nil {
		select {
		case <-h.done:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("waiting for container %q to exit: %w", id, ctx.Err())
		}
	}
	// Not a shim we wait for (should not happen): poll the files.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := r.Status(id)
		if err != nil {
			return err
		}
		if st.State == StateExited {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("waiting for container %q to exit: %w", id, ctx.Err())
		}
	}
}
