package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffdev/skiff/internal/podrefs"
	skiffv1 "github.com/skiffdev/skiff/proto/skiff/v1"
)

// PodNodes tells the node authorizer where pods run.
type PodNodes interface {
	// PodNode returns the spec.nodeName of the pod namespace/name ("" for
	// a pod not scheduled yet); found is false when there is no such pod.
	//
	// The API server answers from its pod watch cache, which may lag a
	// write by a moment. That errs on the safe side: a pod bound a
	// moment ago may be refused to its node once (the kubelet retries),
	// but a node never gets a pod that is not bound to it.
	PodNode(namespace, name string) (nodeName string, found bool)

	// PodsOnNode returns the pods of namespace whose spec.nodeName is
	// node, from the same cache, for the requests that read what those
	// pods refer to. The pods are shared: callers must not modify them.
	PodsOnNode(namespace, node string) []*corev1.Pod
}

// NodeAuthorizer decides the requests of nodes: the kubelet and the
// service proxy of a machine, which both call as system:node:NAME in
// system:nodes (see User.NodeName). It is Kubernetes' Node authorizer
// and the system:node ClusterRole in one, cut down to the requests
// Skiff's node agent makes.
//
// The point is containment. A node's credentials live on a machine that
// runs other people's containers; whoever takes them should be able to
// lie about that machine and its pods, and nothing else: not register or
// rewrite other nodes, not renew another node's Lease (which would keep
// a dead node looking alive), not report status for or delete pods that
// run elsewhere, not create ordinary pods or read what nodes have no
// use for. So it answers Deny, not NoOpinion, to whatever its rules do
// not allow: a node's request ends here, and no authorizer after it in
// the chain (RBAC, one day) can widen a node's rights by mistake.
//
// Users that are not nodes get NoOpinion. So do a node's non-resource
// requests, except SignNodeCertificate, which it allows: Policy decides
// the rest (every authenticated user may ask for the version and the
// CA).
//
// What a node may write into the objects it may write (only mirror
// pods, no labels reserved for administrators, no taint changes) is
// NodeRestriction's job, at admission, where the objects are known.
type NodeAuthorizer struct {
	// Pods finds the node of a pod, for the requests that act on pods
	// bound to the caller. Required.
	Pods PodNodes
}

// nodeScope says which objects a node rule reaches.
type nodeScope int

const (
	// anyObject: every object of the resource, in every namespace.
	anyObject nodeScope = iota
	// ownNode: only the Node named like the caller (see namesSelf).
	ownNode
	// ownLease: only the Lease kube-node-lease/NAME of the caller (see
	// namesSelf).
	ownLease
	// boundPod: only pods whose spec.nodeName is the caller.
	boundPod
	// referencedByBoundPod: only the ConfigMaps, Secrets and
	// ServiceAccounts that a pod bound to the caller refers to
	// (internal/podrefs: env, envFrom, volumes, projected sources,
	// imagePullSecrets, serviceAccountName), each by name: a list or
	// watch must be limited to one object by the field selector
	// metadata.name=NAME.
	referencedByBoundPod
)

// nodeRule allows nodes some verbs on one resource (or subresource,
// written "pods/status"), within a scope. The rules do not overlap: a
// request matches at most one.
type nodeRule struct {
	verbs    []string
	apiGroup string
	resource string
	scope    nodeScope
}

// nodeLeaseNamespace holds every node's heartbeat Lease.
const nodeLeaseNamespace = "kube-node-lease"

