package kubelet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/events"
	"github.com/skiffdev/skiff/internal/informers"
	"github.com/skiffdev/skiff/internal/logging"
	"github.com/skiffdev/skiff/kubelet/images"
	"github.com/skiffdev/skiff/kubelet/network"
	"github.com/skiffdev/skiff/kubelet/nodestatus"
	"github.com/skiffdev/skiff/kubelet/prober"
	"github.com/skiffdev/skiff/kubelet/runtime"
	"github.com/skiffdev/skiff/kubelet/server"
)

// ErrNotRoot is returned by Run when the process is not root.
var ErrNotRoot = errors.New("the kubelet needs root: it creates namespaces, cgroups, mounts and network links for pods; run it as root (for example: sudo skiff kubelet ...)")

// Kubelet runs the pods bound to one node.
type Kubelet struct {
	cfg    Config
	client *client.Client
	events *events.Recorder

	images  *images.Store
	runtime *runtime.Runtime
	network *network.Manager
	probes  *prober.Manager

	pods    cache.SharedIndexInformer
	workers *podWorkers
	// objects watches the ConfigMaps and Secrets the pods refer to, and
	// wakes their workers when one changes.
	objects    *objectWatcher
	containers *containerIndex

	// node is the latest Node object seen by the status loop.
	node atomic.Pointer[corev1.Node]
	// netReady is closed once the pod network is set up on the node.
	netReady     chan struct{}
	netReadyOnce sync.Once
	podCIDR      atomic.Pointer[netip.Prefix]

	// memory is the machine's memory, for containers' OOM scores.
	memory int64

	// starts bounds how many sandboxes and containers are being made at
	// once.
	starts chan struct{}

	// What the kubelet keeps about each pod between syncs is not here:
	// it is the pod's podState, owned by the pod's worker.
}

// Run runs a kubelet until ctx ends. It logs through the logger ctx
// carries, with component=kubelet and the node's name; each pod's worker
// adds the pod to the logger of its syncs.
func Run(ctx context.Context, c *client.Client, cfg Config) error {
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	if err := cfg.Complete(); err != nil {
		return err
	}
	ctx, log := logging.With(ctx, "component", "kubelet", "node", cfg.NodeName)
	if err := os.MkdirAll(cfg.RootDir, 0o700); err != nil {
		return err
	}
	store, err := images.Open(filepath.Join(cfg.RootDir, "images"), images.Options{InsecureRegistries: cfg.InsecureRegistries})
	if err != nil {
		return fmt.Errorf("opening the image store: %w", err)
	}
	rt, err := runtime.New(ctx, cfg.runtimeOptions())
	if err != nil {
		return fmt.Errorf("starting the container runtime: %w", err)
	}
	netCfg := network.Config{Root: filepath.Join(cfg.RootDir, "network"), Bridge: cfg.Bridge}
	if cfg.LocalDNS != "" {
		netCfg.LocalAddrs = []netip.Addr{netip.MustParseAddr(cfg.LocalDNS)}
	}
	netm, err := network.New(ctx, netCfg)
	if err != nil {
		return fmt.Errorf("starting the pod network: %w", err)
	}

	k := &Kubelet{
		cfg:        cfg,
		client:     c,
		events:     events.NewRecorder(ctx, c, "kubelet"),
		images:     store,
		runtime:    rt,
		network:    netm,
		containers: newContainerIndex(),
		netReady:   make(chan struct{}),
		starts:     make(chan struct{}, max(2, goruntime.NumCPU())),
		memory:     machineMemory(),
	}
	defer k.events.Stop()
	k.workers = newPodWorkers(k.syncPod, func() *podState {
		return newPodState(cfg.InitialBackoff, cfg.MaxBackoff)
	})
	k.objects = newObjectWatcher(ctx, c, k.workers.wake)
	k.probes = prober.NewManager(ctx, k.probeExec, k.probeDial, k.workers.wake, nil)
	defer k.probes.Close()

	// What the runtime has from before a restart is adopted, not redone.
	if err := k.relist(); err != nil {
		return fmt.Errorf("listing containers: %w", err)
	}

	listen := cfg.Listen
	if listen == "" {
		listen = net.JoinHostPort(cfg.NodeIP, strconv.Itoa(int(cfg.KubeletPort)))
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("kubelet API: %w", err)
	}
	if cfg.ServingTLS == nil {
		return errors.New("the kubelet API needs TLS credentials (a serving certificate of the cluster CA)")
	}
	api := server.New(ctx, k, cfg.ServingTLS)
	go func() {
		if err := api.Serve(ln); err != nil && ctx.Err() == nil {
			log.Error("kubelet API stopped", "err", err)
		}
	}()
	defer api.Stop()

	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		wg.Wait()
	}()

	wg.Add(1)
	go func() {
		defer wg.Done()
		err := nodestatus.Run(ctx, c, nodestatus.Config{
			NodeName:       cfg.NodeName,
			NodeIP:         cfg.NodeIP,
			KubeletPort:    cfg.KubeletPort,
			PodCIDR:        cfg.PodCIDR,
			Reserved:       cfg.reserved(),
			MaxPods:        cfg.MaxPods,
			RuntimeVersion: rt.Version(),
			Health:         k.health,
			RootDir:        cfg.RootDir,
		}, func(n *corev1.Node) { k.observeNode(ctx, n) })
		if err != nil && ctx.Err() == nil {
			log.Error("node status loop stopped", "err", err)
		}
	}()

	factory := informers.NewFactory(c, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", cfg.NodeName).String()
	}))
	k.pods = factory.Pods()
	if _, err := k.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    k.podChanged,
		UpdateFunc: func(_, obj any) { k.podChanged(obj) },
		DeleteFunc: k.podChanged,
	}); err != nil {
		return err
	}
	factory.Start(ctx)
	defer factory.Wait()
	// Nodes come from a factory of their own: the pods' field selector
	// applies to every informer of a factory.
	nodeFactory := informers.NewFactory(c, 0)
	nodeInformer := nodeFactory.Nodes()
	nodeFactory.Start(ctx)
	defer nodeFactory.Wait()

	// Pods wait for the network; the node reports why it is not ready
	// meanwhile.
	select {
	case <-k.netReady:
	case <-ctx.Done():
		return nil
	}
	if !factory.WaitForCacheSync(ctx) {
		return nil
	}
	log.Info("kubelet ready", "podCIDR", k.podCIDR.Load().String(), "api", ln.Addr().String(), "runtime", rt.Version())

	wg.Add(3)
	go func() {
		defer wg.Done()
		k.watchExits(ctx)
	}()
	go func() {
		defer wg.Done()
		k.runRoutes(ctx, nodeInformer)
	}()
	go func() {
		defer wg.Done()
		k.housekeeping(ctx)
	}()
	k.workers.start(ctx)
	k.syncAll(ctx)
	<-ctx.Done()
	k.workers.wait()
	return nil
}

