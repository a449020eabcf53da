package auth

import (
	"context"
	"slices"

	skiffv1 "github.com/skiffdev/skiff/proto/skiff/v1"
)

// Policy allows Skiff's own components exactly what they do, and every
// caller the few requests that need no permission: the fixed rules that
// stand in for RBAC until Skiff has it, like the bootstrap ClusterRoles
// Kubernetes creates at start (system:kube-scheduler,
// system:kube-controller-manager, system:node-bootstrapper,
// system:discovery).
//
// Policy only allows; what no rule allows is NoOpinion, which at the end
// of the chain is a denial. Rules only add up, so their order does not
// matter and a request needs one rule that allows it.
//
// Each rule was read off the code of the component it is for: a rule
// that the code does not need is a permission an attacker who takes the
// component's credentials gets for free. Update and patch always come
// together: a patch can say anything an update can, so allowing one
// without the other protects nothing.
type Policy struct{}

// Authorize implements Authorizer.
func (Policy) Authorize(_ context.Context, a Attributes) (Decision, string, error) {
	for _, r := range policyRules {
		if r.who.includes(a.User) && r.allows(a) {
			return Allow, "", nil
		}
	}
	return NoOpinion, "", nil
}

// Verbs, grouped the way the rules use them.
var (
	// readVerbs is what an informer (list, then watch) and a single
	// lookup need.
	readVerbs = []string{"get", "list", "watch"}
	// writeVerbs is every verb that changes an existing object.
	writeVerbs = []string{"update", "patch", "delete"}
)

// API groups of the resources Skiff serves.
const (
	coreGroup         = ""
	appsGroup         = "apps"
	batchGroup        = "batch"
	discoveryGroup    = "discovery.k8s.io"
	coordinationGroup = "coordination.k8s.io"
)

// The leader election Leases, in kube-system: the names are the
// components' defaults (leaderelection.DefaultOptions in
// controllers/manager.go and scheduler/config.go). A copy started with
// another --leader-elect-resource-name cannot create its Lease, as
// Kubernetes' system:kube-scheduler role lets it update only the Lease
// called kube-scheduler. The names keep the scheduler away from the
// controllers' Lease; the controllers, whose garbage collector may
// write every Lease, are kept from nothing by them.
const (
	leaderLeaseNamespace = "kube-system"
	schedulerLeaseName   = "skiff-scheduler"
	controllersLeaseName = "skiff-controllers"
)

// unnamedCreate is the Attributes.Name of a create whose request does
// not name the object: the name is then only inside the object, which
// authorization does not read (Kubernetes' authorizers cannot see it
// either). A rule that limits creates by name lists it next to the
// names it allows, and leaves the name in the object to admission
// (NodeRestriction for nodes) or to nobody.
const unnamedCreate = ""

// subject is whom a rule is for: one user, or every member of a group.
type subject struct{ user, group string }

func userIs(name string) subject    { return subject{user: name} }
func memberOf(group string) subject { return subject{group: group} }

func (s subject) includes(u User) bool {
	if s.user != "" {
		return u.Name == s.user
	}
	return u.InGroup(s.group)
}

// policyRule allows its subject either some verbs on some resources (the
// resource fields) or some non-resource requests (paths).
type policyRule struct {
	who subject

	verbs    []string
	apiGroup string
	// resources are plural names, with "/subresource" for a
	// subresource ("pods/binding"); a resource does not include its
	// subresources.
	resources []string
	// namespace, when set, limits the rule to one namespace; names, when
	// set, to objects of those names.
	namespace string
	names     []string

	// paths are the non-resource requests the rule allows, whatever
	// their verb: each gRPC method does one thing. They are the
	// generated FullMethodName constants, so that renaming a method
	// breaks the build instead of quietly denying it.
	paths []string
}

