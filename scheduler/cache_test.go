package scheduler

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffdev/skiff/scheduler/algorithm"
)

// readyNode is a Ready node with the given cpu and room for 110 pods.
func readyNode(name, cpu string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse(cpu),
				corev1.ResourceMemory: resource.MustParse("32Gi"),
				corev1.ResourcePods:   resource.MustParse("110"),
			},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
}

// cpuPod is a pending pod asking for cpu.
func cpuPod(name, cpu string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name)},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "nginx",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}},
		}}},
	}
}

// boundTo returns a copy of pod bound to node.
func boundTo(pod *corev1.Pod, node string) *corev1.Pod {
	p := pod.DeepCopy()
	p.Spec.NodeName = node
	p.ResourceVersion = "2"
	return p
}

// requested is the cpu (in millicores) and pod count the cache counts on
// node.
func requested(t *testing.T, c *Cache, node string) (milliCPU, pods int64) {
	t.Helper()
	for _, n := range c.Dump().Nodes {
		if n.Node.Name == node {
			return n.Requested.MilliCPU, n.Requested.Pods
		}
	}
	t.Fatalf("node %s is not in the cache", node)
	return 0, 0
}

func expectRequested(t *testing.T, c *Cache, node string, milliCPU, pods int64) {
	t.Helper()
	if gotCPU, gotPods := requested(t, c, node); gotCPU != milliCPU || gotPods != pods {
		t.Errorf("node %s: got %dm cpu and %d pods requested, want %dm and %d", node, gotCPU, gotPods, milliCPU, pods)
	}
}

