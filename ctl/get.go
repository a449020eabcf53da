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

  # The pods, services, deployments and replica sets of a namespace
  skiffctl get all -n team-a

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
ev, lease, endpointslice). "skiffctl api-resources" lists them. TYPE may
also be the category "all": pods, services, deployments and replicasets.

When several types are asked for, each object is named with its type
(deployment.apps/web), whatever types are found. Objects that are not
found are reported after the others are printed.`,
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
	reqs, severalTypes, err := parseGetArgs(args)
	if err != nil {
		return err
	}
	for _, r := range reqs {
		switch {
		case len(r.names) > 0 && g.selector != "":
			return errors.New("name cannot be provided when a selector is specified")
		case len(r.names) > 0 && g.AllNamespaces:
			return errAllNamespacesByName
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
		objs, fetchErrs := g.fetch(ctx, c, r)
		errs = append(errs, fetchErrs...)
		if n := len(errs); n > 0 && stops(errs[n-1]) {
			return joinErrors(errs)
		}
		results = append(results, getResult{info: r.info, objs: objs})
	}
	// "get pod web" and "get pod/web" ask for one object; kubectl prints
	// that object itself rather than a List holding it.
	single := len(reqs) == 1 && len(reqs[0].names) == 1
	if single && len(errs) > 0 {
		return errs[0]
	}
	if err := g.print(results, single, severalTypes, len(errs) > 0); err != nil {
		return err
	}
	// Found objects are printed first, then a line for each that was not.
	return joinErrors(errs)
}

// errAllNamespacesByName refuses names with -A: a name says which
// object only within one namespace.
var errAllNamespacesByName = errors.New("a resource cannot be retrieved by name across all namespaces")

// parseGetArgs reads kubectl's two argument forms: "TYPE[,TYPE...]
// [NAME...]" (every name of every type; a TYPE may be a category such as
// "all") and "TYPE/NAME...". It also reports whether several types were
// asked for (or a category), in which case kubectl names each object with
// its type ("deployment.apps/web"), whatever types are found.
func parseGetArgs(args []string) (reqs []getRequest, severalTypes bool, err error) {
	if len(args) == 0 {
		return nil, false, errors.New(`you must specify the type of resource to get. Use "skiffctl api-resources" for a complete list of supported resources`)
	}
	types := map[*scheme.ResourceInfo]bool{}
	if strings.Contains(args[0], "/") {
		for _, a := range args {
			typ, name, ok := strings.Cut(a, "/")
			if !ok || typ == "" || name == "" {
				return nil, false, fmt.Errorf("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'skiffctl get resource/<resource_name>' instead of 'skiffctl get resource resource/<resource_name>')")
			}
			info, err := ResolveResource(typ)
			if err != nil {
				return nil, false, err
			}
			types[info] = true
			// Consecutive names of one type share a table.
			if n := len(reqs); n > 0 && reqs[n-1].info == info {
				reqs[n-1].names = append(reqs[n-1].names, name)
				continue
			}
			reqs = append(reqs, getRequest{info: info, names: []string{name}})
		}
		return reqs, len(types) > 1, nil
	}
	for _, a := range args[1:] {
		if strings.Contains(a, "/") {
			return nil, false, fmt.Errorf("arguments in resource/name form must have a single resource and name")
		}
	}
	infos, category, err := resolveTypes(args[0])
	if err != nil {
		return nil, false, err
	}
	for _, info := range infos {
		if types[info] {
			continue // "all,pods" shows the pods once
		}
		types[info] = true
		reqs = append(reqs, getRequest{info: info, names: args[1:]})
	}
	return reqs, category || len(types) > 1, nil
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
	u, err := c.Untyped(r.info.GroupResource(), g.namespace())
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
			if stops(err) {
				break
			}
			continue
		}
		objs = append(objs, obj)
	}
	return objs, errs
}

// print writes what get found in the chosen output format. withKind
// names the objects of tables with their type.
func (g *getOptions) print(results []getResult, single, withKind, hadErrors bool) error {
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

	// Tables: one per resource, separated by an empty line.
	opts := g.tableOptions()
	opts.WithKind = withKind
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

// tableOptions are the columns that get's flags ask for.
func (g *getOptions) tableOptions() printers.Options {
	return printers.Options{
		Wide:          g.output == "wide",
		WithNamespace: g.AllNamespaces,
		ShowLabels:    g.showLabels,
	}
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
		// One table, so that its columns fit every row; the changes
		// that follow are padded to its widths.
		if err := p.print(items...); err != nil {
			return err
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

// streamPrinter prints objects as a watch reports them in get's output
// format: as rows of one table (the header once, later rows padded to the
// widths of the first ones), or as one document each.
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

// print prints objs: the rows of one table, or one document each.
func (p *streamPrinter) print(objs ...runtime.Object) error {
	out := p.g.Out
	switch p.g.output {
	case "json":
		for _, obj := range objs {
			if err := printers.PrintJSON(out, []runtime.Object{obj}, false); err != nil {
				return err
			}
		}
		return nil
	case "yaml":
		for _, obj := range objs {
			if p.docs > 0 {
				if _, err := io.WriteString(out, "---\n"); err != nil {
					return err
				}
			}
			p.docs++
			if err := printers.PrintYAML(out, []runtime.Object{obj}, false); err != nil {
				return err
			}
		}
		return nil
	case "name":
		return printers.PrintNames(out, objs)
	}
	t, err := printers.NewTable(objs, p.g.tableOptions(), printClock())
	if err != nil {
		return err
	}
	return p.table.Write(t)
}
