package apiserver

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiffdev/skiff/apiserver/auth"
	"github.com/skiffdev/skiff/apiserver/registry"
	"github.com/skiffdev/skiff/internal/grpcerr"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/pki"
	skiffv1 "github.com/skiffdev/skiff/proto/skiff/v1"
)

// clusterService is skiff.v1.Cluster: the CA, the signing of nodes'
// certificates, and join tokens. Authorization has run before any of its
// handlers (access.go); the handlers check what depends on the object:
// which node a certificate may name.
type clusterService struct {
	skiffv1.UnimplementedClusterServer
	s *Server
}

func (c *clusterService) CA(context.Context, *skiffv1.CARequest) (*skiffv1.CAResponse, error) {
	return &skiffv1.CAResponse{Certificate: c.s.certs.ca.CertPEM}, nil
}

func (c *clusterService) SignNodeCertificate(ctx context.Context, req *skiffv1.SignNodeCertificateRequest) (*skiffv1.SignNodeCertificateResponse, error) {
	cert, err := c.s.SignNodeCertificate(ctx, req)
	if err != nil {
		return nil, grpcerr.ToStatus(err)
	}
	ca := c.s.certs.ca.CertPEM
	if req.GetUsage() == skiffv1.CertificateUsage_CERTIFICATE_USAGE_SERVING {
		ca = c.s.certs.kubeletCA.CertPEM
	}
	return &skiffv1.SignNodeCertificateResponse{Certificate: cert, Ca: ca}, nil
}

// SignNodeCertificate signs a node's certificate signing request for the
// user in ctx: a machine joining with a token (any node name, once its
// node password is accepted) or a node renewing its own certificates
// (only its own name). A refusal is logged once, here, and nothing is
// stored.
func (s *Server) SignNodeCertificate(ctx context.Context, req *skiffv1.SignNodeCertificateRequest) ([]byte, error) {
	user, _ := auth.UserFrom(ctx)
	log := logging.From(ctx)
	cert, node, err := s.signNodeCertificate(ctx, user, req)
	if err != nil {
		log.Info("refused to sign a node certificate", "user", user.Name, "node", node, "usage", req.GetUsage().String(), "err", err)
		return nil, err
	}
	log.Info("signed a node certificate", "user", user.Name, "node", node, "usage", req.GetUsage().String())
	return cert, nil
}

func (s *Server) signNodeCertificate(ctx context.Context, user auth.User, req *skiffv1.SignNodeCertificateRequest) ([]byte, string, error) {
	var usage pki.Usage
	switch req.GetUsage() {
	case skiffv1.CertificateUsage_CERTIFICATE_USAGE_CLIENT:
		usage = pki.ClientAuth
	case skiffv1.CertificateUsage_CERTIFICATE_USAGE_SERVING:
		usage = pki.ServerAuth
	default:
		return nil, "", apierrors.NewBadRequest("usage: must be CLIENT or SERVING")
	}
	csr, err := pki.ParseCSR(req.GetCsr())
	if err != nil {
		return nil, "", apierrors.NewBadRequest(err.Error())
	}
	// A node may renew only its own certificates; a bootstrapper may ask
	// for any node's client certificate, proving with the node password
	// that it is the machine that holds the name. Serving certificates
	// are for nodes only: a node's identity is needed to ask for one.
	self, isNode := user.NodeName()
	leaf, err := pki.NodeLeaf(csr, usage, self)
	if err != nil {
		if isNode {
			return nil, self, apierrors.NewForbidden(nodesResource, self, err)
		}
		return nil, "", apierrors.NewForbidden(nodesResource, "", err)
	}
	node := leaf.CommonName[len(pki.NodeUserPrefix):]
	signer := s.certs.ca
	switch {
	case isNode:
		// The password is checked on renewals too: a machine whose name
		// was taken over (after its Node was deleted) can renew no more.
		if err := s.tokens.checkNodePassword(ctx, node, req.GetNodePassword(), false); err != nil {
			return nil, node, err
		}
		if usage == pki.ServerAuth {
			signer = s.certs.kubeletCA
		}
	case usage == pki.ServerAuth:
		return nil, node, apierrors.NewForbidden(nodesResource, node, errors.New("only a node may have its serving certificate signed"))
	case !user.InGroup(auth.BootstrappersGroup) && !user.InGroup(auth.MastersGroup):
		return nil, node, apierrors.NewForbidden(nodesResource, node, errors.New("only a joining machine or the node itself may have a node certificate signed"))
	default:
		exists, err := s.nodeExists(ctx, node)
		if err != nil {
			return nil, node, err
		}
		if err := s.tokens.checkNodePassword(ctx, node, req.GetNodePassword(), !exists); err != nil {
			return nil, node, err
		}
	}
	leaf.Lifetime = s.certs.lifetime
	signed, err := signer.Sign(csr.PublicKey, leaf, time.Now())
	if err != nil {
		return nil, node, apierrors.NewInternalError(err)
	}
	return pki.EncodeCert(signed), node, nil
}

// nodeExists reports whether a Node of that name exists. It reads etcd,
// not the watch cache: a Node created a moment ago must already hold its
// name against a second machine. Joins are rare; the read costs nothing
// that matters.
func (s *Server) nodeExists(ctx context.Context, name string) (bool, error) {
	st, _ := s.registry.Store(nodesResource)
	_, err := st.Get(ctx, "", name)
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsNotFound(err):
		return false, nil
	}
	return false, err
}

