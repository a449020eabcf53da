package client

import (
	"context"
	"time"

	"github.com/skiffdev/skiff/internal/grpcerr"
	skiffv1 "github.com/skiffdev/skiff/proto/skiff/v1"
)

// The Cluster service: the CA, nodes' certificates, join tokens.

// CA fetches the cluster CA's certificate (PEM). The server answers it
// without credentials; a caller that does not trust the server yet must
// check the answer against a pin (the hash in a join token) itself.
func (c *Client) CA(ctx context.Context) ([]byte, error) {
	ctx, cancel := c.requestContext(ctx)
	defer cancel()
	resp, err := c.cluster.CA(ctx, &skiffv1.CARequest{})
	if err != nil {
		return nil, grpcerr.FromStatus(err)
	}
	return resp.GetCertificate(), nil
}

// SignNodeCertificate has the server sign a node's certificate signing
// request (PEM) and returns the certificate (PEM).
func (c *Client) SignNodeCertificate(ctx context.Context, csr []byte, usage skiffv1.CertificateUsage, nodePassword string) ([]byte, error) {
	ctx, cancel := c.requestContext(ctx)
	defer cancel()
	resp, err := c.cluster.SignNodeCertificate(ctx, &skiffv1.SignNodeCertificateRequest{Csr: csr, Usage: usage, NodePassword: nodePassword})
	if err != nil {
		return nil, grpcerr.FromStatus(err)
	}
	return resp.GetCertificate(), nil
}

// CreateToken makes a join token valid for ttl (0: forever; a part of a
// second counts as a whole one, so that a short ttl never becomes
// "forever"). The answer is the only place its secret is ever shown.
func (c *Client) CreateToken(ctx context.Context, ttl time.Duration, description string) (*skiffv1.JoinToken, error) {
	ctx, cancel := c.requestContext(ctx)
	defer cancel()
	seconds := int64((ttl + time.Second - 1) / time.Second)
	tok, err := c.cluster.CreateToken(ctx, &skiffv1.CreateTokenRequest{TtlSeconds: seconds, Description: description})
	return tok, grpcerr.FromStatus(err)
}

// ListTokens lists the join tokens, without their secrets.
func (c *Client) ListTokens(ctx context.Context) ([]*skiffv1.JoinToken, error) {
	ctx, cancel := c.requestContext(ctx)
	defer cancel()
	resp, err := c.cluster.ListTokens(ctx, &skiffv1.ListTokensRequest{})
	if err != nil {
		return nil, grpcerr.FromStatus(err)
	}
	return resp.GetTokens(), nil
}

// DeleteToken deletes a join token.
func (c *Client) DeleteToken(ctx context.Context, id string) error {
	ctx, cancel := c.requestContext(ctx)
	defer cancel()
	_, err := c.cluster.DeleteToken(ctx, &skiffv1.DeleteTokenRequest{Id: id})
	return grpcerr.FromStatus(err)
}
