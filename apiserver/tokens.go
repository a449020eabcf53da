package apiserver

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/pki"
)

// Join tokens and node passwords are the API server's own records, kept
// in etcd beside the resources but outside /registry: no client lists or
// watches them, and a token's secret is never stored, only its hash.
const (
	tokenPrefix        = "/skiff/bootstrap-tokens/"
	nodePasswordPrefix = "/skiff/node-passwords/"
	// TokenFile is where skiff server writes its own join token, in
	// DATA-DIR.
	TokenFile = "token"
)

// storedToken is a join token as etcd keeps it.
type storedToken struct {
	SecretHash  string    `json:"secretHash"`
	Description string    `json:"description,omitempty"`
	Created     time.Time `json:"created"`
	// Expires is zero for a token that never expires.
	Expires time.Time `json:"expires,omitzero"`
}

// tokens reads and writes join tokens and node passwords.
type tokens struct {
	etcd    *clientv3.Client
	timeout time.Duration
	caHash  string
}

func (t *tokens) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, t.timeout)
}

// create makes a token valid for ttl (0: forever).
func (t *tokens) create(ctx context.Context, ttl time.Duration, description string, now time.Time) (pki.Token, storedToken, error) {
	for range 5 {
		tok, err := pki.NewToken(t.caHash)
		if err != nil {
			return pki.Token{}, storedToken{}, err
		}
		st := storedToken{SecretHash: tok.SecretHash(), Description: description, Created: now.UTC().Truncate(time.Second)}
		if ttl > 0 {
			st.Expires = st.Created.Add(ttl)
		}
		data, err := json.Marshal(st)
		if err != nil {
			return pki.Token{}, storedToken{}, err
		}
		key := tokenPrefix + tok.ID
		c, cancel := t.ctx(ctx)
		resp, err := t.etcd.Txn(c).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).Then(clientv3.OpPut(key, string(data))).Commit()
		cancel()
		if err != nil {
			return pki.Token{}, storedToken{}, storageError(err)
		}
		if resp.Succeeded {
			return tok, st, nil
		}
		// An id taken already: 36^6 ids make this rare; draw again.
	}
	return pki.Token{}, storedToken{}, apierrors.NewInternalError(errors.New("could not find a free token id"))
}

// get reads a token's record; ok is false when there is none.
func (t *tokens) get(ctx context.Context, id string) (st storedToken, ok bool, err error) {
	c, cancel := t.ctx(ctx)
	defer cancel()
	resp, err := t.etcd.Get(c, tokenPrefix+id)
	if err != nil {
		return storedToken{}, false, storageError(err)
	}
	if len(resp.Kvs) == 0 {
		return storedToken{}, false, nil
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &st); err != nil {
		return storedToken{}, false, apierrors.NewInternalError(fmt.Errorf("token %s: %w", id, err))
	}
	return st, true, nil
}

// tokenRecord is a stored token with its id.
type tokenRecord struct {
	ID string
	storedToken
}

