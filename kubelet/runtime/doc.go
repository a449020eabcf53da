// Package runtime is the kubelet's container runtime: it runs the
// containers of pods with libcontainer (the library inside runc), with no
// container daemon in between.
//
// # Pieces
//
// A pod is a sandbox plus containers.
//
//   - The sandbox is a set of namespaces that all containers of the pod
//     share: network, IPC and UTS (the host name). CreateSandbox makes them
//     and pins each one by bind-mounting it onto a file under
//     ROOT/sandboxes/<pod>/, so they live on without any process in them.
//   - A container gets its own mount and PID namespaces and joins the
//     sandbox's other namespaces by path. Its root file system is an
//     overlayfs: the image layers, read-only, below a writable directory
//     of its own. Its cgroup is CGROUPROOT/<pod>/<container>, so the pod's
//     cgroup CGROUPROOT/<pod> holds all its containers.
//
// # The shim
//
// Start does not run the container in the kubelet process. It starts a
// small helper, the shim: the same binary re-executed as
// "<self> container-shim ROOT ID", in a session of its own. The shim
// mounts the root file system, creates the libcontainer container, copies
// the container's stdout and stderr into the log file (kubelet/logs), waits
// for the container's first process to end, writes down how it ended
// (exit code, signal, whether the kernel's OOM killer struck) in exit.json,
// cleans up and exits. Because the shim is not the kubelet, the kubelet
// can restart at any time: the containers keep running, their output keeps
// being logged, and their exit is still recorded. containerd-shim and
// conmon exist for the same reason.
//
// libcontainer starts a container's first process by running the binary
// once more, as "<self> init" (its C part, nsenter, joins the namespaces
// before the Go runtime starts). So the binary's main, and a test binary's
// TestMain, must call Reexec first thing: it runs the init or the shim
// when the arguments ask for one, and returns false otherwise.
//
// # State on disk
//
// Everything the runtime knows lives under ROOT (Options.Root), so that a
// new Runtime on the same ROOT picks up where the old one stopped:
//
//	ROOT/sandboxes/<pod>/{net,ipc,uts}     pinned namespaces
//	ROOT/containers/<id>/container.json    the Spec, cgroup and namespaces, written by Start
//	ROOT/containers/<id>/shim.lock         locked by the shim while it lives
//	ROOT/containers/<id>/shim.pid          the shim's pid, to wait for it after a restart
//	ROOT/containers/<id>/started.json      the container's pid and start time
//	ROOT/containers/<id>/exit.json         how it ended
//	ROOT/containers/<id>/{rootfs,upper,work}  the overlayfs
//	ROOT/containers/<id>/shim.log          the shim's own messages (and libcontainer's)
//	ROOT/libcontainer/<id>/                libcontainer's state while the container exists
//
// A container's state follows from these files: with exit.json it has
// exited; otherwise, while its shim holds the lock, it is running (with
// started.json) or still being created (without); a container whose shim
// died without writing exit.json is reported as exited with an error.
//
// # Caller's duties
//
//  1. Call Reexec first in main (and in TestMain).
//  2. New, then List and ListSandboxes to learn what already runs.
//  3. CreateSandbox per pod, Start per container; read Exits to learn when
//     containers end, and relist now and then anyway (Exits drops ids
//     rather than block when nobody reads).
//  4. Stop, then Remove each container; RemoveSandbox when the pod is gone.
//
// The kubelet must not kill the shims when it stops: under systemd, the
// unit needs KillMode=process.
package runtime
