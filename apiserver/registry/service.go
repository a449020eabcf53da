package registry

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiffdev/skiff/apiserver/storage"
	"github.com/skiffdev/skiff/internal/scheme"
)

var (
	servicesResource = schema.GroupResource{Resource: "services"}
	serviceKind      = schema.GroupKind{Kind: "Service"}
	specPath         = field.NewPath("spec")
)

// serviceAllocator keeps the service IP and node port bitmaps in step with
// the services: its companion function runs before every write of a
// Service and adds the bitmap updates to the same etcd transaction (see
// the package doc).
type serviceAllocator struct {
	client         *clientv3.Client
	timeout        time.Duration
	ips            ipRange
	ports          utilnet.PortRange
	servicesPrefix string

	// lock serializes this server's allocating writes from reading the
	// bitmaps to the end of their transaction, so that they do not race
	// each other; other API servers are kept out by the compare-and-swap.
	lock chan struct{}
	// cache holds the bitmaps as this server last wrote or read them
	// (nil: read etcd). Guarded by lock.
	cache map[string]*rangeState
}

func newServiceAllocator(cfg Config, servicesPrefix string) *serviceAllocator {
	ips, ports := cfg.ServiceIPRange, cfg.ServiceNodePortRange
	if !ips.IsValid() {
		ips = DefaultServiceIPRange
	}
	if ports.Size == 0 {
		ports = DefaultServiceNodePortRange
	}
	timeout := cfg.RequestTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	return &serviceAllocator{
		client:         cfg.Client,
		timeout:        timeout,
		ips:            newIPRange(ips),
		ports:          ports,
		servicesPrefix: servicesPrefix,
		lock:           make(chan struct{}, 1),
		cache:          map[string]*rangeState{},
	}
}

// needsClusterIP: every type but ExternalName has a virtual IP, unless it
// is headless.
func needsClusterIP(svc *corev1.Service) bool {
	return svc.Spec.Type != corev1.ServiceTypeExternalName && svc.Spec.ClusterIP != corev1.ClusterIPNone
}

// needsNodePorts: NodePort services, and LoadBalancer services that did
// not turn node ports off.
func needsNodePorts(svc *corev1.Service) bool {
	switch svc.Spec.Type {
	case corev1.ServiceTypeNodePort:
		return true
	case corev1.ServiceTypeLoadBalancer:
		return svc.Spec.AllocateLoadBalancerNodePorts == nil || *svc.Spec.AllocateLoadBalancerNodePorts
	}
	return false
}

// needsHealthCheckNodePort: a LoadBalancer that keeps traffic on the node
// it arrives at tells the load balancer which nodes have endpoints.
func needsHealthCheckNodePort(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
}

func hasNodePorts(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer
}

// holdings are the values a stored service holds in the bitmaps.
type holdings struct {
	ip    string // "" for none
	ports []int
}

func heldBy(svc *corev1.Service) holdings {
	var h holdings
	if svc == nil {
		return h
	}
	if needsClusterIP(svc) {
		h.ip = svc.Spec.ClusterIP
	}
	if hasNodePorts(svc) {
		for _, p := range svc.Spec.Ports {
			if p.NodePort != 0 && !slices.Contains(h.ports, int(p.NodePort)) {
				h.ports = append(h.ports, int(p.NodePort))
			}
		}
		if p := int(svc.Spec.HealthCheckNodePort); needsHealthCheckNodePort(svc) && p != 0 && !slices.Contains(h.ports, p) {
			h.ports = append(h.ports, p)
		}
	}
	return h
}