// list reads every token's record, oldest first.
func (t *tokens) list(ctx context.Context) ([]tokenRecord, error) {
	c, cancel := t.ctx(ctx)
	defer cancel()
	resp, err := t.etcd.Get(c, tokenPrefix, clientv3.WithPrefix())
	if err != nil {
		return nil, storageError(err)
	}
	recs := make([]tokenRecord, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		r := tokenRecord{ID: strings.TrimPrefix(string(kv.Key), tokenPrefix)}
		if err := json.Unmarshal(kv.Value, &r.storedToken); err != nil {
			return nil, apierrors.NewInternalError(fmt.Errorf("token %s: %w", r.ID, err))
		}
		recs = append(recs, r)
	}
	slices.SortFunc(recs, func(a, b tokenRecord) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return recs, nil
}

// delete removes a token; found is false when there was none.
func (t *tokens) delete(ctx context.Context, id string) (found bool, err error) {
	c, cancel := t.ctx(ctx)
	defer cancel()
	resp, err := t.etcd.Delete(c, tokenPrefix+id)
	if err != nil {
		return false, storageError(err)
	}
	return resp.Deleted > 0, nil
}

// errTokenInvalid is the cause of every refused token; the message says
// which check failed, for the joining operator.
var errTokenInvalid = errors.New("invalid join token")

// authenticate checks a bearer token (<id>.<secret>) and returns its id.
func (t *tokens) authenticate(ctx context.Context, bearer string, now time.Time) (string, error) {
	tok, err := pki.ParseToken(bearer, false)
	if err != nil {
		return "", fmt.Errorf("%w: %v", errTokenInvalid, err)
	}
	st, ok, err := t.get(ctx, tok.ID)
	if err != nil {
		return "", err
	}
	switch {
	case !ok:
		return "", fmt.Errorf("%w: token %q does not exist (it was deleted, or never made on this cluster)", errTokenInvalid, tok.ID)
	case !tok.SecretMatches(st.SecretHash):
		return "", fmt.Errorf("%w: wrong secret for token %q", errTokenInvalid, tok.ID)
	case !st.Expires.IsZero() && !now.Before(st.Expires):
		return "", fmt.Errorf("%w: token %q expired at %s", errTokenInvalid, tok.ID, st.Expires.Format(time.RFC3339))
	}
	return tok.ID, nil
}

// checkNodePassword compares a node's password with the one kept for its
// name. The first password given for a name is kept. Another one is
// refused, unless mayTake: a joining machine may take the name of a Node
// that no longer exists (it was deleted), and a machine that held it
// before can then renew no more, since renewals carry the password too.
func (t *tokens) checkNodePassword(ctx context.Context, node, password string, mayTake bool) error {
	if len(password) < 16 {
		return apierrors.NewBadRequest("node_password: a node password of at least 16 characters is required")
	}
	sum := sha256.Sum256([]byte(password))
	hash := hex.EncodeToString(sum[:])
	key := nodePasswordPrefix + node
	c, cancel := t.ctx(ctx)
	defer cancel()
	resp, err := t.etcd.Get(c, key)
	if err != nil {
		return storageError(err)
	}
	if len(resp.Kvs) > 0 && subtle.ConstantTimeCompare(resp.Kvs[0].Value, []byte(hash)) == 1 {
		return nil
	}
	if len(resp.Kvs) > 0 && !mayTake {
		return apierrors.NewForbidden(nodesResource, node, fmt.Errorf("the name is taken by another machine (its node password differs); choose another --node-name, or delete node %q first if that machine is gone", node))
	}
	rev := int64(0)
	if len(resp.Kvs) > 0 {
		rev = resp.Kvs[0].ModRevision
	}
	txn, err := t.etcd.Txn(c).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).Then(clientv3.OpPut(key, hash)).Commit()
	if err != nil {
		return storageError(err)
	}
	if !txn.Succeeded {
		return apierrors.NewConflict(nodesResource, node, errors.New("another machine is joining with this name at the same time"))
	}
	return nil
}

// storageError is an etcd failure as the client sees it.
func storageError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return apierrors.NewServiceUnavailable("etcd did not answer in time")
	}
	return apierrors.NewInternalError(err)
}

// ensureServerToken writes a join token to DATA-DIR/token at the first
// start, so that the operator has one to give to agents with no further
// step. An existing file is kept as it is.
func (s *Server) ensureServerToken(ctx context.Context) error {
	path := filepath.Join(s.cfg.DataDir, TokenFile)
	if data, err := os.ReadFile(path); err == nil {
		tok, err := pki.ParseToken(strings.TrimSpace(string(data)), true)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if tok.CAHash != s.certs.ca.Hash() {
			return fmt.Errorf("%s pins another CA than %s; remove it to have a new token written", path, filepath.Join(s.certs.dir, pki.CACertFile))
		}
		if _, ok, err := s.tokens.get(ctx, tok.ID); err == nil && !ok {
			logging.From(ctx).Warn("the server's join token was deleted; agents cannot join with it (remove the file to have a new one written at the next start)", "path", path)
		}
		return nil
	} else if !os.IsNotExist(err) {
		return err
	}
	tok, _, err := s.tokens.create(ctx, 0, "written by skiff server to "+path, time.Now())
	if err != nil {
		return fmt.Errorf("making the server's join token: %w", err)
	}
	if err := pki.WriteFile(path, []byte(tok.String()+"\n"), 0o600); err != nil {
		return err
	}
	logging.From(ctx).Info("wrote a join token for agents", "path", path)
	return nil
}
