package printers

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/duration"
)

// tables holds the columns of every resource Skiff serves, as kubectl
// shows them.
var tables = map[schema.GroupResource]printer{
	{Resource: "pods"}: {
		columns: []column{
			{header: "NAME", name: true}, {header: "READY"}, {header: "STATUS"}, {header: "RESTARTS"}, {header: "AGE"},
			{header: "IP", wide: true}, {header: "NODE", wide: true}, {header: "NOMINATED NODE", wide: true}, {header: "READINESS GATES", wide: true},
		},
		row: podRow,
	},
	{Group: "apps", Resource: "deployments"}: {
		columns: []column{
			{header: "NAME", name: true}, {header: "READY"}, {header: "UP-TO-DATE"}, {header: "AVAILABLE"}, {header: "AGE"},
			{header: "CONTAINERS", wide: true}, {header: "IMAGES", wide: true}, {header: "SELECTOR", wide: true},
		},
		row: deploymentRow,
	},
	{Group: "apps", Resource: "replicasets"}: {
		columns: []column{
			{header: "NAME", name: true}, {header: "DESIRED"}, {header: "CURRENT"}, {header: "READY"}, {header: "AGE"},
			{header: "CONTAINERS", wide: true}, {header: "IMAGES", wide: true}, {header: "SELECTOR", wide: true},
		},
		row: replicaSetRow,
	},
	{Group: "apps", Resource: "daemonsets"}: {
		columns: []column{
			{header: "NAME", name: true}, {header: "DESIRED"}, {header: "CURRENT"}, {header: "READY"}, {header: "UP-TO-DATE"}, {header: "AVAILABLE"},
			{header: "NODE SELECTOR"}, {header: "AGE"},
			{header: "CONTAINERS", wide: true}, {header: "IMAGES", wide: true}, {header: "SELECTOR", wide: true},
		},
		row: daemonSetRow,
	},
	{Group: "apps", Resource: "controllerrevisions"}: {
		columns: []column{{header: "NAME", name: true}, {header: "CONTROLLER"}, {header: "REVISION"}, {header: "AGE"}},
		row:     controllerRevisionRow,
	},
	{Group: "batch", Resource: "jobs"}: {
		columns: []column{
			{header: "NAME", name: true}, {header: "STATUS"}, {header: "COMPLETIONS"}, {header: "DURATION"}, {header: "AGE"},
			{header: "CONTAINERS", wide: true}, {header: "IMAGES", wide: true}, {header: "SELECTOR", wide: true},
		},
		row: jobRow,
	},
	{Group: "batch", Resource: "cronjobs"}: {
		columns: []column{
			{header: "NAME", name: true}, {header: "SCHEDULE"}, {header: "TIMEZONE"}, {header: "SUSPEND"}, {header: "ACTIVE"}, {header: "LAST SCHEDULE"}, {header: "AGE"},
			{header: "CONTAINERS", wide: true}, {header: "IMAGES", wide: true}, {header: "SELECTOR", wide: true},
		},
		row: cronJobRow,
	},
	{Resource: "services"}: {
		columns: []column{
			{header: "NAME", name: true}, {header: "TYPE"}, {header: "CLUSTER-IP"}, {header: "EXTERNAL-IP"}, {header: "PORT(S)"}, {header: "AGE"},
			{header: "SELECTOR", wide: true},
		},
		row: serviceRow,
	},
	{Resource: "nodes"}: {
		columns: []column{
			{header: "NAME", name: true}, {header: "STATUS"}, {header: "ROLES"}, {header: "AGE"}, {header: "VERSION"},
			{header: "INTERNAL-IP", wide: true}, {header: "EXTERNAL-IP", wide: true}, {header: "OS-IMAGE", wide: true},
			{header: "KERNEL-VERSION", wide: true}, {header: "CONTAINER-RUNTIME", wide: true},
		},
		row: nodeRow,
	},
	{Resource: "namespaces"}: {
		columns: []column{{header: "NAME", name: true}, {header: "STATUS"}, {header: "AGE"}},
		row: func(obj runtime.Object, _ bool, now time.Time) []string {
			ns := obj.(*corev1.Namespace)
			return []string{ns.Name, string(ns.Status.Phase), HumanAge(ns.CreationTimestamp, now)}
		},
	},
	// Events have no NAME column unless wide, and keep the message
	// before the wide columns.
	{Resource: "events"}: {
		columns: []column{
			{header: "LAST SEEN"}, {header: "TYPE"}, {header: "REASON"}, {header: "OBJECT"},
			{header: "SUBOBJECT", wide: true}, {header: "SOURCE", wide: true},
			{header: "MESSAGE"},
			{header: "FIRST SEEN", wide: true}, {header: "COUNT", wide: true}, {header: "NAME", wide: true, name: true},
		},
		row: eventRow,
	},
	{Group: "coordination.k8s.io", Resource: "leases"}: {
		columns: []column{{header: "NAME", name: true}, {header: "HOLDER"}, {header: "AGE"}},
		row: func(obj runtime.Object, _ bool, now time.Time) []string {
			l := obj.(*coordinationv1.Lease)
			holder := ""
			if l.Spec.HolderIdentity != nil {
				holder = *l.Spec.HolderIdentity
			}
			return []string{l.Name, holder, HumanAge(l.CreationTimestamp, now)}
		},
	},
	{Resource: "configmaps"}: {
		columns: []column{{header: "NAME", name: true}, {header: "DATA"}, {header: "AGE"}},
		row: func(obj runtime.Object, _ bool, now time.Time) []string {
			cm := obj.(*corev1.ConfigMap)
			return []string{cm.Name, strconv.Itoa(len(cm.Data) + len(cm.BinaryData)), HumanAge(cm.CreationTimestamp, now)}
		},
	},
	{Resource: "secrets"}: {
		columns: []column{{header: "NAME", name: true}, {header: "TYPE"}, {header: "DATA"}, {header: "AGE"}},
		row: func(obj runtime.Object, _ bool, now time.Time) []string {
			s := obj.(*corev1.Secret)
			return []string{s.Name, string(s.Type), strconv.Itoa(len(s.Data)), HumanAge(s.CreationTimestamp, now)}
		},
	},
	{Resource: "serviceaccounts"}: {
		columns: []column{{header: "NAME", name: true}, {header: "SECRETS"}, {header: "AGE"}},
		row: func(obj runtime.Object, _ bool, now time.Time) []string {
			sa := obj.(*corev1.ServiceAccount)
			return []string{sa.Name, strconv.Itoa(len(sa.Secrets)), HumanAge(sa.CreationTimestamp, now)}
		},
	},
	{Group: "discovery.k8s.io", Resource: "endpointslices"}: {
		columns: []column{{header: "NAME", name: true}, {header: "ADDRESSTYPE"}, {header: "PORTS"}, {header: "ENDPOINTS"}, {header: "AGE"}},
		row:     endpointSliceRow,
	},
}

