package ctl

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/internal/client"
)

// scaleOptions are the flags of `scale`.
type scaleOptions struct {
	*Options
	files           fileOptions
	replicas        int
	currentReplicas int
	resourceVersion string
	selector        string
	all             bool
}

// scaleConflictRetries is how many times scale reads again and retries
// a conditional update that lost a race with another writer.
const scaleConflictRetries = 5

func newScaleCommand(o *Options) *cobra.Command {
	s := &scaleOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "scale [--resource-version=version] [--current-replicas=count] --replicas=COUNT (-f FILENAME | TYPE NAME | TYPE/NAME)",
		Short: "Set a new size for a deployment or replica set",
		Long: `Set a new size for a deployment or replica set, through its scale
subresource, as kubectl does.

Preconditions may be given: --current-replicas or --resource-version. They
are checked against the object before it is scaled, and the scale is
written only if the object has not changed since.`,
		Example: `  # Scale a deployment named web to 3
  skiffctl scale --replicas=3 deployment/web
  skiffctl scale deploy web --replicas=3

  # If the deployment named web has 2 replicas, scale it to 3
  skiffctl scale --current-replicas=2 --replicas=3 deployment/web

  # Scale the deployments and replica sets of a manifest
  skiffctl scale --replicas=0 -f web.yaml

  # Scale every deployment labelled app=web
  skiffctl scale deploy -l app=web --replicas=1`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return s.run(cmd.Context(), args)
		},
	}
	f := cmd.Flags()
	f.IntVar(&s.replicas, "replicas", -1, "the new desired number of replicas (required)")
	f.IntVar(&s.currentReplicas, "current-replicas", -1, "precondition: the current number of replicas; scale only if it matches (-1: no condition)")
	f.StringVar(&s.resourceVersion, "resource-version", "", "precondition: the resource version; scale only if it matches")
	f.StringVarP(&s.selector, "selector", "l", "", "label selector of the objects to scale, e.g. -l app=web")
	f.BoolVar(&s.all, "all", false, "scale every object of the type given in the namespace")
	fileFlags(cmd, &s.files.files, &s.files.recursive, "naming the resources to scale")
	return cmd
}

func (s *scaleOptions) run(ctx context.Context, args []string) error {
	if s.replicas < 0 {
		return errors.New("The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0")
	}
	ts, err := s.scaleTargets(ctx, args)
	if err != nil {
		return err
	}
	if len(ts) == 0 {
		return errors.New("no objects passed to scale")
	}
	if s.resourceVersion != "" && len(ts) > 1 {
		return errors.New("cannot use --resource-version with multiple resources")
	}
	c, err := s.Client()
	if err != nil {
		return err
	}
	var fails failures
	for _, t := range ts {
		err := s.scale(ctx, c, t)
		if err == nil {
			fmt.Fprintf(s.Out, "%s scaled\n", t.qualifiedName())
			continue
		}
		if !fails.add(err) {
			break
		}
	}
	return fails.err()
}

// scaleTargets reads the objects to scale: named, from -f, or all those
// of a type that match -l (or --all).
func (s *scaleOptions) scaleTargets(ctx context.Context, args []string) ([]objectTarget, error) {
	if s.selector == "" && !s.all {
		return s.targets(args, s.files, "scale")
	}
	if len(s.files.files) > 0 || len(args) != 1 {
		return nil, errors.New("a selector or --all is used with one resource type and no names: skiffctl scale TYPE -l SELECTOR --replicas=COUNT")
	}
	info, err := ResolveResource(args[0])
	if err != nil {
		return nil, err
	}
	c, err := s.Client()
	if err != nil {
		return nil, err
	}
	ns := s.EffectiveNamespace()
	u, err := c.Untyped(info.GroupResource(), ns)
	if err != nil {
		return nil, err
	}
	list, err := u.List(ctx, metav1.ListOptions{LabelSelector: s.selector})
	if err != nil {
		return nil, err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, err
	}
	var ts []objectTarget
	for _, item := range items {
		m, err := meta.Accessor(item)
		if err != nil {
			return nil, err
		}
		ts = append(ts, objectTarget{info: info, namespace: ns, name: m.GetName()})
	}
	return ts, nil
}

// scale sets the replicas of one object through its scale subresource,
// after checking the preconditions against the scale it reads; the write
// is then conditional on that read, and on a conflict it reads again.
func (s *scaleOptions) scale(ctx context.Context, c *client.Client, t objectTarget) error {
	if !t.info.HasSubresource("scale") {
		return fmt.Errorf("%s cannot be scaled: %s have no scale subresource", t.resourceName(), t.info.GroupResource())
	}
	u, err := c.Untyped(t.info.GroupResource(), t.namespace)
	if err != nil {
		return err
	}
	conditional := s.currentReplicas >= 0 || s.resourceVersion != ""
	for attempt := 0; ; attempt++ {
		want := &autoscalingv1.Scale{
			ObjectMeta: metav1.ObjectMeta{Name: t.name, Namespace: t.namespace},
			Spec:       autoscalingv1.ScaleSpec{Replicas: int32(s.replicas)},
		}
		if conditional {
			cur, err := u.GetScale(ctx, t.name)
			if err != nil {
				return err
			}
			if s.currentReplicas >= 0 && int(cur.Spec.Replicas) != s.currentReplicas {
				return fmt.Errorf("Expected replicas to be %d, was %d", s.currentReplicas, cur.Spec.Replicas)
			}
			if s.resourceVersion != "" && cur.ResourceVersion != s.resourceVersion {
				return fmt.Errorf("Expected resource version to be %s, was %s", s.resourceVersion, cur.ResourceVersion)
			}
			want.ResourceVersion = cur.ResourceVersion
		}
		_, err := u.UpdateScale(ctx, t.name, want)
		// A conflict under --current-replicas alone may be a change of
		// something else: read again and check again. Under
		// --resource-version it is the precondition failing.
		if apierrors.IsConflict(err) && s.resourceVersion == "" && attempt < scaleConflictRetries {
			continue
		}
		return err
	}
}
