package controllers

import (
	"net/netip"

	"github.com/skiffdev/skiff/controllers/nodeipam"
)

func init() {
	register(nodeipam.Name, func(d Deps) (Controller, error) {
		cluster, err := netip.ParsePrefix(d.Config.ClusterCIDR)
		if err != nil {
			return nil, err // Validate has reported it already
		}
		return nodeipam.New(d.Deps, nodeipam.Config{
			ClusterCIDR:      cluster,
			NodeCIDRMaskSize: d.Config.NodeCIDRMaskSize,
			Workers:          d.Config.Workers,
		})
	})
}
