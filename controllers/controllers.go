package controllers

import (
	"net/netip"

	"github.com/skiffdev/skiff/controllers/controller"
	"github.com/skiffdev/skiff/controllers/cronjob"
	"github.com/skiffdev/skiff/controllers/daemonset"
	"github.com/skiffdev/skiff/controllers/deployment"
	"github.com/skiffdev/skiff/controllers/endpointslice"
	"github.com/skiffdev/skiff/controllers/garbagecollector"
	"github.com/skiffdev/skiff/controllers/job"
	"github.com/skiffdev/skiff/controllers/namespace"
	"github.com/skiffdev/skiff/controllers/nodeipam"
	"github.com/skiffdev/skiff/controllers/nodelifecycle"
	"github.com/skiffdev/skiff/controllers/podgc"
	"github.com/skiffdev/skiff/controllers/replicaset"
	"github.com/skiffdev/skiff/controllers/serviceaccount"
)

// all lists every controller the manager runs, in the order they are
// built: its name (for logs and --disable), how it is built from the
// manager's Config, and what it does. README.md says what each one
// watches and writes, and why. Adding a controller is adding a row here
// and there.
var all = []entry{
	{cronjob.Name, newCronJob},                   // starts a CronJob's Jobs on its schedule, once per scheduled time
	{daemonset.Name, newDaemonSet},               // runs one pod of every DaemonSet on each node it belongs on, and rolls out new templates node by node
	{deployment.Name, newDeployment},             // rolls a Deployment's pod template out through one ReplicaSet per template
	{endpointslice.Name, newEndpointSlice},       // lists each Service's pods in EndpointSlices, for the proxies
	{garbagecollector.Name, newGarbageCollector}, // deletes objects whose owners are gone, as their deletion's propagation policy says
	{job.Name, newJob},                           // runs each Job's pods to completion, counts them once, deletes it after its TTL
	{namespace.Name, newNamespace},               // empties a namespace being deleted, then lets it go
	{nodeipam.Name, newNodeIPAM},                 // gives every node its own pod CIDR out of --cluster-cidr
	{nodelifecycle.Name, newNodeLifecycle},       // marks nodes that stop renewing their Lease not ready, taints them, evicts their pods
	{podgc.Name, newPodGC},                       // deletes the pods of nodes that are gone, and finished pods beyond a threshold
	{replicaset.Name, newReplicaSet},             // keeps spec.replicas pods of every ReplicaSet
	{serviceaccount.Name, newServiceAccount},     // gives every namespace its "default" ServiceAccount
}

// entry is one row of all.
type entry struct {
	name string
	new  func(controller.Deps, *Config) (Controller, error)
}

// Each controller's constructor, from the manager's Config: its own
// defaults, with the manager's flags where it has them.

func newDaemonSet(d controller.Deps, c *Config) (Controller, error) {
	cfg := daemonset.DefaultConfig()
	cfg.Workers = c.Workers
	return daemonset.New(d, cfg)
}

func newCronJob(d controller.Deps, c *Config) (Controller, error) {
	cfg := cronjob.DefaultConfig()
	cfg.Workers = c.Workers
	return cronjob.New(d, cfg)
}

func newDeployment(d controller.Deps, c *Config) (Controller, error) {
	cfg := deployment.DefaultConfig()
	cfg.Workers = c.Workers
	return deployment.New(d, cfg)
}

func newEndpointSlice(d controller.Deps, c *Config) (Controller, error) {
	cfg := endpointslice.DefaultConfig()
	cfg.Workers = c.Workers
	return endpointslice.New(d, cfg)
}

func newGarbageCollector(d controller.Deps, c *Config) (Controller, error) {
	cfg := garbagecollector.DefaultConfig()
	cfg.Workers = c.Workers
	return garbagecollector.New(d, cfg)
}

func newJob(d controller.Deps, c *Config) (Controller, error) {
	cfg := job.DefaultConfig()
	cfg.Workers = c.Workers
	return job.New(d, cfg)
}

func newNamespace(d controller.Deps, c *Config) (Controller, error) {
	cfg := namespace.DefaultConfig()
	cfg.Workers = c.Workers
	return namespace.New(d, cfg)
}

func newNodeIPAM(d controller.Deps, c *Config) (Controller, error) {
	cluster, err := netip.ParsePrefix(c.ClusterCIDR)
	if err != nil {
		return nil, err // Validate has reported it already
	}
	cfg := nodeipam.DefaultConfig()
	cfg.Workers = c.Workers
	cfg.ClusterCIDR, cfg.NodeCIDRMaskSize = cluster, c.NodeCIDRMaskSize
	return nodeipam.New(d, cfg)
}

func newNodeLifecycle(d controller.Deps, c *Config) (Controller, error) {
	cfg := nodelifecycle.DefaultConfig()
	cfg.Workers = c.Workers
	cfg.GracePeriod = c.NodeMonitorGracePeriod
	return nodelifecycle.New(d, cfg)
}

func newPodGC(d controller.Deps, c *Config) (Controller, error) {
	cfg := podgc.DefaultConfig()
	cfg.Workers = c.Workers
	return podgc.New(d, cfg)
}

func newReplicaSet(d controller.Deps, c *Config) (Controller, error) {
	cfg := replicaset.DefaultConfig()
	cfg.Workers = c.Workers
	return replicaset.New(d, cfg)
}

func newServiceAccount(d controller.Deps, c *Config) (Controller, error) {
	cfg := serviceaccount.DefaultConfig()
	cfg.Workers = c.Workers
	return serviceaccount.New(d, cfg)
}
