package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffdev/skiff/ctl/printers"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/scheme"
)

// This file holds `rollout` and its subcommands that patch a Deployment
// (pause, resume, restart), and what all the subcommands share: finding
// the objects they act on. rollout_status.go watches a rollout,
// rollout_history.go lists and restores revisions (history, undo).

// restartedAtAnnotation is the pod template annotation that `rollout
// restart` sets: a change of template, hence a new rollout. kubectl's key.
const restartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"

// rolloutClock is the time `rollout restart` writes; tests may fix it.
var rolloutClock = time.Now

const rolloutLong = `Manage the rollout of one or many resources, as kubectl does.

Valid resource types are deployments (deployment, deploy, deployments.apps)
and, for status, history and undo, daemonsets (daemonset, ds,
daemonsets.apps).`

const rolloutExample = `  # Wait for the rollout of a deployment to finish
  skiffctl rollout status deployment/web

  # Roll back to the previous revision, or to revision 3
  skiffctl rollout undo deployment/web
  skiffctl rollout undo deployment/web --to-revision=3

  # The revisions of a daemon set
  skiffctl rollout history daemonset/log-shipper -n kube-system

  # Replace every pod of a deployment, one rollout step after the other
  skiffctl rollout restart deployment/web`

func newRolloutCommand(o *Options) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "rollout SUBCOMMAND",
		Short:   "Manage the rollout of a resource",
		Long:    rolloutLong,
		Example: rolloutExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	for _, sub := range []*cobra.Command{
		newRolloutStatusCommand(o),
		newRolloutHistoryCommand(o),
		newRolloutUndoCommand(o),
		newRolloutRestartCommand(o),
		newRolloutPauseCommand(o),
		newRolloutResumeCommand(o),
	} {
		// NewCommand names the server in the errors of subcommands too.
		cmd.AddCommand(sub)
	}
	return cmd
}

// objectTarget is one object a verb acts on.
type objectTarget struct {
	info      *scheme.ResourceInfo
	namespace string
	name      string
}

// qualifiedName is how messages name the object: "deployment.apps/web".
func (t objectTarget) qualifiedName() string {
	return printers.QualifiedName(t.info, t.name)
}

// resourceName is how kubectl's rollout errors name the object:
// `deployments.apps "web"`.
func (t objectTarget) resourceName() string {
	return fmt.Sprintf("%s %q", t.info.GroupResource(), t.name)
}

// fileOptions are the -f/-R flags of the verbs that act on named objects.
type fileOptions struct {
	files     []string
	recursive bool
}

// targets reads the objects a verb acts on, given as "TYPE NAME...",
// "TYPE/NAME..." or with -f. verb is used in the message of a missing
// argument.
func (o *Options) targets(args []string, f fileOptions, verb string) ([]objectTarget, error) {
	if len(f.files) > 0 {
		if len(args) > 0 {
			return nil, errors.New("when paths are specified with -f, resources cannot also be given as arguments")
		}
		docs, err := ReadManifests(f.files, f.recursive, o.In)
		if err != nil {
			return nil, err
		}
		var ts []objectTarget
		for i := range docs {
			doc := &docs[i]
			if doc.Err != nil {
				return nil, fmt.Errorf("resource mapping not found for name: %q namespace: %q from %s: %w",
					doc.Object.GetName(), doc.Object.GetNamespace(), doc.Where(), doc.Err)
			}
			ns, err := o.documentNamespace(doc)
			if err != nil {
				return nil, err
			}
			ts = append(ts, objectTarget{info: doc.Resource, namespace: ns, name: doc.Object.GetName()})
		}
		if len(ts) == 0 {
			return nil, errors.New("no objects passed to " + verb)
		}
		return ts, nil
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("required resource not specified")
	}
	ns := o.EffectiveNamespace()
	var ts []objectTarget
	if strings.Contains(args[0], "/") {
		for _, a := range args {
			typ, name, ok := strings.Cut(a, "/")
			if !ok || typ == "" || name == "" {
				return nil, fmt.Errorf("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'skiffctl %s resource/<resource_name>' instead of 'skiffctl %s resource resource/<resource_name>')", verb, verb)
			}
			info, err := ResolveResource(typ)
			if err != nil {
				return nil, err
			}
			ts = append(ts, objectTarget{info: info, namespace: ns, name: name})
		}
		return ts, nil
	}
	info, err := ResolveResource(args[0])
	if err != nil {
		return nil, err
	}
	if len(args) == 1 {
		return nil, fmt.Errorf("resource(s) were provided, but no name was specified")
	}
	for _, name := range args[1:] {
		if strings.Contains(name, "/") {
			return nil, fmt.Errorf("arguments in resource/name form must have a single resource and name")
		}
		ts = append(ts, objectTarget{info: info, namespace: ns, name: name})
	}
	return ts, nil
}

// isDeployment reports whether t is a Deployment, the one resource that
// Skiff's rollout subcommands know.
func (t objectTarget) isDeployment() bool {
	return t.info.Group == "apps" && t.info.Resource == "deployments"
}

// kindOf is a resource's kind with its group, as kubectl names it in
// "not implemented" errors: "ReplicaSet.apps".
func kindOf(info *scheme.ResourceInfo) string {
	if info.Group == "" {
		return info.Kind
	}
	return info.Kind + "." + info.Group
}

// rolloutFlags registers -f/-R on a rollout subcommand.
func rolloutFlags(cmd *cobra.Command, f *fileOptions, what string) {
	fileFlags(cmd, &f.files, &f.recursive, what)
}

