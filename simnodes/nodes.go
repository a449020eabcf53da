package simnodes

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"

	"github.com/skiffdev/skiff/internal/logging"
)

const (
	// LabelInstanceType is the well-known node label simnodes sets to
	// InstanceType, so that simulated nodes are easy to select
	// (skiffctl get nodes -l node.kubernetes.io/instance-type=simulated).
	LabelInstanceType = "node.kubernetes.io/instance-type"
	// InstanceType is the value of LabelInstanceType on simulated nodes.
	InstanceType = "simulated"
	// KubeletVersion is what simulated nodes report as their kubelet's
	// version in status.nodeInfo.
	KubeletVersion = "skiff-sim"
)

// registerWorkers bounds how many nodes are registered at once: enough
// to keep the API server busy, few enough not to queue up thousands of
// requests in it.
const registerWorkers = 16

// simNode is one simulated node.
type simNode struct {
	index int
	name  string

	// uid is set by registration, before the heartbeats start.
	uid types.UID

	// busy is true while a heartbeat of this node is queued or running;
	// it keeps one node from having two heartbeats in flight.
	busy atomic.Bool

	// The fields below belong to the heartbeat worker that holds busy.

	// lease is the node's Lease as last written, reused for the next
	// renewal so that a renewal costs one request.
	lease *coordinationv1.Lease
	// nextStatus is when the node's status is due to be written again.
	nextStatus time.Time
	// gone is set when the Node object was found deleted; the node then
	// stops heartbeating.
	gone bool
}

// nodeName returns the name of node i.
func nodeName(prefix string, i int) string { return prefix + strconv.Itoa(i) }

// nodeIndex returns the index of the simulated node called name, and
// false when name is not one of ours.
func (s *sim) nodeIndex(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, s.cfg.NamePrefix)
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(rest)
	// "sim-01" and "sim-+1" parse too, but are not names we gave.
	if err != nil || i < 0 || i >= len(s.nodes) || strconv.Itoa(i) != rest {
		return 0, false
	}
	return i, true
}

// NodeLabels returns the labels of simulated node i: the configured
// Labels plus the well-known ones a kubelet sets (hostname, os, arch) and
// LabelInstanceType.
func (c *Config) NodeLabels(i int) map[string]string {
	labels := map[string]string{
		corev1.LabelHostname:   nodeName(c.NamePrefix, i),
		corev1.LabelOSStable:   "linux",
		corev1.LabelArchStable: runtime.GOARCH,
		LabelInstanceType:      InstanceType,
	}
	maps.Copy(labels, c.Labels)
	return labels
}

// newNode returns the Node object of simulated node i as registered.
func (s *sim) newNode(i int, now metav1.Time) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: s.nodes[i].name, Labels: s.cfg.NodeLabels(i)},
		Status:     s.nodeStatus(i, now, nil),
	}
}

// nodeStatus returns the status node i reports at now. Conditions that
// keep their status keep their lastTransitionTime from old.
func (s *sim) nodeStatus(i int, now metav1.Time, old *corev1.NodeStatus) corev1.NodeStatus {
	resources := corev1.ResourceList{
		corev1.ResourceCPU:    s.cfg.CPU,
		corev1.ResourceMemory: s.cfg.Memory,
		corev1.ResourcePods:   s.cfg.Pods,
	}
	conditions := []corev1.NodeCondition{
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", Message: "simulated node has no memory pressure"},
		{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", Message: "simulated node has no disk pressure"},
		{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID", Message: "simulated node has no process id pressure"},
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "simulated node is ready"},
	}
	for j := range conditions {
		c := &conditions[j]
		c.LastHeartbeatTime = now
		c.LastTransitionTime = now
		if old == nil {
			continue
		}
		for _, o := range old.Conditions {
			if o.Type == c.Type && o.Status == c.Status {
				c.LastTransitionTime = o.LastTransitionTime
			}
		}
	}
	return corev1.NodeStatus{
		Capacity:    resources,
		Allocatable: resources.DeepCopy(),
		Conditions:  conditions,
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: s.plan.nodeIP(i).String()},
			{Type: corev1.NodeHostName, Address: s.nodes[i].name},
		},
		NodeInfo: corev1.NodeSystemInfo{
			KubeletVersion:  KubeletVersion,
			OperatingSystem: "linux",
			Architecture:    runtime.GOARCH,
		},
		Phase: corev1.NodeRunning,
	}
}

