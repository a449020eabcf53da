// Package storage keeps API objects in etcd and serves watches from a cache.
//
// A Store holds the objects of one resource under a key prefix
// ("/registry/apps/deployments/"). Every object is stored in the Kubernetes
// protobuf encoding with its resourceVersion cleared; the resourceVersion a
// client sees is the etcd mod revision of the key, set on the way out.
//
// A store with a Transformer stores what the transformer makes of the
// encoding instead: the Keyring (encryption.go) encrypts each value with
// AES-GCM under Kubernetes' envelope, "k8s:enc:aesgcm:v1:KEYNAME:", and
// decrypts with the key the prefix names. A value the transformer would
// store differently now (under a key that no longer encrypts) is stale:
// an update writes it even when the object did not change, and Rewrite
// writes it again unchanged, which is how a key rotation re-encrypts.
//
// Writes are compare-and-swap transactions:
//
//   - Create puts the key only if it does not exist (CreateRevision == 0).
//   - GuaranteedUpdate reads the key, lets the caller compute the new object,
//     and puts it only if the key's ModRevision is still the one read; when
//     another writer got there first it reads again and retries.
//   - Delete removes the key only if its ModRevision is the one read.
//
// A Cacher sits beside each Store. It lists the prefix once, then follows
// it with a single etcd watch, keeping the current objects and a window of
// recent events. Any number of watchers are served from that window: a
// watcher that starts from a resourceVersion inside the window gets the
// events after it; one older than the window gets 410 Gone and must list
// again. Lists with resourceVersion "0" are served from the cache too.
//
// Errors are apimachinery API errors (NotFound, AlreadyExists, Conflict,
// Gone, ServiceUnavailable), ready to hand to a client.
package storage
