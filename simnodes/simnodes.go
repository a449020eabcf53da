package simnodes

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/informers"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/internal/queue"
)

// podResync is how often every cached pod is synced again, the safety net
// of the pod loop. Syncing a running pod costs no request.
const podResync = 10 * time.Minute

// requestTimeout bounds each request of the client Run makes, so that a
// request lost on the way cannot hold a worker forever.
const requestTimeout = 30 * time.Second

// sim is one run of a set of simulated nodes.
type sim struct {
	cfg    Config
	client *client.Client
	plan   addressPlan
	nodes  []*simNode
	ipam   *ipam
	stats  heartbeatStats

	// pods is the pod informer's cache; queue holds the keys of pods on
	// simulated nodes that need a look.
	pods  cache.Indexer
	queue workqueue.TypedRateLimitingInterface[string]

	// mu guards firstSeen.
	mu sync.Mutex
	// firstSeen holds when each pod waiting for StartDelay was first seen
	// bound.
	firstSeen map[string]podSeen
}

// podSeen is when the pod with uid was first seen bound.
type podSeen struct {
	uid types.UID
	at  time.Time
}

// Run registers cfg.Count simulated nodes and acts as their kubelets
// until ctx ends: it renews their Leases, reports the pods bound to them
// Running, and confirms the deletion of their pods. It returns nil once
// ctx has ended and everything it started has stopped, or an error when
// cfg is invalid or the nodes cannot be registered. It logs through the
// logger ctx carries, with component=simnodes.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	ctx, log := logging.With(ctx, "component", "simnodes")
	s := &sim{
		cfg:       cfg,
		client:    cfg.Client,
		firstSeen: map[string]podSeen{},
	}
	if s.client == nil {
		conn := cfg.Connection
		if conn.UserAgent == "" {
			conn.UserAgent = "simnodes"
		}
		if conn.Timeout == 0 {
			conn.Timeout = requestTimeout
		}
		if conn.WarningHandler == nil {
			conn.WarningHandler = func(w string) { log.Warn("warning from the API server", "warning", w) }
		}
		c, err := client.New(conn)
		if err != nil {
			return err
		}
		defer c.Close()
		s.client = c
	}
	// Validate has checked that the plan fits.
	s.plan, _ = newAddressPlan(cfg.PodCIDR, cfg.Count, cfg.Pods.Value())
	s.ipam = newIPAM(s.plan)
	s.nodes = make([]*simNode, cfg.Count)
	for i := range s.nodes {
		s.nodes[i] = &simNode{index: i, name: nodeName(cfg.NamePrefix, i)}
	}

	err := s.run(ctx)
	if ctx.Err() != nil {
		// Ending ctx is how Run is stopped, not a failure.
		return nil
	}
	return err
}

// run registers the nodes, then runs the heartbeats and the pod loop
// until ctx ends. Everything it starts has returned when it returns.
func (s *sim) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := s.registerNodes(ctx); err != nil {
		return err
	}

	factory := informers.NewFactory(s.client, podResync, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = boundPods
	}))
	informer := factory.Pods()
	s.pods = informer.GetIndexer()
	s.queue = queue.New("simnodes")
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    s.enqueue,
		UpdateFunc: func(_, obj any) { s.enqueue(obj) },
		DeleteFunc: s.enqueue,
	}); err != nil {
		return fmt.Errorf("watch pods: %w", err)
	}

	var wg sync.WaitGroup
	defer func() {
		cancel()
		s.queue.ShutDown()
		wg.Wait()
		factory.Wait()
	}()
	factory.Start(ctx)
	wg.Go(func() { s.heartbeats(ctx) })

	if !factory.WaitForCacheSync(ctx) {
		return errors.New("pod cache did not sync")
	}
	s.reservePodIPs()
	for range podWorkers {
		wg.Go(func() { s.podWorker(ctx) })
	}
	logging.From(ctx).Info("simulated nodes running", "nodes", len(s.nodes), "heartbeatInterval", s.cfg.HeartbeatInterval,
		"startDelay", s.cfg.StartDelay)
	<-ctx.Done()
	return nil
}