// nodeRules is everything a node may do with resources, each rule with
// the code that needs it.
var nodeRules = []nodeRule{
	// Nodes are read by every node: the kubelet watches them all to
	// route each other node's pod CIDR (kubelet.go, runRoutes), and
	// reads its own before each status report (nodestatus).
	{verbs: readVerbs, apiGroup: coreGroup, resource: "nodes", scope: anyObject},
	// A node registers itself (nodestatus.go, registerOnce: create, or
	// update to take over an existing Node of its name) and nobody
	// else. It never deletes its Node: that is an administrator's
	// decision, and the garbage collector's clean-up after it.
	{verbs: []string{"create", "update", "patch"}, apiGroup: coreGroup, resource: "nodes", scope: ownNode},
	// Its status report every few seconds (nodestatus.go, syncStatus).
	{verbs: []string{"update", "patch"}, apiGroup: coreGroup, resource: "nodes/status", scope: ownNode},

	// The heartbeat (nodestatus/lease.go): get, create when missing,
	// update to renew. Patch and delete are allowed as in Kubernetes,
	// whose kubelet may use them; they reach no other Lease. Renewing
	// another node's Lease would hide that node's death from the node
	// lifecycle controller, so the scope matters most here.
	{verbs: []string{"get", "create", "update", "patch", "delete"}, apiGroup: coordinationGroup, resource: "leases", scope: ownLease},

	// Pods are read across the cluster: the kubelet's informer lists
	// and watches with the field selector spec.nodeName=NAME, and reads
	// a pod again after a conflicting status write (status.go). The
	// authorizer cannot see a field selector, so, as in Kubernetes, all
	// pods are readable.
	{verbs: readVerbs, apiGroup: coreGroup, resource: "pods", scope: anyObject},
	// Mirror pods, the API's view of pods a kubelet runs from files.
	// Skiff's kubelet has none yet; NodeRestriction lets a node create
	// nothing else, and only bound to itself.
	{verbs: []string{"create"}, apiGroup: coreGroup, resource: "pods", scope: anyObject},
	// The kubelet confirms a pod's deletion, once its containers are
	// gone, with a delete of grace period 0 (sync.go, syncTerminating).
	{verbs: []string{"delete"}, apiGroup: coreGroup, resource: "pods", scope: boundPod},
	// The kubelet reports what runs: phase, conditions, container
	// states, IPs (status.go, writeStatus).
	{verbs: []string{"update", "patch"}, apiGroup: coreGroup, resource: "pods/status", scope: boundPod},

	// The kubelet reads the ConfigMaps and Secrets its pods use for
	// their environment and volumes (configwatch.go: a list and watch
	// of each object alone, by metadata.name), and nothing else of
	// them: Secrets are what a stolen node credential is after. The
	// service accounts of its pods it may read too, for their tokens.
	{verbs: readVerbs, apiGroup: coreGroup, resource: "configmaps", scope: referencedByBoundPod},
	{verbs: readVerbs, apiGroup: coreGroup, resource: "secrets", scope: referencedByBoundPod},
	{verbs: readVerbs, apiGroup: coreGroup, resource: "serviceaccounts", scope: referencedByBoundPod},

	// The service proxy renders every Service and EndpointSlice into
	// the node's nftables table (proxy.go, New).
	{verbs: readVerbs, apiGroup: coreGroup, resource: "services", scope: anyObject},
	{verbs: readVerbs, apiGroup: discoveryGroup, resource: "endpointslices", scope: anyObject},

	// Events about the pods it runs (Pulling, Started, BackOff, ...;
	// sync.go through internal/events), in the pod's namespace. The
	// recorder only creates; update and patch are for recorders that
	// fold repeats into one event. Like Kubernetes, Skiff does not tie
	// an event to the node that wrote it.
	{verbs: []string{"create", "update", "patch"}, apiGroup: coreGroup, resource: "events", scope: anyObject},
}

// Authorize implements Authorizer.
func (z NodeAuthorizer) Authorize(_ context.Context, a Attributes) (Decision, string, error) {
	node, ok := a.User.NodeName()
	if !ok {
		return NoOpinion, "", nil
	}
	if !a.IsResourceRequest() {
		// A node renews its own certificates. Authorization cannot see
		// which name the signing request is for: the handler must
		// refuse any other name than the caller's (the API server's
		// signNodeCertificate does).
		if a.Path == skiffv1.Cluster_SignNodeCertificate_FullMethodName {
			return Allow, "", nil
		}
		return NoOpinion, "", nil
	}
	for _, r := range nodeRules {
		if resourceMatches(r.verbs, r.apiGroup, []string{r.resource}, a) {
			return z.inScope(r.scope, node, a)
		}
	}
	return Deny, noRuleReason(node, a), nil
}

