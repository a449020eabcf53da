package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/scheme"
)

// defaultDeleteWait is how long delete waits for the objects to go when
// --timeout is 0. It is kubectl's (a week): in effect, until they are gone
// or the user gives up.
const defaultDeleteWait = 7 * 24 * time.Hour

type deleteOptions struct {
	*Options
	files          []string
	recursive      bool
	selector       string
	fieldSelector  string
	all            bool
	ignoreNotFound bool
	wait           bool
	timeout        time.Duration
	cascade        string
	gracePeriod    int
	now            bool
	force          bool
}

func newDeleteCommand(o *Options) *cobra.Command {
	d := &deleteOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "delete ([-f FILENAME] | TYPE [(NAME | -l SELECTOR | --all)])",
		Short: "Delete objects by file names, resource and names, or resource and label selector",
		Long: `Delete objects named by manifests (-f), by resource and name, or by
resource and label selector (-l) or --all.

Each object is marked deleted at once; it leaves the cluster when its
grace period is over (a pod on a node waits for its kubelet to stop it)
and nothing holds it back (finalizers). By default the command then waits
until every object it deleted is gone; --wait=false returns at once.

--cascade says what happens to the objects a deleted object owns:
background (the default: the garbage collector deletes them afterwards),
foreground (they are deleted first, and the owner waits for them), or
orphan (they are kept).

With -f every document is read before anything is deleted: a file that
cannot be read deletes nothing; a document of a kind Skiff does not serve
is reported and skipped. When one object cannot be deleted the others
still are, and the command exits non-zero, printing the errors at the
end.

TYPE may be a category: "all" stands for pods, services, deployments and
replicasets.

While an object is kept by finalizers (a namespace waits for the
namespace controller to empty it) or by its graceful deletion (a pod for
its node to stop its containers), the command says so after a few
seconds.`,
		Example: `  # Delete the objects of a manifest
  skiffctl delete -f web.yaml

  # Delete two pods
  skiffctl delete pod web-1 web-2

  # Delete the pods and services labelled app=web
  skiffctl delete pods,services -l app=web

  # Delete a deployment but keep its replica sets and pods
  skiffctl delete deployment web --cascade=orphan

  # Delete the pods, services, deployments and replica sets of a namespace
  skiffctl delete all --all -n team-a`,
		RunE: func(cmd *cobra.Command, args []string) error { return d.run(cmd.Context(), args) },
	}
	fileFlags(cmd, &d.files, &d.recursive, "that names the objects to delete")
	f := cmd.Flags()
	f.StringVarP(&d.selector, "selector", "l", "", "delete the objects whose labels match this selector (e.g. -l app=web,tier!=db)")
	f.StringVar(&d.fieldSelector, "field-selector", "", "delete the objects whose fields match this selector (e.g. --field-selector spec.nodeName=n1)")
	f.BoolVar(&d.all, "all", false, "delete every object of the resource types in the namespace")
	f.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", o.AllNamespaces, "with -l or --all, look in every namespace")
	f.BoolVar(&d.ignoreNotFound, "ignore-not-found", false, "treat an object that does not exist as deleted (the default with -l and --all)")
	f.BoolVar(&d.wait, "wait", true, "wait until the objects are gone before returning")
	f.DurationVar(&d.timeout, "timeout", 0, "how long to wait for the objects to go (0: a week)")
	f.StringVar(&d.cascade, "cascade", "background", `what happens to the objects this one owns: "background", "foreground" or "orphan"`)
	f.Lookup("cascade").NoOptDefVal = "background"
	f.IntVar(&d.gracePeriod, "grace-period", -1, "seconds the object is given to stop (-1: the object's own; 0 needs --force)")
	f.BoolVar(&d.now, "now", false, "give the objects one second to stop: the same as --grace-period=1")
	f.BoolVar(&d.force, "force", false, "remove the objects at once (grace period 0 unless given), without waiting for their nodes to confirm that they stopped")
	return cmd
}

