// Package auth decides who is calling the API server and what they may
// do: one authenticator chain (client certificates signed by the cluster
// CA, bearer tokens) and one authorizer chain (system:masters, the Node
// authorizer, the components' fixed policy), used by every entry point.
// NodeRestriction, the admission rules that limit what a node may write
// into the objects it may write at all, lives here too.
//
// The names of users and groups are Kubernetes' own, so that the RBAC
// rules that come later read as they do in Kubernetes.
package auth

import (
	"context"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiffdev/skiff/internal/pki"
)

// Users and groups with a fixed meaning.
const (
	// MastersGroup may do anything.
	MastersGroup = "system:masters"
	// NodesGroup holds every node's identity, system:node:NAME.
	NodesGroup     = pki.NodesGroup
	NodeUserPrefix = pki.NodeUserPrefix
	// BootstrappersGroup holds the users of join tokens
	// (system:bootstrap:ID), who may only fetch the CA and have a node's
	// first certificates signed.
	BootstrappersGroup  = "system:bootstrappers"
	BootstrapUserPrefix = "system:bootstrap:"
	// AuthenticatedGroup is added to every authenticated user.
	AuthenticatedGroup = "system:authenticated"

	// AdminUser is the identity of the admin kubeconfig skiff server
	// writes (in MastersGroup).
	AdminUser = "system:admin"
	// SchedulerUser and ControllersUser are the identities of the
	// scheduler and the controller manager.
	SchedulerUser   = "system:kube-scheduler"
	ControllersUser = "system:kube-controller-manager"
	// KubeletClientUser is the API server's identity towards kubelets,
	// the only one a kubelet's API accepts.
	KubeletClientUser = pki.KubeletClientUser
)

// User is an authenticated caller.
type User struct {
	Name   string
	Groups []string
}

// InGroup reports whether u is in group.
func (u User) InGroup(group string) bool { return slices.Contains(u.Groups, group) }

// NodeName is the node a node identity belongs to: ok only for a user
// named system:node:NAME in the system:nodes group.
func (u User) NodeName() (name string, ok bool) {
	name, ok = strings.CutPrefix(u.Name, NodeUserPrefix)
	if !ok || name == "" || !u.InGroup(NodesGroup) {
		return "", false
	}
	return name, true
}

type userKey struct{}

// WithUser returns a context carrying the authenticated user.
func WithUser(ctx context.Context, u User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// UserFrom is the authenticated user of a request; ok is false outside
// one (in-process callers such as the server's own start-up).
func UserFrom(ctx context.Context) (User, bool) {
	u, ok := ctx.Value(userKey{}).(User)
	return u, ok
}

// Attributes describe one request, as the authorizers see it.
type Attributes struct {
	User User
	// Verb is Kubernetes' verb: get, list, watch, create, update, patch,
	// delete.
	Verb string
	// Group, Resource, Subresource, Namespace and Name name what a
	// resource request acts on; Name is empty for lists and for creates
	// that generate one.
	Group, Resource, Subresource, Namespace, Name string
	// Path names a request that is not about a resource: the gRPC method,
	// such as "/skiff.v1.Cluster/SignNodeCertificate".
	Path string
}

// IsResourceRequest reports whether the request acts on a resource.
func (a Attributes) IsResourceRequest() bool { return a.Resource != "" }

// Decision is an authorizer's answer.
type Decision int

const (
	// NoOpinion lets the next authorizer of a chain decide; at the end of
	// the chain it is a denial.
	NoOpinion Decision = iota
	Allow
	// Deny ends the chain at once.
	Deny
)

// Authorizer decides whether a request may go on. reason, when not empty,
// explains a denial and is appended to the Forbidden message.
type Authorizer interface {
	Authorize(ctx context.Context, a Attributes) (d Decision, reason string, err error)
}

// Chain asks each authorizer in turn; the first Allow or Deny wins.
type Chain []Authorizer

// Authorize implements Authorizer.
func (c Chain) Authorize(ctx context.Context, a Attributes) (Decision, string, error) {
	var reasons []string
	for _, z := range c {
		d, reason, err := z.Authorize(ctx, a)
		if err != nil {
			return Deny, "", err
		}
		if d != NoOpinion {
			return d, reason, nil
		}
		if reason != "" {
			reasons = append(reasons, reason)
		}
	}
	return NoOpinion, strings.Join(reasons, ", "), nil
}

// Masters allows every request of a user in system:masters.
type Masters struct{}

// Authorize implements Authorizer.
func (Masters) Authorize(_ context.Context, a Attributes) (Decision, string, error) {
	if a.User.InGroup(MastersGroup) {
		return Allow, "", nil
	}
	return NoOpinion, "", nil
}

// Forbidden is the error for a denied request, in Kubernetes' words:
//
//	nodes "b" is forbidden: User "system:node:a" cannot delete resource "nodes" in API group "" at the cluster scope: node "a" is not allowed to modify node "b"
func Forbidden(a Attributes, reason string) error {
	var msg string
	switch {
	case !a.IsResourceRequest():
		msg = fmt.Sprintf("User %q cannot %s path %q", a.User.Name, a.Verb, a.Path)
	default:
		resource := a.Resource
		if a.Subresource != "" {
			resource += "/" + a.Subresource
		}
		scope := "at the cluster scope"
		if a.Namespace != "" {
			scope = fmt.Sprintf("in the namespace %q", a.Namespace)
		}
		msg = fmt.Sprintf("User %q cannot %s resource %q in API group %q %s", a.User.Name, a.Verb, resource, a.Group, scope)
	}
	if reason != "" {
		msg += ": " + reason
	}
	if !a.IsResourceRequest() {
		return apierrors.NewForbidden(schema.GroupResource{}, "", fmt.Errorf("%s", msg))
	}
	return apierrors.NewForbidden(schema.GroupResource{Group: a.Group, Resource: a.Resource}, a.Name, fmt.Errorf("%s", msg))
}

// Unauthorized is the error for a request with no valid credentials.
// message says why for the server's log and for the caller (kubectl
// prints "You must be logged in to the server (Unauthorized)").
func Unauthorized(message string) error {
	if message == "" {
		message = "Unauthorized"
	}
	return apierrors.NewUnauthorized(message)
}
