// Package nodestatus is the part of the kubelet that tells the control
// plane its node exists and is alive: it registers the Node object, keeps
// its status true, and renews the node's Lease.
//
// # Two heartbeats
//
// Like Kubernetes, a node sends two kinds of heartbeat, because they have
// different costs:
//
//   - The Lease kube-node-lease/<node> is a tiny object whose renewTime is
//     set every RenewInterval (10 s). The node lifecycle controller
//     (controllers/nodelifecycle) watches Leases; a node whose Lease stops
//     moving for its grace period is marked Unknown, tainted unreachable,
//     and eventually loses its pods. A renewal costs one small write. The
//     Lease has the Node as its owner, so it is garbage-collected with it.
//   - The Node's status (capacity, allocatable, addresses, node info,
//     conditions) is large. It is recomputed every StatusInterval (10 s)
//     but written only when something in it changed, or when
//     StatusReportInterval (1 min) has passed since the last write, which
//     moves the conditions' lastHeartbeatTime. On a quiet node the Node
//     object's resourceVersion therefore stays put for a minute at a time,
//     and watchers of Nodes are not woken for nothing.
//
// # What Run does, in order
//
//  1. Reads the machine once: CPUs (runtime.NumCPU, the CPUs the kubelet
//     may run on), MemTotal from /proc/meminfo, the size of RootDir's
//     filesystem as ephemeral-storage, the kernel release (uname), the OS
//     (PRETTY_NAME of /etc/os-release), machine ID, boot ID and product
//     UUID where they can be read.
//  2. Registers the Node: creates it with its labels (kubernetes.io/
//     hostname, kubernetes.io/os, kubernetes.io/arch and Config.Labels),
//     spec.podCIDR(s) from Config.PodCIDR, and a first status. If a Node
//     of that name exists (the kubelet restarted, or an admin created it),
//     the kubelet takes it over: it adds its labels, sets the pod CIDR only
//     if the Node has none (the API server forbids changing it), keeps the
//     taints and everything else in the spec, and replaces the status
//     fields it owns at the first status check.
//  3. Starts the Lease loop on its own goroutine. A failed renewal is
//     logged with its error and retried after 200 ms, then 400 ms, and so
//     on up to the renew interval.
//  4. Runs the status loop until ctx ends: read the Node, compute the
//     status it should have (desiredStatus, a pure function of the
//     machine facts, the Health result and the current status), compare,
//     write through the status subresource if needed, and pass the Node to
//     onNode. A conflict (someone else wrote the Node meanwhile, such as
//     the node lifecycle controller marking it Unknown) means read again
//     and recompute. A Node deleted behind the kubelet's back is
//     registered again.
//
// # The status it reports
//
// allocatable = capacity − Config.Reserved, per resource, never below
// zero. The Ready condition is True with reason KubeletReady ("kubelet is
// posting ready status") while Config.Health returns nil, and False with
// reason KubeletNotReady and the error's text as message when it does not.
// MemoryPressure, DiskPressure and PIDPressure are always False: Skiff
// does not evict pods under pressure. A condition's lastTransitionTime
// moves only when its status changes. Conditions set by others (say
// NetworkUnavailable) and status fields the kubelet does not own are kept.
// nodeInfo.containerRuntimeVersion has Kubernetes' "<runtime>://<version>"
// form; see RuntimeVersionString.
//
// # The caller's duties
//
// Fill a Config (NodeName at least), call Run on a goroutine of its own
// and cancel its context to stop it. Use onNode to learn the Node's
// spec.podCIDR once it is known; onNode must return quickly. Health
// should be cheap: it is called on every status check.
package nodestatus
