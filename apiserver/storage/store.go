package storage

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffdev/skiff/internal/scheme"
)

// Config describes one resource's storage.
type Config struct {
	// Client is the etcd client shared by all stores.
	Client *clientv3.Client
	// Resource names the resource, for error messages.
	Resource schema.GroupResource
	// Prefix is the key prefix, ending in "/".
	Prefix string
	// NewFunc returns an empty object; NewListFunc an empty list.
	NewFunc     func() runtime.Object
	NewListFunc func() runtime.Object
	// Attrs returns the labels and fields that selectors match against.
	Attrs AttrFunc
	// RequestTimeout bounds each etcd call, so that a request fails with
	// ServiceUnavailable instead of hanging while etcd is unreachable.
	RequestTimeout time.Duration
	// TTL, when set, makes objects expire that long after they were
	// created: etcd removes them (events, which would otherwise pile up).
	TTL time.Duration
	// Companion, when set, is consulted before every write of an object
	// and adds its own conditions and writes to the same transaction (the
	// service IP and node port bitmaps, kept in step with the services).
	Companion CompanionFunc
	// Transformer, when set, turns the encoded object into the stored
	// value and back: the Keyring encrypts Secrets at rest. Nil stores the
	// encoding as it is.
	Transformer Transformer
}

// CompanionFunc is called before an object is written: old is nil on
// create, updated is nil when the object is about to be removed. It may
// change updated (fill in allocated values). The returned Companion goes
// into the object's transaction; when its conditions fail (and the
// object's did not) the write is tried again, calling the function again
// (on create with a fresh copy of the object as the caller gave it).
type CompanionFunc func(ctx context.Context, old, updated runtime.Object) (Companion, error)

// Companion is what a CompanionFunc adds to one transaction.
type Companion struct {
	// Cmps must all hold for the transaction to apply.
	Cmps []clientv3.Cmp
	// Ops are applied together with the object's write.
	Ops []clientv3.Op
	// Done, when set, is called exactly once after the transaction was
	// tried (or given up before it was sent): committed reports whether it
	// was applied, at revision rev.
	Done func(committed bool, rev int64)
}

func (c *Companion) done(committed bool, rev int64) {
	if c.Done != nil {
		c.Done(committed, rev)
		c.Done = nil
	}
}

// Store keeps the objects of one resource in etcd.
type Store struct {
	cfg    Config
	leases *leases // for objects that expire; nil when cfg.TTL is 0
}

// NewStore returns a store for one resource.
func NewStore(cfg Config) *Store {
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	s := &Store{cfg: cfg}
	if cfg.TTL > 0 {
		s.leases = &leases{client: cfg.Client}
	}
	return s
}

// Key returns the etcd key of an object. Cluster-scoped objects have no
// namespace segment.
func (s *Store) Key(namespace, name string) string {
	if namespace == "" {
		return s.cfg.Prefix + name
	}
	return s.cfg.Prefix + namespace + "/" + name
}

// Prefix returns the key prefix under which the objects of a namespace
// (or of all namespaces, for "") live.
func (s *Store) Prefix(namespace string) string {
	if namespace == "" {
		return s.cfg.Prefix
	}
	return s.cfg.Prefix + namespace + "/"
}

// Preconditions must hold for an update or delete to go ahead.
type Preconditions struct {
	UID             *types.UID
	ResourceVersion *string
}

// Check returns Conflict when obj does not satisfy the preconditions.
func (p *Preconditions) Check(gr schema.GroupResource, name string, obj runtime.Object) error {
	if p == nil {
		return nil
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	if p.UID != nil && *p.UID != m.GetUID() {
		return apierrors.NewConflict(gr, name, fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *p.UID, m.GetUID()))
	}
	if p.ResourceVersion != nil && *p.ResourceVersion != m.GetResourceVersion() {
		return apierrors.NewConflict(gr, name, fmt.Errorf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *p.ResourceVersion, m.GetResourceVersion()))
	}
	return nil
}

// call runs one etcd operation under the request timeout and turns etcd's
// failures into API errors. When the caller itself gave up (its context
// ended), that is reported rather than blamed on etcd.
func (s *Store) call(ctx context.Context, op func(ctx context.Context) error) error {
	tctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	err := op(tctx)
	if err == nil {
		return nil
	}
	switch ctx.Err() {
	case context.DeadlineExceeded:
		return apierrors.NewTimeoutError("the request did not complete within its deadline", 0)
	case context.Canceled:
		return ctx.Err()
	}
	return etcdError(err)
}

