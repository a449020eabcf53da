package ctl

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffdev/skiff/ctl/printers"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/scheme"
)

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
that type (matching -l) is; TYPE may also be a category such as "all".
Pods, deployments, replicasets, daemonsets, services, nodes, namespaces,
configmaps, secrets and serviceaccounts have their own layout; other types
are shown field by field. A secret's values are never shown, only their sizes.`,
		Example: describeExample,
		RunE: func(cmd *cobra.Command, args []string) error {
			return d.run(cmd.Context(), args)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&d.selector, "selector", "l", "", "label selector to filter on, e.g. -l app=web")
	f.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", o.AllNamespaces, "describe the objects of every namespace")
	f.BoolVar(&d.showEvents, "show-events", true, "show the events about each described object")
	return cmd
}

func (d *describeOptions) run(ctx context.Context, args []string) error {
	reqs, _, err := parseGetArgs(args)
	if err != nil {
		return err
	}
	for _, r := range reqs {
		if len(r.names) > 0 && d.AllNamespaces {
			return errAllNamespacesByName
		}
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
		objs, findErrs := d.find(ctx, c, r, len(args) == 2 && !strings.Contains(args[0], "/"))
		errs = append(errs, findErrs...)
		if n := len(errs); n > 0 && stops(errs[n-1]) {
			return joinErrors(errs)
		}
		for _, obj := range objs {
			targets = append(targets, target{r.info, obj})
		}
	}
	now := printClock()
	for i, t := range targets {
		s, err := describeObject(ctx, c, t.info, t.obj, d.showEvents, now)
		if err != nil {
			errs = append(errs, err)
			if stops(err) {
				break
			}
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
	return joinErrors(errs)
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
		if stops(err) {
			return objs, append(errs, err)
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
	if s, ok := obj.(*corev1.Secret); ok {
		// No events, as in kubectl; and never the values.
		return describeSecret(s), nil
	}
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
	case *appsv1.DaemonSet:
		counts, err := podPhases(ctx, c, o.Namespace, o.Spec.Selector, o.UID)
		if err != nil {
			return "", err
		}
		return describeDaemonSet(o, counts, events, now), nil
	case *batchv1.Job:
		return describeJob(o, events, now), nil
	case *batchv1.CronJob:
		return describeCronJob(o, events, now), nil
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
	case *corev1.ConfigMap:
		return describeConfigMap(o, events, now), nil
	case *corev1.ServiceAccount:
		secrets, err := c.Secrets(o.Namespace).List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("type", string(corev1.SecretTypeServiceAccountToken)).String(),
		})
		if err != nil {
			return "", err
		}
		return describeServiceAccount(o, serviceAccountTokens(o, secrets.Items), events, now), nil
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
