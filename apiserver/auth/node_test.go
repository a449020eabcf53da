package auth

import (
	"context"
	"strings"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// fakePods maps "namespace/name" to the pod's spec.nodeName.
type fakePods map[string]string

func (f fakePods) PodNode(namespace, name string) (string, bool) {
	node, ok := f[namespace+"/"+name]
	return node, ok
}

func (f fakePods) PodsOnNode(namespace, node string) []*corev1.Pod {
	var out []*corev1.Pod
	for key, on := range f {
		ns, name, _ := strings.Cut(key, "/")
		if ns == namespace && on == node {
			out = append(out, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: testPodSpecs[key]})
		}
	}
	return out
}

// testPods: one pod on node a, one on node b, one not scheduled yet.
var testPods = fakePods{
	"default/on-a":    "a",
	"default/on-b":    "b",
	"default/pending": "",
}

// testPodSpecs are what the pods refer to: on-a uses the ConfigMap
// a-config through a volume, the Secret a-secret through envFrom, the
// pull secret a-pull and the service account a-robot; on-b the ConfigMap
// and Secret b-only; the pending pod the Secret pending-secret.
var testPodSpecs = map[string]corev1.PodSpec{
	"default/on-a": {
		ServiceAccountName: "a-robot",
		ImagePullSecrets:   []corev1.LocalObjectReference{{Name: "a-pull"}},
		Containers:         []corev1.Container{{Name: "c", EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "a-secret"}}}}}},
		Volumes:            []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "a-config"}}}}},
	},
	"default/on-b": {
		Containers: []corev1.Container{{Name: "c", Env: []corev1.EnvVar{
			{Name: "A", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "b-only"}, Key: "k"}}},
			{Name: "B", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "b-only"}, Key: "k"}}},
		}}},
	},
	"default/pending": {
		Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "pending-secret"}}}},
	},
}

// testChain is the chain the API server runs, in its order.
var testChain = Chain{Masters{}, NodeAuthorizer{Pods: testPods}, Policy{}}

func nodeUser(name string) User {
	return User{Name: NodeUserPrefix + name, Groups: []string{NodesGroup, AuthenticatedGroup}}
}

var (
	nodeA     = nodeUser("a")
	admin     = User{Name: AdminUser, Groups: []string{MastersGroup, AuthenticatedGroup}}
	anonymous = User{}
)

func decisionName(d Decision) string {
	switch d {
	case Allow:
		return "Allow"
	case Deny:
		return "Deny"
	case NoOpinion:
		return "NoOpinion"
	}
	return "Decision(?)"
}

// authzCase is one request through testChain. For a request that is
// not allowed, msg is the whole Forbidden message the caller sees.
type authzCase struct {
	name  string
	attrs Attributes
	want  Decision
	msg   string
}

func runAuthzCases(t *testing.T, cases []authzCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, reason, err := testChain.Authorize(context.Background(), tc.attrs)
			if err != nil {
				t.Fatalf("Authorize: %v", err)
			}
			if got != tc.want {
				t.Errorf("decision: got %v (reason %q), want %v", decisionName(got), reason, decisionName(tc.want))
			}
			if got == Allow {
				return
			}
			ferr := Forbidden(tc.attrs, reason)
			if !apierrors.IsForbidden(ferr) {
				t.Errorf("Forbidden returned %v, want a Forbidden error", ferr)
			}
			if ferr.Error() != tc.msg {
				t.Errorf("message:\ngot  %v\nwant %v", ferr.Error(), tc.msg)
			}
		})
	}
}

