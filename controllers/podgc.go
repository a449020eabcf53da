package controllers

import "github.com/skiffdev/skiff/controllers/podgc"

func init() {
	register(podgc.Name, func(d Deps) (Controller, error) {
		cfg := podgc.DefaultConfig()
		cfg.Workers = d.Config.Workers
		return podgc.New(d.Deps, cfg)
	})
}