// HumanAge is how long ago t was, seen from now, in the short form of
// kubectl's AGE column (apimachinery's HumanDuration, which kubectl
// uses): "45s", "5m3s", "3h12m", "3d", "2y4d". A zero time is
// "<unknown>".
func HumanAge(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

// OrNone is s, or "<none>" when s is empty: how kubectl's tables and
// describe show a missing value.
func OrNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// Replicas reads a spec.replicas, which the API server defaults to 1.
func Replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

// containerCells are the CONTAINERS and IMAGES cells of a pod template.
func containerCells(cs []corev1.Container) (names, images string) {
	n := make([]string, len(cs))
	im := make([]string, len(cs))
	for i, c := range cs {
		n[i], im[i] = c.Name, c.Image
	}
	return strings.Join(n, ","), strings.Join(im, ",")
}

func deploymentRow(obj runtime.Object, _ bool, now time.Time) []string {
	d := obj.(*appsv1.Deployment)
	names, images := containerCells(d.Spec.Template.Spec.Containers)
	selector := "<invalid>"
	if s, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err == nil {
		selector = s.String()
	}
	return []string{
		d.Name,
		fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, Replicas(d.Spec.Replicas)),
		strconv.Itoa(int(d.Status.UpdatedReplicas)),
		strconv.Itoa(int(d.Status.AvailableReplicas)),
		HumanAge(d.CreationTimestamp, now),
		names, images, selector,
	}
}

func jobRow(obj runtime.Object, _ bool, now time.Time) []string {
	j := obj.(*batchv1.Job)
	names, images := containerCells(j.Spec.Template.Spec.Containers)
	return []string{
		j.Name, JobStatus(j), JobCompletions(j), JobDuration(j, now), HumanAge(j.CreationTimestamp, now),
		names, images, OrNone(metav1.FormatLabelSelector(j.Spec.Selector)),
	}
}

