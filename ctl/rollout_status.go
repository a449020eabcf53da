package ctl

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiffdev/skiff/internal/client"
)

// revisionAnnotation is the revision the deployment controller gives a
// Deployment and its replica sets.
const revisionAnnotation = "deployment.kubernetes.io/revision"

// progressDeadlineReason is the reason of the Progressing condition of a
// Deployment that made no progress within spec.progressDeadlineSeconds.
const progressDeadlineReason = "ProgressDeadlineExceeded"

// rolloutStatusOptions are the flags of `rollout status`.
type rolloutStatusOptions struct {
	*Options
	files    fileOptions
	watch    bool
	timeout  time.Duration
	revision int64
}

func newRolloutStatusCommand(o *Options) *cobra.Command {
	s := &rolloutStatusOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "status RESOURCE",
		Short: "Show the status of the rollout",
		Long: `Show the status of the rollout of a deployment or a daemon set, as kubectl
does.

By default it watches the rollout until it is done, printing a line at
each change: how many replicas (a daemon set: pods) have been updated,
how many old ones are still to terminate, how many updated ones are
available. A daemon set's rollout is watched only with the RollingUpdate
strategy. It judges only
a spec that the controller has observed (status.observedGeneration), and
fails when the deployment exceeded its progress deadline. Use
--watch=false to print the current status once.`,
		Example: `  # Watch the rollout of a deployment
  skiffctl rollout status deployment/web

  # Give up after two minutes
  skiffctl rollout status deploy web --timeout=2m`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return s.run(cmd.Context(), args)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&s.watch, "watch", "w", true, "watch the status of the rollout until it is done")
	f.DurationVar(&s.timeout, "timeout", 0, "how long to wait before giving up; zero means forever")
	f.Int64Var(&s.revision, "revision", 0, "pin to a revision for showing its status; 0 means the latest")
	rolloutFlags(cmd, &s.files, "naming the resource whose rollout to watch")
	return cmd
}

func (s *rolloutStatusOptions) run(ctx context.Context, args []string) error {
	ts, err := s.targets(args, s.files, "rollout status")
	if err != nil {
		return err
	}
	if len(ts) != 1 {
		return fmt.Errorf("rollout status is only supported on individual resources and resource collections, but %d resources were found", len(ts))
	}
	t := ts[0]
	if !t.isDeployment() && !t.isDaemonSet() {
		return fmt.Errorf("no status viewer has been implemented for %s", kindOf(t.info))
	}
	if s.revision < 0 {
		return fmt.Errorf("revision must be a positive integer: %v", s.revision)
	}
	c, err := s.Client()
	if err != nil {
		return err
	}
	if s.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	v := deploymentViewer(c, t, s.revision)
	if t.isDaemonSet() {
		v = daemonSetViewer(c, t)
	}
	err = s.watchRollout(ctx, t, v)
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("timed out waiting for the condition")
	}
	return err
}

// statusViewer reads and watches the object whose rollout status is
// watched, and judges it: a line to print, whether the rollout is done, or
// why it failed.
type statusViewer struct {
	get    func(ctx context.Context) (runtime.Object, error)
	watch  func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
	status func(obj runtime.Object) (string, bool, error)
}

// deploymentViewer judges a Deployment's rollout, pinned to revision when
// it is not 0.
func deploymentViewer(c *client.Client, t objectTarget, revision int64) statusViewer {
	dc := c.Deployments(t.namespace)
	return statusViewer{
		get:   func(ctx context.Context) (runtime.Object, error) { return dc.Get(ctx, t.name) },
		watch: dc.Watch,
		status: func(obj runtime.Object) (string, bool, error) {
			d, ok := obj.(*appsv1.Deployment)
			if !ok {
				return "", false, fmt.Errorf("got a %T, want a Deployment", obj)
			}
			return deploymentRolloutStatus(d, revision)
		},
	}
}

// daemonSetViewer judges a DaemonSet's rollout. As in kubectl, --revision
// does not apply to it.
func daemonSetViewer(c *client.Client, t objectTarget) statusViewer {
	dc := c.DaemonSets(t.namespace)
	return statusViewer{
		get:   func(ctx context.Context) (runtime.Object, error) { return dc.Get(ctx, t.name) },
		watch: dc.Watch,
		status: func(obj runtime.Object) (string, bool, error) {
			ds, ok := obj.(*appsv1.DaemonSet)
			if !ok {
				return "", false, fmt.Errorf("got a %T, want a DaemonSet", obj)
			}
			return daemonSetRolloutStatus(ds)
		},
	}
}

