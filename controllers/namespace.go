package controllers

import "github.com/skiffdev/skiff/controllers/namespace"

func init() {
	register(namespace.Name, func(d Deps) (Controller, error) {
		cfg := namespace.DefaultConfig()
		cfg.Workers = d.Config.Workers
		return namespace.New(d.Deps, cfg)
	})
}
