package kubelet

import (
	"context"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/skiffdev/skiff/internal/logging"
)

// runRoutes keeps the node's routes to the other nodes' pods in step with
// the Nodes of the cluster (host-gw), and masquerades this node's pod
// traffic that leaves the cluster. It runs until ctx ends.
func (k *Kubelet) runRoutes(ctx context.Context, nodes cache.SharedIndexInformer) {
	log := logging.From(ctx)
	cluster := netip.MustParsePrefix(k.cfg.ClusterCIDR)
	changed := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	if _, err := nodes.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    poke,
		UpdateFunc: func(_, obj any) { poke(obj) },
		DeleteFunc: poke,
	}); err != nil {
		log.Error("watching nodes for routes", "err", err)
		return
	}
	if !cache.WaitForCacheSync(ctx.Done(), nodes.HasSynced) {
		return
	}
	resync := time.NewTicker(k.cfg.SyncInterval)
	defer resync.Stop()
	var last map[netip.Prefix]netip.Addr
	for {
		if last == nil {
			// At start and every resync: the table may have been removed
			// or a first try may have failed.
			if err := k.network.EnsureMasquerade(*k.podCIDR.Load(), cluster); err != nil {
				log.Error("masquerading pod traffic that leaves the cluster", "err", err)
			}
		}
		want := k.nodeRoutes(nodes.GetStore().List())
		if !sameRoutes(want, last) || last == nil {
			if err := k.network.SyncRoutes(cluster, want); err != nil {
				log.Error("syncing routes to other nodes' pods", "err", err)
			} else {
				last = want
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-resync.C:
			last = nil // recheck the routing table itself now and then
		}
	}
}

// nodeRoutes maps every other node's pod CIDR to its address.
func (k *Kubelet) nodeRoutes(objs []any) map[netip.Prefix]netip.Addr {
	out := map[netip.Prefix]netip.Addr{}
	for _, obj := range objs {
		n, ok := obj.(*corev1.Node)
		if !ok || n.Name == k.cfg.NodeName || n.Spec.PodCIDR == "" {
			continue
		}
		cidr, err := netip.ParsePrefix(n.Spec.PodCIDR)
		if err != nil {
			continue
		}
		for _, a := range n.Status.Addresses {
			if a.Type != corev1.NodeInternalIP {
				continue
			}
			if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Is4() {
				out[cidr] = ip
				break
			}
		}
	}
	return out
}

func sameRoutes(a, b map[netip.Prefix]netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