// inScope decides a request that a rule allows for objects in scope.
func (z NodeAuthorizer) inScope(scope nodeScope, node string, a Attributes) (Decision, string, error) {
	switch scope {
	case anyObject:
		return Allow, "", nil
	case ownNode:
		if namesSelf(node, a) {
			return Allow, "", nil
		}
		return Deny, otherNodeReason(node, a.Name), nil
	case ownLease:
		if a.Namespace == nodeLeaseNamespace && namesSelf(node, a) {
			return Allow, "", nil
		}
		return Deny, otherLeaseReason(a), nil
	case boundPod:
		if z.Pods == nil {
			return Deny, "", errors.New("node authorizer: no pod lookup configured")
		}
		boundTo, found := z.Pods.PodNode(a.Namespace, a.Name)
		switch {
		case !found:
			return Deny, noRelationshipReason(node) + ": pod not found", nil
		case boundTo != node:
			// Whether the pod is unbound or bound elsewhere, and to
			// which node, is none of this node's business.
			return Deny, noRelationshipReason(node), nil
		}
		return Allow, "", nil
	case referencedByBoundPod:
		if z.Pods == nil {
			return Deny, "", errors.New("node authorizer: no pod lookup configured")
		}
		if a.Name == "" {
			// A list or watch of them all, or one not limited to a
			// single object by metadata.name.
			return Deny, "No Object name found", nil
		}
		if a.Namespace == "" {
			// metadata.name across all namespaces would return every
			// object of that name, of any namespace, if one pod of the
			// node in any of them referred to it.
			return Deny, "can only read namespaced object by name", nil
		}
		for _, pod := range z.Pods.PodsOnNode(a.Namespace, node) {
			if podrefs.RefersTo(&pod.Spec, a.Resource, a.Name) {
				return Allow, "", nil
			}
		}
		return Deny, noRelationshipReason(node), nil
	}
	return Deny, "", fmt.Errorf("node authorizer: unknown scope %d", scope)
}

// namesSelf reports whether the request is for the object named like
// the node. A create that does not name its object passes: the name is
// then only inside the object, and NodeRestriction, which sees the
// object, refuses any other name than the node's.
func namesSelf(node string, a Attributes) bool {
	return a.Name == node || (a.Verb == "create" && a.Name == unnamedCreate)
}

// noRuleReason explains the denial of a request no rule allows. Writes
// to another node's Node or Lease get the message that names the real
// problem (the object is not the caller's), whatever the verb; anything
// else is simply not a request a node makes.
func noRuleReason(node string, a Attributes) string {
	writes := !slices.Contains(readVerbs, a.Verb)
	switch {
	case a.Group == coreGroup && a.Resource == "nodes" && writes && a.Name != node:
		return otherNodeReason(node, a.Name)
	case a.Group == coordinationGroup && a.Resource == "leases":
		return otherLeaseReason(a)
	}
	return "not among the requests a node may make"
}

// The reasons, in the words of Kubernetes' node authorizer and
// NodeRestriction where they have one.

func otherNodeReason(node, other string) string {
	return fmt.Sprintf("node %q is not allowed to modify node %q", node, other)
}

func otherLeaseReason(a Attributes) string {
	if a.Namespace != nodeLeaseNamespace {
		return fmt.Sprintf("can only access leases in the %q system namespace", nodeLeaseNamespace)
	}
	return "can only access node lease with the same name as the requesting node"
}

func noRelationshipReason(node string) string {
	return fmt.Sprintf("no relationship found between node '%s' and this object", node)
}
