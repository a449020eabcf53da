package auth

import "testing"

// TestPolicy runs the components' requests, and a few they never make,
// through the same chain as TestNodeAuthorizer.
func TestPolicy(t *testing.T) {
	const (
		apps  = appsGroup
		lease = coordinationGroup
		disc  = discoveryGroup
	)
	scheduler := User{Name: SchedulerUser, Groups: []string{AuthenticatedGroup}}
	controllers := User{Name: ControllersUser, Groups: []string{AuthenticatedGroup}}
	bootstrap := User{Name: BootstrapUserPrefix + "abcdef", Groups: []string{BootstrappersGroup, AuthenticatedGroup}}
	jane := User{Name: "jane", Groups: []string{AuthenticatedGroup}}

	runAuthzCases(t, []authzCase{
		// The scheduler.
		{name: "scheduler lists pods", attrs: Attributes{User: scheduler, Verb: "list", Resource: "pods"}, want: Allow},
		{name: "scheduler watches nodes", attrs: Attributes{User: scheduler, Verb: "watch", Resource: "nodes"}, want: Allow},
		{name: "scheduler binds a pod", attrs: Attributes{User: scheduler, Verb: "create", Resource: "pods", Subresource: "binding", Namespace: "default", Name: "web"}, want: Allow},
		{name: "scheduler marks a pod unschedulable", attrs: Attributes{User: scheduler, Verb: "patch", Resource: "pods", Subresource: "status", Namespace: "default", Name: "web"}, want: Allow},
		{name: "scheduler records an event", attrs: Attributes{User: scheduler, Verb: "create", Resource: "events", Namespace: "default"}, want: Allow},
		{name: "scheduler creates its lease", attrs: Attributes{User: scheduler, Verb: "create", Group: lease, Resource: "leases", Namespace: "kube-system", Name: "skiff-scheduler"}, want: Allow},
		{name: "scheduler creates its lease, named only in the object", attrs: Attributes{User: scheduler, Verb: "create", Group: lease, Resource: "leases", Namespace: "kube-system"}, want: Allow},
		{name: "scheduler creates the controllers' lease",
			attrs: Attributes{User: scheduler, Verb: "create", Group: lease, Resource: "leases", Namespace: "kube-system", Name: "skiff-controllers"}, want: NoOpinion,
			msg: `leases.coordination.k8s.io "skiff-controllers" is forbidden: User "system:kube-scheduler" cannot create resource "leases" in API group "coordination.k8s.io" in the namespace "kube-system"`},
		{name: "scheduler creates an unnamed lease for a node",
			attrs: Attributes{User: scheduler, Verb: "create", Group: lease, Resource: "leases", Namespace: "kube-node-lease"}, want: NoOpinion,
			msg: `leases.coordination.k8s.io is forbidden: User "system:kube-scheduler" cannot create resource "leases" in API group "coordination.k8s.io" in the namespace "kube-node-lease"`},
		{name: "scheduler renews its lease", attrs: Attributes{User: scheduler, Verb: "update", Group: lease, Resource: "leases", Namespace: "kube-system", Name: "skiff-scheduler"}, want: Allow},
		{name: "scheduler takes the controllers' lease",
			attrs: Attributes{User: scheduler, Verb: "update", Group: lease, Resource: "leases", Namespace: "kube-system", Name: "skiff-controllers"}, want: NoOpinion,
			msg: `leases.coordination.k8s.io "skiff-controllers" is forbidden: User "system:kube-scheduler" cannot update resource "leases" in API group "coordination.k8s.io" in the namespace "kube-system"`},
		{name: "scheduler renews a node's lease",
			attrs: Attributes{User: scheduler, Verb: "update", Group: lease, Resource: "leases", Namespace: "kube-node-lease", Name: "a"}, want: NoOpinion,
			msg: `leases.coordination.k8s.io "a" is forbidden: User "system:kube-scheduler" cannot update resource "leases" in API group "coordination.k8s.io" in the namespace "kube-node-lease"`},
		{name: "scheduler deletes a pod",
			attrs: Attributes{User: scheduler, Verb: "delete", Resource: "pods", Namespace: "default", Name: "web"}, want: NoOpinion,
			msg: `pods "web" is forbidden: User "system:kube-scheduler" cannot delete resource "pods" in API group "" in the namespace "default"`},
		{name: "scheduler changes a pod's spec",
			attrs: Attributes{User: scheduler, Verb: "update", Resource: "pods", Namespace: "default", Name: "web"}, want: NoOpinion,
			msg: `pods "web" is forbidden: User "system:kube-scheduler" cannot update resource "pods" in API group "" in the namespace "default"`},
		{name: "scheduler lists services",
			attrs: Attributes{User: scheduler, Verb: "list", Resource: "services"}, want: NoOpinion,
			msg: `services is forbidden: User "system:kube-scheduler" cannot list resource "services" in API group "" at the cluster scope`},

		// The controller manager.
		{name: "replicaset controller creates a pod", attrs: Attributes{User: controllers, Verb: "create", Resource: "pods", Namespace: "default"}, want: Allow},
		{name: "replicaset controller adopts a pod", attrs: Attributes{User: controllers, Verb: "patch", Resource: "pods", Namespace: "default", Name: "web-1"}, want: Allow},
		{name: "podgc deletes a pod", attrs: Attributes{User: controllers, Verb: "delete", Resource: "pods", Namespace: "default", Name: "web-1"}, want: Allow},
		{name: "node lifecycle marks a pod not ready", attrs: Attributes{User: controllers, Verb: "patch", Resource: "pods", Subresource: "status", Namespace: "default", Name: "web-1"}, want: Allow},
		{name: "node lifecycle taints a node", attrs: Attributes{User: controllers, Verb: "update", Resource: "nodes", Name: "a"}, want: Allow},
		{name: "node lifecycle marks a node unknown", attrs: Attributes{User: controllers, Verb: "update", Resource: "nodes", Subresource: "status", Name: "a"}, want: Allow},
		{name: "node ipam sets a pod CIDR", attrs: Attributes{User: controllers, Verb: "patch", Resource: "nodes", Name: "a"}, want: Allow},
		{name: "garbage collector deletes a node", attrs: Attributes{User: controllers, Verb: "delete", Resource: "nodes", Name: "a"}, want: Allow},
		{name: "garbage collector deletes a node's lease", attrs: Attributes{User: controllers, Verb: "delete", Group: lease, Resource: "leases", Namespace: "kube-node-lease", Name: "a"}, want: Allow},
		{name: "job controller writes a job's status", attrs: Attributes{User: controllers, Verb: "update", Group: "batch", Resource: "jobs", Subresource: "status", Namespace: "default", Name: "pi"}, want: Allow},
		{name: "job controller removes a pod's tracking finalizer", attrs: Attributes{User: controllers, Verb: "patch", Resource: "pods", Namespace: "default", Name: "pi-abcde"}, want: Allow},
		{name: "cronjob controller creates a job", attrs: Attributes{User: controllers, Verb: "create", Group: "batch", Resource: "jobs", Namespace: "default"}, want: Allow},
		{name: "cronjob controller writes a cronjob's status", attrs: Attributes{User: controllers, Verb: "update", Group: "batch", Resource: "cronjobs", Subresource: "status", Namespace: "default", Name: "hello"}, want: Allow},
		{name: "cronjob controller creates a cronjob",
			attrs: Attributes{User: controllers, Verb: "create", Group: "batch", Resource: "cronjobs", Namespace: "default"}, want: NoOpinion,
			msg: `cronjobs.batch is forbidden: User "system:kube-controller-manager" cannot create resource "cronjobs" in API group "batch" in the namespace "default"`},
		{name: "garbage collector reads an owner", attrs: Attributes{User: controllers, Verb: "get", Group: apps, Resource: "deployments", Namespace: "default", Name: "web"}, want: Allow},
		{name: "namespace controller lists events", attrs: Attributes{User: controllers, Verb: "list", Resource: "events", Namespace: "doomed"}, want: Allow},
		{name: "namespace controller deletes an event", attrs: Attributes{User: controllers, Verb: "delete", Resource: "events", Namespace: "doomed", Name: "x.1"}, want: Allow},
		{name: "namespace controller releases a namespace", attrs: Attributes{User: controllers, Verb: "update", Resource: "namespaces", Name: "doomed"}, want: Allow},
		{name: "deployment controller sets a revision", attrs: Attributes{User: controllers, Verb: "patch", Group: apps, Resource: "deployments", Namespace: "default", Name: "web"}, want: Allow},
		{name: "deployment controller writes status", attrs: Attributes{User: controllers, Verb: "update", Group: apps, Resource: "deployments", Subresource: "status", Namespace: "default", Name: "web"}, want: Allow},
		{name: "deployment controller creates a replicaset", attrs: Attributes{User: controllers, Verb: "create", Group: apps, Resource: "replicasets", Namespace: "default"}, want: Allow},
		{name: "replicaset controller writes status", attrs: Attributes{User: controllers, Verb: "update", Group: apps, Resource: "replicasets", Subresource: "status", Namespace: "default", Name: "web-1"}, want: Allow},
		{name: "endpointslice controller creates a slice", attrs: Attributes{User: controllers, Verb: "create", Group: disc, Resource: "endpointslices", Namespace: "default"}, want: Allow},
		{name: "controllers create their lease", attrs: Attributes{User: controllers, Verb: "create", Group: lease, Resource: "leases", Namespace: "kube-system", Name: "skiff-controllers"}, want: Allow},
		{name: "controllers create their lease, named only in the object", attrs: Attributes{User: controllers, Verb: "create", Group: lease, Resource: "leases", Namespace: "kube-system"}, want: Allow},
		{name: "controllers read their lease", attrs: Attributes{User: controllers, Verb: "get", Group: lease, Resource: "leases", Namespace: "kube-system", Name: "skiff-controllers"}, want: Allow},
		{name: "controllers create a node's lease",
			attrs: Attributes{User: controllers, Verb: "create", Group: lease, Resource: "leases", Namespace: "kube-node-lease", Name: "a"}, want: NoOpinion,
			msg: `leases.coordination.k8s.io "a" is forbidden: User "system:kube-controller-manager" cannot create resource "leases" in API group "coordination.k8s.io" in the namespace "kube-node-lease"`},
		{name: "controllers bind a pod",
			attrs: Attributes{User: controllers, Verb: "create", Resource: "pods", Subresource: "binding", Namespace: "default", Name: "web-1"}, want: NoOpinion,
			msg: `pods "web-1" is forbidden: User "system:kube-controller-manager" cannot create resource "pods/binding" in API group "" in the namespace "default"`},
		{name: "controllers register a node",
			attrs: Attributes{User: controllers, Verb: "create", Resource: "nodes", Name: "a"}, want: NoOpinion,
			msg: `nodes "a" is forbidden: User "system:kube-controller-manager" cannot create resource "nodes" in API group "" at the cluster scope`},
		{name: "controllers delete a namespace",
			attrs: Attributes{User: controllers, Verb: "delete", Resource: "namespaces", Name: "default"}, want: NoOpinion,
			msg: `namespaces "default" is forbidden: User "system:kube-controller-manager" cannot delete resource "namespaces" in API group "" at the cluster scope`},
		{name: "controllers make a join token",
			attrs: Attributes{User: controllers, Verb: "create", Path: "/skiff.v1.Cluster/CreateToken"}, want: NoOpinion,
			msg: `forbidden: User "system:kube-controller-manager" cannot create path "/skiff.v1.Cluster/CreateToken"`},

		// A join token's user, and any other authenticated user.
		{name: "bootstrapper fetches the CA", attrs: Attributes{User: bootstrap, Verb: "get", Path: "/skiff.v1.Cluster/CA"}, want: Allow},
		{name: "bootstrapper has a certificate signed", attrs: Attributes{User: bootstrap, Verb: "create", Path: "/skiff.v1.Cluster/SignNodeCertificate"}, want: Allow},
		{name: "bootstrapper makes a join token",
			attrs: Attributes{User: bootstrap, Verb: "create", Path: "/skiff.v1.Cluster/CreateToken"}, want: NoOpinion,
			msg: `forbidden: User "system:bootstrap:abcdef" cannot create path "/skiff.v1.Cluster/CreateToken"`},
		{name: "bootstrapper registers a node",
			attrs: Attributes{User: bootstrap, Verb: "create", Resource: "nodes", Name: "a"}, want: NoOpinion,
			msg: `nodes "a" is forbidden: User "system:bootstrap:abcdef" cannot create resource "nodes" in API group "" at the cluster scope`},
		{name: "user asks for the version", attrs: Attributes{User: jane, Verb: "get", Path: "/skiff.v1.API/Version"}, want: Allow},
		{name: "user has a node certificate signed",
			attrs: Attributes{User: jane, Verb: "create", Path: "/skiff.v1.Cluster/SignNodeCertificate"}, want: NoOpinion,
			msg: `forbidden: User "jane" cannot create path "/skiff.v1.Cluster/SignNodeCertificate"`},
		{name: "user lists pods",
			attrs: Attributes{User: jane, Verb: "list", Resource: "pods", Namespace: "default"}, want: NoOpinion,
			msg: `pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "default"`},
	})
}
