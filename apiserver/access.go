package apiserver

import (
	"context"
	"errors"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiffdev/skiff/apiserver/auth"
	"github.com/skiffdev/skiff/internal/grpcerr"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/pki"
	skiffv1 "github.com/skiffdev/skiff/proto/skiff/v1"
)

// Access control at the gRPC edge. Every call goes through the same two
// steps, in interceptors, before any handler runs:
//
//  1. authenticate: a client certificate verified against the cluster CA
//     (user = CN, groups = O), else a bearer token (a join token), else
//     401 Unauthorized. Only skiff.v1.Cluster/CA answers anyone: a
//     joining machine asks for the CA before it can trust the server.
//  2. authorize: the request's attributes (verb, resource, namespace,
//     name) through the authorizer chain; a denial is 403 Forbidden in
//     Kubernetes' words.
//
// The user travels in the request's context (auth.UserFrom), for
// admission (NodeRestriction) and for the Cluster service.

// publicMethods answer without credentials.
var publicMethods = map[string]bool{
	skiffv1.Cluster_CA_FullMethodName: true,
}

// access is the authenticator and authorizer of one server.
type access struct {
	tokens     *tokens
	authorizer auth.Authorizer
	now        func() time.Time
}

// authenticate finds who is calling.
func (a *access) authenticate(ctx context.Context) (auth.User, error) {
	if p, ok := peer.FromContext(ctx); ok {
		if info, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(info.State.VerifiedChains) > 0 && len(info.State.VerifiedChains[0]) > 0 {
			name, groups := pki.Identity(info.State.VerifiedChains[0][0])
			if name == "" {
				return auth.User{}, auth.Unauthorized("")
			}
			return auth.User{Name: name, Groups: append(groups, auth.AuthenticatedGroup)}, nil
		}
	}
	md, _ := metadata.FromIncomingContext(ctx)
	if vals := md.Get("authorization"); len(vals) > 0 {
		bearer, ok := strings.CutPrefix(vals[0], "Bearer ")
		if !ok {
			return auth.User{}, auth.Unauthorized("the authorization header is not a bearer token")
		}
		id, err := a.tokens.authenticate(ctx, strings.TrimSpace(bearer), a.now())
		if err != nil {
			// The caller learns which check failed: a join token is typed
			// by an operator, who needs to know whether it expired, was
			// deleted or was mistyped.
			if errors.Is(err, errTokenInvalid) {
				return auth.User{}, auth.Unauthorized(err.Error())
			}
			return auth.User{}, err
		}
		return auth.User{Name: auth.BootstrapUserPrefix + id, Groups: []string{auth.BootstrappersGroup, auth.AuthenticatedGroup}}, nil
	}
	return auth.User{}, auth.Unauthorized("")
}

// authorize checks one request's attributes.
func (a *access) authorize(ctx context.Context, attrs auth.Attributes) error {
	d, reason, err := a.authorizer.Authorize(ctx, attrs)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	if d != auth.Allow {
		err := auth.Forbidden(attrs, reason)
		logging.From(ctx).Info("request forbidden", "user", attrs.User.Name, "verb", attrs.Verb, "resource", attrs.Resource, "subresource", attrs.Subresource, "namespace", attrs.Namespace, "name", attrs.Name, "path", attrs.Path, "reason", reason)
		return err
	}
	return nil
}

// check authenticates a call and, with its first request message,
// authorizes it.
func (a *access) check(ctx context.Context, method string, req any) (context.Context, error) {
	if publicMethods[method] {
		return ctx, nil
	}
	user, err := a.authenticateCall(ctx, method)
	if err != nil {
		return ctx, err
	}
	return a.authorizeCall(ctx, user, method, req)
}

// authenticateCall authenticates a call, logging a refusal once.
func (a *access) authenticateCall(ctx context.Context, method string) (auth.User, error) {
	user, err := a.authenticate(ctx)
	if err != nil && apierrors.IsUnauthorized(err) {
		logging.From(ctx).Info("request unauthenticated", "method", method, "peer", peerAddr(ctx), "reason", err.Error())
	}
	return user, err
}

// authorizeCall authorizes user's request of method and returns the
// context the handler runs in.
func (a *access) authorizeCall(ctx context.Context, user auth.User, method string, req any) (context.Context, error) {
	attrs := requestAttributes(method, req)
	attrs.User = user
	if err := a.authorize(ctx, attrs); err != nil {
		return ctx, err
	}
	return auth.WithUser(ctx, user), nil
}

func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

// unary is the interceptor of unary calls.
func (a *access) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := a.check(ctx, info.FullMethod, req)
	if err != nil {
		return nil, grpcerr.ToStatus(err)
	}
	return handler(ctx, req)
}