// registerNodes creates every node, or adopts it when it exists already,
// with registerWorkers requests in flight, and logs progress. It returns
// when all are registered, on the first error that retrying cannot fix,
// or when ctx ends.
func (s *sim) registerNodes(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var created, adopted, retries atomic.Int64
	var lastErr atomic.Pointer[string]
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(registerWorkers, len(s.nodes)) {
		wg.Go(func() {
			for i := range next {
				err := retryTransient(ctx, &retries, func() error {
					wasCreated, err := s.registerNode(ctx, i)
					switch {
					case err != nil:
						msg := fmt.Sprintf("node %q: %v", s.nodes[i].name, err)
						lastErr.Store(&msg)
					case wasCreated:
						created.Add(1)
					default:
						adopted.Add(1)
					}
					return err
				})
				if err != nil {
					cancel(fmt.Errorf("register node %q: %w", s.nodes[i].name, err))
				}
			}
		})
	}

	start := time.Now()
	progress := time.NewTicker(progressInterval)
	defer progress.Stop()
	report := func(msg string) {
		attrs := []any{"registered", created.Load() + adopted.Load(), "total", len(s.nodes),
			"created", created.Load(), "adopted", adopted.Load(), "retries", retries.Load(),
			"elapsed", time.Since(start).Round(time.Millisecond)}
		if e := lastErr.Swap(nil); e != nil {
			attrs = append(attrs, "lastErr", *e)
		}
		logging.From(ctx).Info(msg, attrs...)
	}
feed:
	for i := range s.nodes {
		for {
			select {
			case next <- i:
				continue feed
			case <-progress.C:
				report("registering nodes")
			case <-ctx.Done():
				break feed
			}
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	report("nodes registered")
	return nil
}

// progressInterval is how often long operations log their progress.
const progressInterval = 5 * time.Second

// registerNode creates node i, or adopts it if it exists: its labels and
// status are made ours. It reports whether the node was created.
func (s *sim) registerNode(ctx context.Context, i int) (bool, error) {
	n := s.nodes[i]
	now := metav1.Now()
	node, err := s.client.Nodes().Create(ctx, s.newNode(i, now))
	if err == nil {
		n.uid = node.UID
		return true, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return false, err
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := s.client.Nodes().Get(ctx, n.name)
		if err != nil {
			return err
		}
		want := s.cfg.NodeLabels(i)
		if !labelsInclude(node.Labels, want) {
			if node.Labels == nil {
				node.Labels = map[string]string{}
			}
			maps.Copy(node.Labels, want)
			if node, err = s.client.Nodes().Update(ctx, node); err != nil {
				return err
			}
		}
		node.Status = s.nodeStatus(i, now, &node.Status)
		node, err = s.client.Nodes().UpdateStatus(ctx, node)
		if err != nil {
			return err
		}
		n.uid = node.UID
		return nil
	})
	return false, err
}

// labelsInclude reports whether have has every label of want.
func labelsInclude(have, want map[string]string) bool {
	for k, v := range want {
		if w, ok := have[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// refreshStatus writes node n's status again, the slow heartbeat that
// moves its conditions' lastHeartbeatTime.
func (s *sim) refreshStatus(ctx context.Context, n *simNode) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := s.client.Nodes().Get(ctx, n.name)
		if err != nil {
			return err
		}
		node.Status = s.nodeStatus(n.index, metav1.Now(), &node.Status)
		_, err = s.client.Nodes().UpdateStatus(ctx, node)
		return err
	})
}

// retryTransient calls f until it succeeds, fails with an error that
// retrying cannot fix (the request itself is wrong), or ctx ends. It
// waits between tries, doubling the wait from 100 ms up to 5 s, and
// counts the retries.
func retryTransient(ctx context.Context, retries *atomic.Int64, f func() error) error {
	delay := 100 * time.Millisecond
	for {
		err := f()
		if err == nil || permanent(err) {
			return err
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		retries.Add(1)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		case <-t.C:
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// permanent reports whether err says the request was wrong, so that
// sending it again cannot succeed.
func permanent(err error) bool {
	return apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) || apierrors.IsForbidden(err) ||
		apierrors.IsUnauthorized(err) || apierrors.IsMethodNotSupported(err)
}
