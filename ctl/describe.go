package ctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/skiffdev/skiff/ctl/printers"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/scheme"
)

func init() { register(newDescribeCommand) }

// describeOptions are the flags of `describe`.
type describeOptions struct {
	*Options
	selector   string
	showEvents bool
}

const describeExample = `  # A pod, with its containers, conditions and recent events
  skiffctl describe pod web-7d9f8b6c5-x2k4q

  # Every pod whose name starts with "web-"
  skiffctl describe pods web-

  # A deployment, its rollout and its replica sets
  skiffctl describe deploy/web

  # A node, with the pods running on it
  skiffctl describe node node-1`

func newDescribeCommand(o *Options) *cobra.Command {
	d := &describeOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "describe TYPE [NAME_PREFIX...] | TYPE/NAME...",
		Short: "Show details of a specific resource or group of resources",
		Long: `Show details of objects in kubectl's describe layout: their metadata,
spec and status, related objects (a deployment's replica sets, a service's
endpoints, a node's pods) and their recent events.

With TYPE NAME, an object called NAME is described, or if there is none,
every object whose name starts with NAME. With TYPE alone, every object of
that type (matching -l) is. Pods, deployments, replicasets, services, nodes
and namespaces have their own layout; other types are shown field by field.`,
		Example: describeExample,
		RunE: func(cmd *cobra.Command, args []string) error {
			return d.run(cmd.Context(), args, cmd.Flags().Changed("show-events"))
		},
	}
	f := cmd.Flags()
	f.StringVarP(&d.selector, "selector", "l", "", "label selector to filter on, e.g. -l app=web")
	f.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", o.AllNamespaces, "describe the objects of every namespace")
	f.BoolVar(&d.showEvents, "show-events", true, "show events related to the described object (by default only when one object is described)")
	return cmd
}

func (d *describeOptions) run(ctx context.Context, args []string, showEventsSet bool) error {
	reqs, err := parseGetArgs(args)
	if err != nil {
		return err
	}
	c, err := d.Client()
	if err != nil {
		return err
	}
	type target struct {
		info *scheme.ResourceInfo
		obj  runtime.Object
	}
	var targets []target
	var errs []error
	for _, r := range reqs {
		objs, err := d.find(ctx, c, r, len(args) == 2 && !strings.Contains(args[0], "/"))
		errs = append(errs, err...)
		for _, obj := range objs {
			targets = append(targets, target{r.info, obj})
		}
	}
	// Events are left out when several objects are described, to keep
	// the output short, unless --show-events was given.
	showEvents := d.showEvents && (len(targets) == 1 || showEventsSet)
	now := printClock()
	for i, t := range targets {
		s, err := describeObject(ctx, c, t.info, t.obj, showEvents, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if i > 0 {
			fmt.Fprint(d.Out, "\n\n")
		}
		fmt.Fprint(d.Out, s)
	}
	if len(targets) == 0 && len(errs) == 0 {
		if d.AllNamespaces {
			fmt.Fprintln(d.ErrOut, "No resources found")
		} else {
			fmt.Fprintf(d.ErrOut, "No resources found in %s namespace.\n", d.EffectiveNamespace())
		}
	}
	if len(errs) == 0 {
		return nil
	}
	for _, err := range errs[:len(errs)-1] {
		fmt.Fprintln(d.ErrOut, FormatError(err))
	}
	return errs[len(errs)-1]
}

// find reads the objects a describe request names. With byPrefix (the
// form "describe TYPE NAME"), a name that is not found is taken as a
// prefix of names, as kubectl does.
func (d *describeOptions) find(ctx context.Context, c *client.Client, r getRequest, byPrefix bool) ([]runtime.Object, []error) {
	ns := d.EffectiveNamespace()
	if len(r.names) == 0 && d.AllNamespaces {
		ns = ""
	}
	u, err := c.Untyped(r.info.GroupResource(), ns)
	if err != nil {
		return nil, []error{err}
	}
	list := func(selector string) ([]runtime.Object, error) {
		l, err := u.List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return nil, err
		}
		return meta.ExtractList(l)
	}
	if len(r.names) == 0 {
		objs, err := list(d.selector)
		if err != nil {
			return nil, []error{err}
		}
		return objs, nil
	}
	if d.selector != "" {
		return nil, []error{errors.New("name cannot be provided when a selector is specified")}
	}
	var objs []runtime.Object
	var errs []error
	for _, name := range r.names {
		obj, err := u.Get(ctx, name)
		if err == nil {
			objs = append(objs, obj)
			continue
		}
		if !byPrefix || !apierrors.IsNotFound(err) {
			errs = append(errs, err)
			continue
		}
		all, lerr := list("")
		if lerr != nil {
			errs = append(errs, lerr)
			continue
		}
		var matched []runtime.Object
		for _, o := range all {
			if m, merr := meta.Accessor(o); merr == nil && strings.HasPrefix(m.GetName(), name) {
				matched = append(matched, o)
			}
		}
		if len(matched) == 0 {
			errs = append(errs, err)
		}
		objs = append(objs, matched...)
	}
	return objs, errs
}

// describeObject reads what the description of obj needs besides obj
// itself and renders it.
func describeObject(ctx context.Context, c *client.Client, info *scheme.ResourceInfo, obj runtime.Object, showEvents bool, now time.Time) (string, error) {
	var events *corev1.EventList
	if showEvents {
		var err error
		if events, err = findEvents(ctx, c, obj); err != nil {
			return "", err
		}
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		return describePod(o, events, now), nil
	case *appsv1.Deployment:
		oldRSs, newRS, err := deploymentReplicaSets(ctx, c, o)
		if err != nil {
			return "", err
		}
		return describeDeployment(o, oldRSs, newRS, events, now), nil
	case *appsv1.ReplicaSet:
		counts, err := podPhases(ctx, c, o.Namespace, o.Spec.Selector, o.UID)
		if err != nil {
			return "", err
		}
		return describeReplicaSet(o, counts, events, now), nil
	case *corev1.Service:
		slices, err := c.EndpointSlices(o.Namespace).List(ctx, metav1.ListOptions{
			LabelSelector: labels.Set{discoveryv1.LabelServiceName: o.Name}.String(),
		})
		if err != nil {
			return "", err
		}
		return describeService(o, slices.Items, events, now), nil
	case *corev1.Node:
		pods, err := c.Pods("").List(ctx, metav1.ListOptions{FieldSelector: fields.AndSelectors(
			fields.OneTermEqualSelector("spec.nodeName", o.Name),
			fields.OneTermNotEqualSelector("status.phase", string(corev1.PodSucceeded)),
			fields.OneTermNotEqualSelector("status.phase", string(corev1.PodFailed)),
		).String()})
		if err != nil {
			return "", err
		}
		lease, leaseErr := c.Leases(corev1.NamespaceNodeLease).Get(ctx, o.Name)
		return describeNode(o, lease, leaseErr, pods.Items, events, now), nil
	case *corev1.Namespace:
		return describeNamespace(o), nil
	}
	return describeGeneric(info, obj, events, now)
}

