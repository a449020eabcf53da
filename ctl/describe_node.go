package ctl

import (
	"fmt"
	"sort"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/skiffdev/skiff/ctl/printers"
)

// This file describes nodes, with the pods they run and the resources
// those pods request.

func describeNode(node *corev1.Node, lease *coordinationv1.Lease, leaseErr error, pods []corev1.Pod, events *corev1.EventList, now time.Time) string {
	w := newDescribeWriter()
	w.write(0, "Name:\t%s\n", node.Name)
	w.write(0, "Roles:\t%s\n", printers.OrNone(strings.Join(printers.NodeRoles(node), ",")))
	w.labels("", "Labels", node.Labels)
	w.annotations("", "Annotations", node.Annotations)
	w.write(0, "CreationTimestamp:\t%s\n", rfc1123(node.CreationTimestamp))
	taints := append([]corev1.Taint(nil), node.Spec.Taints...)
	sort.SliceStable(taints, func(i, j int) bool {
		return string(taints[i].Effect)+","+taints[i].Key < string(taints[j].Effect)+","+taints[j].Key
	})
	var taintText []string
	for _, t := range taints {
		taintText = append(taintText, t.ToString())
	}
	w.multiline("", "Taints", taintText)
	w.write(0, "Unschedulable:\t%t\n", node.Spec.Unschedulable)
	if leaseErr != nil {
		w.write(0, "Lease:\tFailed to get lease: %s\n", leaseErr)
	} else {
		holder, acquired, renewed := "<unset>", "<unset>", "<unset>"
		if lease.Spec.HolderIdentity != nil {
			holder = *lease.Spec.HolderIdentity
		}
		if lease.Spec.AcquireTime != nil {
			acquired = lease.Spec.AcquireTime.Time.Format(time.RFC1123Z)
		}
		if lease.Spec.RenewTime != nil {
			renewed = lease.Spec.RenewTime.Time.Format(time.RFC1123Z)
		}
		w.write(0, "Lease:\n")
		w.write(1, "HolderIdentity:\t%s\n", holder)
		w.write(1, "AcquireTime:\t%s\n", acquired)
		w.write(1, "RenewTime:\t%s\n", renewed)
	}
	if len(node.Status.Conditions) > 0 {
		w.write(0, "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n")
		w.write(1, "----\t------\t-----------------\t------------------\t------\t-------\n")
		for _, c := range node.Status.Conditions {
			w.write(1, "%s \t%s \t%s \t%s \t%s \t%s\n", c.Type, c.Status, rfc1123(c.LastHeartbeatTime), rfc1123(c.LastTransitionTime), c.Reason, c.Message)
		}
	}
	w.write(0, "Addresses:\n")
	for _, a := range node.Status.Addresses {
		w.write(1, "%s:\t%s\n", a.Type, a.Address)
	}
	for _, l := range []struct {
		title string
		list  corev1.ResourceList
	}{{"Capacity", node.Status.Capacity}, {"Allocatable", node.Status.Allocatable}} {
		if len(l.list) == 0 {
			continue
		}
		w.write(0, "%s:\n", l.title)
		for _, name := range sortedResourceNames(l.list) {
			q := l.list[name]
			w.write(1, "%s:\t%s\n", name, q.String())
		}
	}
	info := node.Status.NodeInfo
	w.write(0, "System Info:\n")
	for _, f := range [][2]string{
		{"Machine ID", info.MachineID},
		{"System UUID", info.SystemUUID},
		{"Boot ID", info.BootID},
		{"Kernel Version", info.KernelVersion},
		{"OS Image", info.OSImage},
		{"Operating System", info.OperatingSystem},
		{"Architecture", info.Architecture},
		{"Container Runtime Version", info.ContainerRuntimeVersion},
		{"Kubelet Version", info.KubeletVersion},
	} {
		w.write(1, "%s:\t%s\n", f[0], f[1])
	}
	if node.Spec.PodCIDR != "" {
		w.write(0, "PodCIDR:\t%s\n", node.Spec.PodCIDR)
	}
	if len(node.Spec.PodCIDRs) > 0 {
		w.write(0, "PodCIDRs:\t%s\n", strings.Join(node.Spec.PodCIDRs, ","))
	}
	if node.Spec.ProviderID != "" {
		w.write(0, "ProviderID:\t%s\n", node.Spec.ProviderID)
	}
	w.nodePods(node, pods, now)
	w.events(events, now)
	return w.String()
}

