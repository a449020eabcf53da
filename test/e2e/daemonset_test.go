package e2e

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// A DaemonSet on the three real nodes: exactly one running pod on each
// node, then, once a node is tainted NoExecute, none on that node and
// still one on each of the others.
func TestDaemonSetOnRealNodes(t *testing.T) {
	cl, lan := startRealNodes(t, 3)
	c, ctx := cl.Client, cl.Ctx

	labels := map[string]string{"app": "agent"}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: ns},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](0),
					Containers: []corev1.Container{{
						Name: "agent", Image: lan.Image, ImagePullPolicy: corev1.PullIfNotPresent,
						Command: []string{"sleep", "3600"},
					}},
				},
			},
		},
	}
	if _, err := c.DaemonSets(ns).Create(ctx, ds); err != nil {
		t.Fatal(err)
	}

	// placement lists the nodes of the DaemonSet's running pods, one
	// entry per pod, sorted, and says whether any pod is not running (or
	// is going away).
	placement := func() ([]string, bool, error) {
		pods, err := c.Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=agent"})
		if err != nil {
			return nil, false, err
		}
		var nodes []string
		others := false
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				nodes = append(nodes, p.Spec.NodeName)
			} else {
				others = true
			}
		}
		sort.Strings(nodes)
		return nodes, others, nil
	}
	nodeNames := func(skip string) []string {
		var names []string
		for _, n := range lan.Nodes {
			if n.Name != skip {
				names = append(names, n.Name)
			}
		}
		sort.Strings(names)
		return names
	}
	// exactlyOnEach waits until the pods are exactly one running pod on
	// each of want, nothing else, and the status says so.
	exactlyOnEach := func(want []string) {
		t.Helper()
		var last []string
		cl.Await(2*time.Minute, fmt.Sprintf("one running agent pod on each of %v", want), func() (bool, error) {
			nodes, others, err := placement()
			if err != nil {
				return false, err
			}
			last = nodes
			if others || strings.Join(nodes, ",") != strings.Join(want, ",") {
				return false, nil
			}
			got, err := c.DaemonSets(ns).Get(ctx, "agent")
			if err != nil {
				return false, err
			}
			st, n := got.Status, int32(len(want))
			return st.ObservedGeneration == got.Generation && st.DesiredNumberScheduled == n &&
				st.CurrentNumberScheduled == n && st.NumberReady == n && st.NumberMisscheduled == 0, nil
		})
		t.Logf("agent pods on %v", last)
	}

	exactlyOnEach(nodeNames(""))

	// A NoExecute taint the pod does not tolerate: its pod goes, the
	// other nodes keep theirs.
	victim := lan.Nodes[2].Name
	node, err := c.Nodes().Get(ctx, victim)
	if err != nil {
		t.Fatal(err)
	}
	node.Spec.Taints = append(node.Spec.Taints, corev1.Taint{Key: "example.com/drain", Effect: corev1.TaintEffectNoExecute})
	if _, err := c.Nodes().Update(ctx, node); err != nil {
		t.Fatal(err)
	}
	exactlyOnEach(nodeNames(victim))
}
