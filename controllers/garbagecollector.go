package controllers

import "github.com/skiffdev/skiff/controllers/garbagecollector"

func init() {
	register(garbagecollector.Name, func(d Deps) (Controller, error) {
		return garbagecollector.New(d.Deps, garbagecollector.Config{Workers: d.Config.Workers})
	})
}
