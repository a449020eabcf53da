package nodeipam

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/skiffdev/skiff/controllers/controller"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/events"
	"github.com/skiffdev/skiff/internal/logging"
)

// Name names the controller in logs, events and the queue.
const Name = "nodeipam"

// Defaults of the manager's --cluster-cidr and --node-cidr-mask-size.
const (
	DefaultClusterCIDR      = "10.244.0.0/16"
	DefaultNodeCIDRMaskSize = 24
)

// Event reasons. CIDRNotAvailable is Kubernetes' own.
const (
	EventCIDRNotAvailable = "CIDRNotAvailable"
	EventCIDRCollision    = "CIDRCollision"
	EventCIDROutside      = "CIDROutsideClusterCIDR"
)

// Config configures the controller.
type Config struct {
	// ClusterCIDR is the range node CIDRs are cut from (--cluster-cidr).
	ClusterCIDR netip.Prefix
	// NodeCIDRMaskSize is the prefix length of each node's CIDR
	// (--node-cidr-mask-size).
	NodeCIDRMaskSize int
	// Workers is how many nodes are reconciled at once.
	Workers int
}

// DefaultConfig returns the defaults of the manager's flags.
func DefaultConfig() Config {
	return Config{
		ClusterCIDR:      netip.MustParsePrefix(DefaultClusterCIDR),
		NodeCIDRMaskSize: DefaultNodeCIDRMaskSize,
		Workers:          5,
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers: must be at least 1, got %d", c.Workers))
	}
	if err := ValidateRange(c.ClusterCIDR, c.NodeCIDRMaskSize); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Controller is the node IPAM controller. It writes the nodes'
// spec.podCIDR, and records CIDRNotAvailable, CIDRCollision and
// CIDROutsideClusterCIDR events on nodes.
type Controller struct {
	*controller.Loop
	client   *client.Client
	recorder events.EventRecorder
	nodes    cache.Indexer

	// mu guards set, uids and waiting.
	mu  sync.Mutex
	set *CIDRSet
	// uids holds, per node name in set, the UID of the Node whose CIDR
	// set records: a Node deleted and created again under the same name
	// is another node, whose predecessor's CIDR must be released.
	uids map[string]types.UID
	// waiting holds the nodes that found no free CIDR; a release
	// enqueues them again.
	waiting map[string]bool
}

// New builds the controller and adds its handler to the node informer of
// deps: every node event enqueues the node's name. Start it after New.
func New(deps controller.Deps, cfg Config) (*Controller, error) {
	deps, err := deps.Complete()
	if err = errors.Join(err, cfg.Validate()); err != nil {
		return nil, err
	}
	set, err := NewCIDRSet(cfg.ClusterCIDR, cfg.NodeCIDRMaskSize)
	if err != nil {
		return nil, err
	}
	nodes := deps.Informers.Nodes()
	c := &Controller{
		client:   deps.Client,
		recorder: deps.Recorder,
		nodes:    nodes.GetIndexer(),
		set:      set,
		uids:     map[string]types.UID{},
		waiting:  map[string]bool{},
	}
	c.Loop = controller.NewLoop(Name, cfg.Workers, c)
	// Before the first Reconcile, record the CIDR of every cached node,
	// so that no CIDR a node already has is given to another.
	c.OnSynced(c.rebuild)
	if err := c.Watch(nodes, controller.EnqueueHandler(c.Queue())); err != nil {
		return nil, err
	}
	return c, nil
}

// rebuild records the pod CIDRs of all cached nodes, oldest node first:
// when two collide, the younger one is reported.
func (c *Controller) rebuild(ctx context.Context) {
	var nodes []*corev1.Node
	for _, obj := range c.nodes.List() {
		if n := obj.(*corev1.Node); podCIDROf(n) != "" {
			nodes = append(nodes, n)
		}
	}
	slices.SortFunc(nodes, func(a, b *corev1.Node) int {
		return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time), cmp.Compare(a.Name, b.Name))
	})
	for _, n := range nodes {
		c.record(ctx, n, podCIDROf(n))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	logging.From(ctx).Info("node CIDRs recorded", "clusterCIDR", c.set.Cluster(), "nodes", len(nodes), "used", c.set.Used(), "size", c.set.Size())
}

// Reconcile handles one node (key: its name): a node gone releases its
// CIDR, a node with a pod CIDR has it recorded, and a node without one is
// given the next free CIDR.
func (c *Controller) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	obj, exists, err := c.nodes.GetByKey(key)
	if err != nil {
		return controller.Result{}, err
	}
	if !exists {
		c.mu.Lock()
		c.releaseLocked(key)
		c.mu.Unlock()
		return controller.Result{}, nil
	}
	node := obj.(*corev1.Node)
	if cidr := podCIDROf(node); cidr != "" {
		c.record(ctx, node, cidr)
		return controller.Result{}, nil
	}
	return controller.Result{}, c.allocate(ctx, node)
}

