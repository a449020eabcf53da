// Package leaderelection lets one of several copies of a component act
// while the others wait, with a Lease (coordination.k8s.io/v1) in
// kube-system as the lock, the way Kubernetes' components elect leaders.
//
// It is a small elector written over internal/client rather than
// client-go's tools/leaderelection, whose resource locks need client-go's
// generated clientset; the rules are the same:
//
//   - A candidate takes the Lease when it does not exist, has no holder,
//     or has not changed for LeaseDuration as measured on the candidate's
//     own clock since it last saw it change (so clocks need not agree).
//     Every write is a compare-and-swap on the Lease's resourceVersion,
//     so of two candidates only one wins.
//   - The leader renews the Lease every RetryPeriod. When it has not
//     renewed for RenewDeadline, or finds the Lease held by another, it
//     stops acting: the context given to onStartedLeading is cancelled,
//     and onStoppedLeading is called once that callback has returned.
//     RenewDeadline is shorter than LeaseDuration, so a leader stops
//     before anyone else may start.
//   - A leader whose ctx ends gives the Lease up (empties its holder), so
//     the next candidate takes over at its next try instead of waiting
//     out the Lease.
//
// The caller's duties: fill Config (Options.AddFlags binds the usual
// --leader-elect flags), give every copy a distinct Identity, and call
// Run (or RunE) with a ctx whose logger (internal/logging) names the
// component; Run adds the Lease and the identity to it. Run campaigns again, after RetryPeriod, when a term
// ends, so onStartedLeading may be called more than once; it must stop
// promptly when its context ends and must not keep state from one term
// to the next. With RunE, a callback that fails ends Run with its error
// (the Lease given up) instead.
package leaderelection

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/logging"
)

// Config configures one candidate.
type Config struct {
	// Client reads and writes the Lease.
	Client *client.Client
	// Namespace and Name name the Lease (kube-system/skiff-scheduler).
	Namespace, Name string
	// Identity names this candidate in the Lease's holderIdentity; every
	// candidate needs its own.
	Identity string
	// LeaseDuration is how long a candidate waits, after it last saw the
	// Lease change, before taking it over.
	LeaseDuration time.Duration
	// RenewDeadline is how long the leader keeps trying to renew before
	// it stops acting. Shorter than LeaseDuration.
	RenewDeadline time.Duration
	// RetryPeriod is how often candidates try to take the Lease and the
	// leader renews it.
	RetryPeriod time.Duration
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.Client == nil {
		errs = append(errs, errors.New("a client is required"))
	}
	if c.Namespace == "" || c.Name == "" {
		errs = append(errs, errors.New("the lease namespace and name are required"))
	}
	if c.Identity == "" {
		errs = append(errs, errors.New("an identity is required"))
	}
	if c.RetryPeriod <= 0 || c.RenewDeadline <= c.RetryPeriod || c.LeaseDuration <= c.RenewDeadline {
		errs = append(errs, fmt.Errorf("want 0 < retry period (%v) < renew deadline (%v) < lease duration (%v)", c.RetryPeriod, c.RenewDeadline, c.LeaseDuration))
	}
	return errors.Join(errs...)
}

// DefaultIdentity is a candidate identity unique enough for one cluster:
// the host name, the process id and a random suffix.
func DefaultIdentity() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s_%d_%s", host, os.Getpid(), rand.String(5))
}

// Run campaigns for the Lease until ctx ends. Each time it becomes leader
// it calls onStartedLeading with a context that ends when leadership does
// (or ctx does); after that callback returns it calls onStoppedLeading
// (if not nil) and, after RetryPeriod, campaigns again. Run returns nil
// once ctx has ended and the callbacks have returned, or an error if cfg
// is invalid. RunE is Run with a callback that can fail.
func Run(ctx context.Context, cfg Config, onStartedLeading func(ctx context.Context), onStoppedLeading func()) error {
	return RunE(ctx, cfg, func(ctx context.Context) error {
		onStartedLeading(ctx)
		return nil
	}, onStoppedLeading)
}

// RunE is Run, except that onStartedLeading returns an error: when it
// returns one while Run's ctx has not ended (and not merely because its
// leadership ended), the term is over for good: Run gives the Lease up,
// calls onStoppedLeading and returns that error, rather than take the
// Lease again and fail the same way in a loop.
func RunE(ctx context.Context, cfg Config, onStartedLeading func(ctx context.Context) error, onStoppedLeading func()) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	// The component running for the Lease named itself in ctx's logger.
	ctx, log := logging.With(ctx, "lease", cfg.Namespace+"/"+cfg.Name, "identity", cfg.Identity)
	e := &elector{cfg: cfg}
	for ctx.Err() == nil {
		if !e.acquire(ctx) {
			break
		}
		log.Info("became leader")
		leadCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		var termErr error
		go func() {
			defer close(done)
			termErr = onStartedLeading(leadCtx)
		}()
		e.renew(leadCtx, done)
		lost := leadCtx.Err() != nil // ended before the callback returned
		cancel()
		<-done
		failed := termErr != nil && ctx.Err() == nil &&
			!(lost && (errors.Is(termErr, context.Canceled) || errors.Is(termErr, context.DeadlineExceeded)))
		if ctx.Err() != nil || failed {
			e.release(ctx)
		}
		log.Info("stopped leading")
		if onStoppedLeading != nil {
			onStoppedLeading()
		}
		if failed {
			log.Error("leading failed", "err", termErr)
			return fmt.Errorf("leading %s/%s: %w", cfg.Namespace, cfg.Name, termErr)
		}
		// Campaign again only after RetryPeriod, so that a term that
		// ends at once does not make Run spin.
		select {
		case <-ctx.Done():
		case <-time.After(cfg.RetryPeriod):
		}
	}
	return nil
}