// eachRolloutTarget runs fn on every target and carries on after the
// targets that fail; the errors come after, one a line.
func (o *Options) eachRolloutTarget(ctx context.Context, ts []objectTarget, fn func(c *client.Client, t objectTarget) error) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	var fails failures
	for _, t := range ts {
		if err := fn(c, t); err != nil && !fails.add(err) {
			break
		}
	}
	return fails.err()
}

// eachDeployment runs fn on every target, a Deployment that it reads
// first, and carries on after the targets that fail; the errors come
// after, one a line. notSupported is the error for other resources.
func (o *Options) eachDeployment(ctx context.Context, ts []objectTarget, notSupported string, fn func(c *client.Client, t objectTarget, d *appsv1.Deployment) error) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	var fails failures
	for _, t := range ts {
		if !t.isDeployment() {
			if !fails.add(fmt.Errorf("%s %s", t.resourceName(), notSupported)) {
				break
			}
			continue
		}
		d, err := c.Deployments(t.namespace).Get(ctx, t.name)
		if err == nil {
			err = fn(c, t, d)
		}
		if err != nil && !fails.add(err) {
			break
		}
	}
	return fails.err()
}

// restart patches the restartedAt annotation into the pod template of
// each Deployment (unless paused) and DaemonSet in ts.
func (o *Options) restart(ctx context.Context, ts []objectTarget) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{
			restartedAtAnnotation: rolloutClock().Format(time.RFC3339),
		}},
	}}})
	if err != nil {
		return err
	}
	var fails failures
	for _, t := range ts {
		switch {
		case t.isDeployment():
			var d *appsv1.Deployment
			if d, err = c.Deployments(t.namespace).Get(ctx, t.name); err == nil {
				if d.Spec.Paused {
					err = fmt.Errorf("%s can't restart paused deployment (run rollout resume first)", t.resourceName())
				} else {
					_, err = c.Deployments(t.namespace).Patch(ctx, t.name, types.MergePatchType, patch)
				}
			}
		case t.isDaemonSet():
			_, err = c.DaemonSets(t.namespace).Patch(ctx, t.name, types.MergePatchType, patch)
		default:
			err = fmt.Errorf("%s restarting is not supported", t.resourceName())
		}
		if err == nil {
			fmt.Fprintf(o.Out, "%s restarted\n", t.qualifiedName())
		} else if !fails.add(err) {
			break
		}
	}
	return fails.err()
}

// newRolloutPauseCommand: `rollout pause`.
func newRolloutPauseCommand(o *Options) *cobra.Command {
	return newPausedCommand(o, true)
}

// newRolloutResumeCommand: `rollout resume`.
func newRolloutResumeCommand(o *Options) *cobra.Command {
	return newPausedCommand(o, false)
}

// newPausedCommand makes `rollout pause` (pause true) and `rollout
// resume`: both set spec.paused, and refuse, as kubectl does, a
// Deployment that is already as asked.
func newPausedCommand(o *Options, pause bool) *cobra.Command {
	var f fileOptions
	verb, done, already, unsupported := "pause", "paused", "is already paused", "pausing is not supported"
	short := "Mark the provided resource as paused"
	long := `Mark the provided resource as paused: the deployment controller does not
roll out changes to its pod template until it is resumed. Scaling still
works.`
	if !pause {
		verb, done, already, unsupported = "resume", "resumed", "is not paused", "resuming is not supported"
		short = "Resume a paused resource"
		long = `Resume a paused resource: the deployment controller rolls out the changes
made to its pod template while it was paused.`
	}
	cmd := &cobra.Command{
		Use:     verb + " RESOURCE",
		Short:   short,
		Long:    long,
		Example: fmt.Sprintf("  skiffctl rollout %s deployment/web", verb),
		RunE: func(cmd *cobra.Command, args []string) error {
			ts, err := o.targets(args, f, "rollout "+verb)
			if err != nil {
				return err
			}
			return o.eachDeployment(cmd.Context(), ts, unsupported, func(c *client.Client, t objectTarget, d *appsv1.Deployment) error {
				if d.Spec.Paused == pause {
					return fmt.Errorf("%s %s", t.resourceName(), already)
				}
				patch, err := json.Marshal(map[string]any{"spec": map[string]any{"paused": pause}})
				if err != nil {
					return err
				}
				if _, err := c.Deployments(t.namespace).Patch(cmd.Context(), t.name, types.MergePatchType, patch); err != nil {
					return err
				}
				fmt.Fprintf(o.Out, "%s %s\n", t.qualifiedName(), done)
				return nil
			})
		},
	}
	rolloutFlags(cmd, &f, "naming the resources to "+verb)
	return cmd
}

// newRolloutRestartCommand: `rollout restart` sets the restartedAt
// annotation of the pod template, which starts a new rollout.
func newRolloutRestartCommand(o *Options) *cobra.Command {
	var f fileOptions
	cmd := &cobra.Command{
		Use:   "restart RESOURCE",
		Short: "Restart a resource",
		Long: `Restart a resource: its pods are replaced by a new rollout, as for any
change of the pod template. The change is the template's annotation
kubectl.kubernetes.io/restartedAt, set to the current time.`,
		Example: "  skiffctl rollout restart deployment/web\n  skiffctl rollout restart daemonset/log-shipper",
		RunE: func(cmd *cobra.Command, args []string) error {
			ts, err := o.targets(args, f, "rollout restart")
			if err != nil {
				return err
			}
			return o.restart(cmd.Context(), ts)
		},
	}
	rolloutFlags(cmd, &f, "naming the resources to restart")
	return cmd
}