// JobStatus is a Job's STATUS cell, as kubectl words it: Complete,
// Failed, Terminating, Suspended, FailureTarget, SuccessCriteriaMet or
// Running, the first that holds.
func JobStatus(j *batchv1.Job) string {
	has := func(t batchv1.JobConditionType) bool {
		for _, c := range j.Status.Conditions {
			if c.Type == t && c.Status == corev1.ConditionTrue {
				return true
			}
		}
		return false
	}
	switch {
	case has(batchv1.JobComplete):
		return "Complete"
	case has(batchv1.JobFailed):
		return "Failed"
	case j.DeletionTimestamp != nil:
		return "Terminating"
	case has(batchv1.JobSuspended):
		return "Suspended"
	case has(batchv1.JobFailureTarget):
		return "FailureTarget"
	case has(batchv1.JobSuccessCriteriaMet):
		return "SuccessCriteriaMet"
	}
	return "Running"
}

// JobCompletions is the COMPLETIONS cell: "2/5", or for a work queue
// without completions "0/1 of 3" (succeeded of one, out of parallelism).
func JobCompletions(j *batchv1.Job) string {
	switch {
	case j.Spec.Completions != nil:
		return fmt.Sprintf("%d/%d", j.Status.Succeeded, *j.Spec.Completions)
	case j.Spec.Parallelism != nil && *j.Spec.Parallelism > 1:
		return fmt.Sprintf("%d/1 of %d", j.Status.Succeeded, *j.Spec.Parallelism)
	}
	return fmt.Sprintf("%d/1", j.Status.Succeeded)
}

// JobDuration is the DURATION cell: from start to completion, or to now
// while the Job has not completed; empty before it starts.
func JobDuration(j *batchv1.Job, now time.Time) string {
	switch {
	case j.Status.StartTime == nil:
		return ""
	case j.Status.CompletionTime == nil:
		return duration.HumanDuration(now.Sub(j.Status.StartTime.Time))
	}
	return duration.HumanDuration(j.Status.CompletionTime.Sub(j.Status.StartTime.Time))
}

func cronJobRow(obj runtime.Object, _ bool, now time.Time) []string {
	cj := obj.(*batchv1.CronJob)
	names, images := containerCells(cj.Spec.JobTemplate.Spec.Template.Spec.Containers)
	tz := "<none>"
	if cj.Spec.TimeZone != nil {
		tz = *cj.Spec.TimeZone
	}
	suspend := "False"
	if cj.Spec.Suspend != nil && *cj.Spec.Suspend {
		suspend = "True"
	}
	last := "<none>"
	if cj.Status.LastScheduleTime != nil {
		last = HumanAge(*cj.Status.LastScheduleTime, now)
	}
	return []string{
		cj.Name, cj.Spec.Schedule, tz, suspend, strconv.Itoa(len(cj.Status.Active)), last, HumanAge(cj.CreationTimestamp, now),
		names, images, OrNone(metav1.FormatLabelSelector(cj.Spec.JobTemplate.Spec.Selector)),
	}
}

func replicaSetRow(obj runtime.Object, _ bool, now time.Time) []string {
	rs := obj.(*appsv1.ReplicaSet)
	names, images := containerCells(rs.Spec.Template.Spec.Containers)
	return []string{
		rs.Name,
		strconv.Itoa(int(Replicas(rs.Spec.Replicas))),
		strconv.Itoa(int(rs.Status.Replicas)),
		strconv.Itoa(int(rs.Status.ReadyReplicas)),
		HumanAge(rs.CreationTimestamp, now),
		names, images, metav1.FormatLabelSelector(rs.Spec.Selector),
	}
}

func daemonSetRow(obj runtime.Object, _ bool, now time.Time) []string {
	ds := obj.(*appsv1.DaemonSet)
	names, images := containerCells(ds.Spec.Template.Spec.Containers)
	st := ds.Status
	return []string{
		ds.Name,
		strconv.Itoa(int(st.DesiredNumberScheduled)),
		strconv.Itoa(int(st.CurrentNumberScheduled)),
		strconv.Itoa(int(st.NumberReady)),
		strconv.Itoa(int(st.UpdatedNumberScheduled)),
		strconv.Itoa(int(st.NumberAvailable)),
		labels.FormatLabels(ds.Spec.Template.Spec.NodeSelector),
		HumanAge(ds.CreationTimestamp, now),
		names, images, metav1.FormatLabelSelector(ds.Spec.Selector),
	}
}

