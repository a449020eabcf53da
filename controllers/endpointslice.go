package controllers

import "github.com/skiffdev/skiff/controllers/endpointslice"

func init() {
	register(endpointslice.Name, func(d Deps) (Controller, error) {
		cfg := endpointslice.DefaultConfig()
		cfg.Workers = d.Config.Workers
		return endpointslice.New(d.Deps, cfg)
	})
}
