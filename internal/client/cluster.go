package client

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/skiffdev/skiff/internal/grpcerr"
	skiffv1 "github.com/skiffdev/skiff/proto/skiff/v1"
)

// The Cluster service: the CA, nodes' certificates, join tokens, the keys
// that encrypt Secrets at rest.

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

// EncryptionStatus asks how objects are encrypted at rest: the keys and
// how many stored objects each encrypts.
func (c *Client) EncryptionStatus(ctx context.Context) (*skiffv1.EncryptionStatusResponse, error) {
	ctx, cancel := c.requestContext(ctx)
	defer cancel()
	resp, err := c.cluster.EncryptionStatus(ctx, &skiffv1.EncryptionStatusRequest{})
	return resp, grpcerr.FromStatus(err)
}

// RotateEncryptionKey has the server encrypt with a new key, write every
// encrypted object again and retire the older keys, handing progress each
// message it sends (every progressEvery objects, and the last one, with
// Done set). It takes as long as it takes: no request timeout applies,
// only ctx, whose end stops the rotation with every key kept.
func (c *Client) RotateEncryptionKey(ctx context.Context, progressEvery int, progress func(*skiffv1.RotateEncryptionKeyProgress)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.cluster.RotateEncryptionKey(ctx, &skiffv1.RotateEncryptionKeyRequest{ProgressEvery: int32(progressEvery)})
	if err != nil {
		return grpcerr.FromStatus(err)
	}
	for {
		p, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return errors.New("the server ended the rotation without saying it was done")
		}
		if err != nil {
			return grpcerr.FromStatus(err)
		}
		progress(p)
		if p.GetDone() {
			return nil
		}
	}
}