// TestNodeAuthorizer plays node a against node b's Node, Lease, pods and
// pod status, and events; then the admin and an anonymous caller.
func TestNodeAuthorizer(t *testing.T) {
	const (
		lease = coordinationGroup
		disc  = discoveryGroup
	)
	runAuthzCases(t, []authzCase{
		// Nodes.
		{name: "node reads another node", attrs: Attributes{User: nodeA, Verb: "get", Resource: "nodes", Name: "b"}, want: Allow},
		{name: "node watches nodes", attrs: Attributes{User: nodeA, Verb: "watch", Resource: "nodes"}, want: Allow},
		{name: "node registers itself", attrs: Attributes{User: nodeA, Verb: "create", Resource: "nodes", Name: "a"}, want: Allow},
		{name: "node registers itself, named only in the object", attrs: Attributes{User: nodeA, Verb: "create", Resource: "nodes"}, want: Allow},
		{name: "node takes over its node", attrs: Attributes{User: nodeA, Verb: "update", Resource: "nodes", Name: "a"}, want: Allow},
		{name: "node reports its status", attrs: Attributes{User: nodeA, Verb: "update", Resource: "nodes", Subresource: "status", Name: "a"}, want: Allow},
		{name: "node registers another node",
			attrs: Attributes{User: nodeA, Verb: "create", Resource: "nodes", Name: "b"}, want: Deny,
			msg: `nodes "b" is forbidden: User "system:node:a" cannot create resource "nodes" in API group "" at the cluster scope: node "a" is not allowed to modify node "b"`},
		{name: "node patches another node",
			attrs: Attributes{User: nodeA, Verb: "patch", Resource: "nodes", Name: "b"}, want: Deny,
			msg: `nodes "b" is forbidden: User "system:node:a" cannot patch resource "nodes" in API group "" at the cluster scope: node "a" is not allowed to modify node "b"`},
		{name: "node reports another node's status",
			attrs: Attributes{User: nodeA, Verb: "update", Resource: "nodes", Subresource: "status", Name: "b"}, want: Deny,
			msg: `nodes "b" is forbidden: User "system:node:a" cannot update resource "nodes/status" in API group "" at the cluster scope: node "a" is not allowed to modify node "b"`},
		{name: "node deletes another node",
			attrs: Attributes{User: nodeA, Verb: "delete", Resource: "nodes", Name: "b"}, want: Deny,
			msg: `nodes "b" is forbidden: User "system:node:a" cannot delete resource "nodes" in API group "" at the cluster scope: node "a" is not allowed to modify node "b"`},
		{name: "node updates an unnamed node",
			attrs: Attributes{User: nodeA, Verb: "update", Resource: "nodes"}, want: Deny,
			msg: `nodes is forbidden: User "system:node:a" cannot update resource "nodes" in API group "" at the cluster scope: node "a" is not allowed to modify node ""`},
		{name: "node deletes itself",
			attrs: Attributes{User: nodeA, Verb: "delete", Resource: "nodes", Name: "a"}, want: Deny,
			msg: `nodes "a" is forbidden: User "system:node:a" cannot delete resource "nodes" in API group "" at the cluster scope: not among the requests a node may make`},

		// Leases.
		{name: "node reads its lease", attrs: Attributes{User: nodeA, Verb: "get", Group: lease, Resource: "leases", Namespace: "kube-node-lease", Name: "a"}, want: Allow},
		{name: "node creates its lease", attrs: Attributes{User: nodeA, Verb: "create", Group: lease, Resource: "leases", Namespace: "kube-node-lease", Name: "a"}, want: Allow},
		{name: "node creates its lease, named only in the object", attrs: Attributes{User: nodeA, Verb: "create", Group: lease, Resource: "leases", Namespace: "kube-node-lease"}, want: Allow},
		{name: "node creates an unnamed lease elsewhere",
			attrs: Attributes{User: nodeA, Verb: "create", Group: lease, Resource: "leases", Namespace: "kube-system"}, want: Deny,
			msg: `leases.coordination.k8s.io is forbidden: User "system:node:a" cannot create resource "leases" in API group "coordination.k8s.io" in the namespace "kube-system": can only access leases in the "kube-node-lease" system namespace`},
		{name: "node renews its lease", attrs: Attributes{User: nodeA, Verb: "update", Group: lease, Resource: "leases", Namespace: "kube-node-lease", Name: "a"}, want: Allow},
		{name: "node renews another node's lease",
			attrs: Attributes{User: nodeA, Verb: "update", Group: lease, Resource: "leases", Namespace: "kube-node-lease", Name: "b"}, want: Deny,
			msg: `leases.coordination.k8s.io "b" is forbidden: User "system:node:a" cannot update resource "leases" in API group "coordination.k8s.io" in the namespace "kube-node-lease": can only access node lease with the same name as the requesting node`},
		{name: "node deletes another node's lease",
			attrs: Attributes{User: nodeA, Verb: "delete", Group: lease, Resource: "leases", Namespace: "kube-node-lease", Name: "b"}, want: Deny,
			msg: `leases.coordination.k8s.io "b" is forbidden: User "system:node:a" cannot delete resource "leases" in API group "coordination.k8s.io" in the namespace "kube-node-lease": can only access node lease with the same name as the requesting node`},
		{name: "node takes the controllers' leader lease",
			attrs: Attributes{User: nodeA, Verb: "update", Group: lease, Resource: "leases", Namespace: "kube-system", Name: "skiff-controllers"}, want: Deny,
			msg: `leases.coordination.k8s.io "skiff-controllers" is forbidden: User "system:node:a" cannot update resource "leases" in API group "coordination.k8s.io" in the namespace "kube-system": can only access leases in the "kube-node-lease" system namespace`},
		{name: "node lists leases",
			attrs: Attributes{User: nodeA, Verb: "list", Group: lease, Resource: "leases", Namespace: "kube-node-lease"}, want: Deny,
			msg: `leases.coordination.k8s.io is forbidden: User "system:node:a" cannot list resource "leases" in API group "coordination.k8s.io" in the namespace "kube-node-lease": can only access node lease with the same name as the requesting node`},

		// Pods and pod status.
		{name: "node watches pods", attrs: Attributes{User: nodeA, Verb: "watch", Resource: "pods"}, want: Allow},
		{name: "node reads another node's pod", attrs: Attributes{User: nodeA, Verb: "get", Resource: "pods", Namespace: "default", Name: "on-b"}, want: Allow},
		{name: "node reports its pod's status", attrs: Attributes{User: nodeA, Verb: "update", Resource: "pods", Subresource: "status", Namespace: "default", Name: "on-a"}, want: Allow},
		{name: "node patches its pod's status", attrs: Attributes{User: nodeA, Verb: "patch", Resource: "pods", Subresource: "status", Namespace: "default", Name: "on-a"}, want: Allow},
		{name: "node reports another node's pod's status",
			attrs: Attributes{User: nodeA, Verb: "update", Resource: "pods", Subresource: "status", Namespace: "default", Name: "on-b"}, want: Deny,
			msg: `pods "on-b" is forbidden: User "system:node:a" cannot update resource "pods/status" in API group "" in the namespace "default": no relationship found between node 'a' and this object`},
		{name: "node reports a pending pod's status",
			attrs: Attributes{User: nodeA, Verb: "patch", Resource: "pods", Subresource: "status", Namespace: "default", Name: "pending"}, want: Deny,
			msg: `pods "pending" is forbidden: User "system:node:a" cannot patch resource "pods/status" in API group "" in the namespace "default": no relationship found between node 'a' and this object`},
		{name: "node reports a missing pod's status",
			attrs: Attributes{User: nodeA, Verb: "update", Resource: "pods", Subresource: "status", Namespace: "default", Name: "gone"}, want: Deny,
			msg: `pods "gone" is forbidden: User "system:node:a" cannot update resource "pods/status" in API group "" in the namespace "default": no relationship found between node 'a' and this object: pod not found`},
		{name: "node confirms its pod's deletion", attrs: Attributes{User: nodeA, Verb: "delete", Resource: "pods", Namespace: "default", Name: "on-a"}, want: Allow},
		{name: "node deletes another node's pod",
			attrs: Attributes{User: nodeA, Verb: "delete", Resource: "pods", Namespace: "default", Name: "on-b"}, want: Deny,
			msg: `pods "on-b" is forbidden: User "system:node:a" cannot delete resource "pods" in API group "" in the namespace "default": no relationship found between node 'a' and this object`},
		{name: "node creates a pod (NodeRestriction checks it)", attrs: Attributes{User: nodeA, Verb: "create", Resource: "pods", Namespace: "default", Name: "mirror"}, want: Allow},
		{name: "node changes its pod's spec",
			attrs: Attributes{User: nodeA, Verb: "update", Resource: "pods", Namespace: "default", Name: "on-a"}, want: Deny,
			msg: `pods "on-a" is forbidden: User "system:node:a" cannot update resource "pods" in API group "" in the namespace "default": not among the requests a node may make`},
		{name: "node binds a pod",
			attrs: Attributes{User: nodeA, Verb: "create", Resource: "pods", Subresource: "binding", Namespace: "default", Name: "pending"}, want: Deny,
			msg: `pods "pending" is forbidden: User "system:node:a" cannot create resource "pods/binding" in API group "" in the namespace "default": not among the requests a node may make`},

		// ConfigMaps, Secrets and ServiceAccounts: only those its pods
		// refer to, one by name (a list or watch by metadata.name has
		// the name in its attributes).
		{name: "node reads its pod's configmap", attrs: Attributes{User: nodeA, Verb: "get", Resource: "configmaps", Namespace: "default", Name: "a-config"}, want: Allow},
		{name: "node watches its pod's configmap by name", attrs: Attributes{User: nodeA, Verb: "watch", Resource: "configmaps", Namespace: "default", Name: "a-config"}, want: Allow},
		{name: "node lists its pod's secret by name", attrs: Attributes{User: nodeA, Verb: "list", Resource: "secrets", Namespace: "default", Name: "a-secret"}, want: Allow},
		{name: "node reads its pod's pull secret", attrs: Attributes{User: nodeA, Verb: "get", Resource: "secrets", Namespace: "default", Name: "a-pull"}, want: Allow},
		{name: "node reads its pod's service account", attrs: Attributes{User: nodeA, Verb: "get", Resource: "serviceaccounts", Namespace: "default", Name: "a-robot"}, want: Allow},
		{name: "node reads another node's pod's secret",
			attrs: Attributes{User: nodeA, Verb: "get", Resource: "secrets", Namespace: "default", Name: "b-only"}, want: Deny,
			msg: `secrets "b-only" is forbidden: User "system:node:a" cannot get resource "secrets" in API group "" in the namespace "default": no relationship found between node 'a' and this object`},
		{name: "node watches another node's pod's configmap",
			attrs: Attributes{User: nodeA, Verb: "watch", Resource: "configmaps", Namespace: "default", Name: "b-only"}, want: Deny,
			msg: `configmaps "b-only" is forbidden: User "system:node:a" cannot watch resource "configmaps" in API group "" in the namespace "default": no relationship found between node 'a' and this object`},
		{name: "node reads a pending pod's secret",
			attrs: Attributes{User: nodeA, Verb: "get", Resource: "secrets", Namespace: "default", Name: "pending-secret"}, want: Deny,
			msg: `secrets "pending-secret" is forbidden: User "system:node:a" cannot get resource "secrets" in API group "" in the namespace "default": no relationship found between node 'a' and this object`},
		{name: "node reads its pod's secret name in another namespace",
			attrs: Attributes{User: nodeA, Verb: "get", Resource: "secrets", Namespace: "kube-system", Name: "a-secret"}, want: Deny,
			msg: `secrets "a-secret" is forbidden: User "system:node:a" cannot get resource "secrets" in API group "" in the namespace "kube-system": no relationship found between node 'a' and this object`},
		{name: "node reads a configmap under a secret's name",
			attrs: Attributes{User: nodeA, Verb: "get", Resource: "configmaps", Namespace: "default", Name: "a-secret"}, want: Deny,
			msg: `configmaps "a-secret" is forbidden: User "system:node:a" cannot get resource "configmaps" in API group "" in the namespace "default": no relationship found between node 'a' and this object`},
		{name: "node lists every secret of a namespace",
			attrs: Attributes{User: nodeA, Verb: "list", Resource: "secrets", Namespace: "default"}, want: Deny,
			msg: `secrets is forbidden: User "system:node:a" cannot list resource "secrets" in API group "" in the namespace "default": No Object name found`},
		{name: "node watches every secret of the cluster",
			attrs: Attributes{User: nodeA, Verb: "watch", Resource: "secrets"}, want: Deny,
			msg: `secrets is forbidden: User "system:node:a" cannot watch resource "secrets" in API group "" at the cluster scope: No Object name found`},
		{name: "node lists one secret name in every namespace",
			attrs: Attributes{User: nodeA, Verb: "list", Resource: "secrets", Name: "a-secret"}, want: Deny,
			msg: `secrets "a-secret" is forbidden: User "system:node:a" cannot list resource "secrets" in API group "" at the cluster scope: can only read namespaced object by name`},
		{name: "node writes its pod's secret",
			attrs: Attributes{User: nodeA, Verb: "update", Resource: "secrets", Namespace: "default", Name: "a-secret"}, want: Deny,
			msg: `secrets "a-secret" is forbidden: User "system:node:a" cannot update resource "secrets" in API group "" in the namespace "default": not among the requests a node may make`},

		// Events.
		{name: "node records a pod's event", attrs: Attributes{User: nodeA, Verb: "create", Resource: "events", Namespace: "default"}, want: Allow},
		{name: "node records an event in kube-system", attrs: Attributes{User: nodeA, Verb: "create", Resource: "events", Namespace: "kube-system"}, want: Allow},
		{name: "node patches an event", attrs: Attributes{User: nodeA, Verb: "patch", Resource: "events", Namespace: "default", Name: "on-b.1"}, want: Allow},
		{name: "node deletes an event",
			attrs: Attributes{User: nodeA, Verb: "delete", Resource: "events", Namespace: "default", Name: "on-b.1"}, want: Deny,
			msg: `events "on-b.1" is forbidden: User "system:node:a" cannot delete resource "events" in API group "" in the namespace "default": not among the requests a node may make`},

		// What the service proxy reads, and what no node reads.
		{name: "proxy watches services", attrs: Attributes{User: nodeA, Verb: "watch", Resource: "services"}, want: Allow},
		{name: "proxy lists endpointslices", attrs: Attributes{User: nodeA, Verb: "list", Group: disc, Resource: "endpointslices"}, want: Allow},
		{name: "node writes an endpointslice",
			attrs: Attributes{User: nodeA, Verb: "update", Group: disc, Resource: "endpointslices", Namespace: "default", Name: "web-1"}, want: Deny,
			msg: `endpointslices.discovery.k8s.io "web-1" is forbidden: User "system:node:a" cannot update resource "endpointslices" in API group "discovery.k8s.io" in the namespace "default": not among the requests a node may make`},
		{name: "node lists deployments",
			attrs: Attributes{User: nodeA, Verb: "list", Group: "apps", Resource: "deployments", Namespace: "default"}, want: Deny,
			msg: `deployments.apps is forbidden: User "system:node:a" cannot list resource "deployments" in API group "apps" in the namespace "default": not among the requests a node may make`},
		{name: "node lists namespaces",
			attrs: Attributes{User: nodeA, Verb: "list", Resource: "namespaces"}, want: Deny,
			msg: `namespaces is forbidden: User "system:node:a" cannot list resource "namespaces" in API group "" at the cluster scope: not among the requests a node may make`},

		// Requests that are not about a resource.
		{name: "node asks for the version", attrs: Attributes{User: nodeA, Verb: "get", Path: "/skiff.v1.API/Version"}, want: Allow},
		{name: "node fetches the CA", attrs: Attributes{User: nodeA, Verb: "get", Path: "/skiff.v1.Cluster/CA"}, want: Allow},
		{name: "node renews its certificate", attrs: Attributes{User: nodeA, Verb: "create", Path: "/skiff.v1.Cluster/SignNodeCertificate"}, want: Allow},
		{name: "node makes a join token",
			attrs: Attributes{User: nodeA, Verb: "create", Path: "/skiff.v1.Cluster/CreateToken"}, want: NoOpinion,
			msg: `forbidden: User "system:node:a" cannot create path "/skiff.v1.Cluster/CreateToken"`},

		// Not a node: named like one, but not in system:nodes.
		{name: "user named like a node",
			attrs: Attributes{User: User{Name: "system:node:a", Groups: []string{AuthenticatedGroup}}, Verb: "update", Resource: "nodes", Subresource: "status", Name: "a"}, want: NoOpinion,
			msg: `nodes "a" is forbidden: User "system:node:a" cannot update resource "nodes/status" in API group "" at the cluster scope`},

		// The admin may do anything.
		{name: "admin deletes node b", attrs: Attributes{User: admin, Verb: "delete", Resource: "nodes", Name: "b"}, want: Allow},
		{name: "admin writes node b's lease", attrs: Attributes{User: admin, Verb: "update", Group: lease, Resource: "leases", Namespace: "kube-node-lease", Name: "b"}, want: Allow},
		{name: "admin writes a pod's status", attrs: Attributes{User: admin, Verb: "update", Resource: "pods", Subresource: "status", Namespace: "default", Name: "on-b"}, want: Allow},
		{name: "admin makes a join token", attrs: Attributes{User: admin, Verb: "create", Path: "/skiff.v1.Cluster/CreateToken"}, want: Allow},

		// Anonymous: nobody has an opinion, which ends as a denial.
		{name: "anonymous reads a pod",
			attrs: Attributes{User: anonymous, Verb: "get", Resource: "pods", Namespace: "default", Name: "on-a"}, want: NoOpinion,
			msg: `pods "on-a" is forbidden: User "" cannot get resource "pods" in API group "" in the namespace "default"`},
		{name: "anonymous deletes node b",
			attrs: Attributes{User: anonymous, Verb: "delete", Resource: "nodes", Name: "b"}, want: NoOpinion,
			msg: `nodes "b" is forbidden: User "" cannot delete resource "nodes" in API group "" at the cluster scope`},
		{name: "anonymous asks for the version",
			attrs: Attributes{User: anonymous, Verb: "get", Path: "/skiff.v1.API/Version"}, want: NoOpinion,
			msg: `forbidden: User "" cannot get path "/skiff.v1.API/Version"`},
	})
}