// findEvents lists the events about obj: those whose involvedObject has
// its name, namespace and uid. Kubelets report about a node with the
// node's name as its uid, so a node's events are looked up under both.
func findEvents(ctx context.Context, c *client.Client, obj runtime.Object) (*corev1.EventList, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	uids := []string{string(m.GetUID())}
	if _, isNode := obj.(*corev1.Node); isNode {
		uids = append(uids, m.GetName())
	}
	all := &corev1.EventList{}
	for _, uid := range uids {
		sel := fields.Set{
			"involvedObject.name":      m.GetName(),
			"involvedObject.namespace": m.GetNamespace(),
			"involvedObject.uid":       uid,
		}.AsSelector().String()
		list, err := c.Events(m.GetNamespace()).List(ctx, metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			return nil, err
		}
		all.Items = append(all.Items, list.Items...)
	}
	return all, nil
}

// deploymentReplicaSets finds the replica sets a deployment controls: the
// new one, whose pod template is the deployment's, and the old ones.
func deploymentReplicaSets(ctx context.Context, c *client.Client, d *appsv1.Deployment) (old []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, err error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, nil, err
	}
	list, err := c.ReplicaSets(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, nil, err
	}
	var owned []*appsv1.ReplicaSet
	for i := range list.Items {
		if metav1.IsControlledBy(&list.Items[i], d) {
			owned = append(owned, &list.Items[i])
		}
	}
	sort.SliceStable(owned, func(i, j int) bool {
		a, b := owned[i].CreationTimestamp, owned[j].CreationTimestamp
		if a.Equal(&b) {
			return owned[i].Name < owned[j].Name
		}
		return a.Before(&b)
	})
	for _, rs := range owned {
		if newRS == nil && sameTemplate(&rs.Spec.Template, &d.Spec.Template) {
			newRS = rs
			continue
		}
		old = append(old, rs)
	}
	return old, newRS, nil
}

// sameTemplate compares pod templates, ignoring the pod-template-hash
// label that the deployment controller adds to its replica sets.
func sameTemplate(a, b *corev1.PodTemplateSpec) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	delete(a.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	delete(b.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	return equality.Semantic.DeepEqual(a, b)
}

// phaseCounts counts a controller's pods by phase.
type phaseCounts struct{ running, waiting, succeeded, failed int }

// podPhases counts the pods that match selector and are controlled by the
// object with the given uid.
func podPhases(ctx context.Context, c *client.Client, ns string, selector *metav1.LabelSelector, uid types.UID) (phaseCounts, error) {
	var n phaseCounts
	sel, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		return n, err
	}
	pods, err := c.Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return n, err
	}
	for _, p := range pods.Items {
		ref := metav1.GetControllerOf(&p)
		if ref == nil || ref.UID != uid {
			continue
		}
		switch p.Status.Phase {
		case corev1.PodRunning:
			n.running++
		case corev1.PodPending:
			n.waiting++
		case corev1.PodSucceeded:
			n.succeeded++
		case corev1.PodFailed:
			n.failed++
		}
	}
	return n, nil
}

// describeWriter writes describe's "Key:<TAB>value" lines, indented two
// spaces a level, into a tab writer that aligns each run of lines, with
// kubectl's layout (no minimum width, two spaces of padding).
type describeWriter struct {
	buf bytes.Buffer
	tw  *tabwriter.Writer
}

func newDescribeWriter() *describeWriter {
	w := &describeWriter{}
	w.tw = tabwriter.NewWriter(&w.buf, 0, 8, 2, ' ', 0)
	return w
}

// terminalEscaper keeps text from the cluster from driving the terminal.
var terminalEscaper = strings.NewReplacer("\x1b", "^[", "\r", `\r`)

// write writes format at the given indentation level.
func (w *describeWriter) write(level int, format string, args ...any) {
	s := strings.Repeat("  ", level) + fmt.Sprintf(format, args...)
	terminalEscaper.WriteString(w.tw, s)
}

// String flushes the tab writer and returns the text.
func (w *describeWriter) String() string {
	w.tw.Flush()
	return w.buf.String()
}

// rfc1123 is how describe writes times.
func rfc1123(t metav1.Time) string { return t.Time.Format(time.RFC1123Z) }

func valueOrNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// multiline writes "title:<TAB>first" and then one value a line, aligned
// under the first, or "<none>" when there are no values. indent goes
// before the title and before each continued line.
func (w *describeWriter) multiline(indent, title string, values []string) {
	w.write(0, "%s%s:\t", indent, title)
	if len(values) == 0 {
		w.write(0, "<none>\n")
		return
	}
	for i, v := range values {
		if i > 0 {
			w.write(0, "%s\t", indent)
		}
		w.write(0, "%s\n", v)
	}
}

// labels writes a map's "key=value" pairs sorted, one a line.
func (w *describeWriter) labels(indent, title string, m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	values := make([]string, len(keys))
	for i, k := range keys {
		values[i] = k + "=" + m[k]
	}
	w.multiline(indent, title, values)
}

// maxAnnotationLen is the longest "key: value" annotation line describe
// prints whole; longer values go on their own shortened lines.
const maxAnnotationLen = 140

