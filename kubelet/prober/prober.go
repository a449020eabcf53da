package prober

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/skiffdev/skiff/internal/logging"
)

// Target is one running container to probe.
type Target struct {
	// Pod is the container's pod: its UID is passed to onChange.
	Pod *corev1.Pod
	// Container is the container's spec: its probes and named ports.
	Container *corev1.Container
	// ContainerID identifies this run of the container. A restarted
	// container has a new ID and is added again.
	ContainerID string
	// PodIP is the host probed when an httpGet or tcpSocket probe names
	// none.
	PodIP string
	// NetNS is the path of the pod's network namespace, handed to the
	// Dialer.
	NetNS string
	// StartedAt is when the container started, on the Manager's clock;
	// initialDelaySeconds counts from it. Zero means when Add is called.
	StartedAt time.Time
}

// Exec runs args in the container with containerID and returns its exit
// code and combined output. It must return when ctx ends (the probe's
// timeout), with an error that wraps ctx.Err().
type Exec func(ctx context.Context, containerID string, args []string) (exitCode int, output []byte, err error)

// Dialer opens a connection to addr as seen from inside the network
// namespace at the path netns (the Target's NetNS): the pod IP is not
// reachable from the kubelet's own namespace in every setup, and a host
// given in a probe should resolve as the pod would resolve it. It must
// give up when ctx ends.
type Dialer func(ctx context.Context, netns, network, addr string) (net.Conn, error)

// Manager runs the probes of the containers it is given and keeps their
// latest results. Its methods are safe for concurrent use.
type Manager struct {
	exec     Exec
	dial     Dialer
	onChange func(podUID types.UID)
	clock    clock.Clock
	// log is the logger of the context NewManager was given, set once:
	// the probe workers that log are started by Add, which takes no
	// context, and outlive the sync that adds them.
	log *slog.Logger

	// workers counts the running worker goroutines; Close waits for it.
	workers sync.WaitGroup

	// mu guards containers and closed.
	mu         sync.Mutex
	containers map[string]*container
	closed     bool
}

// container is the probing state of one container run. Its fields after
// target are guarded by Manager.mu.
type container struct {
	target Target
	cancel context.CancelFunc

	// hasReadiness is whether the container has a readiness probe; when
	// it has none it is ready as soon as it has started.
	hasReadiness bool
	// started is whether the startup probe succeeded (true when there is
	// none); liveness and readiness probes wait for it.
	started bool
	// ready is the readiness probe's result: false until it succeeds
	// successThreshold times in a row.
	ready bool
	// failed is set when the liveness or startup probe failed
	// failureThreshold times in a row: the container must be restarted.
	// failMessage says why.
	failed      bool
	failMessage string
}

// NewManager returns a Manager that runs exec probes with exec and
// network probes through dial. It calls onChange (when not nil) with the
// pod's UID whenever one of its containers' Ready, Started or
// LivenessFailed answers changes; onChange runs on a probe worker's
// goroutine, so it should only note the change (enqueue the pod) and
// return. A nil clock is the real clock. The Manager logs through the
// logger ctx carries, with part=prober.
func NewManager(ctx context.Context, exec Exec, dial Dialer, onChange func(podUID types.UID), clk clock.Clock) *Manager {
	if onChange == nil {
		onChange = func(types.UID) {}
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Manager{
		exec:       exec,
		dial:       dial,
		onChange:   onChange,
		clock:      clk,
		log:        logging.From(ctx).With("part", "prober"),
		containers: map[string]*container{},
	}
}

// Add starts probing the container of t: one worker goroutine for each of
// its startup, readiness and liveness probes. Adding a container ID that
// is already there does nothing. Add every running container, also those
// without probes: Ready and Started know only the containers added.
func (m *Manager) Add(t Target) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || m.containers[t.ContainerID] != nil {
		return
	}
	if t.StartedAt.IsZero() {
		t.StartedAt = m.clock.Now()
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &container{
		target:       t,
		cancel:       cancel,
		hasReadiness: t.Container.ReadinessProbe != nil,
		started:      t.Container.StartupProbe == nil,
	}
	m.containers[t.ContainerID] = c
	for kind, p := range map[probeType]*corev1.Probe{
		startup:   t.Container.StartupProbe,
		readiness: t.Container.ReadinessProbe,
		liveness:  t.Container.LivenessProbe,
	} {
		if p == nil {
			continue
		}
		w := newWorker(m, c, kind, p)
		m.workers.Go(func() { w.run(ctx) })
	}
}

// Remove stops the probes of the container and forgets its results,
// including a liveness failure. It does not wait for a probe in flight:
// that one is cancelled and its result dropped.
func (m *Manager) Remove(containerID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.containers[containerID]; c != nil {
		c.cancel()
		delete(m.containers, containerID)
	}
}

// RemovePod removes every container of the pod with podUID.
func (m *Manager) RemovePod(podUID types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, c := range m.containers {
		if c.target.Pod.UID == podUID {
			c.cancel()
			delete(m.containers, id)
		}
	}
}

// Close removes every container and waits until all workers have
// returned. The Manager ignores Add after Close.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	for id, c := range m.containers {
		c.cancel()
		delete(m.containers, id)
	}
	m.mu.Unlock()
	m.workers.Wait()
}

// Ready reports whether the container is ready to serve: it has started
// and its readiness probe (if any) has succeeded successThreshold times
// in a row since it last failed failureThreshold times. An unknown
// container is not ready.
func (m *Manager) Ready(containerID string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.containers[containerID]
	return c != nil && c.isReady()
}

func (c *container) isReady() bool {
	return c.started && (c.ready || !c.hasReadiness)
}

// Started reports whether the container's startup probe has succeeded,
// true when it has none. An unknown container has not started.
func (m *Manager) Started(containerID string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.containers[containerID]
	return c != nil && c.started
}

// LivenessFailed reports whether the container must be restarted: its
// liveness probe, or its startup probe, failed failureThreshold times in
// a row. The message reads like the event Kubernetes records, e.g.
// "Liveness probe failed: HTTP probe failed with statuscode: 500". The
// failure stays until the container is removed.
func (m *Manager) LivenessFailed(containerID string) (bool, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.containers[containerID]
	if c == nil || !c.failed {
		return false, ""
	}
	return true, c.failMessage
}