// releaseLocked releases the CIDR of the node name, if it holds one, and
// enqueues the nodes waiting for a CIDR. c.mu must be held.
func (c *Controller) releaseLocked(name string) {
	delete(c.waiting, name)
	delete(c.uids, name)
	if !c.set.Release(name) {
		return
	}
	for n := range c.waiting {
		c.Queue().Add(n)
	}
}

// record notes the pod CIDR a node has, unless it is noted already, and
// reports a CIDR that collides with another node's or lies outside the
// cluster CIDR.
func (c *Controller) record(ctx context.Context, node *corev1.Node, cidr string) {
	log := logging.From(ctx).With("node", node.Name)
	p, err := netip.ParsePrefix(cidr)
	if err != nil { // the API server validates podCIDR; just in case
		log.Warn("node's pod CIDR is not a CIDR; ignored", "podCIDR", cidr, "err", err)
		return
	}
	c.mu.Lock()
	if held, ok := c.set.Get(node.Name); ok && held == p.Masked() && c.uids[node.Name] == node.UID {
		c.mu.Unlock()
		return
	}
	// What the name held before (an allocation whose patch lost to a
	// kubelet's own CIDR, or a former node of that name) is released.
	c.releaseLocked(node.Name)
	collisions, inside := c.set.Occupy(node.Name, p)
	c.uids[node.Name] = node.UID
	cluster := c.set.Cluster()
	c.mu.Unlock()

	if !inside {
		log.Warn("node's pod CIDR lies outside the cluster CIDR", "podCIDR", p, "clusterCIDR", cluster)
		c.recorder.Eventf(node, corev1.EventTypeWarning, EventCIDROutside,
			"Node %s has pod CIDR %s, outside the cluster CIDR %s", node.Name, p, cluster)
	}
	if len(collisions) > 0 {
		log.Warn("node's pod CIDR collides with other nodes'", "podCIDR", p, "nodes", collisions)
		c.recorder.Eventf(node, corev1.EventTypeWarning, EventCIDRCollision,
			"Node %s has pod CIDR %s, which overlaps the pod CIDR of node(s) %s", node.Name, p, strings.Join(collisions, ", "))
	}
}

// allocate gives a node without a pod CIDR the next free one and writes
// it into spec.podCIDR and spec.podCIDRs with one patch conditional on
// the node's resourceVersion. On a conflict the CIDR stays reserved for
// the node, and the retry writes the same one (or records whatever
// CIDR the node got meanwhile instead).
func (c *Controller) allocate(ctx context.Context, node *corev1.Node) error {
	log := logging.From(ctx).With("node", node.Name)
	c.mu.Lock()
	if c.uids[node.Name] != node.UID {
		c.releaseLocked(node.Name)
	}
	p, err := c.set.Allocate(node.Name)
	if errors.Is(err, ErrFull) {
		first := !c.waiting[node.Name]
		c.waiting[node.Name] = true
		cluster := c.set.Cluster()
		c.mu.Unlock()
		if first {
			log.Warn("no pod CIDR left for the node; waiting for one to be released", "clusterCIDR", cluster)
			c.recorder.Eventf(node, corev1.EventTypeWarning, EventCIDRNotAvailable,
				"no remaining CIDRs in cluster CIDR %s: node %s gets one once another node is deleted", cluster, node.Name)
		}
		return nil
	}
	c.uids[node.Name] = node.UID
	delete(c.waiting, node.Name)
	c.mu.Unlock()

	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": node.ResourceVersion},
		"spec":     map[string]any{"podCIDR": p.String(), "podCIDRs": []string{p.String()}},
	})
	if err != nil {
		return err
	}
	_, err = c.client.Nodes().Patch(ctx, node.Name, types.MergePatchType, patch)
	switch {
	case apierrors.IsNotFound(err):
		return nil // its deletion enqueues it, and releases the CIDR
	case err != nil:
		return fmt.Errorf("set pod CIDR %s on node %q: %w", p, node.Name, err)
	}
	log.Info("pod CIDR allocated", "podCIDR", p)
	return nil
}

// podCIDROf returns a node's IPv4 pod CIDR: spec.podCIDR, or else the
// first IPv4 entry of spec.podCIDRs; "" when it has none.
func podCIDROf(n *corev1.Node) string {
	if n.Spec.PodCIDR != "" {
		return n.Spec.PodCIDR
	}
	for _, cidr := range n.Spec.PodCIDRs {
		if p, err := netip.ParsePrefix(cidr); err == nil && p.Addr().Is4() {
			return cidr
		}
	}
	return ""
}