// annotations writes the annotations, sorted, leaving out the copy of the
// manifest that apply keeps (long, and shown by get -o yaml).
func (w *describeWriter) annotations(indent, title string, m map[string]string) {
	w.write(0, "%s%s:\t", indent, title)
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != corev1.LastAppliedConfigAnnotation {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		w.write(0, "<none>\n")
		return
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i > 0 {
			w.write(0, "%s\t", indent)
		}
		v := strings.TrimSuffix(m[k], "\n")
		if len(k)+len(v)+2 <= maxAnnotationLen && !strings.Contains(v, "\n") {
			w.write(0, "%s: %s\n", k, v)
			continue
		}
		w.write(0, "%s:\n", k)
		for _, line := range strings.Split(v, "\n") {
			if len(line) > maxAnnotationLen-2 {
				line = line[:maxAnnotationLen-2] + "..."
			}
			w.write(0, "%s\t  %s\n", indent, line)
		}
	}
}

// tolerations writes a pod's tolerations as "key=value:Effect op=Exists
// for 300s", sorted by key.
func (w *describeWriter) tolerations(indent string, ts []corev1.Toleration) {
	ts = append([]corev1.Toleration(nil), ts...)
	sort.SliceStable(ts, func(i, j int) bool { return ts[i].Key < ts[j].Key })
	values := make([]string, len(ts))
	for i, t := range ts {
		s := t.Key
		if t.Value != "" {
			s += "=" + t.Value
		}
		if t.Effect != "" {
			s += ":" + string(t.Effect)
		}
		if t.Operator == corev1.TolerationOpExists && t.Value == "" {
			if t.Key != "" || t.Effect != "" {
				s += " "
			}
			s += "op=Exists"
		}
		if t.TolerationSeconds != nil {
			s += fmt.Sprintf(" for %ds", *t.TolerationSeconds)
		}
		values[i] = s
	}
	w.multiline(indent, "Tolerations", values)
}

