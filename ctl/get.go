package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiffdev/skiff/ctl/printers"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/scheme"
)

func init() { register(newGetCommand) }

// printClock is where ages in tables and describe output are measured
// from. Tests set it to a fixed time so that their output does not change.
var printClock = time.Now

// getOptions are the flags of `get`.
type getOptions struct {
	*Options
	output        string
	selector      string
	fieldSelector string
	watch         bool
	watchOnly     bool
	showLabels    bool
	noHeaders     bool
}

const getExample = `  # List the pods of the current namespace, then of every namespace
  skiffctl get pods
  skiffctl get pods -A -o wide

  # One deployment, as YAML
  skiffctl get deployment web -o yaml
  skiffctl get deploy/web -o yaml

  # Deployments and services labelled app=web
  skiffctl get deploy,svc -l app=web

  # Pods on one node, and their changes as they happen
  skiffctl get pods --field-selector spec.nodeName=node-1 -w`

func newGetCommand(o *Options) *cobra.Command {
	g := &getOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "get TYPE[,TYPE...] [NAME...] | TYPE/NAME...",
		Short: "Display one or many resources",
		Long: `Display one or many resources, as kubectl does: a table with the
resource's columns, or the objects as yaml or json, or their names.

TYPE is any name of a resource: plural, singular, short name or kind,
optionally with its group (pods, po, deploy, deployments.apps, svc, no, ns,
ev, lease, endpointslice). "skiffctl api-resources" lists them.`,
		Example: getExample,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd.Context(), args)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&g.output, "output", "o", "", "output format: wide, yaml, json or name")
	f.StringVarP(&g.selector, "selector", "l", "", "label selector to filter on, e.g. -l app=web,tier!=db")
	f.StringVar(&g.fieldSelector, "field-selector", "", "field selector to filter on, e.g. --field-selector spec.nodeName=node-1")
	f.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", o.AllNamespaces, "list the objects of every namespace")
	f.BoolVarP(&g.watch, "watch", "w", false, "after listing, print each change as it happens")
	f.BoolVar(&g.watchOnly, "watch-only", false, "print changes as they happen, without listing first")
	f.BoolVar(&g.showLabels, "show-labels", false, "show each object's labels in a last column")
	f.BoolVar(&g.noHeaders, "no-headers", false, "leave the header out of tables")
	return cmd
}

// getRequest is one resource to get, with the names asked for (none: list
// them all).
type getRequest struct {
	info  *scheme.ResourceInfo
	names []string
}

// getResult is what one request found.
type getResult struct {
	info *scheme.ResourceInfo
	objs []runtime.Object
}

func (g *getOptions) run(ctx context.Context, args []string) error {
	switch g.output {
	case "", "wide", "yaml", "json", "name":
	default:
		return fmt.Errorf("unable to match a printer suitable for the output format %q, allowed formats are: json,name,wide,yaml", g.output)
	}
	reqs, err := parseGetArgs(args)
	if err != nil {
		return err
	}
	if g.selector != "" {
		for _, r := range reqs {
			if len(r.names) > 0 {
				return errors.New("name cannot be provided when a selector is specified")
			}
		}
	}
	c, err := g.Client()
	if err != nil {
		return err
	}
	if g.watch || g.watchOnly {
		return g.runWatch(ctx, c, reqs)
	}

	var results []getResult
	var errs []error
	for _, r := range reqs {
		objs, err := g.fetch(ctx, c, r)
		errs = append(errs, err...)
		results = append(results, getResult{info: r.info, objs: objs})
	}
	// "get pod web" and "get pod/web" ask for one object; kubectl prints
	// that object itself rather than a List holding it.
	single := len(reqs) == 1 && len(reqs[0].names) == 1
	if single && len(errs) > 0 {
		return errs[0]
	}
	if err := g.print(results, single, len(errs) > 0); err != nil {
		return err
	}
	return g.reportErrors(errs)
}