// prepareServiceForUpdate fills in what a client may leave out when it
// replaces a service (a manifest applied again has no clusterIP or node
// ports): the values already allocated. It also drops them when the type
// changes to one that has none, unless the client changed them itself.
func prepareServiceForUpdate(obj, oldObj runtime.Object) {
	svc, old := obj.(*corev1.Service), oldObj.(*corev1.Service)
	spec, oldSpec := &svc.Spec, &old.Spec
	typ := spec.Type
	if typ == "" {
		typ = corev1.ServiceTypeClusterIP
	}
	oldNeedsIP := needsClusterIP(old)
	if oldNeedsIP && typ != corev1.ServiceTypeExternalName && spec.ClusterIP == "" && len(spec.ClusterIPs) == 0 {
		spec.ClusterIP, spec.ClusterIPs = oldSpec.ClusterIP, slices.Clone(oldSpec.ClusterIPs)
	}
	if oldNeedsIP && typ == corev1.ServiceTypeExternalName && spec.ClusterIP == oldSpec.ClusterIP {
		spec.ClusterIP, spec.ClusterIPs, spec.IPFamilies, spec.IPFamilyPolicy = "", nil, nil, nil
	}
	if old.Spec.Type == corev1.ServiceTypeClusterIP && spec.ClusterIP == corev1.ClusterIPNone && oldSpec.ClusterIP == corev1.ClusterIPNone {
		return
	}
	newHasNodePorts := typ == corev1.ServiceTypeNodePort || typ == corev1.ServiceTypeLoadBalancer
	if hasNodePorts(old) {
		for i := range spec.Ports {
			p := &spec.Ports[i]
			for _, op := range oldSpec.Ports {
				if op.Port != p.Port || !sameProtocol(op.Protocol, p.Protocol) {
					continue
				}
				switch {
				case newHasNodePorts && p.NodePort == 0:
					p.NodePort = op.NodePort
				case !newHasNodePorts && p.NodePort == op.NodePort:
					p.NodePort = 0
				}
			}
		}
		switch {
		case typ == corev1.ServiceTypeLoadBalancer && spec.HealthCheckNodePort == 0:
			spec.HealthCheckNodePort = oldSpec.HealthCheckNodePort
		case typ != corev1.ServiceTypeLoadBalancer && spec.HealthCheckNodePort == oldSpec.HealthCheckNodePort:
			spec.HealthCheckNodePort = 0
		}
	}
}

// sameProtocol compares protocols with "" meaning TCP, the default that
// is not applied yet when prepareServiceForUpdate runs.
func sameProtocol(a, b corev1.Protocol) bool {
	if a == "" {
		a = corev1.ProtocolTCP
	}
	if b == "" {
		b = corev1.ProtocolTCP
	}
	return a == b
}

// companion is the services' storage.CompanionFunc: it checks and
// allocates what updated needs, releases what old held and updated no
// longer does, and returns the bitmap writes.
func (a *serviceAllocator) companion(ctx context.Context, oldObj, updatedObj runtime.Object) (storage.Companion, error) {
	var old, svc *corev1.Service
	if oldObj != nil {
		old = oldObj.(*corev1.Service)
	}
	if updatedObj != nil {
		svc = updatedObj.(*corev1.Service)
		if errs := a.checkIPFamilies(svc); len(errs) > 0 {
			return storage.Companion{}, apierrors.NewInvalid(serviceKind, svc.Name, errs)
		}
	}
	plan := a.plan(heldBy(old), svc)
	if !plan.changes() {
		return storage.Companion{}, nil
	}

	select {
	case a.lock <- struct{}{}:
	case <-ctx.Done():
		return storage.Companion{}, apierrors.NewTimeoutError("waiting for the service allocator", 1)
	}
	unlock := func() { <-a.lock }
	comp, err := a.apply(ctx, plan, svc)
	if err != nil {
		unlock()
		return storage.Companion{}, err
	}
	return comp, nil
}

// allocationPlan is what one write of a service asks of the bitmaps.
type allocationPlan struct {
	autoIP      bool  // allocate a cluster IP
	requestedIP int   // offset to allocate, -1 for none
	releaseIP   int   // offset to release, -1 for none
	autoPorts   []int // indexes into spec.ports needing a node port; -1 is healthCheckNodePort
	wantPorts   []int // requested node ports not held before
	freePorts   []int // node ports held before and no longer
	errs        field.ErrorList
}