// etcdError maps an etcd client error to an API error. A request that ran
// out of time, or found no etcd leader, means etcd is unavailable.
func etcdError(err error) error {
	if errors.Is(err, rpctypes.ErrCompacted) {
		return apierrors.NewResourceExpired(fmt.Sprintf("the requested resourceVersion has been compacted: %v", err))
	}
	if errors.Is(err, rpctypes.ErrFutureRev) {
		return apierrors.NewTimeoutError(fmt.Sprintf("the requested resourceVersion is newer than the storage: %v", err), 1)
	}
	code := grpcstatus.Code(err)
	if errors.Is(err, rpctypes.ErrRequestTooLarge) || (code == codes.ResourceExhausted && strings.Contains(err.Error(), "larger than max")) {
		// An external etcd configured with a smaller request limit.
		return apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("etcd refused the object as too large: %v", err))
	}
	if errors.Is(err, context.DeadlineExceeded) || code == codes.DeadlineExceeded || code == codes.Unavailable ||
		errors.Is(err, rpctypes.ErrNoLeader) || errors.Is(err, rpctypes.ErrTimeout) {
		return Unavailable(err)
	}
	return apierrors.NewInternalError(fmt.Errorf("etcd: %w", err))
}

// Unavailable is the error returned while etcd cannot be reached.
func Unavailable(cause error) error {
	e := apierrors.NewServiceUnavailable(fmt.Sprintf("storage is unavailable: %v", cause))
	return e
}

// decode turns the value stored under key into an object whose
// resourceVersion is rev.
func (s *Store) decode(key string, data []byte, rev int64) (runtime.Object, error) {
	obj, _, _, err := s.decodeStored(key, data, rev)
	return obj, err
}

// decodeStored is decode that also returns the object's encoding as the
// transformer gave it back, and whether the transformer would store it
// differently now (stale).
func (s *Store) decodeStored(key string, data []byte, rev int64) (obj runtime.Object, plain []byte, stale bool, err error) {
	plain = data
	if s.cfg.Transformer != nil {
		plain, stale, err = s.cfg.Transformer.FromStorage(key, data)
		if err != nil {
			return nil, nil, false, apierrors.NewInternalError(fmt.Errorf("reading stored %s %s: %w", s.cfg.Resource, key, err))
		}
	}
	obj, err = scheme.DecodeProtobuf(plain, s.cfg.NewFunc())
	if err != nil {
		return nil, nil, false, apierrors.NewInternalError(fmt.Errorf("decoding stored %s %s: %w", s.cfg.Resource, key, err))
	}
	if err := setResourceVersion(obj, rev); err != nil {
		return nil, nil, false, err
	}
	return obj, plain, stale, nil
}

// toStorage turns an object's encoding into the value to store under key.
// done must be called once the write has been tried.
func (s *Store) toStorage(key string, plain []byte) (stored []byte, done func(), err error) {
	if s.cfg.Transformer == nil {
		return plain, func() {}, nil
	}
	stored, done, err = s.cfg.Transformer.ToStorage(key, plain)
	if err != nil {
		return nil, nil, apierrors.NewInternalError(fmt.Errorf("storing %s %s: %w", s.cfg.Resource, key, err))
	}
	return stored, done, nil
}

// encode turns an object into the bytes to store: its resourceVersion is
// cleared, since the key's mod revision is the source of truth.
func encode(obj runtime.Object) ([]byte, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	rv := m.GetResourceVersion()
	m.SetResourceVersion("")
	data, err := scheme.EncodeProtobuf(obj)
	m.SetResourceVersion(rv)
	return data, err
}

func setResourceVersion(obj runtime.Object, rev int64) error {
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	if rev == 0 {
		m.SetResourceVersion("")
	} else {
		m.SetResourceVersion(strconv.FormatInt(rev, 10))
	}
	return nil
}

// ParseResourceVersion parses a resourceVersion string; "" is 0.
func ParseResourceVersion(rv string) (int64, error) {
	if rv == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(rv, 10, 64)
	if err != nil || n < 0 {
		return 0, apierrors.NewBadRequest(fmt.Sprintf("invalid resource version %q", rv))
	}
	return n, nil
}

// Guard is a condition on another key that a write depends on: the key
// must still be at ModRevision (0: must not exist). The registry uses it to
// create an object only while its namespace is exactly as admission saw it.
type Guard struct {
	Key         string
	ModRevision int64
}

// ErrGuardChanged is returned by Create when a guard no longer holds.
var ErrGuardChanged = errors.New("a key the write depends on has changed")

