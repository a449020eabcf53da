package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	// The cgroup manager needs the device rules code to apply device
	// access rules.
	_ "github.com/opencontainers/cgroups/devices"
	"github.com/opencontainers/runc/libcontainer"
	// nsenter's C constructor joins the namespaces when the binary runs as
	// "<self> init", before the Go runtime starts.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"

	"github.com/skiffdev/skiff/kubelet/logs"
)

// shimCommand is the first argument that makes the binary a shim.
const shimCommand = "container-shim"

// The file descriptors a shim gets from Start (after stdin, stdout, stderr).
const (
	shimReportFd = 3 // write end of a pipe: one shimReport, then EOF
	shimLockFd   = 4 // shim.lock, locked; held open for the shim's life
)

// shimReport is what a shim tells Start: the container's pid, or why it
// could not start.
type shimReport struct {
	Pid   int    `json:"pid,omitempty"`
	Error string `json:"error,omitempty"`
}

func init() {
	if len(os.Args) > 1 && os.Args[1] == shimCommand {
		// A shim keeps its main goroutine on the main thread (locking it
		// in init is what guarantees that): libcontainer joins the
		// container's mount namespace on a locked thread that it then lets
		// die, which only works when that thread is not the main one.
		goruntime.LockOSThread()
	}
}

// Reexec must be called first in main (and in TestMain). When the process
// was started as libcontainer's container init ("<self> init") it runs
// that and never returns; when started as a container shim
// ("<self> container-shim ...") it runs the shim and exits. Otherwise it
// returns false and main goes on.
func Reexec() bool {
	if len(os.Args) < 2 {
		return false
	}
	switch os.Args[1] {
	case "init":
		libcontainer.Init() // does not return
	case shimCommand:
		os.Exit(shimMain(os.Args[2:]))
	}
	return false
}

// shimMain runs a shim: args are the runtime's root and the container id.
func shimMain(args []string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if len(args) != 2 {
		log.Error("usage: container-shim ROOT ID")
		return 2
	}
	// The shim starts in a mount namespace of its own, a copy of the
	// node's. Making it a slave keeps the node's unmounts (a sandbox's
	// pinned namespaces going away) flowing in, while nothing mounted
	// here — the container's overlay root file system — flows out. So the
	// node's mount table does not grow with every container, no other
	// container's mount namespace receives a copy of this one's mounts,
	// and the root file system goes away by itself when the shim and the
	// container are gone.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		log.Error("making the shim's mount namespace a slave of the node's", "err", err)
		return 1
	}
	// Neither descriptor may leak into the container.
	unix.CloseOnExec(shimReportFd)
	unix.CloseOnExec(shimLockFd)
	report := os.NewFile(shimReportFd, "report")
	lock := os.NewFile(shimLockFd, lockFile)
	s := &shim{
		id:  args[1],
		dir: filepath.Join(args[0], "containers", args[1]),
		log: log.With("container", args[1]),
	}
	code := s.run(report)
	// The lock must stay held until the very end: keep its file (and the
	// finalizer that would close it) alive until here.
	goruntime.KeepAlive(lock)
	return code
}

// shim creates, watches and cleans up one container.
type shim struct {
	id, dir string
	log     *slog.Logger
}

// run is the shim's life: create and start the container, report to
// Start, copy its output to the log, wait for its end, record it, clean
// up. It returns the shim's exit code.
func (s *shim) run(report *os.File) int {
	// Processes orphaned inside the container's tree are reparented to
	// the shim rather than to the host's init.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		s.log.Warn("cannot become a child subreaper", "err", err)
	}
	if err := writeFileAtomic(filepath.Join(s.dir, shimPidFile), []byte(strconv.Itoa(os.Getpid()))); err != nil {
		s.log.Warn("cannot record the shim's pid", "err", err)
	}

	var rec containerRecord
	if err := readJSON(filepath.Join(s.dir, containerFile), &rec); err != nil {
		s.failed(report, nil, fmt.Errorf("reading the container record: %w", err))
		return 1
	}
	c, p, out, err := s.start(&rec)
	if err != nil {
		s.failed(report, c, err)
		return 1
	}
	pid, _ := p.Pid()
	started := startedRecord{Pid: pid, StartedAt: time.Now().UTC()}
	if err := writeJSONAtomic(filepath.Join(s.dir, startedFile), started); err != nil {
		s.log.Error("recording the start", "err", err)
	}
	sendReport(report, shimReport{Pid: pid})

	ps, _ := p.Wait() // an error here means a non-zero exit: ps says which
	out.wait()
	ex := s.exitOf(c, ps)
	if err := writeJSONAtomic(filepath.Join(s.dir, exitFile), ex); err != nil {
		s.log.Error("recording the exit", "err", err)
	}
	s.cleanup(c)
	return 0
}

// failed records a start error, cleans up and reports the error.
func (s *shim) failed(report *os.File, c *libcontainer.Container, err error) {
	s.log.Error("container did not start", "err", err)
	ex := exitRecord{ExitCode: 128, Reason: ReasonStartError, Message: err.Error(), FinishedAt: time.Now().UTC()}
	if werr := writeJSONAtomic(filepath.Join(s.dir, exitFile), ex); werr != nil {
		s.log.Error("recording the start error", "err", werr)
	}
	s.cleanup(c)
	sendReport(report, shimReport{Error: err.Error()})
}

