// Package kubelet runs the pods the scheduler bound to this node.
//
// The kubelet is level-triggered. It never acts on "what happened" (a pod
// was added, a container died); every change only wakes the worker of the
// pod concerned, and the worker's sync compares two things as they are
// now — the pod object from the API and the containers the runtime has —
// and does whatever closes the gap. That is why a restarted kubelet needs
// no memory of its own: it lists the runtime, finds the containers it
// started before (their labels name the pod and the run), and carries on.
//
// Every sync has the same shape (README.md draws it). It observes the pod
// object, the pod's runs in the runtime, the probes' results and the
// restart backoff; computePodActions, a pure function, decides from those
// alone what to kill, start, hold back, probe and remove; the sync
// carries that out and writes the status. The decision's doc comment
// lists the caller's duties in order, and the scripts in testdata/ tell
// stories through it (go test -run TestPodActions, no root needed). What
// a worker keeps about its pod from one sync to the next — the sandbox,
// the backoff, the status last written — is its own podState.
//
// One pod's life on the node:
//
//   - sandbox: its network, IPC and UTS namespaces are created and pinned
//     (kubelet/runtime), a veth to the node's bridge gets it an IP from
//     the node's pod CIDR (kubelet/network), and /etc/hosts,
//     /etc/hostname and /etc/resolv.conf are written for it;
//   - its ConfigMaps and Secrets are watched one by one while it needs
//     them (configwatch.go), and its volumes made from them (volumes.go,
//     written as whole versions by atomicwriter.go); a change of one
//     wakes the pod, and a container whose environment lacks one waits
//     in CreateContainerConfigError until it appears;
//   - init containers run one at a time, each to success;
//   - containers start from their images (kubelet/images) with the
//     command, environment, user, volumes and cgroup limits of their
//     spec; each in its own pid and mount namespaces, all in the pod's
//     network namespace, so they reach each other on localhost;
//   - exited containers are restarted by the restartPolicy, with
//     exponential backoff (CrashLoopBackOff); liveness probe failures
//     restart them; readiness probes drive the Ready condition
//     (kubelet/prober);
//   - the status (phase, conditions, one status per container) is
//     computed from all of that and written only when it changed;
//   - deletion: SIGTERM, SIGKILL after the grace period, then everything
//     of the pod is removed from the node, and only then the pod object.
//
// Beside the pods, the kubelet registers its Node and heartbeats through
// a Lease (kubelet/nodestatus), and serves logs and exec to the API server
// (kubelet/server).
package kubelet