// Create stores a new object under key. It fails with AlreadyExists when
// the key is taken, and with ErrGuardChanged when a guard no longer holds.
// On success it sets obj's resourceVersion and returns obj: the caller
// hands the object over.
func (s *Store) Create(ctx context.Context, key, name string, obj runtime.Object, guards ...Guard) (runtime.Object, error) {
	var orig runtime.Object
	if s.cfg.Companion != nil {
		orig = obj.DeepCopyObject()
	}
	for {
		out, retry, err := s.create(ctx, key, name, obj, guards)
		if !retry {
			return out, err
		}
		// A companion key changed under us: start again from the object
		// as the caller gave it.
		obj = orig.DeepCopyObject()
	}
}

// create is one try of Create. retry reports that the companion's
// conditions failed and nothing else did.
func (s *Store) create(ctx context.Context, key, name string, obj runtime.Object, guards []Guard) (out runtime.Object, retry bool, err error) {
	var comp Companion
	if s.cfg.Companion != nil {
		if comp, err = s.cfg.Companion(ctx, nil, obj); err != nil {
			return nil, false, err
		}
	}
	committed, rev := false, int64(0)
	defer func() { comp.done(committed, rev) }()
	plain, err := encode(obj)
	if err != nil {
		return nil, false, err
	}
	data, stored, err := s.toStorage(key, plain)
	if err != nil {
		return nil, false, err
	}
	defer stored()
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)}
	elses := []clientv3.Op{clientv3.OpGet(key, clientv3.WithCountOnly())}
	for _, g := range guards {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(g.Key), "=", g.ModRevision))
		elses = append(elses, clientv3.OpGet(g.Key))
	}
	cmps = append(cmps, comp.Cmps...)
	var put []clientv3.OpOption
	if s.leases != nil {
		var id clientv3.LeaseID
		err := s.call(ctx, func(ctx context.Context) error {
			var err error
			id, err = s.leases.get(ctx, s.cfg.TTL)
			return err
		})
		if err != nil {
			return nil, false, err
		}
		put = append(put, clientv3.WithLease(id))
	}
	ops := append([]clientv3.Op{clientv3.OpPut(key, string(data), put...)}, comp.Ops...)
	var resp *clientv3.TxnResponse
	err = s.call(ctx, func(ctx context.Context) error {
		var err error
		resp, err = s.cfg.Client.Txn(ctx).If(cmps...).Then(ops...).Else(elses...).Commit()
		return err
	})
	if err != nil {
		return nil, false, err
	}
	if !resp.Succeeded {
		if resp.Responses[0].GetResponseRange().Count > 0 {
			return nil, false, apierrors.NewAlreadyExists(s.cfg.Resource, name)
		}
		for i, g := range guards {
			var got int64
			if kvs := resp.Responses[i+1].GetResponseRange().Kvs; len(kvs) > 0 {
				got = kvs[0].ModRevision
			}
			if got != g.ModRevision {
				return nil, false, ErrGuardChanged
			}
		}
		if len(comp.Cmps) == 0 {
			return nil, false, ErrGuardChanged
		}
		return nil, true, nil
	}
	committed, rev = true, resp.Header.Revision
	if err := setResourceVersion(obj, resp.Header.Revision); err != nil {
		return nil, false, err
	}
	return obj, false, nil
}