// health is the Ready condition's source: nil while the kubelet can run
// pods.
func (k *Kubelet) health() error {
	select {
	case <-k.netReady:
		return nil
	default:
		return errors.New("pod network not ready: the node has no pod CIDR yet (spec.podCIDR, or the kubelet's --pod-cidr)")
	}
}

// observeNode is called by the node status loop with the latest Node. The
// first pod CIDR seen sets up the node's bridge. ctx is Run's, for its
// logger: the lines are the kubelet's, not the status loop's.
func (k *Kubelet) observeNode(ctx context.Context, n *corev1.Node) {
	log := logging.From(ctx)
	k.node.Store(n.DeepCopy())
	cidr := n.Spec.PodCIDR
	if cidr == "" {
		cidr = k.cfg.PodCIDR
	}
	if cidr == "" {
		return
	}
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		log.Error("the node's pod CIDR is not a CIDR", "podCIDR", cidr, "err", err)
		return
	}
	if cur := k.podCIDR.Load(); cur != nil {
		if *cur != p {
			log.Warn("the node's pod CIDR changed; keeping the one in use until the kubelet restarts", "inUse", cur.String(), "new", p.String())
		}
		return
	}
	if err := k.network.EnsureNode(p); err != nil {
		log.Error("setting up the pod network", "podCIDR", p.String(), "err", err)
		return
	}
	k.podCIDR.Store(&p)
	k.netReadyOnce.Do(func() { close(k.netReady) })
}

// podChanged hands a pod's change to its worker.
func (k *Kubelet) podChanged(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if pod, ok := obj.(*corev1.Pod); ok {
		k.workers.update(pod)
	}
}

// syncAll wakes the worker of every pod the kubelet knows of: those bound
// to the node and those the runtime still has.
func (k *Kubelet) syncAll(ctx context.Context) {
	for _, obj := range k.pods.GetStore().List() {
		k.workers.update(obj.(*corev1.Pod))
	}
	for _, uid := range k.containers.pods() {
		k.workers.ensure(uid)
	}
	sandboxes, err := k.runtime.ListSandboxes()
	if err != nil {
		logging.From(ctx).Warn("listing pod sandboxes", "err", err)
	}
	for _, sb := range sandboxes {
		k.workers.ensure(types.UID(sb.ID))
	}
	allocated, err := k.network.Allocated()
	if err != nil {
		logging.From(ctx).Warn("listing pod IPs", "err", err)
	}
	for id := range allocated {
		k.workers.ensure(types.UID(id))
	}
	// Directories left by a removal cut short.
	for _, dir := range []string{filepath.Join(k.cfg.RootDir, "pods"), filepath.Join(k.cfg.StateDir, "pods")} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			k.workers.ensure(types.UID(e.Name()))
		}
	}
}

// relist reads every container from the runtime into the index.
func (k *Kubelet) relist() error {
	since := k.containers.generation()
	list, err := k.runtime.List()
	if err != nil {
		return err
	}
	k.containers.replace(list, since)
	return nil
}

// watchExits wakes the worker of a pod whose container exited.
func (k *Kubelet) watchExits(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-k.runtime.Exits():
			st, err := k.runtime.Status(id)
			if err != nil {
				logging.From(ctx).Debug("status of an exited container", "container", id, "err", err)
				continue
			}
			k.containers.set(st)
			k.workers.wake(types.UID(st.Labels[labelPodUID]))
		}
	}
}

// housekeeping relists the runtime and syncs every pod at SyncInterval, so
// the node converges even if an event was missed.
func (k *Kubelet) housekeeping(ctx context.Context) {
	t := time.NewTicker(k.cfg.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := k.relist(); err != nil {
				logging.From(ctx).Warn("relisting containers", "err", err)
			}
			k.syncAll(ctx)
		}
	}
}

// podEtcDir holds the pod's /etc/hosts, /etc/hostname and
// /etc/resolv.conf. They are rewritten by every sync, so they live with
// the state that lasts until a reboot (a tmpfs), not on disk.
func (k *Kubelet) podEtcDir(uid types.UID) string {
	return filepath.Join(k.cfg.StateDir, "pods", string(uid), "etc")
}

// podDir is where a pod's files live on the node: its volumes and logs.
func (k *Kubelet) podDir(uid types.UID) string {
	return filepath.Join(k.cfg.RootDir, "pods", string(uid))
}
