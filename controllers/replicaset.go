package controllers

import "github.com/skiffdev/skiff/controllers/replicaset"

func init() {
	register(replicaset.Name, func(d Deps) (Controller, error) {
		cfg := replicaset.DefaultConfig()
		cfg.Workers = d.Config.Workers
		return replicaset.New(d.Deps, cfg)
	})
}
