package algorithm

import (
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
)

// Requests that scoring assumes for a container that names none (the same
// defaults as Kubernetes). They never count when checking whether a pod
// fits.
const (
	defaultMilliCPURequest = 100
	defaultMemoryRequest   = 200 * 1024 * 1024
)

// wildcardHostIP is the host IP that binds every address; a port taken on
// it conflicts with the same port on any address.
const wildcardHostIP = "0.0.0.0"

// NewNodeInfo returns the scheduler's view of node, with no pods yet.
func NewNodeInfo(node *corev1.Node) *NodeInfo {
	ni := &NodeInfo{}
	ni.SetNode(node)
	return ni
}

// SetNode replaces the node object (after an update) and keeps the pods.
func (ni *NodeInfo) SetNode(node *corev1.Node) {
	ni.Node = node
	a := node.Status.Allocatable
	ni.Allocatable = Resources{
		MilliCPU: quantity(a, corev1.ResourceCPU, true),
		Memory:   quantity(a, corev1.ResourceMemory, false),
		Pods:     quantity(a, corev1.ResourcePods, false),
	}
}

// AddPod counts pod on the node. Adding a pod whose UID is already there
// replaces the old copy.
func (ni *NodeInfo) AddPod(pod *corev1.Pod) {
	if i := ni.indexOf(pod.UID); i >= 0 {
		ni.removeAt(i)
	}
	ni.Pods = append(ni.Pods, pod)
	ni.Requested = ni.Requested.add(PodRequests(pod))
	ni.NonZeroRequested = ni.NonZeroRequested.add(podRequests(pod, true))
	for _, hp := range hostPorts(pod) {
		if ni.UsedPorts == nil {
			ni.UsedPorts = map[string]bool{}
		}
		ni.UsedPorts[hp.key] = true
	}
	if owner := controllerUID(pod); owner != "" {
		if ni.ownerPods == nil {
			ni.ownerPods = map[types.UID]int{}
		}
		ni.ownerPods[owner]++
	}
}

// RemovePod forgets the pod with pod's UID, and reports whether it was
// there. The sums shrink by what the stored copy added, so the pod passed
// in may be a newer version of it.
func (ni *NodeInfo) RemovePod(pod *corev1.Pod) bool {
	i := ni.indexOf(pod.UID)
	if i < 0 {
		return false
	}
	ni.removeAt(i)
	return true
}

// Clone returns a copy that can be changed without changing ni. The node
// and pod objects are shared: they are never modified.
func (ni *NodeInfo) Clone() *NodeInfo {
	c := *ni
	c.Pods = slices.Clone(ni.Pods)
	if ni.UsedPorts != nil {
		c.UsedPorts = make(map[string]bool, len(ni.UsedPorts))
		for k, v := range ni.UsedPorts {
			c.UsedPorts[k] = v
		}
	}
	if ni.ownerPods != nil {
		c.ownerPods = make(map[types.UID]int, len(ni.ownerPods))
		for k, v := range ni.ownerPods {
			c.ownerPods[k] = v
		}
	}
	return &c
}

func (ni *NodeInfo) indexOf(uid types.UID) int {
	for i, p := range ni.Pods {
		if p.UID == uid {
			return i
		}
	}
	return -1
}

func (ni *NodeInfo) removeAt(i int) {
	old := ni.Pods[i]
	ni.Pods = slices.Delete(ni.Pods, i, i+1)
	ni.Requested = ni.Requested.sub(PodRequests(old))
	ni.NonZeroRequested = ni.NonZeroRequested.sub(podRequests(old, true))
	if len(hostPorts(old)) > 0 {
		// Two pods may hold the same port (one bound with spec.nodeName
		// regardless), so recount instead of deleting keys.
		ni.UsedPorts = nil
		for _, p := range ni.Pods {
			for _, hp := range hostPorts(p) {
				if ni.UsedPorts == nil {
					ni.UsedPorts = map[string]bool{}
				}
				ni.UsedPorts[hp.key] = true
			}
		}
	}
	if owner := controllerUID(old); owner != "" {
		if ni.ownerPods[owner]--; ni.ownerPods[owner] <= 0 {
			delete(ni.ownerPods, owner)
		}
	}
}

// PodRequests is what a pod asks of a node, by Kubernetes' rule: the
// larger of the sum of its containers' requests and what its init
// containers need at their peak (each init container runs alone, next to
// the sidecars started before it), plus the pod's overhead. Pod-level
// requests (spec.resources), where given, take the place of the
// containers' sum. Pods is always 1.
func PodRequests(pod *corev1.Pod) Resources {
	return podRequests(pod, false)
}

