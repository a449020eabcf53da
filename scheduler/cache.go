package scheduler

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffdev/skiff/scheduler/algorithm"
)

// Cache is the scheduler's picture of the cluster: every node with the
// pods counted on it. A pod is counted from the moment the scheduler
// decides on it (Assume), long before the API server has bound it, so
// that the next decision already sees the capacity taken; the watch later
// shows the pod bound and confirms the assumption. A failed binding gives
// the capacity back (Forget). An assumed pod never expires: until the
// watch shows it bound, it must stay counted however slow the watch is,
// or the next decisions would over-commit its node (Kubernetes removed
// assumed-pod expiry for that reason, kubernetes/kubernetes#106361). A
// pod deleted before its bound version showed up leaves through its
// delete event, or the tombstone of the informer's relist.
//
// Pods are counted by namespace/name, but an entry acts for one pod only:
// a pod deleted and created again under the same name is another pod
// (another UID), and Forget and Counted tell them apart.
//
// Decisions read the cache's own NodeInfos under its read lock (Schedule),
// without copying anything; the informer handlers and Assume change them
// under the write lock. This works because algorithm.Schedule never
// modifies its snapshot.
type Cache struct {
	// mu guards everything below.
	mu sync.RWMutex
	// nodes holds every node the cache knows of: nodes whose object the
	// informer has shown, and nodes only named by pods bound to them
	// (the node's object not seen yet, or deleted before its pods).
	nodes map[string]*nodeItem
	// snapshot.Nodes is the NodeInfo of every node whose object is
	// known, sorted by name: what decisions are made from.
	snapshot algorithm.Snapshot
	// pods are the pods counted on nodes, bound or assumed, by key.
	pods map[string]*podItem
}

// nodeItem is one node of the cache.
type nodeItem struct {
	// info is the node as decisions see it; nil while the node's object
	// is unknown.
	info *algorithm.NodeInfo
	// pods are the pods counted on the node, by key: the same as
	// info.Pods, kept also while info is nil so that a node whose
	// object arrives after its pods starts with them.
	pods map[string]*corev1.Pod
}

// podItem is one pod counted on a node.
type podItem struct {
	pod  *corev1.Pod // as counted: the bound pod, or the assumed copy
	node string
	// assumed is true from Assume until the watch shows the pod bound.
	assumed bool
}

// NewCache returns an empty cache.
func NewCache() *Cache {
	return &Cache{
		nodes: map[string]*nodeItem{},
		pods:  map[string]*podItem{},
	}
}

// Schedule decides where pod goes: algorithm.Schedule on the cache's own
// nodes, under the read lock, so that no informer handler or Assume
// changes them meanwhile.
func (c *Cache) Schedule(pod *corev1.Pod, cfg algorithm.Config) (algorithm.Result, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return algorithm.Schedule(&c.snapshot, pod, cfg)
}

// SetNode adds or updates a node.
func (c *Cache) SetNode(node *corev1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	item := c.nodeLocked(node.Name)
	if item.info != nil {
		item.info.SetNode(node)
		return
	}
	item.info = algorithm.NewNodeInfo(node)
	for _, p := range item.pods {
		item.info.AddPod(p)
	}
	i, _ := c.indexLocked(node.Name)
	c.snapshot.Nodes = slices.Insert(c.snapshot.Nodes, i, item.info)
}

// RemoveNode removes a node. Pods still bound to it stay counted, so
// that the node comes back with them if it is created again.
func (c *Cache) RemoveNode(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	item, ok := c.nodes[name]
	if !ok {
		return
	}
	if i, found := c.indexLocked(name); found {
		c.snapshot.Nodes = slices.Delete(c.snapshot.Nodes, i, i+1)
	}
	item.info = nil
	if len(item.pods) == 0 {
		delete(c.nodes, name)
	}
}

