package ctl

import (
	"fmt"
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

// qualifiedName is how kubectl names an object in messages:
// "deployment.apps/web", "pod/web-1".
func qualifiedName(r *scheme.ResourceInfo, name string) string {
	if r.Group == "" {
		return r.Singular + "/" + name
	}
	return r.Singular + "." + r.Group + "/" + name
}