func (p *allocationPlan) changes() bool {
	return len(p.errs) > 0 || p.autoIP || p.requestedIP >= 0 || p.releaseIP >= 0 ||
		len(p.autoPorts) > 0 || len(p.wantPorts) > 0 || len(p.freePorts) > 0
}

// plan compares what the stored service held with what the new one asks
// for. Values out of the configured range that the stored service already
// held (the range changed since) are kept as they are.
func (a *serviceAllocator) plan(before holdings, svc *corev1.Service) *allocationPlan {
	p := &allocationPlan{requestedIP: -1, releaseIP: -1}
	after := heldBy(svc)
	if before.ip != "" && before.ip != after.ip {
		if ip, err := netip.ParseAddr(before.ip); err == nil {
			if off, ok := a.ips.offset(ip); ok {
				p.releaseIP = off
			}
		}
	}
	for _, port := range before.ports {
		if !slices.Contains(after.ports, port) && a.ports.Contains(port) {
			p.freePorts = append(p.freePorts, port-a.ports.Base)
		}
	}
	if svc == nil {
		return p
	}
	ipPath := specPath.Child("clusterIP")
	switch {
	case !needsClusterIP(svc):
	case after.ip == "":
		p.autoIP = true
	case after.ip != before.ip:
		ip, err := netip.ParseAddr(after.ip)
		off, ok := a.ips.offset(ip)
		if err != nil || !ok {
			p.errs = append(p.errs, field.Invalid(ipPath, after.ip,
				fmt.Sprintf("failed to allocate IP %s: provided IP is not in the valid range. The range of valid IPs is %s", after.ip, a.ips.prefix)))
		} else {
			p.requestedIP = off
		}
	}
	if !hasNodePorts(svc) {
		return p
	}
	for i, sp := range svc.Spec.Ports {
		port := int(sp.NodePort)
		switch {
		case port == 0 && needsNodePorts(svc):
			p.autoPorts = append(p.autoPorts, i)
		case port == 0 || slices.Contains(before.ports, port):
		case !a.ports.Contains(port):
			p.errs = append(p.errs, field.Invalid(specPath.Child("ports").Index(i).Child("nodePort"), port,
				fmt.Sprintf("failed to allocate port %d: provided port is not in the valid range. The range of valid ports is %s", port, a.ports.String())))
		case !slices.Contains(p.wantPorts, port-a.ports.Base):
			p.wantPorts = append(p.wantPorts, port-a.ports.Base)
		}
	}
	if needsHealthCheckNodePort(svc) {
		port := int(svc.Spec.HealthCheckNodePort)
		switch {
		case port == 0:
			p.autoPorts = append(p.autoPorts, -1)
		case slices.Contains(before.ports, port):
		case !a.ports.Contains(port):
			p.errs = append(p.errs, field.Invalid(specPath.Child("healthCheckNodePort"), port,
				fmt.Sprintf("failed to allocate port %d: provided port is not in the valid range. The range of valid ports is %s", port, a.ports.String())))
		case !slices.Contains(p.wantPorts, port-a.ports.Base):
			p.wantPorts = append(p.wantPorts, port-a.ports.Base)
		}
	}
	return p
}