// allowAll stands for an authorizer later in the chain that would allow
// anything (a careless RBAC binding, say).
type allowAll struct{}

func (allowAll) Authorize(context.Context, Attributes) (Decision, string, error) {
	return Allow, "", nil
}

// TestNodeDenialIsFinal checks that what the node authorizer refuses no
// later authorizer can allow, while other users pass through to them.
func TestNodeDenialIsFinal(t *testing.T) {
	chain := Chain{NodeAuthorizer{Pods: testPods}, allowAll{}}
	for _, tc := range []struct {
		name  string
		attrs Attributes
		want  Decision
	}{
		{"node deletes another node", Attributes{User: nodeA, Verb: "delete", Resource: "nodes", Name: "b"}, Deny},
		{"node lists deployments", Attributes{User: nodeA, Verb: "list", Group: "apps", Resource: "deployments"}, Deny},
		{"node makes a join token", Attributes{User: nodeA, Verb: "create", Path: "/skiff.v1.Cluster/CreateToken"}, Allow},
		{"other user deletes node b", Attributes{User: User{Name: "jane"}, Verb: "delete", Resource: "nodes", Name: "b"}, Allow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := chain.Authorize(context.Background(), tc.attrs)
			if err != nil {
				t.Fatalf("Authorize: %v", err)
			}
			if got != tc.want {
				t.Errorf("got %v, want %v", decisionName(got), decisionName(tc.want))
			}
		})
	}
}

