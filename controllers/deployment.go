package controllers

import "github.com/skiffdev/skiff/controllers/deployment"

func init() {
	register(deployment.Name, func(d Deps) (Controller, error) {
		cfg := deployment.DefaultConfig()
		cfg.Workers = d.Config.Workers
		return deployment.New(d.Deps, cfg)
	})
}