// deletion is one object to delete.
type deletion struct {
	resource *scheme.ResourceInfo
	client   *client.UntypedClient
	name     string
	// uid identifies the object to wait for, so that a new object made
	// under the same name meanwhile does not keep delete waiting. It is
	// empty until the object has been read.
	uid types.UID
	// doc is the document that named the object, with -f.
	doc *Document
}

func (d *deleteOptions) run(ctx context.Context, args []string) error {
	opts, err := d.deleteOptions()
	if err != nil {
		return err
	}
	selecting := d.selector != "" || d.fieldSelector != "" || d.all
	if selecting && !d.ignoreNotFound {
		// The objects were just listed; one that is gone by the time it
		// is deleted needs no error.
		d.ignoreNotFound = true
	}
	c, err := d.Client()
	if err != nil {
		return err
	}
	fails := &failures{}
	var targets []deletion
	if len(d.files) > 0 {
		if len(args) > 0 || selecting {
			return errors.New("with -f, objects may not also be named by arguments, -l, --field-selector or --all")
		}
		targets, err = d.fromFiles(c, fails)
	} else {
		targets, err = d.fromArgs(ctx, c, args)
	}
	if err != nil {
		return err
	}
	if len(targets) == 0 && selecting {
		fmt.Fprintln(d.Out, "No resources found")
		return nil
	}

	var deleted []deletion
	for _, t := range targets {
		if err := ctx.Err(); err != nil {
			fails.add(err)
			return fails.err()
		}
		ok, err := d.deleteOne(ctx, &t, opts)
		if err != nil {
			if t.doc != nil {
				err = withSource("deleting", t.doc, err)
			}
			if !fails.add(err) {
				return fails.err()
			}
			continue
		}
		if ok {
			fmt.Fprintf(d.Out, "%s deleted\n", kindName(t.resource, t.name))
			deleted = append(deleted, t)
		}
	}
	if d.wait && len(deleted) > 0 {
		if err := d.waitAll(ctx, deleted); err != nil {
			fails.add(err)
		}
	}
	return fails.err()
}

// deleteOptions turns the flags into the request's options, following
// kubectl's rules for --cascade, --grace-period, --now and --force.
func (d *deleteOptions) deleteOptions() (metav1.DeleteOptions, error) {
	var policy metav1.DeletionPropagation
	switch d.cascade {
	case "background":
		policy = metav1.DeletePropagationBackground
	case "foreground":
		policy = metav1.DeletePropagationForeground
	case "orphan":
		policy = metav1.DeletePropagationOrphan
	case "true":
		fmt.Fprintln(d.ErrOut, "Warning: --cascade=true is deprecated (a boolean value); use --cascade=background")
		policy = metav1.DeletePropagationBackground
	case "false":
		fmt.Fprintln(d.ErrOut, "Warning: --cascade=false is deprecated (a boolean value); use --cascade=orphan")
		policy = metav1.DeletePropagationOrphan
	default:
		return metav1.DeleteOptions{}, fmt.Errorf(`invalid cascade value (%s). Must be "background", "foreground", or "orphan"`, d.cascade)
	}
	grace := d.gracePeriod
	if d.now {
		if grace != -1 {
			return metav1.DeleteOptions{}, errors.New("--now and --grace-period cannot be specified together")
		}
		grace = 1
	}
	// A grace period of 0 removes a pod without its kubelet confirming
	// that the containers stopped. That needs --force; without it, 0 is
	// taken as 1, as kubectl does.
	if grace == 0 && !d.force {
		grace = 1
	}
	if d.force && grace < 0 {
		grace = 0
	}
	if d.force && grace == 0 {
		fmt.Fprintln(d.ErrOut, "Warning: immediate deletion does not wait for the node to confirm that the containers stopped; they may keep running")
	}
	opts := metav1.DeleteOptions{PropagationPolicy: &policy}
	if grace >= 0 {
		opts.GracePeriodSeconds = new(int64(grace))
	}
	return opts, nil
}