// events writes the Events table, oldest first, or "Events: <none>".
func (w *describeWriter) events(list *corev1.EventList, now time.Time) {
	if list == nil {
		return
	}
	if len(list.Items) == 0 {
		w.write(0, "Events:\t<none>\n")
		return
	}
	items := append([]corev1.Event(nil), list.Items...)
	sort.SliceStable(items, func(i, j int) bool { return lastSeen(&items[i]).Before(lastSeen(&items[j])) })
	w.write(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n")
	w.write(1, "----\t------\t----\t----\t-------\n")
	for i := range items {
		e := &items[i]
		first := printers.HumanAge(metav1.Time(e.EventTime), now)
		if e.EventTime.IsZero() {
			first = printers.HumanAge(e.FirstTimestamp, now)
		}
		age := first
		switch {
		case e.Series != nil:
			age = fmt.Sprintf("%s (x%d over %s)", printers.HumanAge(metav1.Time(e.Series.LastObservedTime), now), e.Series.Count, first)
		case e.Count > 1:
			age = fmt.Sprintf("%s (x%d over %s)", printers.HumanAge(e.LastTimestamp, now), e.Count, first)
		}
		from := e.Source.Component
		if from == "" {
			from = e.ReportingController
		}
		msg := strings.TrimSpace(e.Message)
		if e.InvolvedObject.FieldPath != "" {
			msg = e.InvolvedObject.FieldPath + ": " + msg
		}
		w.write(1, "%s\t%s\t%s\t%s\t%s\n", e.Type, e.Reason, age, from, msg)
	}
}

// lastSeen is when an event last happened.
func lastSeen(e *corev1.Event) time.Time {
	switch {
	case e.Series != nil:
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.FirstTimestamp.Time
}

func controllerName(m metav1.Object) string {
	if ref := metav1.GetControllerOf(m); ref != nil {
		return ref.Kind + "/" + ref.Name
	}
	return ""
}

func boolWord(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func describePod(pod *corev1.Pod, events *corev1.EventList, now time.Time) string {
	w := newDescribeWriter()
	w.write(0, "Name:\t%s\n", pod.Name)
	w.write(0, "Namespace:\t%s\n", pod.Namespace)
	if pod.Spec.Priority != nil {
		w.write(0, "Priority:\t%d\n", *pod.Spec.Priority)
	}
	if pod.Spec.PriorityClassName != "" {
		w.write(0, "Priority Class Name:\t%s\n", pod.Spec.PriorityClassName)
	}
	if pod.Spec.RuntimeClassName != nil && *pod.Spec.RuntimeClassName != "" {
		w.write(0, "Runtime Class Name:\t%s\n", *pod.Spec.RuntimeClassName)
	}
	if pod.Spec.ServiceAccountName != "" {
		w.write(0, "Service Account:\t%s\n", pod.Spec.ServiceAccountName)
	}
	if pod.Spec.NodeName == "" {
		w.write(0, "Node:\t<none>\n")
	} else {
		w.write(0, "Node:\t%s/%s\n", pod.Spec.NodeName, pod.Status.HostIP)
	}
	if pod.Status.StartTime != nil {
		w.write(0, "Start Time:\t%s\n", rfc1123(*pod.Status.StartTime))
	}
	w.labels("", "Labels", pod.Labels)
	w.annotations("", "Annotations", pod.Annotations)
	if pod.DeletionTimestamp != nil && pod.Status.Phase != corev1.PodFailed && pod.Status.Phase != corev1.PodSucceeded {
		w.write(0, "Status:\tTerminating (lasts %s)\n", printers.HumanAge(*pod.DeletionTimestamp, now))
		if pod.DeletionGracePeriodSeconds != nil {
			w.write(0, "Termination Grace Period:\t%ds\n", *pod.DeletionGracePeriodSeconds)
		}
	} else {
		w.write(0, "Status:\t%s\n", pod.Status.Phase)
	}
	if pod.Status.Reason != "" {
		w.write(0, "Reason:\t%s\n", pod.Status.Reason)
	}
	if pod.Status.Message != "" {
		w.write(0, "Message:\t%s\n", pod.Status.Message)
	}
	w.write(0, "IP:\t%s\n", pod.Status.PodIP)
	if len(pod.Status.PodIPs) == 0 {
		w.write(0, "IPs:\t<none>\n")
	} else {
		w.write(0, "IPs:\n")
		for _, ip := range pod.Status.PodIPs {
			w.write(1, "IP:\t%s\n", ip.IP)
		}
	}
	if by := controllerName(pod); by != "" {
		w.write(0, "Controlled By:\t%s\n", by)
	}
	if pod.Status.NominatedNodeName != "" {
		w.write(0, "NominatedNodeName:\t%s\n", pod.Status.NominatedNodeName)
	}
	if len(pod.Spec.InitContainers) > 0 {
		w.containers("", "Init Containers", pod.Spec.InitContainers, pod.Status.InitContainerStatuses, pod)
	}
	w.containers("", "Containers", pod.Spec.Containers, pod.Status.ContainerStatuses, pod)
	if len(pod.Spec.ReadinessGates) > 0 {
		w.write(0, "Readiness Gates:\n  Type\tStatus\n")
		for _, g := range pod.Spec.ReadinessGates {
			status := "<none>"
			for _, c := range pod.Status.Conditions {
				if c.Type == g.ConditionType {
					status = string(c.Status)
					break
				}
			}
			w.write(1, "%s \t%s \n", g.ConditionType, status)
		}
	}
	if len(pod.Status.Conditions) > 0 {
		w.write(0, "Conditions:\n  Type\tStatus\n")
		for _, c := range pod.Status.Conditions {
			w.write(1, "%s \t%s \n", c.Type, c.Status)
		}
	}
	w.volumes("", pod.Spec.Volumes)
	w.write(0, "QoS Class:\t%s\n", podQOS(pod))
	w.labels("", "Node-Selectors", pod.Spec.NodeSelector)
	w.tolerations("", pod.Spec.Tolerations)
	w.events(events, now)
	return w.String()
}

// podQOS is the pod's QoS class as the API server recorded it, or as
// computed from its containers' resources when it did not.
func podQOS(pod *corev1.Pod) corev1.PodQOSClass {
	if pod.Status.QOSClass != "" {
		return pod.Status.QOSClass
	}
	any, guaranteed := false, true
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[r]
			lim, hasLim := c.Resources.Limits[r]
			any = any || hasReq || hasLim
			if !hasLim || (hasReq && req.Cmp(lim) != 0) {
				guaranteed = false
			}
		}
	}
	switch {
	case !any:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

// containers writes a list of containers: of a pod (with their statuses)
// or of a pod template (pod nil, indent "  ").
func (w *describeWriter) containers(indent, title string, cs []corev1.Container, statuses []corev1.ContainerStatus, pod *corev1.Pod) {
	byName := map[string]corev1.ContainerStatus{}
	for _, s := range statuses {
		byName[s.Name] = s
	}
	if len(cs) == 0 {
		w.write(0, "%s%s: <none>\n", indent, title)
	} else {
		w.write(0, "%s%s:\n", indent, title)
	}
	nameIndent := ""
	if indent != "" {
		nameIndent = " "
	}
	for _, c := range cs {
		st, ok := byName[c.Name]
		w.write(1, "%s%s:\n", nameIndent, c.Name)
		if ok {
			w.write(2, "Container ID:\t%s\n", st.ContainerID)
		}
		w.write(2, "Image:\t%s\n", c.Image)
		if ok {
			w.write(2, "Image ID:\t%s\n", st.ImageID)
		}
		ports, hostPorts := containerPorts(c.Ports)
		if strings.Contains(ports, ",") {
			w.write(2, "Ports:\t%s\n", ports)
		} else {
			w.write(2, "Port:\t%s\n", valueOrNone(ports))
		}
		if strings.Contains(hostPorts, ",") {
			w.write(2, "Host Ports:\t%s\n", hostPorts)
		} else {
			w.write(2, "Host Port:\t%s\n", valueOrNone(hostPorts))
		}
		for _, cmd := range []struct {
			title string
			words []string
		}{{"Command", c.Command}, {"Args", c.Args}} {
			if len(cmd.words) == 0 {
				continue
			}
			w.write(2, "%s:\n", cmd.title)
			for _, word := range cmd.words {
				for _, line := range strings.Split(word, "\n") {
					w.write(3, "%s\n", line)
				}
			}
		}
		if ok {
			w.containerState("State", st.State)
			if st.LastTerminationState.Terminated != nil {
				w.containerState("Last State", st.LastTerminationState)
			}
			w.write(2, "Ready:\t%s\n", boolWord(st.Ready))
			w.write(2, "Restart Count:\t%d\n", st.RestartCount)
		}
		w.resources(2, c.Resources)
		for _, p := range []struct {
			title string
			probe *corev1.Probe
		}{{"Liveness", c.LivenessProbe}, {"Readiness", c.ReadinessProbe}, {"Startup", c.StartupProbe}} {
			if p.probe != nil {
				w.write(2, "%s:\t%s\n", p.title, describeProbe(p.probe))
			}
		}
		if len(c.EnvFrom) > 0 {
			w.write(2, "Environment Variables from:\n")
			for _, e := range c.EnvFrom {
				from, name, optional := "", "", false
				if e.ConfigMapRef != nil {
					from, name, optional = "ConfigMap", e.ConfigMapRef.Name, e.ConfigMapRef.Optional != nil && *e.ConfigMapRef.Optional
				} else if e.SecretRef != nil {
					from, name, optional = "Secret", e.SecretRef.Name, e.SecretRef.Optional != nil && *e.SecretRef.Optional
				}
				if e.Prefix != "" {
					from += fmt.Sprintf(" with prefix '%s'", e.Prefix)
				}
				w.write(3, "%s\t%s\tOptional: %t\n", name, from, optional)
			}
		}
		w.env(c, pod)
		if len(c.VolumeMounts) == 0 {
			w.write(2, "Mounts:\t<none>\n")
		} else {
			w.write(2, "Mounts:\n")
			mounts := append([]corev1.VolumeMount(nil), c.VolumeMounts...)
			sort.SliceStable(mounts, func(i, j int) bool { return mounts[i].MountPath < mounts[j].MountPath })
			for _, m := range mounts {
				flags := []string{"rw"}
				if m.ReadOnly {
					flags[0] = "ro"
				}
				if m.SubPath != "" {
					flags = append(flags, fmt.Sprintf("path=%q", m.SubPath))
				}
				w.write(3, "%s from %s (%s)\n", m.MountPath, m.Name, strings.Join(flags, ","))
			}
		}
	}
}

// containerPorts lists a container's ports and host ports: "80/TCP
// (http), 443/TCP".
func containerPorts(ports []corev1.ContainerPort) (string, string) {
	var cp, hp []string
	for _, p := range ports {
		name := ""
		if p.Name != "" {
			name = " (" + p.Name + ")"
		}
		cp = append(cp, fmt.Sprintf("%d/%s%s", p.ContainerPort, p.Protocol, name))
		hp = append(hp, fmt.Sprintf("%d/%s%s", p.HostPort, p.Protocol, name))
	}
	return strings.Join(cp, ", "), strings.Join(hp, ", ")
}

func (w *describeWriter) containerState(title string, s corev1.ContainerState) {
	switch {
	case s.Running != nil:
		w.write(2, "%s:\tRunning\n", title)
		w.write(3, "Started:\t%s\n", rfc1123(s.Running.StartedAt))
	case s.Terminated != nil:
		t := s.Terminated
		w.write(2, "%s:\tTerminated\n", title)
		if t.Reason != "" {
			w.write(3, "Reason:\t%s\n", t.Reason)
		}
		if t.Message != "" {
			w.write(3, "Message:\t%s\n", t.Message)
		}
		w.write(3, "Exit Code:\t%d\n", t.ExitCode)
		if t.Signal > 0 {
			w.write(3, "Signal:\t%d\n", t.Signal)
		}
		w.write(3, "Started:\t%s\n", rfc1123(t.StartedAt))
		w.write(3, "Finished:\t%s\n", rfc1123(t.FinishedAt))
	default:
		w.write(2, "%s:\tWaiting\n", title)
		if s.Waiting != nil && s.Waiting.Reason != "" {
			w.write(3, "Reason:\t%s\n", s.Waiting.Reason)
		}
	}
}

// resources writes a container's limits and requests, sorted by name.
func (w *describeWriter) resources(level int, r corev1.ResourceRequirements) {
	for _, l := range []struct {
		title string
		list  corev1.ResourceList
	}{{"Limits", r.Limits}, {"Requests", r.Requests}} {
		if len(l.list) == 0 {
			continue
		}
		w.write(level, "%s:\n", l.title)
		for _, name := range sortedResourceNames(l.list) {
			q := l.list[name]
			w.write(level+1, "%s:\t%s\n", name, q.String())
		}
	}
}

func sortedResourceNames(l corev1.ResourceList) []corev1.ResourceName {
	names := make([]corev1.ResourceName, 0, len(l))
	for n := range l {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return names[i] < names[j] })
	return names
}

// describeProbe writes a probe on one line: "http-get http://:8080/healthz
// delay=0s timeout=1s period=10s successThreshold=1 failureThreshold=3".
func describeProbe(p *corev1.Probe) string {
	attrs := fmt.Sprintf("delay=%ds timeout=%ds period=%ds successThreshold=%d failureThreshold=%d",
		p.InitialDelaySeconds, p.TimeoutSeconds, p.PeriodSeconds, p.SuccessThreshold, p.FailureThreshold)
	switch {
	case p.Exec != nil:
		return fmt.Sprintf("exec %v %s", p.Exec.Command, attrs)
	case p.HTTPGet != nil:
		u := url.URL{Scheme: strings.ToLower(string(p.HTTPGet.Scheme)), Host: p.HTTPGet.Host, Path: p.HTTPGet.Path}
		if port := p.HTTPGet.Port.String(); port != "" {
			u.Host = net.JoinHostPort(p.HTTPGet.Host, port)
		}
		return fmt.Sprintf("http-get %s %s", u.String(), attrs)
	case p.TCPSocket != nil:
		return fmt.Sprintf("tcp-socket %s:%s %s", p.TCPSocket.Host, p.TCPSocket.Port.String(), attrs)
	case p.GRPC != nil:
		service := ""
		if p.GRPC.Service != nil {
			service = *p.GRPC.Service
		}
		return fmt.Sprintf("grpc <pod>:%d %s %s", p.GRPC.Port, service, attrs)
	}
	return "unknown " + attrs
}

// env writes a container's environment. Values taken from the pod's own
// fields are resolved when the pod is known (not for a template).
func (w *describeWriter) env(c corev1.Container, pod *corev1.Pod) {
	if len(c.Env) == 0 {
		w.write(2, "Environment:\t<none>\n")
		return
	}
	w.write(2, "Environment:\n")
	for _, e := range c.Env {
		switch from := e.ValueFrom; {
		case from == nil:
			for i, line := range strings.Split(e.Value, "\n") {
				if i == 0 {
					w.write(3, "%s:\t%s\n", e.Name, line)
				} else {
					w.write(3, "\t%s\n", line)
				}
			}
		case from.FieldRef != nil:
			w.write(3, "%s:\t%s (%s:%s)\n", e.Name, podField(pod, from.FieldRef.FieldPath), from.FieldRef.APIVersion, from.FieldRef.FieldPath)
		case from.ResourceFieldRef != nil:
			w.write(3, "%s:\t%s (%s)\n", e.Name, containerResource(c, from.ResourceFieldRef), from.ResourceFieldRef.Resource)
		case from.SecretKeyRef != nil:
			ref := from.SecretKeyRef
			w.write(3, "%s:\t<set to the key '%s' in secret '%s'>\tOptional: %t\n", e.Name, ref.Key, ref.Name, ref.Optional != nil && *ref.Optional)
		case from.ConfigMapKeyRef != nil:
			ref := from.ConfigMapKeyRef
			w.write(3, "%s:\t<set to the key '%s' of config map '%s'>\tOptional: %t\n", e.Name, ref.Key, ref.Name, ref.Optional != nil && *ref.Optional)
		}
	}
}

// podField reads the pod field a downward-API variable refers to, or ""
// for a template or a field it does not know.
func podField(pod *corev1.Pod, path string) string {
	if pod == nil {
		return ""
	}
	if key, ok := strings.CutPrefix(path, "metadata.labels['"); ok {
		return pod.Labels[strings.TrimSuffix(key, "']")]
	}
	if key, ok := strings.CutPrefix(path, "metadata.annotations['"); ok {
		return pod.Annotations[strings.TrimSuffix(key, "']")]
	}
	switch path {
	case "metadata.name":
		return pod.Name
	case "metadata.namespace":
		return pod.Namespace
	case "metadata.uid":
		return string(pod.UID)
	case "spec.nodeName":
		return pod.Spec.NodeName
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName
	case "status.hostIP":
		return pod.Status.HostIP
	case "status.podIP":
		return pod.Status.PodIP
	}
	return ""
}

// containerResource is the value of a resourceFieldRef variable: the
// container's limit or request, in units of the divisor (cores rounded up
// for cpu, bytes otherwise). An unset limit means the node's allocatable.
func containerResource(c corev1.Container, ref *corev1.ResourceFieldSelector) string {
	kind, name, _ := strings.Cut(ref.Resource, ".")
	list := c.Resources.Requests
	if kind == "limits" {
		list = c.Resources.Limits
	}
	q, ok := list[corev1.ResourceName(name)]
	if !ok {
		if kind == "limits" && (name == "cpu" || name == "memory") {
			return "node allocatable"
		}
		return "0"
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if name == "cpu" {
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10)
	}
	return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10)
}

// volumes writes the pod's volumes with their source.
func (w *describeWriter) volumes(indent string, vs []corev1.Volume) {
	if len(vs) == 0 {
		w.write(0, "%sVolumes:\t<none>\n", indent)
		return
	}
	w.write(0, "%sVolumes:\n", indent)
	nameIndent := ""
	if indent != "" {
		nameIndent = " "
	}
	for _, v := range vs {
		w.write(1, "%s%s:\n", nameIndent, v.Name)
		switch s := v.VolumeSource; {
		case s.HostPath != nil:
			typ := "<none>"
			if s.HostPath.Type != nil {
				typ = string(*s.HostPath.Type)
			}
			w.write(2, "Type:\tHostPath (bare host directory volume)\n")
			w.write(2, "Path:\t%s\n", s.HostPath.Path)
			w.write(2, "HostPathType:\t%s\n", typ)
		case s.EmptyDir != nil:
			limit := "<unset>"
			if s.EmptyDir.SizeLimit != nil && s.EmptyDir.SizeLimit.Sign() > 0 {
				limit = s.EmptyDir.SizeLimit.String()
			}
			w.write(2, "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n")
			w.write(2, "Medium:\t%s\n", s.EmptyDir.Medium)
			w.write(2, "SizeLimit:\t%s\n", limit)
		case s.ConfigMap != nil:
			w.write(2, "Type:\tConfigMap (a volume populated by a ConfigMap)\n")
			w.write(2, "Name:\t%s\n", s.ConfigMap.Name)
			w.write(2, "Optional:\t%t\n", s.ConfigMap.Optional != nil && *s.ConfigMap.Optional)
		case s.Secret != nil:
			w.write(2, "Type:\tSecret (a volume populated by a Secret)\n")
			w.write(2, "SecretName:\t%s\n", s.Secret.SecretName)
			w.write(2, "Optional:\t%t\n", s.Secret.Optional != nil && *s.Secret.Optional)
		case s.PersistentVolumeClaim != nil:
			w.write(2, "Type:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)\n")
			w.write(2, "ClaimName:\t%s\n", s.PersistentVolumeClaim.ClaimName)
			w.write(2, "ReadOnly:\t%t\n", s.PersistentVolumeClaim.ReadOnly)
		case s.DownwardAPI != nil:
			w.write(2, "Type:\tDownwardAPI (a volume populated by information about the pod)\n")
			w.write(2, "Items:\n")
			for _, item := range s.DownwardAPI.Items {
				if item.FieldRef != nil {
					w.write(3, "%s -> %s\n", item.FieldRef.FieldPath, item.Path)
				}
				if item.ResourceFieldRef != nil {
					w.write(3, "%s -> %s\n", item.ResourceFieldRef.Resource, item.Path)
				}
			}
		case s.Projected != nil:
			w.write(2, "Type:\tProjected (a volume that contains injected data from multiple sources)\n")
			for _, src := range s.Projected.Sources {
				switch {
				case src.Secret != nil:
					w.write(2, "SecretName:\t%s\n", src.Secret.Name)
					w.write(2, "Optional:\t%t\n", src.Secret.Optional != nil && *src.Secret.Optional)
				case src.ConfigMap != nil:
					w.write(2, "ConfigMapName:\t%s\n", src.ConfigMap.Name)
					w.write(2, "Optional:\t%t\n", src.ConfigMap.Optional != nil && *src.ConfigMap.Optional)
				case src.DownwardAPI != nil:
					w.write(2, "DownwardAPI:\ttrue\n")
				case src.ServiceAccountToken != nil && src.ServiceAccountToken.ExpirationSeconds != nil:
					w.write(2, "TokenExpirationSeconds:\t%d\n", *src.ServiceAccountToken.ExpirationSeconds)
				}
			}
		default:
			w.write(2, "<unknown>\n")
		}
	}
}

// podTemplate writes the pod template of a deployment or replica set.
func (w *describeWriter) podTemplate(t *corev1.PodTemplateSpec) {
	w.write(0, "Pod Template:\n")
	w.labels("  ", "Labels", t.Labels)
	if len(t.Annotations) > 0 {
		w.annotations("  ", "Annotations", t.Annotations)
	}
	if t.Spec.ServiceAccountName != "" {
		w.write(1, "Service Account:\t%s\n", t.Spec.ServiceAccountName)
	}
	if len(t.Spec.InitContainers) > 0 {
		w.containers("  ", "Init Containers", t.Spec.InitContainers, nil, nil)
	}
	w.containers("  ", "Containers", t.Spec.Containers, nil, nil)
	w.volumes("  ", t.Spec.Volumes)
	if t.Spec.PriorityClassName != "" {
		w.write(1, "Priority Class Name:\t%s\n", t.Spec.PriorityClassName)
	}
	w.labels("  ", "Node-Selectors", t.Spec.NodeSelector)
	w.tolerations("  ", t.Spec.Tolerations)
}

// conditions writes a workload's conditions table.
func (w *describeWriter) conditions(conds [][3]string) {
	if len(conds) == 0 {
		return
	}
	w.write(0, "Conditions:\n  Type\tStatus\tReason\n")
	w.write(1, "----\t------\t------\n")
	for _, c := range conds {
		w.write(1, "%s \t%s\t%s\n", c[0], c[1], c[2])
	}
}

func describeDeployment(d *appsv1.Deployment, oldRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, events *corev1.EventList, now time.Time) string {
	w := newDescribeWriter()
	w.write(0, "Name:\t%s\n", d.Name)
	w.write(0, "Namespace:\t%s\n", d.Namespace)
	w.write(0, "CreationTimestamp:\t%s\n", rfc1123(d.CreationTimestamp))
	w.labels("", "Labels", d.Labels)
	w.annotations("", "Annotations", d.Annotations)
	selector := "<invalid>"
	if s, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err == nil {
		selector = s.String()
	}
	w.write(0, "Selector:\t%s\n", selector)
	w.write(0, "Replicas:\t%d desired | %d updated | %d total | %d available | %d unavailable\n",
		replicasOf(d.Spec.Replicas), d.Status.UpdatedReplicas, d.Status.Replicas, d.Status.AvailableReplicas, d.Status.UnavailableReplicas)
	w.write(0, "StrategyType:\t%s\n", d.Spec.Strategy.Type)
	w.write(0, "MinReadySeconds:\t%d\n", d.Spec.MinReadySeconds)
	if ru := d.Spec.Strategy.RollingUpdate; ru != nil {
		w.write(0, "RollingUpdateStrategy:\t%s max unavailable, %s max surge\n", intOrStringText(ru.MaxUnavailable), intOrStringText(ru.MaxSurge))
	}
	w.podTemplate(&d.Spec.Template)
	var conds [][3]string
	for _, c := range d.Status.Conditions {
		conds = append(conds, [3]string{string(c.Type), string(c.Status), c.Reason})
	}
	w.conditions(conds)
	if len(oldRSs) > 0 || newRS != nil {
		w.write(0, "OldReplicaSets:\t%s\n", replicaSetList(oldRSs))
		var newRSs []*appsv1.ReplicaSet
		if newRS != nil {
			newRSs = append(newRSs, newRS)
		}
		w.write(0, "NewReplicaSet:\t%s\n", replicaSetList(newRSs))
	}
	w.events(events, now)
	return w.String()
}

func intOrStringText(v *intstr.IntOrString) string {
	if v == nil {
		return "<nil>"
	}
	return v.String()
}

func replicasOf(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

// replicaSetList names replica sets with their progress: "web-7d9f8b6c5
// (3/3 replicas created)".
func replicaSetList(rss []*appsv1.ReplicaSet) string {
	var parts []string
	for _, rs := range rss {
		parts = append(parts, fmt.Sprintf("%s (%d/%d replicas created)", rs.Name, rs.Status.Replicas, replicasOf(rs.Spec.Replicas)))
	}
	return valueOrNone(strings.Join(parts, ", "))
}

func describeReplicaSet(rs *appsv1.ReplicaSet, pods phaseCounts, events *corev1.EventList, now time.Time) string {
	w := newDescribeWriter()
	w.write(0, "Name:\t%s\n", rs.Name)
	w.write(0, "Namespace:\t%s\n", rs.Namespace)
	w.write(0, "Selector:\t%s\n", metav1.FormatLabelSelector(rs.Spec.Selector))
	w.labels("", "Labels", rs.Labels)
	w.annotations("", "Annotations", rs.Annotations)
	if by := controllerName(rs); by != "" {
		w.write(0, "Controlled By:\t%s\n", by)
	}
	w.write(0, "Replicas:\t%d current / %d desired\n", rs.Status.Replicas, replicasOf(rs.Spec.Replicas))
	w.write(0, "Pods Status:\t%d Running / %d Waiting / %d Succeeded / %d Failed\n", pods.running, pods.waiting, pods.succeeded, pods.failed)
	w.podTemplate(&rs.Spec.Template)
	var conds [][3]string
	for _, c := range rs.Status.Conditions {
		conds = append(conds, [3]string{string(c.Type), string(c.Status), c.Reason})
	}
	w.conditions(conds)
	w.events(events, now)
	return w.String()
}

func describeService(svc *corev1.Service, slices []discoveryv1.EndpointSlice, events *corev1.EventList, now time.Time) string {
	w := newDescribeWriter()
	w.write(0, "Name:\t%s\n", svc.Name)
	w.write(0, "Namespace:\t%s\n", svc.Namespace)
	w.labels("", "Labels", svc.Labels)
	w.annotations("", "Annotations", svc.Annotations)
	w.write(0, "Selector:\t%s\n", labels.FormatLabels(svc.Spec.Selector))
	w.write(0, "Type:\t%s\n", svc.Spec.Type)
	if svc.Spec.IPFamilyPolicy != nil {
		w.write(0, "IP Family Policy:\t%s\n", *svc.Spec.IPFamilyPolicy)
	}
	families := make([]string, len(svc.Spec.IPFamilies))
	for i, f := range svc.Spec.IPFamilies {
		families[i] = string(f)
	}
	w.write(0, "IP Families:\t%s\n", valueOrNone(strings.Join(families, ",")))
	w.write(0, "IP:\t%s\n", svc.Spec.ClusterIP)
	w.write(0, "IPs:\t%s\n", valueOrNone(strings.Join(svc.Spec.ClusterIPs, ",")))
	if len(svc.Spec.ExternalIPs) > 0 {
		w.write(0, "External IPs:\t%s\n", strings.Join(svc.Spec.ExternalIPs, ","))
	}
	if svc.Spec.LoadBalancerIP != "" {
		w.write(0, "Desired LoadBalancer IP:\t%s\n", svc.Spec.LoadBalancerIP)
	}
	if svc.Spec.ExternalName != "" {
		w.write(0, "External Name:\t%s\n", svc.Spec.ExternalName)
	}
	if in := svc.Status.LoadBalancer.Ingress; len(in) > 0 {
		var addrs []string
		for _, i := range in {
			a := i.Hostname
			if i.IP != "" {
				a = i.IP
				if i.IPMode != nil {
					a += fmt.Sprintf(" (%s)", *i.IPMode)
				}
			}
			addrs = append(addrs, a)
		}
		w.write(0, "LoadBalancer Ingress:\t%s\n", strings.Join(addrs, ", "))
	}
	for _, p := range svc.Spec.Ports {
		name := p.Name
		if name == "" {
			name = "<unset>"
		}
		w.write(0, "Port:\t%s\t%d/%s\n", name, p.Port, p.Protocol)
		if p.TargetPort.Type == intstr.Int {
			w.write(0, "TargetPort:\t%d/%s\n", p.TargetPort.IntVal, p.Protocol)
		} else {
			w.write(0, "TargetPort:\t%s/%s\n", p.TargetPort.StrVal, p.Protocol)
		}
		if p.AppProtocol != nil {
			w.write(0, "AppProtocol:\t%s\n", *p.AppProtocol)
		}
		if p.NodePort != 0 {
			w.write(0, "NodePort:\t%s\t%d/%s\n", name, p.NodePort, p.Protocol)
		}
		w.write(0, "Endpoints:\t%s\n", sliceEndpoints(slices, p.Name))
	}
	w.write(0, "Session Affinity:\t%s\n", svc.Spec.SessionAffinity)
	if svc.Spec.ExternalTrafficPolicy != "" {
		w.write(0, "External Traffic Policy:\t%s\n", svc.Spec.ExternalTrafficPolicy)
	}
	if svc.Spec.InternalTrafficPolicy != nil {
		w.write(0, "Internal Traffic Policy:\t%s\n", *svc.Spec.InternalTrafficPolicy)
	}
	if svc.Spec.HealthCheckNodePort != 0 {
		w.write(0, "HealthCheck NodePort:\t%d\n", svc.Spec.HealthCheckNodePort)
	}
	if len(svc.Spec.LoadBalancerSourceRanges) > 0 {
		w.write(0, "LoadBalancer Source Ranges:\t%s\n", strings.Join(svc.Spec.LoadBalancerSourceRanges, ","))
	}
	w.events(events, now)
	return w.String()
}

// sliceEndpoints is a service port's Endpoints line: the ready addresses
// of the port called portName, as host:port, the first three and how many
// more; "<none>" when the service has no endpoint slices.
func sliceEndpoints(slices []discoveryv1.EndpointSlice, portName string) string {
	if len(slices) == 0 {
		return "<none>"
	}
	ready := func(ep discoveryv1.Endpoint) bool {
		// An unknown readiness counts as ready.
		return len(ep.Addresses) > 0 && (ep.Conditions.Ready == nil || *ep.Conditions.Ready)
	}
	var addrs []string
	for _, s := range slices {
		if len(s.Ports) == 0 {
			// A headless service without ports: bare addresses.
			for _, ep := range s.Endpoints {
				if ready(ep) {
					addrs = append(addrs, ep.Addresses[0])
				}
			}
			continue
		}
		for _, p := range s.Ports {
			if p.Name == nil && portName != "" || p.Name != nil && *p.Name != portName || p.Port == nil {
				continue
			}
			for _, ep := range s.Endpoints {
				if ready(ep) {
					addrs = append(addrs, net.JoinHostPort(ep.Addresses[0], strconv.Itoa(int(*p.Port))))
				}
			}
		}
	}
	const shown = 3
	if len(addrs) > shown {
		return fmt.Sprintf("%s + %d more...", strings.Join(addrs[:shown], ","), len(addrs)-shown)
	}
	return strings.Join(addrs, ",")
}

func describeNode(node *corev1.Node, lease *coordinationv1.Lease, leaseErr error, pods []corev1.Pod, events *corev1.EventList, now time.Time) string {
	w := newDescribeWriter()
	w.write(0, "Name:\t%s\n", node.Name)
	w.write(0, "Roles:\t%s\n", valueOrNone(strings.Join(printers.NodeRoles(node), ",")))
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

// describeNamespace writes a namespace. Skiff has no resource quotas or
// limit ranges, so it says so as kubectl does for a namespace without.
func describeNamespace(ns *corev1.Namespace) string {
	w := newDescribeWriter()
	w.write(0, "Name:\t%s\n", ns.Name)
	w.labels("", "Labels", ns.Labels)
	w.annotations("", "Annotations", ns.Annotations)
	w.write(0, "Status:\t%s\n", ns.Status.Phase)
	w.write(0, "\nNo resource quota.\n")
	w.write(0, "\nNo LimitRange resource.\n")
	return w.String()
}

// describeGeneric describes an object of a resource without its own
// layout: its metadata, then each of its other top-level fields as YAML.
func describeGeneric(info *scheme.ResourceInfo, obj runtime.Object, events *corev1.EventList, now time.Time) (string, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return "", err
	}
	obj = obj.DeepCopyObject()
	if err := scheme.SetTypeMeta(obj); err != nil {
		return "", err
	}
	data, err := yaml.Marshal(obj)
	if err != nil {
		return "", err
	}
	var fieldsOf map[string]any
	if err := yaml.Unmarshal(data, &fieldsOf); err != nil {
		return "", err
	}
	w := newDescribeWriter()
	w.write(0, "Name:\t%s\n", m.GetName())
	if info.Namespaced {
		w.write(0, "Namespace:\t%s\n", m.GetNamespace())
	}
	w.labels("", "Labels", m.GetLabels())
	w.annotations("", "Annotations", m.GetAnnotations())
	w.write(0, "API Version:\t%s\n", info.GroupVersionKind().GroupVersion().String())
	w.write(0, "Kind:\t%s\n", info.Kind)
	w.write(0, "CreationTimestamp:\t%s\n", rfc1123(m.GetCreationTimestamp()))
	keys := make([]string, 0, len(fieldsOf))
	for k := range fieldsOf {
		switch k {
		case "apiVersion", "kind", "metadata":
		default:
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch v := fieldsOf[k].(type) {
		case map[string]any, []any:
		default:
			w.write(0, "%s:\t%v\n", fieldTitle(k), v)
			continue
		}
		text, err := yaml.Marshal(fieldsOf[k])
		if err != nil {
			return "", err
		}
		w.write(0, "%s:\n", fieldTitle(k))
		for _, line := range strings.Split(strings.TrimRight(string(text), "\n"), "\n") {
			w.write(1, "%s\n", line)
		}
	}
	w.events(events, now)
	return w.String(), nil
}

// fieldTitle turns a field name into a title: "addressType" becomes
// "Address Type".
func fieldTitle(field string) string {
	var b strings.Builder
	for i, r := range field {
		if i == 0 {
			b.WriteString(strings.ToUpper(string(r)))
			continue
		}
		if r >= 'A' && r <= 'Z' {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}