func (c *clusterService) CreateToken(ctx context.Context, req *skiffv1.CreateTokenRequest) (*skiffv1.JoinToken, error) {
	if req.GetTtlSeconds() < 0 || req.GetTtlSeconds() > maxTokenTTLSeconds {
		return nil, grpcerr.ToStatus(apierrors.NewBadRequest(fmt.Sprintf("ttl: must be between 0 (never expires) and %d seconds (10 years)", maxTokenTTLSeconds)))
	}
	if len(req.GetDescription()) > 256 {
		return nil, grpcerr.ToStatus(apierrors.NewBadRequest("description: must be no more than 256 characters"))
	}
	tok, st, err := c.s.tokens.create(ctx, time.Duration(req.GetTtlSeconds())*time.Second, req.GetDescription(), time.Now())
	if err != nil {
		return nil, grpcerr.ToStatus(err)
	}
	user, _ := auth.UserFrom(ctx)
	logging.From(ctx).Info("join token created", "id", tok.ID, "user", user.Name, "expires", st.Expires)
	jt := joinToken(tokenRecord{ID: tok.ID, storedToken: st})
	jt.Token = tok.String()
	return jt, nil
}

func (c *clusterService) ListTokens(ctx context.Context, _ *skiffv1.ListTokensRequest) (*skiffv1.ListTokensResponse, error) {
	recs, err := c.s.tokens.list(ctx)
	if err != nil {
		return nil, grpcerr.ToStatus(err)
	}
	resp := &skiffv1.ListTokensResponse{}
	for _, r := range recs {
		resp.Tokens = append(resp.Tokens, joinToken(r))
	}
	return resp, nil
}

func (c *clusterService) DeleteToken(ctx context.Context, req *skiffv1.DeleteTokenRequest) (*skiffv1.DeleteTokenResponse, error) {
	if !pki.ValidTokenID(req.GetId()) {
		return nil, grpcerr.ToStatus(apierrors.NewBadRequest(fmt.Sprintf("id %q: a token id is 6 characters of [a-z0-9]", req.GetId())))
	}
	found, err := c.s.tokens.delete(ctx, req.GetId())
	if err != nil {
		return nil, grpcerr.ToStatus(err)
	}
	if !found {
		return nil, grpcerr.ToStatus(apierrors.NewNotFound(tokensResource, req.GetId()))
	}
	user, _ := auth.UserFrom(ctx)
	logging.From(ctx).Info("join token deleted", "id", req.GetId(), "user", user.Name)
	return &skiffv1.DeleteTokenResponse{}, nil
}

func (c *clusterService) EncryptionStatus(ctx context.Context, _ *skiffv1.EncryptionStatusRequest) (*skiffv1.EncryptionStatusResponse, error) {
	st, err := c.s.EncryptionStatus(ctx)
	if err != nil {
		return nil, grpcerr.ToStatus(err)
	}
	resp := &skiffv1.EncryptionStatusResponse{Provider: st.Provider, Resources: st.Resources, KeyFile: st.KeyFile, Unencrypted: st.Unencrypted}
	for _, k := range st.Keys {
		ks := &skiffv1.EncryptionKeyStatus{Name: k.Name, Write: k.Write, Objects: k.Objects, Missing: k.Missing}
		if !k.Created.IsZero() {
			ks.Created = k.Created.Unix()
		}
		resp.Keys = append(resp.Keys, ks)
	}
	return resp, nil
}

func (c *clusterService) RotateEncryptionKey(req *skiffv1.RotateEncryptionKeyRequest, stream skiffv1.Cluster_RotateEncryptionKeyServer) error {
	ctx := stream.Context()
	user, _ := auth.UserFrom(ctx)
	logging.From(ctx).Info("encryption key rotation requested", "user", user.Name)
	err := c.s.RotateEncryptionKey(ctx, int(req.GetProgressEvery()), func(p RotationProgress) error {
		return stream.Send(&skiffv1.RotateEncryptionKeyProgress{
			NewKey: p.NewKey, OldKeys: p.OldKeys, Checked: p.Checked, Total: p.Total, Rewritten: p.Rewritten,
			Done: p.Done, ElapsedMilliseconds: p.Elapsed.Milliseconds(), GraceSeconds: int64(p.Grace.Seconds()),
		})
	})
	if err != nil {
		logging.From(ctx).Warn("encryption key rotation stopped; every key is kept", "err", err)
		return grpcerr.ToStatus(err)
	}
	return nil
}

// maxTokenTTLSeconds bounds a join token's life (and keeps the expiry
// from overflowing).
const maxTokenTTLSeconds = 10 * 365 * 24 * 3600

func joinToken(r tokenRecord) *skiffv1.JoinToken {
	jt := &skiffv1.JoinToken{Id: r.ID, Description: r.Description, Created: r.Created.Unix()}
	if !r.Expires.IsZero() {
		jt.Expires = r.Expires.Unix()
	}
	return jt
}

var tokensResource = schema.GroupResource{Resource: "tokens"}

// podNodes tells the Node authorizer which node a pod is bound to, from
// the pod watch cache (the kubelet learned of the pod from that cache,
// so it is there by the time the kubelet writes its status).
type podNodes struct{ pods *registry.Store }

func (p podNodes) PodNode(namespace, name string) (string, bool) {
	obj, ok := p.pods.Cached(namespace, name)
	if !ok {
		return "", false
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return "", false
	}
	return pod.Spec.NodeName, true
}

// PodsOnNode lists the pods of namespace bound to node from the pod
// watch cache. It reads every pod of the namespace the cache holds; the
// kubelet asks once per object it starts to watch, not per event.
func (p podNodes) PodsOnNode(namespace, node string) []*corev1.Pod {
	obj, err := p.pods.List(context.Background(), namespace, registry.ListOptions{
		FieldSelector:   fields.OneTermEqualSelector("spec.nodeName", node).String(),
		ResourceVersion: "0",
	})
	if err != nil {
		return nil
	}
	list, ok := obj.(*corev1.PodList)
	if !ok {
		return nil
	}
	out := make([]*corev1.Pod, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out
}
