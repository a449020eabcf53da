package nsutil

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"

	"golang.org/x/sys/unix"
)

// Kind names a namespace type as it appears under /proc/<pid>/ns.
type Kind string

// The namespace kinds NewPinned can create.
const (
	Net Kind = "net"
	IPC Kind = "ipc"
	UTS Kind = "uts"
)

// cloneFlag maps a Kind to its unshare(2) flag.
var cloneFlag = map[Kind]int{
	Net: unix.CLONE_NEWNET,
	IPC: unix.CLONE_NEWIPC,
	UTS: unix.CLONE_NEWUTS,
}

// NewPinned creates one new namespace of each kind in paths, all with a
// single unshare(2) on a locked thread, and bind-mounts each onto its path.
// The file at each path is created (mode 0444, parent directories 0755) and
// must not exist yet; an error for an existing file wraps fs.ErrExist.
//
// When a UTS namespace is made, its hostname is set to hostname (unless
// hostname is empty). A new network namespace gets its loopback device
// brought up, so 127.0.0.1 works inside it.
//
// The thread that did the unshare is never returned to the Go scheduler:
// its goroutine exits while locked and the runtime discards it. On error,
// whatever was already pinned is unpinned again.
func NewPinned(paths map[Kind]string, hostname string) error {
	if len(paths) == 0 {
		return errors.New("no namespaces requested")
	}
	flags := 0
	for k, p := range paths {
		f, ok := cloneFlag[k]
		if !ok {
			return fmt.Errorf("unsupported namespace kind %q", k)
		}
		if p == "" {
			return fmt.Errorf("empty path for %s namespace", k)
		}
		flags |= f
	}
	if _, ok := paths[UTS]; !ok && hostname != "" {
		return errors.New("a hostname needs a uts namespace")
	}

	errc := make(chan error, 1)
	go func() {
		// Never unlocked: after unshare this thread no longer matches the
		// rest of the process, so it must end with this goroutine.
		runtime.LockOSThread()
		// The runtime cannot end the process's main thread; if this
		// goroutine happens to run there, the thread is parked forever
		// instead, and would keep the new namespaces alive (and make
		// /proc/self/ns/* point at them). So move the thread back into
		// its original namespaces once the pins are made; it is still
		// thrown away afterwards.
		restore, err := saveNamespaces(paths)
		if err != nil {
			errc <- err
			return
		}
		err = pinOnThisThread(paths, flags, hostname)
		restore()
		errc <- err
	}()
	return <-errc
}

// saveNamespaces opens the calling thread's current namespaces of the kinds
// in paths and returns a function that re-enters them (best effort).
func saveNamespaces(paths map[Kind]string) (restore func(), err error) {
	fds := map[Kind]int{}
	closeAll := func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	for k := range paths {
		fd, err := unix.Open("/proc/thread-self/ns/"+string(k), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("open current %s namespace: %w", k, err)
		}
		fds[k] = fd
	}
	return func() {
		for k, fd := range fds {
			_ = unix.Setns(fd, cloneFlag[k])
		}
		closeAll()
	}, nil
}

// pinOnThisThread does NewPinned's work on the locked, disposable thread.
func pinOnThisThread(paths map[Kind]string, flags int, hostname string) error {
	if err := unix.Unshare(flags); err != nil {
		return fmt.Errorf("unshare namespaces: %w", err)
	}
	if _, ok := paths[UTS]; ok && hostname != "" {
		if err := unix.Sethostname([]byte(hostname)); err != nil {
			return fmt.Errorf("set hostname %q: %w", hostname, err)
		}
	}
	if _, ok := paths[Net]; ok {
		if err := loopbackUp(); err != nil {
			return err
		}
	}

	// Pin in a fixed order so that errors are reproducible.
	kinds := make([]Kind, 0, len(paths))
	for k := range paths {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool { return kinds[i] < kinds[j] })

	tid := unix.Gettid()
	var pinned []string
	for _, k := range kinds {
		src := fmt.Sprintf("/proc/%d/task/%d/ns/%s", os.Getpid(), tid, k)
		if err := bindOnto(src, paths[k]); err != nil {
			for _, p := range pinned {
				_ = Unpin(p)
			}
			return fmt.Errorf("pin %s namespace at %q: %w", k, paths[k], err)
		}
		pinned = append(pinned, paths[k])
	}
	return nil
}

// bindOnto creates the file dst and bind-mounts src onto it.
func bindOnto(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return err // wraps fs.ErrExist for an existing file
	}
	f.Close()
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		os.Remove(dst)
		return fmt.Errorf("bind mount: %w", err)
	}
	return nil
}

// loopbackUp sets IFF_UP on "lo" in the calling thread's network namespace.
// A plain ioctl is enough here and avoids a netlink round trip.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring lo up: read flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	return nil
}

// Unpin undoes NewPinned for one path: it detaches the bind mount (lazily,
// so a namespace still in use elsewhere is not disturbed) and removes the
// file. A missing path is not an error, nor is a file that is not mounted
// (left behind by a crash between creating and mounting it).
func Unpin(path string) error {
	// A file may carry several stacked mounts if something went wrong
	// before; peel them all off.
	for {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if err == nil {
			continue
		}
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		if errors.Is(err, unix.EINVAL) { // not a mount point (any more)
			break
		}
		return fmt.Errorf("unmount %q: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %q: %w", path, err)
	}
	return nil
}

// Do runs fn on a locked OS thread that has joined the network namespace
// at netnsPath, then moves the thread back. Only that thread is inside:
// goroutines that fn starts are not. If the thread cannot be moved back,
// it stays locked so that it is discarded when the goroutine ends; the
// error then says so.
func Do(netnsPath string, fn func() error) error {
	target, err := unix.Open(netnsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open netns %q: %w", netnsPath, err)
	}
	defer unix.Close(target)

	runtime.LockOSThread()
	// The thread's own namespace file; /proc/thread-self is this thread.
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open current netns: %w", err)
	}
	defer unix.Close(orig)

	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter netns %q: %w", netnsPath, err)
	}
	fnErr := fn()
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		// Stay locked: this thread must not run anything else.
		return errors.Join(fnErr, fmt.Errorf("return from netns %q: %w", netnsPath, err))
	}
	runtime.UnlockOSThread()
	return fnErr
}

// Dial connects to addr from inside the network namespace at netnsPath.
// The socket is created there and stays there, so the returned connection
// can be used from any goroutine. addr should hold a literal IP address.
func Dial(ctx context.Context, netnsPath, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := Do(netnsPath, func() error {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		return nil, err
	}
	return conn, nil
}

// Listen opens a listener inside the network namespace at netnsPath. The
// listener (and every connection it accepts) belongs to that namespace and
// can be used from any goroutine.
func Listen(netnsPath, network, addr string) (net.Listener, error) {
	var l net.Listener
	err := Do(netnsPath, func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// StartIn starts cmd so that the child process runs inside the network
// namespace at netnsPath: cmd.Start forks from a thread that has joined the
// namespace, and a child inherits the namespaces of the thread that forked
// it. The caller waits for cmd as usual.
func StartIn(netnsPath string, cmd *exec.Cmd) error {
	return Do(netnsPath, cmd.Start)
}