// allows reports whether r covers the request (its subject aside).
func (r policyRule) allows(a Attributes) bool {
	if !a.IsResourceRequest() {
		return slices.Contains(r.paths, a.Path)
	}
	return len(r.verbs) > 0 &&
		resourceMatches(r.verbs, r.apiGroup, r.resources, a) &&
		(r.namespace == "" || r.namespace == a.Namespace) &&
		(len(r.names) == 0 || slices.Contains(r.names, a.Name))
}

// resourceMatches reports whether a request's verb, API group and
// resource (with its subresource) are among those given.
func resourceMatches(verbs []string, apiGroup string, resources []string, a Attributes) bool {
	resource := a.Resource
	if a.Subresource != "" {
		resource += "/" + a.Subresource
	}
	return a.Group == apiGroup && slices.Contains(verbs, a.Verb) && slices.Contains(resources, resource)
}

// policyRules is the whole policy. Each rule says which code needs it.
var policyRules = []policyRule{
	// Every caller who proved who they are may ask the server's version
	// (skiffctl version, clients checking what they talk to) and fetch
	// the cluster CA (to check it against a join token's hash, or to
	// renew a kubeconfig). Neither says anything that is not public.
	{who: memberOf(AuthenticatedGroup), paths: []string{skiffv1.API_Version_FullMethodName, skiffv1.Cluster_CA_FullMethodName}},

	// A join token is good for one thing: getting a machine its first
	// node certificates. Everything else that machine does, it does as
	// system:node:NAME under the node authorizer.
	{who: memberOf(BootstrappersGroup), paths: []string{skiffv1.Cluster_SignNodeCertificate_FullMethodName}},

	// ---- The scheduler (scheduler/) ----

	// Its informers (scheduler.go, New) cache every pod (pending ones to
	// place, bound ones to count against their node) and every node.
	{who: userIs(SchedulerUser), verbs: readVerbs, apiGroup: coreGroup, resources: []string{"pods", "nodes"}},
	// Placing a pod is a create of its binding subresource (Bind in
	// scheduler.go): the only way to set spec.nodeName.
	{who: userIs(SchedulerUser), verbs: []string{"create"}, apiGroup: coreGroup, resources: []string{"pods/binding"}},
	// A pod that fits nowhere gets PodScheduled=False (writeUnschedulable,
	// a strategic merge patch of the status).
	{who: userIs(SchedulerUser), verbs: []string{"update", "patch"}, apiGroup: coreGroup, resources: []string{"pods/status"}},
	// Scheduled and FailedScheduling events, in the pod's namespace
	// (internal/events creates them; update and patch are for recorders
	// that fold repeats into one event, as Kubernetes' do).
	{who: userIs(SchedulerUser), verbs: []string{"create", "update", "patch"}, apiGroup: coreGroup, resources: []string{"events"}},
	// Leader election (internal/leaderelection: get, create when
	// missing, update to renew or take over) on its own Lease only, so
	// that a scheduler cannot stop the controllers by holding theirs.
	// A create that does not name its Lease cannot be held to that
	// (as in Kubernetes' system:kube-scheduler role): the most it can
	// do is make another Lease in kube-system, which it then cannot
	// renew.
	{who: userIs(SchedulerUser), verbs: []string{"get", "update"}, apiGroup: coordinationGroup, resources: []string{"leases"},
		namespace: leaderLeaseNamespace, names: []string{schedulerLeaseName}},
	{who: userIs(SchedulerUser), verbs: []string{"create"}, apiGroup: coordinationGroup, resources: []string{"leases"},
		namespace: leaderLeaseNamespace, names: []string{schedulerLeaseName, unnamedCreate}},

	// ---- The controller manager (controllers/) ----
	//
	// Its rights are broad because its job is: the garbage collector
	// and the namespace controller act on every resource. What it may
	// not do is as telling: bind pods (the scheduler's job), create
	// Nodes (a kubelet's), or read anything Skiff will add later
	// before a rule here says why it must.

	// Reads of every resource Skiff serves: the shared informers
	// (deployments, replicasets, pods, services, endpointslices, leases,
	// nodes, namespaces), the garbage collector's lookup of an owner of
	// any kind (garbagecollector.go, ownerState), and the namespace
	// controller's list of every namespaced resource, events included
	// (namespace.go, deleteContents).
	{who: userIs(ControllersUser), verbs: readVerbs, apiGroup: coreGroup, resources: []string{"namespaces", "nodes", "pods", "services", "events", "configmaps", "secrets", "serviceaccounts"}},
	{who: userIs(ControllersUser), verbs: readVerbs, apiGroup: appsGroup, resources: []string{"deployments", "replicasets", "daemonsets", "controllerrevisions"}},
	{who: userIs(ControllersUser), verbs: readVerbs, apiGroup: batchGroup, resources: []string{"jobs", "cronjobs"}},
	{who: userIs(ControllersUser), verbs: readVerbs, apiGroup: discoveryGroup, resources: []string{"endpointslices"}},
	{who: userIs(ControllersUser), verbs: readVerbs, apiGroup: coordinationGroup, resources: []string{"leases"}},

	// Pods: the ReplicaSet controller creates and deletes them and
	// patches their ownerReferences (adoption, release); the Job
	// controller creates and deletes them and patches away its
	// batch.kubernetes.io/job-tracking finalizer (job/controller.go); the
	// garbage collector patches metadata and deletes orphans; podgc deletes
	// pods of vanished nodes; the node lifecycle controller evicts
	// (deletes) pods from unreachable nodes; the namespace controller
	// deletes what is left in a terminating namespace.
	{who: userIs(ControllersUser), verbs: []string{"create", "update", "patch", "delete"}, apiGroup: coreGroup, resources: []string{"pods"}},
	// The node lifecycle controller marks the pods of an unreachable
	// node Ready=False (a strategic merge patch of their status).
	{who: userIs(ControllersUser), verbs: []string{"update", "patch"}, apiGroup: coreGroup, resources: []string{"pods/status"}},
	// Nodes: the node lifecycle controller adds and removes the
	// unreachable taints (update) and sets Ready=Unknown (status); node
	// IPAM patches spec.podCIDR; the garbage collector may patch and
	// delete a Node like any other dependent.
	{who: userIs(ControllersUser), verbs: writeVerbs, apiGroup: coreGroup, resources: []string{"nodes"}},
	{who: userIs(ControllersUser), verbs: []string{"update", "patch"}, apiGroup: coreGroup, resources: []string{"nodes/status"}},
	// Services: the garbage collector's patches and deletes, and the
	// namespace controller's deletes. Nothing writes their status.
	{who: userIs(ControllersUser), verbs: writeVerbs, apiGroup: coreGroup, resources: []string{"services"}},
	// ConfigMaps, Secrets and ServiceAccounts: the garbage collector's
	// patches and deletes and the namespace controller's deletes.
	{who: userIs(ControllersUser), verbs: writeVerbs, apiGroup: coreGroup, resources: []string{"configmaps", "secrets", "serviceaccounts"}},
	// The service account controller creates each namespace's
	// "default" ServiceAccount (under the proviso about unnamed creates).
	{who: userIs(ControllersUser), verbs: []string{"create"}, apiGroup: coreGroup, resources: []string{"serviceaccounts"},
		names: []string{"default", unnamedCreate}},
	// Namespaces: the namespace controller removes the "kubernetes"
	// finalizer from spec.finalizers of an emptied namespace (an
	// update). Deleting a namespace is a user's decision, so no delete;
	// Skiff has no namespaces/finalize subresource and the controller
	// does not write namespaces/status.
	{who: userIs(ControllersUser), verbs: []string{"update", "patch"}, apiGroup: coreGroup, resources: []string{"namespaces"}},
	// Events: every controller records through one recorder
	// (manager.go); the namespace controller deletes the events of a
	// terminating namespace.
	{who: userIs(ControllersUser), verbs: []string{"create", "update", "patch", "delete"}, apiGroup: coreGroup, resources: []string{"events"}},

	// Deployments: the deployment controller patches the revision
	// annotation (setRevision) and writes status; the garbage collector
	// and the namespace controller patch and delete.
	{who: userIs(ControllersUser), verbs: writeVerbs, apiGroup: appsGroup, resources: []string{"deployments"}},
	{who: userIs(ControllersUser), verbs: []string{"update", "patch"}, apiGroup: appsGroup, resources: []string{"deployments/status"}},
	// ReplicaSets: the deployment controller creates one per template,
	// scales (updates) them, adopts them (patch) and deletes old ones
	// beyond revisionHistoryLimit; the ReplicaSet controller writes
	// their status.
	{who: userIs(ControllersUser), verbs: []string{"create", "update", "patch", "delete"}, apiGroup: appsGroup, resources: []string{"replicasets"}},
	{who: userIs(ControllersUser), verbs: []string{"update", "patch"}, apiGroup: appsGroup, resources: []string{"replicasets/status"}},
	// DaemonSets: the DaemonSet controller writes status (status.go,
	// collisionCount in history.go); the garbage collector and the
	// namespace controller patch and delete.
	{who: userIs(ControllersUser), verbs: writeVerbs, apiGroup: appsGroup, resources: []string{"daemonsets"}},
	{who: userIs(ControllersUser), verbs: []string{"update", "patch"}, apiGroup: appsGroup, resources: []string{"daemonsets/status"}},
	// ControllerRevisions: the DaemonSet controller creates one per
	// template, renumbers one a rollback brings back (update), adopts
	// orphans (patch) and deletes those beyond revisionHistoryLimit
	// (history.go); the garbage collector and the namespace controller
	// patch and delete.
	{who: userIs(ControllersUser), verbs: []string{"create", "update", "patch", "delete"}, apiGroup: appsGroup, resources: []string{"controllerrevisions"}},
	// Jobs: the CronJob controller creates one per scheduled run and
	// deletes those beyond the history limits and those Replace
	// replaces (cronjob/controller.go); the Job controller deletes a
	// Job whose ttlSecondsAfterFinished has passed (job/controller.go,
	// expire) and writes status; the garbage collector and the
	// namespace controller patch and delete. The Job controller's pod
	// writes (create, delete, and the patch that removes the
	// batch.kubernetes.io/job-tracking finalizer) are covered by the
	// pod rule above.
	{who: userIs(ControllersUser), verbs: []string{"create", "update", "patch", "delete"}, apiGroup: batchGroup, resources: []string{"jobs"}},
	{who: userIs(ControllersUser), verbs: []string{"update", "patch"}, apiGroup: batchGroup, resources: []string{"jobs/status"}},
	// CronJobs: the CronJob controller writes status (active,
	// lastScheduleTime, lastSuccessfulTime); the garbage collector and
	// the namespace controller patch and delete.
	{who: userIs(ControllersUser), verbs: writeVerbs, apiGroup: batchGroup, resources: []string{"cronjobs"}},
	{who: userIs(ControllersUser), verbs: []string{"update", "patch"}, apiGroup: batchGroup, resources: []string{"cronjobs/status"}},
	// EndpointSlices: written wholly by the EndpointSlice controller.
	{who: userIs(ControllersUser), verbs: []string{"create", "update", "patch", "delete"}, apiGroup: discoveryGroup, resources: []string{"endpointslices"}},
	// Leases in any namespace: the garbage collector deletes the Lease
	// of a deleted Node (the kubelet makes the Node its owner) and
	// patches metadata; the namespace controller deletes Leases of a
	// terminating namespace.
	{who: userIs(ControllersUser), verbs: writeVerbs, apiGroup: coordinationGroup, resources: []string{"leases"}},
	// Leader election on its own Lease (get and update are covered by
	// the rules above): it may create a Lease only there, under the
	// same proviso about unnamed creates as the scheduler.
	{who: userIs(ControllersUser), verbs: []string{"create"}, apiGroup: coordinationGroup, resources: []string{"leases"},
		namespace: leaderLeaseNamespace, names: []string{controllersLeaseName, unnamedCreate}},
}
