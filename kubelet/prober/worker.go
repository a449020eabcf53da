package prober

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// probeType is which of a container's three probes a worker runs.
type probeType int

const (
	startup probeType = iota
	readiness
	liveness
)

func (p probeType) String() string {
	switch p {
	case startup:
		return "Startup"
	case readiness:
		return "Readiness"
	default:
		return "Liveness"
	}
}

// result is the outcome of one probe run.
type result int

const (
	unknown result = iota
	success
	failure
)

// Defaults of a probe's zero fields, as in Kubernetes.
const (
	defaultPeriod           = 10 * time.Second
	defaultTimeout          = time.Second
	defaultSuccessThreshold = 1
	defaultFailureThreshold = 3
)

// worker runs one probe of one container: once every period, starting
// initialDelay after the container started.
type worker struct {
	m    *Manager
	c    *container
	kind probeType
	spec *corev1.Probe

	initialDelay, period, timeout      time.Duration
	successThreshold, failureThreshold int

	// last is the result of the previous run and streak the number of
	// runs in a row that had it. A result counts only once its streak
	// reaches the threshold for it.
	last   result
	streak int
}

func newWorker(m *Manager, c *container, kind probeType, p *corev1.Probe) *worker {
	w := &worker{
		m: m, c: c, kind: kind, spec: p,
		initialDelay:     time.Duration(p.InitialDelaySeconds) * time.Second,
		period:           time.Duration(p.PeriodSeconds) * time.Second,
		timeout:          time.Duration(p.TimeoutSeconds) * time.Second,
		successThreshold: int(p.SuccessThreshold),
		failureThreshold: int(p.FailureThreshold),
	}
	if w.period <= 0 {
		w.period = defaultPeriod
	}
	if w.timeout <= 0 {
		w.timeout = defaultTimeout
	}
	// Kubernetes requires a success threshold of 1 for liveness and
	// startup probes: one success is enough to call a container alive.
	if w.successThreshold <= 0 || kind != readiness {
		w.successThreshold = defaultSuccessThreshold
	}
	if w.failureThreshold <= 0 {
		w.failureThreshold = defaultFailureThreshold
	}
	return w
}

// run probes until ctx ends (the container was removed) or the probe has
// nothing left to say: a startup probe that succeeded, or a liveness or
// startup probe that failed (the container is restarted under a new ID
// and probed by new workers).
func (w *worker) run(ctx context.Context) {
	next := w.c.target.StartedAt.Add(w.initialDelay)
	for {
		if d := next.Sub(w.m.clock.Now()); d > 0 {
			t := w.m.clock.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C():
			}
		}
		if ctx.Err() != nil {
			return
		}
		// Like Kubernetes, a probe's period is counted from the start of
		// the previous run, so a slow probe does not shift the schedule.
		next = w.m.clock.Now().Add(w.period)
		if w.kind != startup && !w.m.started(w.c) {
			continue
		}
		res, msg := w.probe(ctx)
		if ctx.Err() != nil {
			return
		}
		if done := w.m.record(w, res, msg); done {
			return
		}
	}
}

// probe runs the probe once, with its timeout, and returns its result and,
// for a failure, the message a Kubernetes event would carry.
func (w *worker) probe(ctx context.Context) (result, string) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	ok, out, err := w.m.runProbe(ctx, w.c.target, w.spec, w.timeout)
	switch {
	case err != nil:
		return failure, w.kind.String() + " probe errored: " + err.Error()
	case !ok:
		return failure, w.kind.String() + " probe failed: " + out
	}
	return success, ""
}

// started reports whether c's startup probe has succeeded.
func (m *Manager) started(c *container) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return c.started
}

// record counts res in w's streak and, once the streak reaches its
// threshold, applies it to the container. It calls onChange when one of
// the container's answers changed, and reports whether the worker is
// done.
func (m *Manager) record(w *worker, res result, msg string) (done bool) {
	if res == w.last {
		w.streak++
	} else {
		w.last, w.streak = res, 1
	}
	if res == failure {
		m.log.Debug("probe failed", "pod", podKey(w.c.target.Pod), "container", w.c.target.Container.Name,
			"probe", w.kind.String(), "streak", w.streak, "message", msg)
	}
	if (res == success && w.streak < w.successThreshold) || (res == failure && w.streak < w.failureThreshold) {
		return false
	}

	m.mu.Lock()
	c := w.c
	if m.containers[c.target.ContainerID] != c {
		// Removed while the probe ran.
		m.mu.Unlock()
		return true
	}
	wasReady, wasStarted, wasFailed := c.isReady(), c.started, c.failed
	switch w.kind {
	case readiness:
		c.ready = res == success
	case startup:
		if res == success {
			c.started, done = true, true
		} else {
			c.failed, c.failMessage, done = true, msg, true
		}
	case liveness:
		if res == failure {
			c.failed, c.failMessage, done = true, msg, true
		}
	}
	changed := c.isReady() != wasReady || c.started != wasStarted || c.failed != wasFailed
	m.mu.Unlock()

	if changed {
		attrs := []any{"pod", podKey(c.target.Pod), "container", c.target.Container.Name, "probe", w.kind.String()}
		if res == failure {
			m.log.Info("probe result changed", append(attrs, "result", "failure", "message", msg)...)
		} else {
			m.log.Info("probe result changed", append(attrs, "result", "success")...)
		}
		m.onChange(c.target.Pod.UID)
	}
	return done
}

func podKey(p *corev1.Pod) string { return p.Namespace + "/" + p.Name }