// watchRollout prints the status of the object, then, with --watch, its
// status at each change until the rollout is done. A line equal to the
// one before is not repeated.
func (s *rolloutStatusOptions) watchRollout(ctx context.Context, t objectTarget, v statusViewer) error {
	d, err := v.get(ctx)
	if err != nil {
		return err
	}
	last := ""
	// judge prints obj's status and reports whether the watch is over.
	judge := func(obj runtime.Object) (bool, error) {
		line, done, err := v.status(obj)
		if err != nil {
			return true, err
		}
		if line != last {
			fmt.Fprint(s.Out, line)
			last = line
		}
		return done || !s.watch, nil
	}
	if over, err := judge(d); over || err != nil {
		return err
	}
	rv := resourceVersionOf(d)
	opts := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", t.name).String()}
	for {
		opts.ResourceVersion = rv
		opts.AllowWatchBookmarks = true
		w, err := v.watch(ctx, opts)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		over, newRV, err := s.follow(ctx, w, t, judge)
		w.Stop()
		if over || err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if newRV == "" {
			// The history is gone (410): read the object again, and go
			// on from it.
			d, err := v.get(ctx)
			if err != nil {
				return err
			}
			if over, err := judge(d); over || err != nil {
				return err
			}
			newRV = resourceVersionOf(d)
		} else if newRV == rv {
			// The watch ended without news: pause before the next, so
			// that a failing server is not called in a loop.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(rewatchPause):
			}
		}
		rv = newRV
	}
}

// resourceVersionOf is obj's resourceVersion, or "" when it has none.
func resourceVersionOf(obj runtime.Object) string {
	m, err := meta.Accessor(obj)
	if err != nil {
		return ""
	}
	return m.GetResourceVersion()
}

// follow judges the object at each event of w until the rollout is
// done, the watch ends or ctx does. It returns the last resourceVersion
// seen, or "" when the server no longer has the history to go on from.
func (s *rolloutStatusOptions) follow(ctx context.Context, w watch.Interface, t objectTarget, judge func(runtime.Object) (bool, error)) (over bool, rv string, err error) {
	for {
		select {
		case <-ctx.Done():
			return false, rv, nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return false, rv, nil
			}
			switch ev.Type {
			case watch.Error:
				err := apierrors.FromObject(ev.Object)
				if apierrors.IsGone(err) || apierrors.IsResourceExpired(err) {
					return false, "", nil
				}
				return true, rv, err
			case watch.Deleted:
				return true, rv, fmt.Errorf("%s has been deleted", t.resourceName())
			case watch.Bookmark:
				if v := resourceVersionOf(ev.Object); v != "" {
					rv = v
				}
			case watch.Added, watch.Modified:
				rv = resourceVersionOf(ev.Object)
				if over, err := judge(ev.Object); over || err != nil {
					return true, rv, err
				}
			}
		}
	}
}

// deploymentRolloutStatus is kubectl's judgement of a Deployment's
// rollout: a line to print, whether it is done, or an error when it
// failed (progress deadline exceeded) or is not the revision asked for.
func deploymentRolloutStatus(d *appsv1.Deployment, revision int64) (string, bool, error) {
	if revision > 0 {
		current, err := strconv.ParseInt(d.Annotations[revisionAnnotation], 10, 64)
		if err != nil {
			return "", false, fmt.Errorf("cannot get the revision of deployment %q: %v", d.Name, err)
		}
		if current != revision {
			return "", false, fmt.Errorf("desired revision (%d) is different from the running revision (%d)", revision, current)
		}
	}
	if d.Generation > d.Status.ObservedGeneration {
		return "Waiting for deployment spec update to be observed...\n", false, nil
	}
	for _, cond := range d.Status.Conditions {
		if cond.Type == appsv1.DeploymentProgressing && cond.Reason == progressDeadlineReason {
			return "", false, fmt.Errorf("deployment %q exceeded its progress deadline", d.Name)
		}
	}
	st := d.Status
	if d.Spec.Replicas != nil && st.UpdatedReplicas < *d.Spec.Replicas {
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d out of %d new replicas have been updated...\n", d.Name, st.UpdatedReplicas, *d.Spec.Replicas), false, nil
	}
	if st.Replicas > st.UpdatedReplicas {
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d old replicas are pending termination...\n", d.Name, st.Replicas-st.UpdatedReplicas), false, nil
	}
	if st.AvailableReplicas < st.UpdatedReplicas {
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d of %d updated replicas are available...\n", d.Name, st.AvailableReplicas, st.UpdatedReplicas), false, nil
	}
	return fmt.Sprintf("deployment %q successfully rolled out\n", d.Name), true, nil
}