// SetPod records the informer's version of a pod. A pod bound to a node
// and not finished (phase Succeeded or Failed) is counted on its node;
// its assumption, if any, is confirmed. A finished pod is no longer
// counted. Pods not bound to a node are ignored. SetPod reports whether
// the pod stopped being counted on a node, which frees capacity.
func (c *Cache) SetPod(pod *corev1.Pod) (freed bool) {
	if pod.Spec.NodeName == "" {
		return false
	}
	if podFinished(pod) {
		return c.RemovePod(podKey(pod))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	key := podKey(pod)
	if old, ok := c.pods[key]; ok {
		c.removeLocked(key, old)
	}
	c.addLocked(key, &podItem{pod: pod, node: pod.Spec.NodeName})
	return false
}

// RemovePod stops counting a pod (deleted, or finished), assumed or
// bound. It reports whether the pod was counted.
func (c *Cache) RemovePod(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	item, ok := c.pods[key]
	if ok {
		c.removeLocked(key, item)
	}
	return ok
}

// Assume counts pod on node before it is bound. It fails if the pod is
// counted already, or the node is gone.
func (c *Cache) Assume(pod *corev1.Pod, node string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := podKey(pod)
	if _, ok := c.pods[key]; ok {
		return fmt.Errorf("pod %q is already assumed or bound", key)
	}
	if n, ok := c.nodes[node]; !ok || n.info == nil {
		return fmt.Errorf("node %q is not in the cache", node)
	}
	// A shallow copy is enough: only spec.nodeName differs, and nothing
	// modifies the rest.
	assumed := *pod
	assumed.Spec.NodeName = node
	c.addLocked(key, &podItem{pod: &assumed, node: node, assumed: true})
	return nil
}

// Forget drops the assumption of a pod whose binding failed, and reports
// whether it did, which frees capacity. A pod that the watch has shown
// bound meanwhile stays counted, and so does another pod of the same name
// (a different UID): the failed binding was not about it.
func (c *Cache) Forget(pod *corev1.Pod) (freed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := podKey(pod)
	item, ok := c.pods[key]
	if !ok || !item.assumed || item.pod.UID != pod.UID {
		return false
	}
	c.removeLocked(key, item)
	return true
}

// Counted reports whether this very pod (same name and UID) is counted on
// a node, bound or assumed: such a pod needs no scheduling, even if an
// older pending version of it is still around. A pod of the same name
// but another UID does not count.
func (c *Cache) Counted(pod *corev1.Pod) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	item, ok := c.pods[podKey(pod)]
	return ok && item.pod.UID == pod.UID
}

// NodeCount is how many nodes decisions see.
func (c *Cache) NodeCount() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.snapshot.Nodes)
}

// Dump returns a copy of the nodes decisions see, for tests and debugging.
func (c *Cache) Dump() *algorithm.Snapshot {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s := &algorithm.Snapshot{Nodes: make([]*algorithm.NodeInfo, len(c.snapshot.Nodes))}
	for i, n := range c.snapshot.Nodes {
		s.Nodes[i] = n.Clone()
	}
	return s
}

// nodeLocked returns the node called name, creating an empty one.
func (c *Cache) nodeLocked(name string) *nodeItem {
	item, ok := c.nodes[name]
	if !ok {
		item = &nodeItem{pods: map[string]*corev1.Pod{}}
		c.nodes[name] = item
	}
	return item
}

// indexLocked finds a node in snapshot.Nodes, or where it would go.
func (c *Cache) indexLocked(name string) (int, bool) {
	return slices.BinarySearchFunc(c.snapshot.Nodes, name, func(n *algorithm.NodeInfo, name string) int {
		return strings.Compare(n.Node.Name, name)
	})
}

// addLocked counts a pod on its node.
func (c *Cache) addLocked(key string, item *podItem) {
	c.pods[key] = item
	n := c.nodeLocked(item.node)
	n.pods[key] = item.pod
	if n.info != nil {
		n.info.AddPod(item.pod)
	}
}

// removeLocked stops counting a pod on its node, and forgets the node if
// it was only known because of its pods.
func (c *Cache) removeLocked(key string, item *podItem) {
	delete(c.pods, key)
	n, ok := c.nodes[item.node]
	if !ok {
		return
	}
	delete(n.pods, key)
	if n.info != nil {
		n.info.RemovePod(item.pod)
	} else if len(n.pods) == 0 {
		delete(c.nodes, item.node)
	}
}

// podFinished reports whether a pod has ended and holds no resources.
func podFinished(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}
