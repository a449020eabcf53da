package controllers

import "github.com/skiffdev/skiff/controllers/nodelifecycle"

func init() {
	register(nodelifecycle.Name, func(d Deps) (Controller, error) {
		return nodelifecycle.New(nodelifecycle.Config{
			Client:      d.Client,
			Informers:   d.Informers,
			Recorder:    d.Recorder,
			GracePeriod: d.Config.NodeMonitorGracePeriod,
			Workers:     d.Config.Workers,
		})
	})
}