// Get reads one object. It fails with NotFound when the key is absent.
func (s *Store) Get(ctx context.Context, key, name string) (runtime.Object, error) {
	var resp *clientv3.GetResponse
	err := s.call(ctx, func(ctx context.Context) error {
		var err error
		resp, err = s.cfg.Client.Get(ctx, key)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, apierrors.NewNotFound(s.cfg.Resource, name)
	}
	return s.decode(key, resp.Kvs[0].Value, resp.Kvs[0].ModRevision)
}

// UpdateFunc computes the new state of an object from its current state.
// It receives a copy it may modify. Returning (nil, nil) deletes nothing
// and writes nothing: the current object is kept.
type UpdateFunc func(current runtime.Object) (runtime.Object, error)

// GuaranteedUpdate applies tryUpdate to the current object and writes the
// result with a compare-and-swap on the key's mod revision, retrying with
// a fresh read when another writer got there first. tryUpdate may return an
// error (for example Conflict when the caller's resourceVersion is stale),
// which is returned as is. If the result encodes to the stored bytes no
// write happens. When deleteIf reports true for the new object, the key is
// deleted instead of written (used when the last finalizer goes).
func (s *Store) GuaranteedUpdate(ctx context.Context, key, name string, pre *Preconditions, tryUpdate UpdateFunc, deleteIf func(runtime.Object) bool) (obj runtime.Object, deleted bool, err error) {
	var (
		data []byte
		rev  int64
	)
	if err := s.read(ctx, key, &data, &rev); err != nil {
		return nil, false, err
	}
	for {
		if rev == 0 {
			return nil, false, apierrors.NewNotFound(s.cfg.Resource, name)
		}
		current, plain, stale, err := s.decodeStored(key, data, rev)
		if err != nil {
			return nil, false, err
		}
		if err := pre.Check(s.cfg.Resource, name, current); err != nil {
			return nil, false, err
		}
		updated, err := tryUpdate(current.DeepCopyObject())
		if err != nil {
			return nil, false, err
		}
		if updated == nil {
			return current, false, nil
		}
		del := deleteIf != nil && deleteIf(updated)
		var comp Companion
		if s.cfg.Companion != nil {
			var next runtime.Object
			if !del {
				next = updated
			}
			if comp, err = s.cfg.Companion(ctx, current, next); err != nil {
				return nil, false, err
			}
		}
		var op clientv3.Op
		stored := func() {}
		if del {
			op = clientv3.OpDelete(key)
		} else {
			newPlain, err := encode(updated)
			if err != nil {
				comp.done(false, 0)
				return nil, false, err
			}
			// An unchanged object is not written again, unless it is not
			// stored as it would be now (a key rotation re-encrypts it).
			if bytes.Equal(newPlain, plain) && !stale {
				comp.done(false, 0)
				return current, false, nil
			}
			var newData []byte
			newData, stored, err = s.toStorage(key, newPlain)
			if err != nil {
				comp.done(false, 0)
				return nil, false, err
			}
			var put []clientv3.OpOption
			if s.leases != nil {
				// An update keeps the object's expiry.
				put = append(put, clientv3.WithIgnoreLease())
			}
			op = clientv3.OpPut(key, string(newData), put...)
		}
		cmps := append([]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", rev)}, comp.Cmps...)
		var resp *clientv3.TxnResponse
		err = s.call(ctx, func(ctx context.Context) error {
			resp, err = s.cfg.Client.Txn(ctx).
				If(cmps...).
				Then(append([]clientv3.Op{op}, comp.Ops...)...).
				Else(clientv3.OpGet(key)).
				Commit()
			return err
		})
		stored()
		if err != nil {
			comp.done(false, 0)
			return nil, false, err
		}
		if resp.Succeeded {
			comp.done(true, resp.Header.Revision)
			out := updated.DeepCopyObject()
			if err := setResourceVersion(out, resp.Header.Revision); err != nil {
				return nil, false, err
			}
			return out, del, nil
		}
		comp.done(false, 0)
		// Someone else wrote the key first (or a companion key changed,
		// and the same object is tried again): start again from what is
		// stored now.
		data, rev = nil, 0
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			data, rev = kvs[0].Value, kvs[0].ModRevision
		}
	}
}

func (s *Store) read(ctx context.Context, key string, data *[]byte, rev *int64) error {
	return s.call(ctx, func(ctx context.Context) error {
		resp, err := s.cfg.Client.Get(ctx, key)
		if err != nil {
			return err
		}
		if len(resp.Kvs) > 0 {
			*data, *rev = resp.Kvs[0].Value, resp.Kvs[0].ModRevision
		}
		return nil
	})
}

// ListOptions selects what List returns.
type ListOptions struct {
	// Namespace limits the list to one namespace; "" lists all.
	Namespace string
	// Predicate filters by label and field selectors.
	Predicate Predicate
	// Limit caps the number of items; 0 means no limit. When more remain,
	// the list's continue token resumes after the last item returned.
	Limit int64
	// Continue is the token from a previous page.
	Continue string
}

// continueToken is the decoded form of a list's continue string: the
// revision the first page was read at and the key to start after.
type continueToken struct {
	Revision int64  `json:"rv"`
	StartKey string `json:"start"`
}

// List reads objects from etcd. All pages of one list are read at the
// revision of the first page, so the pages together are one consistent
// snapshot; a token whose revision has been compacted fails with Gone.
func (s *Store) List(ctx context.Context, opts ListOptions) (runtime.Object, error) {
	prefix := s.Prefix(opts.Namespace)
	start, rev := prefix, int64(0)
	if opts.Continue != "" {
		tok, err := decodeContinue(opts.Continue, prefix)
		if err != nil {
			return nil, err
		}
		start, rev = tok.StartKey, tok.Revision
	}
	end := clientv3.GetPrefixRangeEnd(prefix)

	var items []runtime.Object
	var next string
	// Read in pages of the requested size until the limit is filled with
	// matching objects or the range is exhausted.
	batch := opts.Limit
	if batch > 0 && batch < 100 && !opts.Predicate.Empty() {
		batch = 100
	}
	for {
		ops := []clientv3.OpOption{clientv3.WithRange(end)}
		if batch > 0 {
			ops = append(ops, clientv3.WithLimit(batch+1))
		}
		if rev > 0 {
			ops = append(ops, clientv3.WithRev(rev))
		}
		var resp *clientv3.GetResponse
		err := s.call(ctx, func(ctx context.Context) error {
			var err error
			resp, err = s.cfg.Client.Get(ctx, start, ops...)
			return err
		})
		if err != nil {
			if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
				return nil, apierrors.NewResourceExpired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.")
			}
			return nil, err
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		kvs := resp.Kvs
		more := batch > 0 && int64(len(kvs)) > batch
		if more {
			kvs = kvs[:batch]
		}
		for i, kv := range kvs {
			obj, err := s.decode(string(kv.Key), kv.Value, kv.ModRevision)
			if err != nil {
				return nil, err
			}
			if !opts.Predicate.Matches(obj, s.cfg.Attrs) {
				continue
			}
			items = append(items, obj)
			if opts.Limit > 0 && int64(len(items)) == opts.Limit {
				if i < len(kvs)-1 || more {
					next = string(kv.Key) + "\x00"
				}
				break
			}
		}
		if next != "" || !more || (opts.Limit > 0 && int64(len(items)) == opts.Limit) {
			break
		}
		start = string(kvs[len(kvs)-1].Key) + "\x00"
	}

	cont := ""
	if next != "" {
		cont = encodeContinue(continueToken{Revision: rev, StartKey: next})
	}
	return s.newList(items, rev, cont)
}

// newList builds the resource's list type from items, read at revision rev.
func (s *Store) newList(items []runtime.Object, rev int64, cont string) (runtime.Object, error) {
	list := s.cfg.NewListFunc()
	if err := meta.SetList(list, items); err != nil {
		return nil, err
	}
	lm, err := meta.ListAccessor(list)
	if err != nil {
		return nil, err
	}
	lm.SetResourceVersion(strconv.FormatInt(rev, 10))
	lm.SetContinue(cont)
	return list, nil
}

func encodeContinue(t continueToken) string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeContinue(s, prefix string) (continueToken, error) {
	var t continueToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &t)
	}
	if err != nil || t.Revision <= 0 || len(t.StartKey) < len(prefix) || t.StartKey[:len(prefix)] != prefix {
		return t, apierrors.NewBadRequest("continue key is not valid")
	}
	return t, nil
}