func TestCacheNodesSortedByName(t *testing.T) {
	c := NewCache()
	for _, name := range []string{"node-c", "node-a", "node-b", "node-a"} {
		c.SetNode(readyNode(name, "1"))
	}
	names := func() []string {
		var out []string
		for _, n := range c.Dump().Nodes {
			out = append(out, n.Node.Name)
		}
		return out
	}
	if got, want := names(), []string{"node-a", "node-b", "node-c"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	c.RemoveNode("node-b")
	c.RemoveNode("node-x") // unknown: nothing
	if got, want := names(), []string{"node-a", "node-c"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestCacheAssumeCountsAtOnce(t *testing.T) {
	c := NewCache()
	c.SetNode(readyNode("node-a", "1"))
	pod := cpuPod("web-1", "600m")
	if err := c.Assume(pod, "node-a"); err != nil {
		t.Fatal(err)
	}
	expectRequested(t, c, "node-a", 600, 1)
	if !c.Counted(pod) {
		t.Error("an assumed pod is not counted")
	}
	if pod.Spec.NodeName != "" {
		t.Error("Assume modified the pod it was given")
	}
	if err := c.Assume(pod, "node-a"); err == nil {
		t.Error("assuming a pod twice: got no error, want one")
	}
	if err := c.Assume(cpuPod("web-2", "1m"), "node-x"); err == nil {
		t.Error("assuming a pod on an unknown node: got no error, want one")
	}

	// A decision made now sees the capacity taken.
	_, err := c.Schedule(cpuPod("web-3", "600m"), algorithm.Config{Weights: algorithm.DefaultWeights})
	if err == nil {
		t.Fatal("got a node for a pod that no longer fits, want an error")
	}
}

func TestCacheForget(t *testing.T) {
	c := NewCache()
	c.SetNode(readyNode("node-a", "1"))
	pod := cpuPod("web-1", "600m")
	if err := c.Assume(pod, "node-a"); err != nil {
		t.Fatal(err)
	}
	if !c.Forget(pod) {
		t.Error("forgetting an assumed pod: got false, want true")
	}
	expectRequested(t, c, "node-a", 0, 0)
	if c.Counted(pod) {
		t.Error("a forgotten pod is still counted")
	}
	if c.Forget(pod) {
		t.Error("forgetting it again: got true, want false")
	}
}

// TestCacheSameNameOtherPod: a pod deleted and created again under the
// same name is another pod (another UID). The old pod's failed binding
// must not drop the new pod's assumption, and the new pod is not counted
// because the old one is.
func TestCacheSameNameOtherPod(t *testing.T) {
	c := NewCache()
	c.SetNode(readyNode("node-a", "1"))
	old := cpuPod("web-1", "600m")
	recreated := old.DeepCopy()
	recreated.UID = "uid-web-1-again"

	if err := c.Assume(recreated, "node-a"); err != nil {
		t.Fatal(err)
	}
	if c.Forget(old) {
		t.Error("forgetting the old pod: got true, want false")
	}
	expectRequested(t, c, "node-a", 600, 1)
	if !c.Counted(recreated) {
		t.Error("the new pod's assumption was dropped by the old pod's Forget")
	}
	if c.Counted(old) {
		t.Error("the old pod counts as counted because the new one of its name is")
	}
	if !c.Forget(recreated) {
		t.Error("forgetting the new pod: got false, want true")
	}
	expectRequested(t, c, "node-a", 0, 0)

	// The other way round: the old pod bound, the new one pending.
	c.SetPod(boundTo(old, "node-a"))
	if c.Counted(recreated) {
		t.Error("a new pending pod counts as counted because the old bound one of its name is")
	}
}

func TestCacheConfirm(t *testing.T) {
	c := NewCache()
	c.SetNode(readyNode("node-a", "1"))
	pod := cpuPod("web-1", "600m")
	if err := c.Assume(pod, "node-a"); err != nil {
		t.Fatal(err)
	}
	// The watch may show the pod bound before the binding call returns.
	c.SetPod(boundTo(pod, "node-a"))
	expectRequested(t, c, "node-a", 600, 1)

	// A late Forget leaves a confirmed pod alone.
	if c.Forget(pod) {
		t.Error("forgetting a confirmed pod: got true, want false")
	}
	expectRequested(t, c, "node-a", 600, 1)
}

func TestCacheConfirmOnAnotherNode(t *testing.T) {
	c := NewCache()
	c.SetNode(readyNode("node-a", "1"))
	c.SetNode(readyNode("node-b", "1"))
	pod := cpuPod("web-1", "600m")
	if err := c.Assume(pod, "node-a"); err != nil {
		t.Fatal(err)
	}
	// Someone else bound it to node-b first.
	c.SetPod(boundTo(pod, "node-b"))
	expectRequested(t, c, "node-a", 0, 0)
	expectRequested(t, c, "node-b", 600, 1)
}

func TestCachePodsBeforeTheirNode(t *testing.T) {
	c := NewCache()
	c.SetPod(boundTo(cpuPod("web-1", "300m"), "node-a"))
	if c.NodeCount() != 0 {
		t.Fatalf("got %d nodes, want 0: node-a's object is unknown", c.NodeCount())
	}
	c.SetNode(readyNode("node-a", "1"))
	expectRequested(t, c, "node-a", 300, 1)

	// Deleted and created again, the node keeps the pods still bound to it.
	c.RemoveNode("node-a")
	c.SetNode(readyNode("node-a", "2"))
	expectRequested(t, c, "node-a", 300, 1)
}

func TestCacheNodeUpdateKeepsPods(t *testing.T) {
	c := NewCache()
	c.SetNode(readyNode("node-a", "1"))
	c.SetPod(boundTo(cpuPod("web-1", "300m"), "node-a"))
	c.SetNode(readyNode("node-a", "4"))
	expectRequested(t, c, "node-a", 300, 1)
	if got := c.Dump().Nodes[0].Allocatable.MilliCPU; got != 4000 {
		t.Errorf("got allocatable %dm, want 4000m", got)
	}
}

func TestCacheFinishedAndDeletedPodsFreeCapacity(t *testing.T) {
	c := NewCache()
	c.SetNode(readyNode("node-a", "1"))
	job := boundTo(cpuPod("job", "300m"), "node-a")
	web := boundTo(cpuPod("web", "200m"), "node-a")
	c.SetPod(job)
	c.SetPod(web)
	expectRequested(t, c, "node-a", 500, 2)

	done := job.DeepCopy()
	done.Status.Phase = corev1.PodSucceeded
	if !c.SetPod(done) {
		t.Error("a finished pod: got freed false, want true")
	}
	expectRequested(t, c, "node-a", 200, 1)
	if c.SetPod(done) {
		t.Error("the same finished pod again: got freed true, want false")
	}

	if !c.RemovePod("default/web") {
		t.Error("removing a counted pod: got false, want true")
	}
	if c.RemovePod("default/web") {
		t.Error("removing it again: got true, want false")
	}
	expectRequested(t, c, "node-a", 0, 0)

	if c.SetPod(cpuPod("pending", "1")) {
		t.Error("a pending pod: got freed true, want false")
	}
	if c.Counted(cpuPod("pending", "1")) {
		t.Error("a pending pod is counted")
	}
}