// TestNodeAuthorizerWithoutPods checks that a missing pod lookup is an
// error (a denial), never an Allow.
func TestNodeAuthorizerWithoutPods(t *testing.T) {
	attrs := Attributes{User: nodeA, Verb: "delete", Resource: "pods", Namespace: "default", Name: "on-a"}
	got, _, err := NodeAuthorizer{}.Authorize(context.Background(), attrs)
	if err == nil || got == Allow {
		t.Errorf("got %v, %v; want Deny and an error", decisionName(got), err)
	}
}

func TestNodeRestriction(t *testing.T) {
	// pod is a pod bound to nodeName and, like a kubelet's mirror pods,
	// owned by it; change changes it further.
	pod := func(nodeName string, annotations map[string]string, change ...func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Annotations: annotations,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: nodeName, UID: "uid-" + types.UID(nodeName), Controller: ptr.To(true)}}},
			Spec: corev1.PodSpec{NodeName: nodeName},
		}
		for _, c := range change {
			c(p)
		}
		return p
	}
	mirror := map[string]string{corev1.MirrorPodAnnotationKey: "hash"}
	node := func(name string, labels map[string]string, taints ...corev1.Taint) *corev1.Node {
		return &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Spec:       corev1.NodeSpec{Taints: taints},
		}
	}
	unreachable := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute}
	nodeLease := func(namespace, name string) *coordinationv1.Lease {
		return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
	}
	jane := User{Name: "jane", Groups: []string{AuthenticatedGroup}}

	for _, tc := range []struct {
		name           string
		user           User
		verb, res, sub string
		obj, old       runtime.Object
		want           string // the error's message; "" for none
	}{
		{name: "mirror pod bound to itself", user: nodeA, verb: "create", res: "pods",
			obj: pod("a", mirror)},
		{name: "ordinary pod",
			user: nodeA, verb: "create", res: "pods", obj: pod("a", nil),
			want: `pods "web" is forbidden: pod does not have "kubernetes.io/config.mirror" annotation, node "a" can only create mirror pods`},
		{name: "mirror pod owned by no one",
			user: nodeA, verb: "create", res: "pods", obj: pod("a", mirror, func(p *corev1.Pod) { p.OwnerReferences = nil }),
			want: `pods "web" is forbidden: node "a" can only create pods with an owner reference set to itself`},
		{name: "mirror pod owned by a ReplicaSet",
			user: nodeA, verb: "create", res: "pods", obj: pod("a", mirror, func(p *corev1.Pod) {
				p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web", UID: "x", Controller: ptr.To(true)}}
			}),
			want: `pods "web" is forbidden: node "a" can only create pods with an owner reference set to itself`},
		{name: "mirror pod owned by itself, not as controller",
			user: nodeA, verb: "create", res: "pods", obj: pod("a", mirror, func(p *corev1.Pod) { p.OwnerReferences[0].Controller = nil }),
			want: `pods "web" is forbidden: node "a" can only create pods with a controller owner reference set to itself`},
		{name: "mirror pod with a second owner",
			user: nodeA, verb: "create", res: "pods", obj: pod("a", mirror, func(p *corev1.Pod) {
				p.OwnerReferences = append(p.OwnerReferences, metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web", UID: "x"})
			}),
			want: `pods "web" is forbidden: node "a" can only create pods with a single owner reference set to itself`},
		{name: "mirror pod blocking its owner's deletion",
			user: nodeA, verb: "create", res: "pods", obj: pod("a", mirror, func(p *corev1.Pod) { p.OwnerReferences[0].BlockOwnerDeletion = ptr.To(true) }),
			want: `pods "web" is forbidden: node "a" must not set blockOwnerDeletion on an owner reference`},
		{name: "mirror pod with a secret volume",
			user: nodeA, verb: "create", res: "pods", obj: pod("a", mirror, func(p *corev1.Pod) {
				p.Spec.Volumes = []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db"}}}}
			}),
			want: `pods "web" is forbidden: node "a" can not create pods that reference secrets`},
		{name: "mirror pod with an image pull secret",
			user: nodeA, verb: "create", res: "pods", obj: pod("a", mirror, func(p *corev1.Pod) {
				p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "victim"}}
			}),
			want: `pods "web" is forbidden: node "a" can not create pods that reference secrets`},
		{name: "mirror pod with a configmap in its env",
			user: nodeA, verb: "create", res: "pods", obj: pod("a", mirror, func(p *corev1.Pod) {
				p.Spec.Containers = []corev1.Container{{Name: "c", Env: []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "k"}}}}}}
			}),
			want: `pods "web" is forbidden: node "a" can not create pods that reference configmaps`},
		{name: "mirror pod with a service account",
			user: nodeA, verb: "create", res: "pods", obj: pod("a", mirror, func(p *corev1.Pod) { p.Spec.ServiceAccountName = "builder" }),
			want: `pods "web" is forbidden: node "a" can not create pods that reference serviceaccounts`},
		{name: "a node labels itself a control plane",
			user: nodeA, verb: "update", res: "nodes", obj: node("a", map[string]string{"node-role.kubernetes.io/control-plane": ""}), old: node("a", nil),
			want: `nodes "a" is forbidden: is not allowed to modify labels: node-role.kubernetes.io/control-plane`},
		{name: "a node sets its own zone and a kubelet label",
			user: nodeA, verb: "update", res: "nodes", obj: node("a", map[string]string{corev1.LabelTopologyZone: "z1", "node.kubernetes.io/exclude-from-external-load-balancers": ""}), old: node("a", nil)},
		{name: "mirror pod for another node",
			user: nodeA, verb: "create", res: "pods", obj: pod("b", mirror),
			want: `pods "web" is forbidden: node "a" can only create pods with spec.nodeName set to itself`},
		{name: "unbound mirror pod",
			user: nodeA, verb: "create", res: "pods", obj: pod("", mirror),
			want: `pods "web" is forbidden: node "a" can only create pods with spec.nodeName set to itself`},

		{name: "register with ordinary labels", user: nodeA, verb: "create", res: "nodes",
			obj: node("a", map[string]string{"kubernetes.io/hostname": "a", "disk": "ssd"})},
		{name: "register with a restricted label",
			user: nodeA, verb: "create", res: "nodes",
			obj:  node("a", map[string]string{"node-restriction.kubernetes.io/foo": "x", "disk": "ssd"}),
			want: `nodes "a" is forbidden: node "a" is not allowed to set the following labels: node-restriction.kubernetes.io/foo`},
		{name: "register as another node",
			user: nodeA, verb: "create", res: "nodes", obj: node("b", nil),
			want: `nodes "b" is forbidden: node "a" is not allowed to modify node "b"`},

		{name: "ordinary label added", user: nodeA, verb: "update", res: "nodes",
			obj: node("a", map[string]string{"disk": "ssd"}), old: node("a", nil)},
		{name: "restricted label kept", user: nodeA, verb: "patch", res: "nodes",
			obj: node("a", map[string]string{"node-restriction.kubernetes.io/foo": "x", "disk": "ssd"}),
			old: node("a", map[string]string{"node-restriction.kubernetes.io/foo": "x"})},
		{name: "restricted label added",
			user: nodeA, verb: "update", res: "nodes",
			obj:  node("a", map[string]string{"node-restriction.kubernetes.io/foo": "x"}),
			old:  node("a", nil),
			want: `nodes "a" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/foo`},
		{name: "restricted label changed",
			user: nodeA, verb: "patch", res: "nodes",
			obj:  node("a", map[string]string{"node-restriction.kubernetes.io/foo": "y"}),
			old:  node("a", map[string]string{"node-restriction.kubernetes.io/foo": "x"}),
			want: `nodes "a" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/foo`},
		{name: "restricted labels removed",
			user: nodeA, verb: "update", res: "nodes",
			obj:  node("a", map[string]string{"disk": "ssd"}),
			old:  node("a", map[string]string{"node-restriction.kubernetes.io/foo": "x", "tier.node-restriction.kubernetes.io/gpu": "y", "disk": "ssd"}),
			want: `nodes "a" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/foo, tier.node-restriction.kubernetes.io/gpu`},
		{name: "taint removed",
			user: nodeA, verb: "update", res: "nodes",
			obj: node("a", nil), old: node("a", nil, unreachable),
			want: `nodes "a" is forbidden: node "a" is not allowed to modify taints`},
		{name: "status write ignores labels", user: nodeA, verb: "update", res: "nodes", sub: "status",
			obj: node("a", nil), old: node("a", map[string]string{"node-restriction.kubernetes.io/foo": "x"}, unreachable)},

		{name: "own lease", user: nodeA, verb: "create", res: "leases", obj: nodeLease("kube-node-lease", "a")},
		{name: "another node's lease",
			user: nodeA, verb: "create", res: "leases", obj: nodeLease("kube-node-lease", "b"),
			want: `leases.coordination.k8s.io "b" is forbidden: can only access node lease with the same name as the requesting node`},

		{name: "non-node user creates an ordinary pod", user: jane, verb: "create", res: "pods", obj: pod("b", nil)},
		{name: "non-node user sets a restricted label", user: jane, verb: "update", res: "nodes",
			obj: node("b", map[string]string{"node-restriction.kubernetes.io/foo": "x"}, unreachable), old: node("b", nil)},
		{name: "admin creates another node", user: admin, verb: "create", res: "nodes", obj: node("b", nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := NodeRestriction(tc.user, tc.verb, tc.res, tc.sub, tc.obj, tc.old)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("got %v, want nil", err)
			case tc.want != "" && err == nil:
				t.Errorf("got nil, want %v", tc.want)
			case tc.want != "" && !apierrors.IsForbidden(err):
				t.Errorf("got %v, want a Forbidden error", err)
			case tc.want != "" && err.Error() != tc.want:
				t.Errorf("message:\ngot  %v\nwant %v", err, tc.want)
			}
		})
	}
}