// parseGetArgs reads kubectl's two argument forms: "TYPE[,TYPE...]
// [NAME...]" (every name of every type) and "TYPE/NAME...".
func parseGetArgs(args []string) ([]getRequest, error) {
	if len(args) == 0 {
		return nil, errors.New(`you must specify the type of resource to get. Use "skiffctl api-resources" for a complete list of supported resources`)
	}
	if strings.Contains(args[0], "/") {
		var reqs []getRequest
		for _, a := range args {
			typ, name, ok := strings.Cut(a, "/")
			if !ok || typ == "" || name == "" {
				return nil, fmt.Errorf("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'skiffctl get resource/<resource_name>' instead of 'skiffctl get resource resource/<resource_name>')")
			}
			info, err := ResolveResource(typ)
			if err != nil {
				return nil, err
			}
			// Consecutive names of one type share a table.
			if n := len(reqs); n > 0 && reqs[n-1].info == info {
				reqs[n-1].names = append(reqs[n-1].names, name)
				continue
			}
			reqs = append(reqs, getRequest{info: info, names: []string{name}})
		}
		return reqs, nil
	}
	for _, a := range args[1:] {
		if strings.Contains(a, "/") {
			return nil, fmt.Errorf("arguments in resource/name form must have a single resource and name")
		}
	}
	var reqs []getRequest
	for _, typ := range strings.Split(args[0], ",") {
		if typ == "" {
			continue
		}
		info, err := ResolveResource(typ)
		if err != nil {
			return nil, err
		}
		reqs = append(reqs, getRequest{info: info, names: args[1:]})
	}
	if len(reqs) == 0 {
		return nil, fmt.Errorf("no resource type in %q", args[0])
	}
	return reqs, nil
}

// namespace is the namespace requests go to: "" (all) with -A.
func (g *getOptions) namespace() string {
	if g.AllNamespaces {
		return ""
	}
	return g.EffectiveNamespace()
}

// fetch gets the named objects of a request, or lists them all. It
// returns what it found together with the errors of the names it did not.
func (g *getOptions) fetch(ctx context.Context, c *client.Client, r getRequest) ([]runtime.Object, []error) {
	// A named object lives in one namespace, even with -A.
	ns := g.namespace()
	if len(r.names) > 0 {
		ns = g.EffectiveNamespace()
	}
	u, err := c.Untyped(r.info.GroupResource(), ns)
	if err != nil {
		return nil, []error{err}
	}
	if len(r.names) == 0 {
		list, err := u.List(ctx, metav1.ListOptions{LabelSelector: g.selector, FieldSelector: g.fieldSelector})
		if err != nil {
			return nil, []error{err}
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			return nil, []error{err}
		}
		return items, nil
	}
	var objs []runtime.Object
	var errs []error
	for _, name := range r.names {
		obj, err := u.Get(ctx, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		objs = append(objs, obj)
	}
	return objs, errs
}

// print writes what get found in the chosen output format.
func (g *getOptions) print(results []getResult, single, hadErrors bool) error {
	var all []runtime.Object
	for _, r := range results {
		all = append(all, r.objs...)
	}
	switch g.output {
	case "json":
		return printers.PrintJSON(g.Out, all, !single)
	case "yaml":
		return printers.PrintYAML(g.Out, all, !single)
	case "name":
		return printers.PrintNames(g.Out, all)
	}

	// Tables: one per resource, separated by an empty line. Names carry
	// their kind when objects of several kinds are shown, as in kubectl.
	kinds := map[*scheme.ResourceInfo]bool{}
	for _, r := range results {
		if len(r.objs) > 0 {
			kinds[r.info] = true
		}
	}
	opts := printers.Options{
		Wide:          g.output == "wide",
		WithNamespace: g.AllNamespaces,
		ShowLabels:    g.showLabels,
		WithKind:      len(kinds) > 1,
	}
	now := printClock()
	written := 0
	for _, r := range results {
		if len(r.objs) == 0 {
			continue
		}
		t, err := printers.NewTable(r.objs, opts, now)
		if err != nil {
			return err
		}
		if written > 0 {
			fmt.Fprintln(g.Out)
		}
		w := printers.NewTableWriter(g.Out)
		w.NoHeaders = g.noHeaders
		if err := w.Write(t); err != nil {
			return err
		}
		written++
	}
	if written == 0 && !hadErrors {
		g.noResources(results)
	}
	return nil
}

// noResources says that nothing was found, on standard error as kubectl
// does, naming the namespace when every resource asked for lives in one.
func (g *getOptions) noResources(results []getResult) {
	namespaced := !g.AllNamespaces
	for _, r := range results {
		namespaced = namespaced && r.info.Namespaced
	}
	if namespaced {
		fmt.Fprintf(g.ErrOut, "No resources found in %s namespace.\n", g.EffectiveNamespace())
	} else {
		fmt.Fprintln(g.ErrOut, "No resources found")
	}
}

// reportErrors prints every error but the last, which it returns for the
// caller to print, so that each missing object gets its own line.
func (g *getOptions) reportErrors(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	for _, err := range errs[:len(errs)-1] {
		fmt.Fprintln(g.ErrOut, FormatError(err))
	}
	return errs[len(errs)-1]
}

// runWatch lists one resource (unless --watch-only) and then prints every
// change to it until ctx ends.
func (g *getOptions) runWatch(ctx context.Context, c *client.Client, reqs []getRequest) error {
	if len(reqs) != 1 {
		return errors.New("you may only specify a single resource type")
	}
	r := reqs[0]
	if len(r.names) > 1 {
		return fmt.Errorf("watch is only supported on individual resources and resource collections, but %d resources were found", len(r.names))
	}
	ns := g.namespace()
	fieldSelector := g.fieldSelector
	if len(r.names) == 1 {
		ns = g.EffectiveNamespace()
		sel := fields.OneTermEqualSelector("metadata.name", r.names[0]).String()
		if fieldSelector != "" {
			sel += "," + fieldSelector
		}
		fieldSelector = sel
	}
	u, err := c.Untyped(r.info.GroupResource(), ns)
	if err != nil {
		return err
	}
	opts := metav1.ListOptions{LabelSelector: g.selector, FieldSelector: fieldSelector}

	// The list gives the current objects and the resourceVersion from
	// which the watch continues without missing or repeating a change.
	list, err := u.List(ctx, opts)
	if err != nil {
		return err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return err
	}
	if len(r.names) == 1 && len(items) == 0 && !g.watchOnly {
		return apierrors.NewNotFound(r.info.GroupResource(), r.names[0])
	}
	lm, err := meta.ListAccessor(list)
	if err != nil {
		return err
	}
	p := g.newStreamPrinter()
	if !g.watchOnly {
		for _, obj := range items {
			if err := p.print(obj); err != nil {
				return err
			}
		}
	}

	rv := lm.GetResourceVersion()
	for {
		opts.ResourceVersion = rv
		opts.AllowWatchBookmarks = true
		w, err := u.Watch(ctx, opts)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		before := rv
		rv, err = g.printEvents(ctx, w, p, rv)
		w.Stop()
		if err != nil || ctx.Err() != nil {
			return err
		}
		// The server or the connection ended the watch: go on from the
		// last change seen, after a pause if this watch brought nothing,
		// so that a server that keeps failing is not called in a loop.
		if rv == before {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(rewatchPause):
			}
		}
	}
}