// fromFiles reads the objects named by -f, every document first, and
// returns them in the reverse of apply's order of resources (workloads
// before services, namespaces last), in file order within a resource.
// Documents of kinds Skiff does not serve are recorded in fails.
func (d *deleteOptions) fromFiles(c *client.Client, fails *failures) ([]deletion, error) {
	docs, err := ReadManifests(d.files, d.recursive, d.In)
	if err != nil {
		return nil, err
	}
	var runs [][]Document // applyOrder's documents, one run per resource
	for _, doc := range applyOrder(servedDocuments(docs, fails)) {
		if n := len(runs); n > 0 && runs[n-1][0].Resource.GroupResource() == doc.Resource.GroupResource() {
			runs[n-1] = append(runs[n-1], doc)
		} else {
			runs = append(runs, []Document{doc})
		}
	}
	slices.Reverse(runs)
	var targets []deletion
	ordered := slices.Concat(runs...)
	for i := range ordered {
		doc := &ordered[i]
		obj, uc, err := d.documentObject(c, doc)
		if err != nil {
			return nil, withSource("deleting", doc, err)
		}
		if obj.GetName() == "" {
			return nil, withSource("deleting", doc, errors.New("resource name may not be empty"))
		}
		targets = append(targets, deletion{resource: doc.Resource, client: uc, name: obj.GetName(), doc: doc})
	}
	return targets, nil
}

// fromArgs finds the objects named on the command line: TYPE NAME...,
// TYPE/NAME..., or TYPE[,TYPE...] with -l, --field-selector or --all
// (which lists them).
func (d *deleteOptions) fromArgs(ctx context.Context, c *client.Client, args []string) ([]deletion, error) {
	selecting := d.selector != "" || d.fieldSelector != "" || d.all
	switch {
	case len(args) == 0:
		return nil, errors.New("you must name the objects to delete: TYPE NAME..., TYPE/NAME..., TYPE -l SELECTOR, TYPE --all, or -f FILENAME")
	case d.all && d.selector != "":
		return nil, errors.New("cannot set --all and --selector at the same time")
	}
	ns := d.EffectiveNamespace()

	if strings.Contains(args[0], "/") {
		if selecting {
			return nil, errors.New("names cannot be given together with -l, --field-selector or --all")
		}
		var targets []deletion
		for _, arg := range args {
			typ, name, ok := strings.Cut(arg, "/")
			if !ok || typ == "" || name == "" {
				return nil, fmt.Errorf("arguments in TYPE/NAME form cannot be mixed with others: %q", arg)
			}
			t, err := d.named(c, typ, ns, name)
			if err != nil {
				return nil, err
			}
			targets = append(targets, t)
		}
		return targets, nil
	}

	resources, _, err := resolveTypes(args[0])
	if err != nil {
		return nil, err
	}
	names := args[1:]
	switch {
	case len(names) > 0 && selecting:
		return nil, errors.New("names cannot be given together with -l, --field-selector or --all")
	case len(names) > 0 && d.AllNamespaces:
		return nil, errAllNamespacesByName
	case len(names) == 0 && !selecting:
		return nil, errors.New("resource(s) were provided, but no name was specified; give names, -l SELECTOR or --all")
	}
	var targets []deletion
	for _, r := range resources {
		if len(names) > 0 {
			for _, name := range names {
				t, err := d.named(c, r.GroupResource().String(), ns, name)
				if err != nil {
					return nil, err
				}
				targets = append(targets, t)
			}
			continue
		}
		listNS := ns
		if d.AllNamespaces {
			listNS = ""
		}
		found, err := d.list(ctx, c, r, listNS)
		if err != nil {
			return nil, err
		}
		targets = append(targets, found...)
	}
	return targets, nil
}