// apply carries out a plan against the current bitmaps (called with the
// lock held) and returns the transaction's part. On success the lock is
// released by the companion's Done.
func (a *serviceAllocator) apply(ctx context.Context, p *allocationPlan, svc *corev1.Service) (storage.Companion, error) {
	name := ""
	if svc != nil {
		name = svc.Name
	}
	if len(p.errs) > 0 {
		return storage.Companion{}, apierrors.NewInvalid(serviceKind, name, p.errs)
	}
	var comp storage.Companion
	states := map[string]*rangeState{}
	load := func(key, rng string) (*rangeState, error) {
		if st, ok := states[key]; ok {
			return st, nil
		}
		st, cmps, err := a.load(ctx, key, rng)
		if err != nil {
			return nil, err
		}
		comp.Cmps = append(comp.Cmps, cmps...)
		next := &rangeState{rng: rng, bits: st.bits.clone(), modRev: st.modRev}
		states[key] = next
		return next, nil
	}

	// Cluster IP.
	if p.autoIP || p.requestedIP >= 0 || p.releaseIP >= 0 {
		st, err := load(ServiceIPsKey, a.ips.prefix.String())
		if err != nil {
			return comp, err
		}
		if p.releaseIP >= 0 {
			st.bits.clear(p.releaseIP)
		}
		switch {
		case p.requestedIP >= 0 && st.bits.has(p.requestedIP):
			return comp, apierrors.NewInvalid(serviceKind, name, field.ErrorList{field.Invalid(specPath.Child("clusterIP"), svc.Spec.ClusterIP,
				fmt.Sprintf("failed to allocate IP %s: provided IP is already allocated", svc.Spec.ClusterIP))})
		case p.requestedIP >= 0:
			st.bits.set(p.requestedIP)
		case p.autoIP:
			// Offset 0 is the kubernetes service's address.
			off, ok := st.bits.firstFree(1, a.ips.size)
			if !ok {
				return comp, apierrors.NewForbidden(servicesResource, name,
					fmt.Errorf("failed to allocate a cluster IP: every address of the service range %s is allocated (delete a Service or widen --service-cluster-ip-range)", a.ips.prefix))
			}
			st.bits.set(off)
			ip := a.ips.addr(off).String()
			svc.Spec.ClusterIP, svc.Spec.ClusterIPs = ip, []string{ip}
		}
	}

	// Node ports.
	if len(p.autoPorts) > 0 || len(p.wantPorts) > 0 || len(p.freePorts) > 0 {
		st, err := load(ServiceNodePortsKey, a.ports.String())
		if err != nil {
			return comp, err
		}
		for _, off := range p.freePorts {
			st.bits.clear(off)
		}
		for _, off := range p.wantPorts {
			if st.bits.has(off) {
				port := off + a.ports.Base
				return comp, apierrors.NewInvalid(serviceKind, name, field.ErrorList{field.Invalid(nodePortPath(svc, port), port,
					fmt.Sprintf("failed to allocate port %d: provided port is already allocated", port))})
			}
			st.bits.set(off)
		}
		for _, i := range p.autoPorts {
			var port int
			// A port number served on several protocols gets one node
			// port for all of them, as in Kubernetes.
			if i >= 0 {
				for _, sp := range svc.Spec.Ports {
					if sp.Port == svc.Spec.Ports[i].Port && sp.NodePort != 0 {
						port = int(sp.NodePort)
						break
					}
				}
			}
			if port == 0 {
				off, ok := st.bits.firstFree(0, a.ports.Size)
				if !ok {
					return comp, apierrors.NewForbidden(servicesResource, name,
						fmt.Errorf("failed to allocate a node port: every port of the node port range %s is allocated (delete a Service or widen --service-node-port-range)", a.ports.String()))
				}
				st.bits.set(off)
				port = off + a.ports.Base
			}
			if i >= 0 {
				svc.Spec.Ports[i].NodePort = int32(port)
			} else {
				svc.Spec.HealthCheckNodePort = int32(port)
			}
		}
	}

	for key, st := range states {
		comp.Cmps = append(comp.Cmps, clientv3.Compare(clientv3.ModRevision(key), "=", st.modRev))
		comp.Ops = append(comp.Ops, clientv3.OpPut(key, encodeRange(st.rng, st.bits)))
	}
	comp.Done = func(committed bool, rev int64) {
		for key, st := range states {
			if committed {
				a.cache[key] = &rangeState{rng: st.rng, bits: st.bits, modRev: rev}
			} else {
				// Someone else wrote it (another API server) or the
				// write failed: read etcd next time.
				delete(a.cache, key)
			}
		}
		<-a.lock
	}
	return comp, nil
}