// stream is the interceptor of streams: it authenticates at once, before
// the handler runs, and authorizes with the first message the handler
// receives (the watch request, the log request, the start of an exec).
func (a *access) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	user, err := a.authenticateCall(ss.Context(), info.FullMethod)
	if err != nil {
		return grpcerr.ToStatus(err)
	}
	return handler(srv, &checkedStream{ServerStream: ss, access: a, method: info.FullMethod, user: user})
}

// checkedStream authorizes its call when the first message arrives, and
// carries the user in its context afterwards.
type checkedStream struct {
	grpc.ServerStream
	access  *access
	method  string
	user    auth.User
	checked bool
	ctx     context.Context
}

func (s *checkedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if s.checked {
		return nil
	}
	ctx, err := s.access.authorizeCall(s.ServerStream.Context(), s.user, s.method, m)
	if err != nil {
		return grpcerr.ToStatus(err)
	}
	s.checked, s.ctx = true, ctx
	return nil
}

func (s *checkedStream) Context() context.Context {
	if s.ctx != nil {
		return s.ctx
	}
	return s.ServerStream.Context()
}

// pathVerbs are the verbs of the calls that are not about a resource.
var pathVerbs = map[string]string{
	skiffv1.API_Version_FullMethodName:                 "get",
	skiffv1.Cluster_CA_FullMethodName:                  "get",
	skiffv1.Cluster_SignNodeCertificate_FullMethodName: "create",
	skiffv1.Cluster_CreateToken_FullMethodName:         "create",
	skiffv1.Cluster_ListTokens_FullMethodName:          "list",
	skiffv1.Cluster_DeleteToken_FullMethodName:         "delete",
	skiffv1.Cluster_EncryptionStatus_FullMethodName:    "get",
	skiffv1.Cluster_RotateEncryptionKey_FullMethodName: "update",
}

// resourceRequest is what every resource request of skiff.v1.API has.
type resourceRequest interface {
	GetResource() *skiffv1.Resource
	GetNamespace() string
}

// requestAttributes are the authorization attributes of one request of
// method.
func requestAttributes(method string, req any) auth.Attributes {
	attrs := auth.Attributes{Path: method}
	switch r := req.(type) {
	case *skiffv1.CreateRequest:
		attrs.Verb, attrs.Subresource, attrs.Name = "create", r.GetSubresource(), r.GetName()
	case *skiffv1.GetRequest:
		attrs.Verb, attrs.Subresource, attrs.Name = "get", r.GetSubresource(), r.GetName()
	case *skiffv1.ListRequest:
		attrs.Verb, attrs.Name = "list", selectedName(r.GetFieldSelector())
	case *skiffv1.WatchRequest:
		attrs.Verb, attrs.Name = "watch", selectedName(r.GetFieldSelector())
	case *skiffv1.UpdateRequest:
		attrs.Verb, attrs.Subresource, attrs.Name = "update", r.GetSubresource(), r.GetName()
	case *skiffv1.PatchRequest:
		attrs.Verb, attrs.Subresource, attrs.Name = "patch", r.GetSubresource(), r.GetName()
	case *skiffv1.DeleteRequest:
		attrs.Verb, attrs.Name = "delete", r.GetName()
	case *skiffv1.PodLogsRequest:
		return auth.Attributes{Verb: "get", Resource: "pods", Subresource: "log", Namespace: r.GetNamespace(), Name: r.GetPod(), Path: method}
	case *skiffv1.ExecInput:
		start := r.GetStart()
		return auth.Attributes{Verb: "create", Resource: "pods", Subresource: "exec", Namespace: start.GetNamespace(), Name: start.GetPod(), Path: method}
	default:
		// Version and the Cluster service: not about a resource.
		attrs.Verb = pathVerbs[method]
		return attrs
	}
	if rr, ok := req.(resourceRequest); ok {
		gr := schema.GroupResource{Group: rr.GetResource().GetGroup(), Resource: rr.GetResource().GetResource()}
		attrs.Group, attrs.Resource, attrs.Namespace = gr.Group, gr.Resource, rr.GetNamespace()
	}
	return attrs
}

// selectedName is the object a list or watch is limited to by the field
// selector metadata.name=NAME, or "". As in Kubernetes, such a request
// is authorized like a get of NAME: a node may watch the one Secret its
// pod uses without being allowed to list them all. A selector that does
// not parse names nothing here; the list itself then fails.
func selectedName(selector string) string {
	if selector == "" {
		return ""
	}
	sel, err := fields.ParseSelector(selector)
	if err != nil {
		return ""
	}
	name, _ := sel.RequiresExactMatch("metadata.name")
	return name
}