// named is one object named on the command line.
func (d *deleteOptions) named(c *client.Client, typ, ns, name string) (deletion, error) {
	r, err := ResolveResource(typ)
	if err != nil {
		return deletion{}, err
	}
	uc, err := c.Untyped(r.GroupResource(), ns)
	if err != nil {
		return deletion{}, err
	}
	return deletion{resource: r, client: uc, name: name}, nil
}

// list finds the objects of one resource that match the selectors.
func (d *deleteOptions) list(ctx context.Context, c *client.Client, r *scheme.ResourceInfo, ns string) ([]deletion, error) {
	uc, err := c.Untyped(r.GroupResource(), ns)
	if err != nil {
		return nil, err
	}
	list, err := uc.List(ctx, metav1.ListOptions{LabelSelector: d.selector, FieldSelector: d.fieldSelector})
	if err != nil {
		return nil, err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, err
	}
	var targets []deletion
	for _, item := range items {
		m, err := meta.Accessor(item)
		if err != nil {
			return nil, err
		}
		// With -A each object needs a client for its own namespace.
		oc, err := c.Untyped(r.GroupResource(), m.GetNamespace())
		if err != nil {
			return nil, err
		}
		targets = append(targets, deletion{resource: r, client: oc, name: m.GetName(), uid: m.GetUID()})
	}
	return targets, nil
}

// deleteOne deletes one object and reports whether it did: an object that
// does not exist is an error, unless --ignore-not-found.
func (d *deleteOptions) deleteOne(ctx context.Context, t *deletion, opts metav1.DeleteOptions) (bool, error) {
	if t.uid == "" {
		obj, err := t.client.Get(ctx, t.name)
		if err != nil {
			if apierrors.IsNotFound(err) && d.ignoreNotFound {
				return false, nil
			}
			return false, err
		}
		m, err := meta.Accessor(obj)
		if err != nil {
			return false, err
		}
		t.uid = m.GetUID()
	}
	err := t.client.Delete(ctx, t.name, opts)
	if apierrors.IsNotFound(err) && d.ignoreNotFound {
		return false, nil
	}
	return err == nil, err
}

// waitNotice is how long delete waits quietly before it says, once for
// each object still there, what the object's deletion waits on.
var waitNotice = 5 * time.Second

// waitAll waits until every deleted object is gone, for --timeout at most.
func (d *deleteOptions) waitAll(ctx context.Context, deleted []deletion) error {
	timeout := d.timeout
	if timeout <= 0 {
		timeout = defaultDeleteWait
	}
	waitCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	noticeAt := time.Now().Add(waitNotice)
	for _, t := range deleted {
		w := &waiter{deletion: t, errOut: d.ErrOut}
		err := w.waitGone(waitCtx, noticeAt)
		if err == nil {
			continue
		}
		// A request can fail on the deadline a moment before waitCtx
		// reports it, so compare with the clock.
		if deadline, _ := waitCtx.Deadline(); ctx.Err() == nil && !time.Now().Before(deadline) {
			return fmt.Errorf("timed out waiting for the condition on %s/%s", t.resource.GroupResource(), t.name)
		}
		return err
	}
	return nil
}

// waiter waits for one deleted object to be gone.
type waiter struct {
	deletion
	errOut io.Writer
	// last is the object as last seen.
	last runtime.Object
	// notice fires when it is time to say what the deletion waits on;
	// it is nil once that has been said.
	notice <-chan time.Time
}