// nodePods writes the pods running on a node with what they request and
// are limited to, as a share of what the node can allocate, and the
// totals.
func (w *describeWriter) nodePods(node *corev1.Node, pods []corev1.Pod, now time.Time) {
	alloc := node.Status.Allocatable
	if len(alloc) == 0 {
		alloc = node.Status.Capacity
	}
	// percent is q's share of the node's allocatable r, in whole percent.
	percent := func(q resource.Quantity, r corev1.ResourceName) int64 {
		a, ok := alloc[r]
		if !ok || a.IsZero() {
			return 0
		}
		if r == corev1.ResourceCPU {
			return int64(float64(q.MilliValue()) / float64(a.MilliValue()) * 100)
		}
		return int64(float64(q.Value()) / float64(a.Value()) * 100)
	}
	cell := func(q resource.Quantity, r corev1.ResourceName) string {
		return fmt.Sprintf("%s (%d%%)", q.String(), percent(q, r))
	}

	w.write(0, "Non-terminated Pods:\t(%d in total)\n", len(pods))
	w.write(1, "Namespace\tName\t\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge\n")
	w.write(1, "---------\t----\t\t------------\t----------\t---------------\t-------------\t---\n")
	totalReq, totalLim := corev1.ResourceList{}, corev1.ResourceList{}
	for i := range pods {
		p := &pods[i]
		req, lim := podResources(p)
		addResources(totalReq, req)
		addResources(totalLim, lim)
		w.write(1, "%s\t%s\t\t%s\t%s\t%s\t%s\t%s\n", p.Namespace, p.Name,
			cell(req[corev1.ResourceCPU], corev1.ResourceCPU), cell(lim[corev1.ResourceCPU], corev1.ResourceCPU),
			cell(req[corev1.ResourceMemory], corev1.ResourceMemory), cell(lim[corev1.ResourceMemory], corev1.ResourceMemory),
			printers.HumanAge(p.CreationTimestamp, now))
	}
	w.write(0, "Allocated resources:\n  (Total limits may be over 100 percent, i.e., overcommitted.)\n")
	w.write(1, "Resource\tRequests\tLimits\n")
	w.write(1, "--------\t--------\t------\n")
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage} {
		w.write(1, "%s\t%s\t%s\n", r, cell(totalReq[r], r), cell(totalLim[r], r))
	}
}

// podResources adds up what a pod's containers request and are limited
// to: its app containers and sidecars together, or, if more, any init
// container with the sidecars started before it; plus the pod's overhead.
func podResources(p *corev1.Pod) (req, lim corev1.ResourceList) {
	req, lim = corev1.ResourceList{}, corev1.ResourceList{}
	sidecarReq, sidecarLim := corev1.ResourceList{}, corev1.ResourceList{}
	initReq, initLim := corev1.ResourceList{}, corev1.ResourceList{}
	for _, c := range p.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			addResources(sidecarReq, c.Resources.Requests)
			addResources(sidecarLim, c.Resources.Limits)
			continue
		}
		// An init container runs next to the sidecars started so far.
		atReq, atLim := corev1.ResourceList{}, corev1.ResourceList{}
		addResources(atReq, sidecarReq)
		addResources(atReq, c.Resources.Requests)
		addResources(atLim, sidecarLim)
		addResources(atLim, c.Resources.Limits)
		maxResources(initReq, atReq)
		maxResources(initLim, atLim)
	}
	for _, c := range p.Spec.Containers {
		addResources(req, c.Resources.Requests)
		addResources(lim, c.Resources.Limits)
	}
	addResources(req, sidecarReq)
	addResources(lim, sidecarLim)
	maxResources(req, initReq)
	maxResources(lim, initLim)
	addResources(req, p.Spec.Overhead)
	addResources(lim, p.Spec.Overhead)
	return req, lim
}

func addResources(into, l corev1.ResourceList) {
	for name, q := range l {
		sum := into[name]
		sum.Add(q)
		into[name] = sum
	}
}

func maxResources(into, l corev1.ResourceList) {
	for name, q := range l {
		if cur, ok := into[name]; !ok || q.Cmp(cur) > 0 {
			into[name] = q.DeepCopy()
		}
	}
}