// nodePortPath names the field that asked for port.
func nodePortPath(svc *corev1.Service, port int) *field.Path {
	for i, sp := range svc.Spec.Ports {
		if int(sp.NodePort) == port {
			return specPath.Child("ports").Index(i).Child("nodePort")
		}
	}
	return specPath.Child("healthCheckNodePort")
}

// load returns a bitmap's current state (from the cache when it has it)
// and any extra conditions the transaction needs. A bitmap that does not
// exist yet, or describes another range (the flag changed), is rebuilt
// from the services stored at the revision it was read at; the write is
// then guarded on no service having changed since.
func (a *serviceAllocator) load(ctx context.Context, key, rng string) (*rangeState, []clientv3.Cmp, error) {
	if st, ok := a.cache[key]; ok {
		return st, nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	st, rev, err := readRange(ctx, a.client, key)
	if err != nil {
		return nil, nil, storage.Unavailable(err)
	}
	if st.modRev != 0 && st.rng == rng {
		return &st, nil, nil
	}
	resp, err := a.client.Get(ctx, a.servicesPrefix, clientv3.WithPrefix(), clientv3.WithRev(rev))
	if err != nil {
		return nil, nil, storage.Unavailable(err)
	}
	bits := newBitmap()
	for _, kv := range resp.Kvs {
		obj, err := decodeService(kv.Value)
		if err != nil {
			return nil, nil, apierrors.NewInternalError(fmt.Errorf("rebuilding %s: %w", key, err))
		}
		h := heldBy(obj)
		if key == ServiceIPsKey {
			if ip, err := netip.ParseAddr(h.ip); err == nil {
				if off, ok := a.ips.offset(ip); ok {
					bits.set(off)
				}
			}
			continue
		}
		for _, port := range h.ports {
			if a.ports.Contains(port) {
				bits.set(port - a.ports.Base)
			}
		}
	}
	guard := clientv3.Compare(clientv3.ModRevision(a.servicesPrefix), "<", rev+1).WithPrefix()
	return &rangeState{rng: rng, bits: bits, modRev: st.modRev}, []clientv3.Cmp{guard}, nil
}

// checkIPFamilies refuses what this single-stack IPv4 cluster cannot
// give, and fills in the family fields of a service with a cluster IP.
func (a *serviceAllocator) checkIPFamilies(svc *corev1.Service) field.ErrorList {
	spec := &svc.Spec
	if spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	var errs field.ErrorList
	for i, f := range spec.IPFamilies {
		if f != corev1.IPv4Protocol {
			errs = append(errs, field.Invalid(specPath.Child("ipFamilies").Index(i), f, "not configured on this cluster"))
		}
	}
	if p := spec.IPFamilyPolicy; p != nil && *p == corev1.IPFamilyPolicyRequireDualStack {
		errs = append(errs, field.Invalid(specPath.Child("ipFamilyPolicy"), *p, "this cluster is not configured for dual-stack services"))
	}
	if len(errs) > 0 {
		return errs
	}
	if len(spec.IPFamilies) == 0 {
		spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
	}
	if spec.IPFamilyPolicy == nil {
		spec.IPFamilyPolicy = new(corev1.IPFamilyPolicySingleStack)
	}
	if spec.ClusterIP == corev1.ClusterIPNone && len(spec.ClusterIPs) == 0 {
		spec.ClusterIPs = []string{corev1.ClusterIPNone}
	}
	return nil
}

func decodeService(data []byte) (*corev1.Service, error) {
	obj, err := scheme.DecodeProtobuf(data, &corev1.Service{})
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.Service), nil
}