// elector is one candidate's view of the Lease.
type elector struct {
	cfg Config
	// lease is the Lease as last read or written.
	lease *coordinationv1.Lease
	// observedRV and observedAt are the Lease's resourceVersion when it
	// last changed and when (on our clock) we saw that.
	observedRV string
	observedAt time.Time
}

// acquire tries to take the Lease every RetryPeriod until it succeeds
// (true) or ctx ends (false).
func (e *elector) acquire(ctx context.Context) bool {
	t := time.NewTicker(e.cfg.RetryPeriod)
	defer t.Stop()
	for {
		ok, err := e.tryAcquireOrRenew(ctx)
		if ok {
			return true
		}
		if err != nil && ctx.Err() == nil {
			logging.From(ctx).Debug("cannot take the lease", "err", err)
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// renew renews the Lease every RetryPeriod while leading. It returns when
// ctx ends, when the term's callback returned (done), when the Lease was
// taken by another, or when no renewal has succeeded for RenewDeadline.
func (e *elector) renew(ctx context.Context, done <-chan struct{}) {
	t := time.NewTicker(e.cfg.RetryPeriod)
	defer t.Stop()
	lastRenew := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-done:
			return
		case <-t.C:
		}
		rctx, cancel := context.WithDeadline(ctx, lastRenew.Add(e.cfg.RenewDeadline))
		ok, err := e.tryAcquireOrRenew(rctx)
		cancel()
		switch {
		case ok:
			lastRenew = time.Now()
		case ctx.Err() != nil:
			return
		case e.heldByOther():
			logging.From(ctx).Info("lease taken by another candidate", "holder", e.holder())
			return
		case time.Since(lastRenew) >= e.cfg.RenewDeadline:
			logging.From(ctx).Info("failed to renew the lease in time", "renewDeadline", e.cfg.RenewDeadline, "err", err)
			return
		}
	}
}

// tryAcquireOrRenew makes one attempt to take or renew the Lease. It
// reports whether we hold it now.
func (e *elector) tryAcquireOrRenew(ctx context.Context) (bool, error) {
	leases := e.cfg.Client.Leases(e.cfg.Namespace)
	now := metav1.NowMicro()
	cur, err := leases.Get(ctx, e.cfg.Name)
	if apierrors.IsNotFound(err) {
		l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: e.cfg.Name, Namespace: e.cfg.Namespace}}
		e.setSpec(l, now, true)
		created, err := leases.Create(ctx, l)
		if err != nil {
			return false, err
		}
		e.observe(created)
		return true, nil
	}
	if err != nil {
		return false, err
	}
	e.observe(cur)
	holder := e.holder()
	mine := holder == e.cfg.Identity
	if !mine && holder != "" && time.Since(e.observedAt) <= e.cfg.LeaseDuration {
		return false, nil // held by another, and alive
	}
	next := cur.DeepCopy()
	e.setSpec(next, now, !mine)
	updated, err := leases.Update(ctx, next) // CAS on cur's resourceVersion
	if err != nil {
		return false, err
	}
	e.observe(updated)
	return true, nil
}

// setSpec makes l say that we hold it as of now; acquired marks a new
// term (acquireTime, leaseTransitions).
func (e *elector) setSpec(l *coordinationv1.Lease, now metav1.MicroTime, acquired bool) {
	seconds := int32(math.Ceil(e.cfg.LeaseDuration.Seconds()))
	if acquired && l.ResourceVersion != "" {
		l.Spec.LeaseTransitions = new(ptrValue(l.Spec.LeaseTransitions) + 1)
	}
	l.Spec.HolderIdentity = &e.cfg.Identity
	l.Spec.LeaseDurationSeconds = &seconds
	l.Spec.RenewTime = &now
	if acquired {
		l.Spec.AcquireTime = &now
	}
}

// observe records the Lease as read or written, and when it changed.
func (e *elector) observe(l *coordinationv1.Lease) {
	e.lease = l
	if l.ResourceVersion != e.observedRV {
		e.observedRV, e.observedAt = l.ResourceVersion, time.Now()
	}
}

func (e *elector) holder() string {
	if e.lease == nil || e.lease.Spec.HolderIdentity == nil {
		return ""
	}
	return *e.lease.Spec.HolderIdentity
}

func (e *elector) heldByOther() bool {
	h := e.holder()
	return h != "" && h != e.cfg.Identity
}

// release gives the Lease up after ctx ended, so that another candidate
// can take it at once. It is best effort: if it fails, the others wait
// for the Lease to expire.
func (e *elector) release(ctx context.Context) {
	if e.lease == nil || e.heldByOther() {
		return
	}
	// ctx has ended (or the term failed); its values, the logger, remain.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.RetryPeriod)
	defer cancel()
	l := e.lease.DeepCopy()
	l.Spec.HolderIdentity = new("")
	l.Spec.LeaseDurationSeconds = new(int32(1))
	l.Spec.RenewTime = new(metav1.NowMicro())
	if _, err := e.cfg.Client.Leases(e.cfg.Namespace).Update(ctx, l); err != nil {
		logging.From(ctx).Info("cannot release the lease", "err", err)
	}
}

func ptrValue(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}