// waitGone returns once the object is gone: not found, or replaced by
// another object of the same name. It reads the object, then watches it
// from that resourceVersion for its deletion; a watch that ends early
// (the server's watch window moved on, or the stream broke) starts over
// with a fresh read. If the object is still there at noticeAt, it says
// once what the deletion waits on.
func (w *waiter) waitGone(ctx context.Context, noticeAt time.Time) error {
	timer := time.NewTimer(time.Until(noticeAt))
	defer timer.Stop()
	w.notice = timer.C
	selector := fields.OneTermEqualSelector("metadata.name", w.name).String()
	for {
		obj, err := w.client.Get(ctx, w.name)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		m, err := meta.Accessor(obj)
		if err != nil {
			return err
		}
		if m.GetUID() != w.uid {
			return nil
		}
		w.last = obj
		watcher, err := w.client.Watch(ctx, metav1.ListOptions{FieldSelector: selector, ResourceVersion: m.GetResourceVersion()})
		if err != nil && !apierrors.IsGone(err) && !apierrors.IsResourceExpired(err) {
			return err
		}
		if err == nil {
			gone := w.watchUntilGone(watcher)
			watcher.Stop()
			if gone {
				return nil
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// watchUntilGone reads events until the object is deleted (true) or the
// watch ends or fails (false), saying what the deletion waits on when the
// notice is due.
func (w *waiter) watchUntilGone(watcher watch.Interface) bool {
	for {
		select {
		case ev, ok := <-watcher.ResultChan():
			if !ok {
				return false
			}
			switch ev.Type {
			case watch.Error:
				return false
			case watch.Deleted, watch.Added, watch.Modified:
				m, err := meta.Accessor(ev.Object)
				if err != nil {
					return false
				}
				// Names are unique: an event about another object of
				// this name means that ours is gone already.
				if ev.Type == watch.Deleted || m.GetUID() != w.uid {
					return true
				}
				w.last = ev.Object
			}
		case <-w.notice:
			w.notice = nil
			fmt.Fprintln(w.errOut, pendingDeletion(w.resource, w.last))
		}
	}
}

// pendingDeletion says what keeps a deleted object: its finalizers (for a
// namespace also spec.finalizers) and who removes them, or its graceful
// deletion.
//
//	waiting for namespace "team-a" to be finalized (finalizers: kubernetes); the namespace controller removes it
func pendingDeletion(r *scheme.ResourceInfo, obj runtime.Object) string {
	m, err := meta.Accessor(obj)
	if err != nil {
		return fmt.Sprintf("waiting for the %s to be removed", r.Singular)
	}
	what := kindName(r, m.GetName())
	finalizers := m.GetFinalizers()
	if ns, ok := obj.(*corev1.Namespace); ok {
		for _, f := range ns.Spec.Finalizers {
			finalizers = append(finalizers, string(f))
		}
	}
	if len(finalizers) > 0 {
		msg := fmt.Sprintf("waiting for %s to be finalized (finalizers: %s)", what, strings.Join(finalizers, ", "))
		if who := finalizerRemovers(finalizers); who != "" {
			msg += "; " + who
		}
		return msg
	}
	if grace := m.GetDeletionGracePeriodSeconds(); grace != nil && *grace > 0 {
		msg := fmt.Sprintf("waiting for %s to end its graceful deletion (grace period %ds)", what, *grace)
		if pod, ok := obj.(*corev1.Pod); ok && pod.Spec.NodeName != "" {
			msg += fmt.Sprintf("; the kubelet of node %q removes it once its containers have stopped", pod.Spec.NodeName)
		}
		return msg
	}
	return fmt.Sprintf("waiting for %s to be removed", what)
}

// remover names who removes each well-known finalizer.
var remover = map[string]string{
	string(corev1.FinalizerKubernetes): "the namespace controller",
	metav1.FinalizerOrphanDependents:   "the garbage collector",
	metav1.FinalizerDeleteDependents:   "the garbage collector",
}

// finalizerRemovers says who removes the finalizers ("the garbage
// collector removes it"), or "" when one of them is not well known.
func finalizerRemovers(finalizers []string) string {
	var who []string
	for _, f := range finalizers {
		r, ok := remover[f]
		if !ok {
			return ""
		}
		if !slices.Contains(who, r) {
			who = append(who, r)
		}
	}
	them := "it"
	if len(finalizers) > 1 {
		them = "them"
	}
	if len(who) == 1 {
		return who[0] + " removes " + them
	}
	return strings.Join(who, " and ") + " remove " + them
}