// controllerRevisionRow names a revision's controller with its kind and
// group, as kubectl does: "daemonset.apps/fluentd".
func controllerRevisionRow(obj runtime.Object, _ bool, now time.Time) []string {
	cr := obj.(*appsv1.ControllerRevision)
	controller := "<none>"
	if ref := metav1.GetControllerOf(cr); ref != nil {
		kind := ref.Kind
		if gv, err := schema.ParseGroupVersion(ref.APIVersion); err == nil && gv.Group != "" {
			kind += "." + gv.Group
		}
		controller = strings.ToLower(kind) + "/" + ref.Name
	}
	return []string{cr.Name, controller, strconv.FormatInt(cr.Revision, 10), HumanAge(cr.CreationTimestamp, now)}
}

func serviceRow(obj runtime.Object, wide bool, now time.Time) []string {
	svc := obj.(*corev1.Service)
	clusterIP := "<none>"
	if len(svc.Spec.ClusterIPs) > 0 {
		clusterIP = svc.Spec.ClusterIPs[0]
	}
	return []string{
		svc.Name,
		string(svc.Spec.Type),
		clusterIP,
		externalIPs(svc, wide),
		OrNone(ServicePorts(svc.Spec.Ports)),
		HumanAge(svc.CreationTimestamp, now),
		labels.FormatLabels(svc.Spec.Selector),
	}
}

// ServicePorts is the PORT(S) cell: "80/TCP,443:30443/TCP", with the node
// port after the port when there is one.
func ServicePorts(ports []corev1.ServicePort) string {
	out := make([]string, len(ports))
	for i, p := range ports {
		if p.NodePort > 0 {
			out[i] = fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol)
		} else {
			out[i] = fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		}
	}
	return strings.Join(out, ",")
}

// loadBalancerCellWidth is how much of a load balancer's addresses the
// EXTERNAL-IP cell shows without -o wide.
const loadBalancerCellWidth = 16

// externalIPs is the EXTERNAL-IP cell: the addresses a service is reached
// at from outside the cluster.
func externalIPs(svc *corev1.Service, wide bool) string {
	switch svc.Spec.Type {
	case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort:
		if len(svc.Spec.ExternalIPs) > 0 {
			return strings.Join(svc.Spec.ExternalIPs, ",")
		}
		return "<none>"
	case corev1.ServiceTypeLoadBalancer:
		// The load balancer's addresses, sorted and without repeats.
		seen := map[string]bool{}
		var lb []string
		for _, in := range svc.Status.LoadBalancer.Ingress {
			a := in.IP
			if a == "" {
				a = in.Hostname
			}
			if a != "" && !seen[a] {
				seen[a] = true
				lb = append(lb, a)
			}
		}
		sort.Strings(lb)
		lbCell := strings.Join(lb, ",")
		if !wide && len(lbCell) > loadBalancerCellWidth {
			lbCell = lbCell[:loadBalancerCellWidth-3] + "..."
		}
		if len(svc.Spec.ExternalIPs) > 0 {
			var all []string
			if lbCell != "" {
				all = strings.Split(lbCell, ",")
			}
			return strings.Join(append(all, svc.Spec.ExternalIPs...), ",")
		}
		if lbCell == "" {
			return "<pending>"
		}
		return lbCell
	case corev1.ServiceTypeExternalName:
		return svc.Spec.ExternalName
	}
	return "<unknown>"
}

func nodeRow(obj runtime.Object, _ bool, now time.Time) []string {
	n := obj.(*corev1.Node)
	info := n.Status.NodeInfo
	roles := strings.Join(NodeRoles(n), ",")
	return []string{
		n.Name,
		NodeStatus(n),
		OrNone(roles),
		HumanAge(n.CreationTimestamp, now),
		info.KubeletVersion,
		nodeAddress(n, corev1.NodeInternalIP),
		nodeAddress(n, corev1.NodeExternalIP),
		orUnknown(info.OSImage),
		orUnknown(info.KernelVersion),
		orUnknown(info.ContainerRuntimeVersion),
	}
}

