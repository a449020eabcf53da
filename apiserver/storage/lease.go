package storage

import (
	"context"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// leases hands out etcd leases for objects that expire (events). Granting
// a lease is a write of its own, so one lease is shared by every object
// created within a short window: an object lives at least its TTL and at
// most a sixtieth longer.
type leases struct {
	client *clientv3.Client

	// mu guards id and expires.
	mu      sync.Mutex
	id      clientv3.LeaseID
	expires time.Time
}

// get returns a lease that expires between ttl and ttl+ttl/60 from now.
func (l *leases) get(ctx context.Context, ttl time.Duration) (clientv3.LeaseID, error) {
	window := min(ttl/60, time.Minute)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if left := l.expires.Sub(now); l.id != 0 && left >= ttl && left <= ttl+window {
		return l.id, nil
	}
	life := ttl + window
	resp, err := l.client.Grant(ctx, int64((life+time.Second-1)/time.Second))
	if err != nil {
		return 0, err
	}
	l.id, l.expires = resp.ID, now.Add(life)
	return l.id, nil
}
