package ctl

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiffdev/skiff/internal/scheme"
)

// ResolveResource finds a resource by any name kubectl accepts for it:
// plural ("pods"), singular ("pod"), short name ("po"), kind ("Pod"), each
// optionally qualified with its group ("deployments.apps",
// "deploy.apps").
func ResolveResource(name string) (*scheme.ResourceInfo, error) {
	lower := strings.ToLower(name)
	base, group, qualified := strings.Cut(lower, ".")
	for i := range scheme.Resources {
		r := &scheme.Resources[i]
		if qualified && group != r.Group {
			continue
		}
		if base == r.Resource || base == r.Singular || base == strings.ToLower(r.Kind) {
			return r, nil
		}
		for _, s := range r.ShortNames {
			if base == s {
				return r, nil
			}
		}
	}
	return nil, fmt.Errorf("the server doesn't have a resource type %q", name)
}

// resolveTypes reads a TYPE argument of get, describe and delete:
// resource names separated by commas ("deploy,svc"), each of which may
// also be a category ("all") that stands for several resources. It
// reports whether a category was used: kubectl then names objects with
// their type, as for several types.
func resolveTypes(arg string) (resources []*scheme.ResourceInfo, category bool, err error) {
	for _, name := range strings.Split(arg, ",") {
		if name == "" {
			continue
		}
		r, err := ResolveResource(name)
		if err == nil {
			resources = append(resources, r)
			continue
		}
		members := categoryMembers(strings.ToLower(name))
		if len(members) == 0 {
			return nil, false, err
		}
		resources = append(resources, members...)
		category = true
	}
	if len(resources) == 0 {
		return nil, false, fmt.Errorf("no resource type in %q", arg)
	}
	return resources, category, nil
}

// categoryMembers lists the resources in a category in kubectl's order:
// the core group first, then the other groups, each group's resources in
// alphabetical order ("all": pods, services, daemonsets, deployments,
// replicasets).
func categoryMembers(category string) []*scheme.ResourceInfo {
	var members []*scheme.ResourceInfo
	for i := range scheme.Resources {
		if r := &scheme.Resources[i]; slices.Contains(r.Categories, category) {
			members = append(members, r)
		}
	}
	slices.SortStableFunc(members, func(a, b *scheme.ResourceInfo) int {
		if (a.Group == "") != (b.Group == "") {
			if a.Group == "" {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Group+"/"+a.Resource, b.Group+"/"+b.Resource)
	})
	return members
}

// ResourceForKind finds the resource of a manifest's apiVersion and kind.
func ResourceForKind(apiVersion, kind string) (*scheme.ResourceInfo, error) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return nil, fmt.Errorf("invalid apiVersion %q: %w", apiVersion, err)
	}
	r, ok := scheme.ForKind(gv.WithKind(kind))
	if !ok {
		return nil, fmt.Errorf("no matches for kind %q in version %q", kind, apiVersion)
	}
	return r, nil
}