// NodeStatus is the STATUS cell of a node: Ready, NotReady or Unknown
// (no Ready condition yet), followed by ",SchedulingDisabled" for a
// cordoned node.
func NodeStatus(n *corev1.Node) string {
	status := "Unknown"
	for _, c := range n.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		if c.Status == corev1.ConditionTrue {
			status = "Ready"
		} else {
			status = "NotReady"
		}
	}
	if n.Spec.Unschedulable {
		status += ",SchedulingDisabled"
	}
	return status
}

// Node labels that give a node its roles.
const (
	nodeRolePrefix = "node-role.kubernetes.io/" // node-role.kubernetes.io/<role>=""
	nodeRoleLabel  = "kubernetes.io/role"       // kubernetes.io/role=<role>
)

// NodeRoles lists a node's roles, sorted, from its role labels.
func NodeRoles(n *corev1.Node) []string {
	set := map[string]bool{}
	for k, v := range n.Labels {
		if role, ok := strings.CutPrefix(k, nodeRolePrefix); ok && role != "" {
			set[role] = true
		} else if k == nodeRoleLabel && v != "" {
			set[v] = true
		}
	}
	roles := make([]string, 0, len(set))
	for r := range set {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	return roles
}

// nodeAddress is the node's first address of type typ, or "<none>".
func nodeAddress(n *corev1.Node, typ corev1.NodeAddressType) string {
	for _, a := range n.Status.Addresses {
		if a.Type == typ {
			return a.Address
		}
	}
	return "<none>"
}

func orUnknown(s string) string {
	if s == "" {
		return "<unknown>"
	}
	return s
}

func eventRow(obj runtime.Object, _ bool, now time.Time) []string {
	e := obj.(*corev1.Event)
	// Old-style events have first and last timestamps and a count;
	// new-style ones an event time and, once repeated, a series.
	first := HumanAge(e.FirstTimestamp, now)
	if e.FirstTimestamp.IsZero() {
		first = HumanAge(metav1.Time(e.EventTime), now)
	}
	last := first
	if !e.LastTimestamp.IsZero() {
		last = HumanAge(e.LastTimestamp, now)
	}
	count := max(e.Count, 1)
	if e.Series != nil {
		last = HumanAge(metav1.Time(e.Series.LastObservedTime), now)
		count = e.Series.Count
	}
	object := strings.ToLower(e.InvolvedObject.Kind)
	if e.InvolvedObject.Name != "" {
		object += "/" + e.InvolvedObject.Name
	}
	return []string{
		last,
		e.Type,
		e.Reason,
		object,
		e.InvolvedObject.FieldPath,
		EventSource(e),
		strings.TrimSpace(e.Message),
		first,
		strconv.Itoa(int(count)),
		e.Name,
	}
}

// EventSource names who reported an event: "kubelet, node-1", or the
// reporting controller of a new-style event.
func EventSource(e *corev1.Event) string {
	component, host := e.Source.Component, e.Source.Host
	if component == "" {
		component = e.ReportingController
	}
	if host == "" {
		host = e.ReportingInstance
	}
	if host == "" {
		return component
	}
	return component + ", " + host
}

// listCellMax is how many items a list cell shows before "+ N more...".
const listCellMax = 3

// listCell joins the first few items, noting how many more there are, or
// says "<unset>" when there are none.
func listCell(items []string) string {
	if len(items) == 0 {
		return "<unset>"
	}
	if len(items) > listCellMax {
		return fmt.Sprintf("%s + %d more...", strings.Join(items[:listCellMax], ","), len(items)-listCellMax)
	}
	return strings.Join(items, ",")
}

func endpointSliceRow(obj runtime.Object, _ bool, now time.Time) []string {
	s := obj.(*discoveryv1.EndpointSlice)
	var ports, addrs []string
	for _, p := range s.Ports {
		switch {
		case p.Port != nil:
			ports = append(ports, strconv.Itoa(int(*p.Port)))
		case p.Name != nil:
			ports = append(ports, *p.Name)
		default:
			ports = append(ports, "*")
		}
	}
	for _, ep := range s.Endpoints {
		addrs = append(addrs, ep.Addresses...)
	}
	return []string{s.Name, string(s.AddressType), listCell(ports), listCell(addrs), HumanAge(s.CreationTimestamp, now)}
}
