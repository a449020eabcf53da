package ctl

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/internal/client"
)

// logsOptions are the flags of `logs`.
type logsOptions struct {
	*Options
	container  string
	follow     bool
	previous   bool
	tail       int64
	since      time.Duration
	sinceTime  string
	timestamps bool
	limitBytes int64
}

func newLogsCommand(o *Options) *cobra.Command {
	l := &logsOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]",
		Short: "Print the logs for a container in a pod",
		Long: `Print the logs for a container in a pod, as kubectl does. The API
server asks the kubelet of the pod's node, which reads the container's log
file.

The container may be left out when the pod has only one, or names its
default in the kubectl.kubernetes.io/default-container annotation. TYPE/NAME
may name a pod, or a deployment, replica set or job: the logs are then those of
one of its pods.`,
		Example: `  # The logs of the only container of pod web-1
  skiffctl logs web-1

  # Follow the logs of container app, starting with the last 10 lines
  skiffctl logs web-1 -c app -f --tail 10

  # The logs of the previous run of a container that restarted
  skiffctl logs web-1 -p

  # The last hour, with timestamps, of a pod of deployment web
  skiffctl logs deploy/web --since 1h --timestamps`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return l.run(cmd.Context(), args)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&l.container, "container", "c", "", "the container to print the logs of (default: the pod's only or default container)")
	f.BoolVarP(&l.follow, "follow", "f", false, "keep printing the logs as they are written, until the container exits")
	f.BoolVarP(&l.previous, "previous", "p", false, "print the logs of the previous run of the container")
	f.Int64Var(&l.tail, "tail", -1, "lines of recent log to print; -1 prints every line")
	f.DurationVar(&l.since, "since", 0, "print only logs newer than this duration, like 5s, 2m or 3h")
	f.StringVar(&l.sinceTime, "since-time", "", "print only logs after this time (RFC3339)")
	f.BoolVar(&l.timestamps, "timestamps", false, "prefix each line with its timestamp")
	f.Int64Var(&l.limitBytes, "limit-bytes", 0, "most bytes of log to print; 0 is no limit")
	return cmd
}

func (l *logsOptions) run(ctx context.Context, args []string) error {
	if len(args) == 0 || len(args) > 2 {
		return errors.New("expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.\nPOD or TYPE/NAME is a required argument for the logs command")
	}
	opts := &corev1.PodLogOptions{
		Container:  l.container,
		Follow:     l.follow,
		Previous:   l.previous,
		Timestamps: l.timestamps,
	}
	if len(args) == 2 {
		if l.container != "" {
			return errors.New("only one of -c or an inline [CONTAINER] arg is allowed")
		}
		opts.Container = args[1]
	}
	if l.tail < -1 {
		return errors.New("--tail must be greater than or equal to -1")
	}
	if l.tail >= 0 {
		opts.TailLines = new(l.tail)
	}
	if l.limitBytes < 0 {
		return errors.New("--limit-bytes must be greater than 0")
	}
	if l.limitBytes > 0 {
		opts.LimitBytes = new(l.limitBytes)
	}
	if l.since != 0 && l.sinceTime != "" {
		return errors.New("at most one of `sinceTime` or `sinceSeconds` may be specified")
	}
	if l.since < 0 {
		return errors.New("--since must be greater than 0")
	}
	if l.since > 0 {
		// Whole seconds, rounded up: the API counts in seconds.
		opts.SinceSeconds = new(int64((l.since + time.Second - 1) / time.Second))
	}
	if l.sinceTime != "" {
		t, err := time.Parse(time.RFC3339, l.sinceTime)
		if err != nil {
			return fmt.Errorf("--since-time: %q is not an RFC3339 time: %v", l.sinceTime, err)
		}
		opts.SinceTime = &metav1.Time{Time: t}
	}
	c, err := l.Client()
	if err != nil {
		return err
	}
	ns := l.EffectiveNamespace()
	pod, err := l.podFor(ctx, c, ns, args[0])
	if err != nil {
		return err
	}
	return c.PodLogs(ctx, ns, pod, opts, l.Out)
}

// podFor turns the POD or TYPE/NAME argument of logs and exec into the
// name of a pod: a pod's own name, or one pod of a deployment, replica
// set or job (kubectl's choice in spirit: running and ready pods first, then the
// oldest). When there are several it says which it took on ErrOut.
func (o *Options) podFor(ctx context.Context, c *client.Client, ns, arg string) (string, error) {
	typ, name, ok := strings.Cut(arg, "/")
	if !ok {
		return arg, nil
	}
	if name == "" {
		return "", fmt.Errorf("arguments in resource/name form must have a single resource and name")
	}
	info, err := ResolveResource(typ)
	if err != nil {
		return "", err
	}
	var selector *metav1.LabelSelector
	switch info.GroupResource().String() {
	case "pods":
		return name, nil
	case "deployments.apps":
		d, err := c.Deployments(ns).Get(ctx, name)
		if err != nil {
			return "", err
		}
		selector = d.Spec.Selector
	case "replicasets.apps":
		rs, err := c.ReplicaSets(ns).Get(ctx, name)
		if err != nil {
			return "", err
		}
		selector = rs.Spec.Selector
	case "jobs.batch":
		j, err := c.Jobs(ns).Get(ctx, name)
		if err != nil {
			return "", err
		}
		selector = j.Spec.Selector
	default:
		return "", fmt.Errorf("cannot find the pods of %s: only pods, deployments, replica sets and jobs are supported", kindName(info, name))
	}
	sel, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		return "", err
	}
	pods, err := c.Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return "", err
	}
	if len(pods.Items) == 0 {
		return "", fmt.Errorf("no pods found for %s", kindName(info, name))
	}
	items := pods.Items
	sort.SliceStable(items, func(i, j int) bool {
		if a, b := podRank(&items[i]), podRank(&items[j]); a != b {
			return a < b
		}
		if !items[i].CreationTimestamp.Equal(&items[j].CreationTimestamp) {
			return items[i].CreationTimestamp.Before(&items[j].CreationTimestamp)
		}
		return items[i].Name < items[j].Name
	})
	if len(items) > 1 {
		fmt.Fprintf(o.ErrOut, "Found %d pods, using pod/%s\n", len(items), items[0].Name)
	}
	return items[0].Name, nil
}

// podRank orders the pods podFor chooses from: running and ready, then
// running, then bound to a node, then the rest.
func podRank(p *corev1.Pod) int {
	switch {
	case p.Status.Phase == corev1.PodRunning && podReady(p):
		return 0
	case p.Status.Phase == corev1.PodRunning:
		return 1
	case p.Spec.NodeName != "":
		return 2
	}
	return 3
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
