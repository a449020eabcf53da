package controllers

import "github.com/skiffdev/skiff/controllers/nodelifecycle"

func init() {
	register(nodelifecycle.Name, func(d Deps) (Controller, error) {
		return nodelifecycle.New(d.Deps, nodelifecycle.Config{
			GracePeriod: d.Config.NodeMonitorGracePeriod,
			Workers:     d.Config.Workers,
		})
	})
}
