// Package nsutil creates, enters and removes Linux namespaces that are
// named by a path in the file system.
//
// # Namespaces belong to threads
//
// On Linux a network, IPC or UTS namespace is an attribute of a thread, not
// of a process: unshare(2) and setns(2) change only the calling thread. A Go
// program, however, runs goroutines on whichever thread the scheduler picks.
// Every function here therefore follows one pattern:
//
//  1. runtime.LockOSThread, so that the goroutine and its thread stay
//     together;
//  2. change the thread's namespace;
//  3. do the work;
//  4. either put the thread back exactly as it was and unlock it, or — when
//     that is impossible — leave it locked. A goroutine that exits while
//     still locked takes its thread with it: the runtime discards the
//     thread instead of reusing it, so a "tainted" thread never runs
//     unrelated code.
//
// The Go runtime never starts new threads by cloning a locked thread, so a
// namespace change does not leak into other threads either.
//
// # Pinning a namespace to a path
//
// A namespace lives as long as something refers to it: a process inside
// it, an open file descriptor, or a bind mount of its /proc/<pid>/task/<tid>/ns/<kind>
// file. NewPinned creates fresh namespaces on a throwaway thread and
// bind-mounts them onto ordinary files (the way "ip netns add" does under
// /run/netns). The namespaces then outlive that thread and can be joined
// later by path: by Do, by a container runtime, or by netlink. Unpin
// removes the bind mount; the kernel frees the namespace once nothing else
// refers to it (a veth inside a freed network namespace disappears too).
//
// # Working inside a network namespace
//
// Do runs a function on a thread that has joined a network namespace.
// Only that one thread is inside: goroutines started by the function run
// elsewhere, in the caller's namespace. Two consequences are worth
// knowing:
//
//   - A socket belongs to the namespace in which it was created, for its
//     whole life. Dial and Listen create the socket inside Do and return
//     it; the connection may then be used from any goroutine.
//   - A child process inherits the namespaces of the thread that forked it.
//     StartIn calls exec.Cmd.Start inside Do, so the child starts in the
//     namespace (the tests check that this holds for Go's os/exec).
//
// Addresses given to Dial should be literal IPs: name resolution may run
// on other threads and would then use the caller's network namespace.
//
// Package nstest offers NewNetns, a scratch network namespace for tests.
package nsutil