// cleanup destroys the libcontainer container (its cgroup and state) and
// unmounts the root file system.
func (s *shim) cleanup(c *libcontainer.Container) {
	if c != nil {
		if err := c.Destroy(); err != nil {
			s.log.Error("destroying the container", "err", err)
		}
	}
	if err := unmountRootfs(s.dir); err != nil {
		s.log.Error("unmounting the root file system", "err", err)
	}
}

func sendReport(f *os.File, r shimReport) {
	_ = json.NewEncoder(f).Encode(r)
	f.Close()
}

// start mounts the root file system, creates the container and runs its
// process with its output going to the log. On error the returned
// container, if not nil, must be destroyed.
func (s *shim) start(rec *containerRecord) (*libcontainer.Container, *libcontainer.Process, *outputCopier, error) {
	rootfs, err := mountRootfs(s.dir, rec.Writable, rec.Spec.Layers)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg, err := libcontainerConfig(rec, rootfs)
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := libcontainer.Create(rec.StateRoot, s.id, cfg)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("creating the container: %w", err)
	}
	out, err := newOutputCopier(rec.Spec.LogPath, rec.Spec.LogMaxBytes)
	if err != nil {
		return c, nil, nil, err
	}
	spec := rec.Spec
	p := &libcontainer.Process{
		Args:             spec.Args,
		Env:              containerEnv(spec.Env, nil),
		Cwd:              workingDir(spec.WorkingDir),
		UID:              int(spec.UID),
		GID:              int(spec.GID),
		AdditionalGroups: intGIDs(spec.AdditionalGIDs),
		Stdout:           out.stdoutW,
		Stderr:           out.stderrW,
		Init:             true,
	}
	err = c.Run(p)
	out.started() // the container has its copies of the write ends now
	if err != nil {
		out.wait()
		return c, nil, nil, fmt.Errorf("starting the container: %w", err)
	}
	return c, p, out, nil
}

func intGIDs(gids []uint32) []int {
	out := make([]int, len(gids))
	for i, g := range gids {
		out[i] = int(g)
	}
	return out
}

// exitOf turns how the container's process ended into an exit record.
func (s *shim) exitOf(c *libcontainer.Container, ps *os.ProcessState) exitRecord {
	ex := exitRecord{FinishedAt: time.Now().UTC(), ExitCode: 255}
	if ps != nil {
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
			switch {
			case ws.Signaled():
				ex.Signal = int(ws.Signal())
				ex.ExitCode = 128 + ex.Signal
			case ws.Exited():
				ex.ExitCode = ws.ExitStatus()
			}
		}
	}
	if st, err := c.State(); err == nil {
		n, err := oomKills(st.CgroupPaths)
		if err != nil {
			s.log.Warn("reading the OOM kill counter", "err", err)
		}
		ex.OOMKilled = n > 0
	}
	switch {
	case ex.OOMKilled && ex.ExitCode != 0:
		ex.Reason = ReasonOOMKilled
	case ex.ExitCode == 0:
		ex.Reason = ReasonCompleted
	default:
		ex.Reason = ReasonError
	}
	return ex
}

// outputCopier carries a container's stdout and stderr through pipes into
// its log file.
type outputCopier struct {
	stdoutW, stderrW *os.File // the container's ends
	stdoutR, stderrR *os.File
	w                *logs.Writer // nil: output discarded
	wg               sync.WaitGroup
}

func newOutputCopier(path string, maxBytes int64) (*outputCopier, error) {
	o := &outputCopier{}
	var err error
	if path != "" {
		if o.w, err = logs.NewWriter(path, maxBytes); err != nil {
			return nil, err
		}
	}
	if o.stdoutR, o.stdoutW, err = os.Pipe(); err != nil {
		o.closeAll()
		return nil, err
	}
	if o.stderrR, o.stderrW, err = os.Pipe(); err != nil {
		o.closeAll()
		return nil, err
	}
	return o, nil
}

func (o *outputCopier) closeAll() {
	for _, f := range []*os.File{o.stdoutR, o.stdoutW, o.stderrR, o.stderrW} {
		if f != nil {
			f.Close()
		}
	}
	if o.w != nil {
		o.w.Close()
	}
}

// started closes the shim's copies of the write ends and starts copying:
// each copy ends when every process holding a write end has exited.
func (o *outputCopier) started() {
	o.stdoutW.Close()
	o.stderrW.Close()
	for name, r := range map[string]*os.File{"stdout": o.stdoutR, "stderr": o.stderrR} {
		var dst io.Writer = io.Discard
		if o.w != nil {
			dst = o.w.Stream(name)
		}
		o.wg.Add(1)
		go func() {
			defer o.wg.Done()
			_, _ = io.Copy(dst, r)
			r.Close()
		}()
	}
}

// wait waits for the copies to end and closes the log.
func (o *outputCopier) wait() {
	o.wg.Wait()
	if o.w != nil {
		o.w.Close()
	}
}

// errShimDied is returned by Start when the shim exited without a report.
var errShimDied = errors.New("the container shim exited without reporting")