// rewatchPause is how long get -w waits before watching again after a
// watch that ended without reporting anything.
const rewatchPause = time.Second

// printEvents prints the changes a watch reports until it ends, and
// returns the resourceVersion of the last one.
func (g *getOptions) printEvents(ctx context.Context, w watch.Interface, p *streamPrinter, rv string) (string, error) {
	for {
		select {
		case <-ctx.Done():
			return rv, nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return rv, nil
			}
			if ev.Type == watch.Error {
				return rv, apierrors.FromObject(ev.Object)
			}
			if m, err := meta.Accessor(ev.Object); err == nil {
				rv = m.GetResourceVersion()
			}
			if ev.Type == watch.Bookmark {
				continue
			}
			if err := p.print(ev.Object); err != nil {
				return rv, err
			}
		}
	}
}

// streamPrinter prints objects one at a time in get's output format: as
// rows of one table (the header once, the columns kept aligned), or as
// one document each.
type streamPrinter struct {
	g     *getOptions
	table *printers.TableWriter
	docs  int // YAML documents written, which "---" separates
}

func (g *getOptions) newStreamPrinter() *streamPrinter {
	tw := printers.NewTableWriter(g.Out)
	tw.NoHeaders = g.noHeaders
	return &streamPrinter{g: g, table: tw}
}

func (p *streamPrinter) print(obj runtime.Object) error {
	out := p.g.Out
	objs := []runtime.Object{obj}
	switch p.g.output {
	case "json":
		return printers.PrintJSON(out, objs, false)
	case "yaml":
		if p.docs > 0 {
			if _, err := io.WriteString(out, "---\n"); err != nil {
				return err
			}
		}
		p.docs++
		return printers.PrintYAML(out, objs, false)
	case "name":
		return printers.PrintNames(out, objs)
	}
	t, err := printers.NewTable(objs, printers.Options{
		Wide:          p.g.output == "wide",
		WithNamespace: p.g.AllNamespaces,
		ShowLabels:    p.g.showLabels,
	}, printClock())
	if err != nil {
		return err
	}
	return p.table.Write(t)
}