// podRequests computes PodRequests; with nonZero, a container that names
// no cpu or memory request counts the scoring defaults instead.
func podRequests(pod *corev1.Pod, nonZero bool) Resources {
	var sum Resources
	for i := range pod.Spec.Containers {
		sum = sum.add(containerRequests(&pod.Spec.Containers[i], nonZero))
	}
	// Sidecars (init containers that keep running) start in order and
	// stay; a plain init container runs next to the sidecars before it.
	var sidecars, initPeak Resources
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		r := containerRequests(c, nonZero)
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sum = sum.add(r)
			sidecars = sidecars.add(r)
			initPeak = initPeak.max(sidecars)
		} else {
			initPeak = initPeak.max(r.add(sidecars))
		}
	}
	req := sum.max(initPeak)
	if pr := pod.Spec.Resources; pr != nil {
		if q, ok := pr.Requests[corev1.ResourceCPU]; ok {
			req.MilliCPU = q.MilliValue()
		}
		if q, ok := pr.Requests[corev1.ResourceMemory]; ok {
			req.Memory = q.Value()
		}
	}
	req.MilliCPU += quantity(pod.Spec.Overhead, corev1.ResourceCPU, true)
	req.Memory += quantity(pod.Spec.Overhead, corev1.ResourceMemory, false)
	req.Pods = 1
	return req
}

func containerRequests(c *corev1.Container, nonZero bool) Resources {
	var r Resources
	if q, ok := c.Resources.Requests[corev1.ResourceCPU]; ok {
		r.MilliCPU = q.MilliValue()
	} else if nonZero {
		r.MilliCPU = defaultMilliCPURequest
	}
	if q, ok := c.Resources.Requests[corev1.ResourceMemory]; ok {
		r.Memory = q.Value()
	} else if nonZero {
		r.Memory = defaultMemoryRequest
	}
	return r
}

// quantity reads one resource from a list, in milli-units for cpu.
func quantity(list corev1.ResourceList, name corev1.ResourceName, milli bool) int64 {
	q, ok := list[name]
	if !ok {
		return 0
	}
	if milli {
		return q.MilliValue()
	}
	return q.Value()
}

func (r Resources) add(o Resources) Resources {
	return Resources{MilliCPU: r.MilliCPU + o.MilliCPU, Memory: r.Memory + o.Memory, Pods: r.Pods + o.Pods}
}

func (r Resources) sub(o Resources) Resources {
	return Resources{MilliCPU: r.MilliCPU - o.MilliCPU, Memory: r.Memory - o.Memory, Pods: r.Pods - o.Pods}
}

func (r Resources) max(o Resources) Resources {
	return Resources{MilliCPU: max(r.MilliCPU, o.MilliCPU), Memory: max(r.Memory, o.Memory), Pods: max(r.Pods, o.Pods)}
}

// String prints r the way a node's resources are written ("cpu 1500m,
// memory 2Gi, pods 3").
func (r Resources) String() string {
	return "cpu " + resource.NewMilliQuantity(r.MilliCPU, resource.DecimalSI).String() +
		", memory " + resource.NewQuantity(r.Memory, resource.BinarySI).String() +
		", pods " + strconv.FormatInt(r.Pods, 10)
}

// controllerUID is the UID of the object that manages pod (its
// ownerReference with controller: true), or "" for a bare pod.
func controllerUID(pod *corev1.Pod) types.UID {
	for i := range pod.OwnerReferences {
		ref := &pod.OwnerReferences[i]
		if ref.Controller != nil && *ref.Controller {
			return ref.UID
		}
	}
	return ""
}

// hostPort is one host port a pod wants, with the UsedPorts keys that the
// port filter looks up precomputed.
type hostPort struct {
	protocol corev1.Protocol
	ip       string
	port     int32
	// key is this port's UsedPorts key ("TCP/10.0.0.1/80");
	// wildcardKey the same port on 0.0.0.0 ("TCP/0.0.0.0/80").
	key, wildcardKey string
	// prefix and suffix match any address's key for this protocol and
	// port ("TCP/" and "/80").
	prefix, suffix string
}

// hostPorts lists the host ports of pod's containers. An empty protocol
// means TCP and an empty host IP means every address, as in Kubernetes;
// a host port of 0 is no host port.
func hostPorts(pod *corev1.Pod) []hostPort {
	var out []hostPort
	for i := range pod.Spec.Containers {
		for _, p := range pod.Spec.Containers[i].Ports {
			if p.HostPort <= 0 {
				continue
			}
			hp := hostPort{protocol: p.Protocol, ip: p.HostIP, port: p.HostPort}
			if hp.protocol == "" {
				hp.protocol = corev1.ProtocolTCP
			}
			if hp.ip == "" {
				hp.ip = wildcardHostIP
			}
			port := strconv.Itoa(int(hp.port))
			hp.prefix = string(hp.protocol) + "/"
			hp.suffix = "/" + port
			hp.key = hp.prefix + hp.ip + hp.suffix
			hp.wildcardKey = hp.prefix + wildcardHostIP + hp.suffix
			out = append(out, hp)
		}
	}
	return out
}