// statusGone is the message of a watch that starts too far back.
func statusGone(rv, oldest int64) *metav1.Status {
	return &apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%d)", rv, oldest)).ErrStatus
}

// scanPage is how many keys one etcd read of Scan returns.
const scanPage = 500

// Scan hands fn the key and stored value of every object of the store, in
// key order, reading etcd in pages (each at its latest revision, so a
// long scan never meets a compacted revision). The value is as stored:
// encrypted values are not decrypted. fn's error ends the scan.
func (s *Store) Scan(ctx context.Context, fn func(key string, value []byte) error) error {
	start, end := s.cfg.Prefix, clientv3.GetPrefixRangeEnd(s.cfg.Prefix)
	for {
		var resp *clientv3.GetResponse
		err := s.call(ctx, func(ctx context.Context) error {
			var err error
			resp, err = s.cfg.Client.Get(ctx, start, clientv3.WithRange(end), clientv3.WithLimit(scanPage))
			return err
		})
		if err != nil {
			return err
		}
		for _, kv := range resp.Kvs {
			if err := fn(string(kv.Key), kv.Value); err != nil {
				return err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// Rewrite writes the object stored under key again, unchanged, if the
// transformer would store it differently now (it is stale: encrypted
// with a key that no longer encrypts, or in the clear). Like every
// update, it is a compare-and-swap on the key's mod revision, read again
// and retried when another writer got there first. It reports whether it
// wrote; an object deleted meanwhile is not an error.
func (s *Store) Rewrite(ctx context.Context, key string) (bool, error) {
	var readRV string
	out, _, err := s.GuaranteedUpdate(ctx, key, key, nil, func(current runtime.Object) (runtime.Object, error) {
		m, err := meta.Accessor(current)
		if err != nil {
			return nil, err
		}
		readRV = m.GetResourceVersion()
		return current, nil
	}, nil)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	m, err := meta.Accessor(out)
	if err != nil {
		return false, err
	}
	return m.GetResourceVersion() != readRV, nil
}
