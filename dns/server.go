package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	miekg "github.com/miekg/dns"
	"golang.org/x/sys/unix"
	"k8s.io/client-go/tools/cache"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/informers"
	"github.com/skiffdev/skiff/internal/logging"
)

// serverBufSize is the EDNS0 buffer size the server advertises.
const serverBufSize = 1232

// maxCNAMEChain bounds how many CNAMEs an answer follows.
const maxCNAMEChain = 8

// Handler answers DNS messages: cluster names from Records, the rest
// through a Forwarder. It is a miekg/dns Handler.
type Handler struct {
	Records   *Records
	Forwarder *Forwarder
	// Ready reports whether the caches behind Records have been filled;
	// until then, cluster names get SERVFAIL (a client tries again)
	// rather than an NXDOMAIN that is not true. Nil means ready.
	Ready func() bool
	// Log is where failures to forward are logged (at debug level: a
	// resolver that does not answer is the network's business).
	Log *slog.Logger
	// Clients are whose questions ServeDNS answers; the others get
	// REFUSED, and nothing is forwarded for them. Nil answers everyone
	// (NewHandler sets it).
	Clients *Clients
}

// ServeDNS answers one message.
func (h *Handler) ServeDNS(w miekg.ResponseWriter, req *miekg.Msg) {
	if h.Clients != nil && !h.Clients.Allowed(remoteAddr(w.RemoteAddr())) {
		_ = w.WriteMsg(refused(req))
		return
	}
	_, overTCP := w.RemoteAddr().(*net.TCPAddr)
	resp := h.Answer(context.Background(), req, overTCP)
	size := 65535
	if !overTCP {
		size = miekg.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = max(int(opt.UDPSize()), miekg.MinMsgSize)
		}
	}
	resp.Truncate(size)
	_ = w.WriteMsg(resp)
}

// Answer builds the response to req.
func (h *Handler) Answer(ctx context.Context, req *miekg.Msg, overTCP bool) *miekg.Msg {
	resp := new(miekg.Msg)
	if req.Opcode != miekg.OpcodeQuery {
		return finish(resp.SetRcode(req, miekg.RcodeNotImplemented), req)
	}
	if len(req.Question) != 1 {
		return finish(resp.SetRcode(req, miekg.RcodeFormatError), req)
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	if q.Qclass != miekg.ClassINET && q.Qclass != miekg.ClassANY {
		return finish(h.forward(ctx, req, overTCP), req)
	}
	inZone := h.Records.InZone(name)
	if inZone && h.Ready != nil && !h.Ready() {
		return finish(resp.SetRcode(req, miekg.RcodeServerFailure), req)
	}
	a, found := h.Records.Lookup(name, q.Qtype)
	if !found {
		return finish(h.forward(ctx, req, overTCP), req)
	}
	resp.SetReply(req)
	resp.Authoritative = true
	resp.Rcode = a.Rcode
	resp.Answer = a.Records
	resp.Extra = a.Extra
	for _, rr := range resp.Answer {
		rr.Header().Name = q.Name // the client's spelling of the name
	}
	if len(a.Records) > 0 {
		h.chase(ctx, resp, q.Qtype, overTCP)
	}
	if len(resp.Answer) == 0 && (resp.Rcode == miekg.RcodeSuccess || resp.Rcode == miekg.RcodeNameError) {
		resp.Ns = []miekg.RR{h.Records.SOA(a.Zone)}
	}
	return finish(resp, req)
}

// chase follows a CNAME that ends resp's answer (an ExternalName
// service) when the question was for another type: the target's records
// are appended, from Records or from upstream, so that stub resolvers
// that do not follow CNAMEs themselves get the address.
func (h *Handler) chase(ctx context.Context, resp *miekg.Msg, qtype uint16, overTCP bool) {
	if qtype == miekg.TypeCNAME || qtype == miekg.TypeANY {
		return
	}
	for range maxCNAMEChain {
		cname, ok := resp.Answer[len(resp.Answer)-1].(*miekg.CNAME)
		if !ok {
			return
		}
		target := strings.ToLower(cname.Target)
		if a, found := h.Records.Lookup(target, qtype); found {
			resp.Answer = append(resp.Answer, a.Records...)
			if len(a.Records) == 0 {
				resp.Rcode = a.Rcode
				return
			}
			continue
		}
		sub := new(miekg.Msg)
		sub.SetQuestion(cname.Target, qtype)
		sub.RecursionDesired = true
		up := h.forward(ctx, sub, overTCP)
		if up.Rcode != miekg.RcodeSuccess && up.Rcode != miekg.RcodeNameError {
			return // the client can follow the CNAME itself
		}
		resp.Rcode = up.Rcode
		resp.Answer = append(resp.Answer, up.Answer...)
		return
	}
}

// forward asks the upstream resolvers; SERVFAIL when none answers.
func (h *Handler) forward(ctx context.Context, req *miekg.Msg, overTCP bool) *miekg.Msg {
	if h.Forwarder != nil {
		resp, err := h.Forwarder.Forward(ctx, req, overTCP)
		if err == nil {
			return resp
		}
		if h.Log != nil {
			h.Log.Debug("forwarding failed", "name", req.Question[0].Name, "type", miekg.TypeToString[req.Question[0].Qtype], "err", err)
		}
	}
	return new(miekg.Msg).SetRcode(req, miekg.RcodeServerFailure)
}

// refused is the answer to a client the server does not serve: REFUSED,
// without recursion available (RFC 5358).
func refused(req *miekg.Msg) *miekg.Msg {
	resp := new(miekg.Msg).SetRcode(req, miekg.RcodeRefused)
	resp.RecursionDesired = req.RecursionDesired
	if opt := req.IsEdns0(); opt != nil {
		resp.SetEdns0(serverBufSize, opt.Do())
	}
	return resp
}

// finish sets what every response has: recursion available, and an OPT
// record of the server's own when the client sent one (never the
// upstream's, whose buffer size is not the server's).
func finish(resp, req *miekg.Msg) *miekg.Msg {
	resp.RecursionAvailable = true
	resp.RecursionDesired = req.RecursionDesired
	extra := resp.Extra[:0]
	for _, rr := range resp.Extra {
		if rr.Header().Rrtype != miekg.TypeOPT {
			extra = append(extra, rr)
		}
	}
	resp.Extra = extra
	if opt := req.IsEdns0(); opt != nil {
		resp.SetEdns0(serverBufSize, opt.Do())
	}
	return resp
}

// Server is a running node-local DNS server.
type Server struct {
	udp, tcp *miekg.Server
	// UDPAddr and TCPAddr are where it listens.
	UDPAddr, TCPAddr net.Addr
}

// Listen opens UDP and TCP sockets on addr (host:port; port 0 picks one
// for UDP and uses the same for TCP) and serves h on them until Shutdown.
// The sockets are bound with IP_FREEBIND, so the address need not exist
// yet: the kubelet puts it on the pod bridge when it sets the bridge up,
// which may happen later.
func Listen(addr string, h miekg.Handler) (*Server, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
			if serr != nil { // an IPv6 socket
				serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
			}
		})
		return errors.Join(err, serr)
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		return nil, fmt.Errorf("dns: listen on udp %s: %w", addr, err)
	}
	host, _, _ := net.SplitHostPort(addr)
	_, port, _ := net.SplitHostPort(pc.LocalAddr().String())
	ln, err := lc.Listen(context.Background(), "tcp", net.JoinHostPort(host, port))
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("dns: listen on tcp %s: %w", net.JoinHostPort(host, port), err)
	}
	s := &Server{
		udp:     &miekg.Server{PacketConn: pc, Handler: h},
		tcp:     &miekg.Server{Listener: ln, Handler: h},
		UDPAddr: pc.LocalAddr(),
		TCPAddr: ln.Addr(),
	}
	started := make(chan struct{}, 2)
	s.udp.NotifyStartedFunc = func() { started <- struct{}{} }
	s.tcp.NotifyStartedFunc = func() { started <- struct{}{} }
	go func() { _ = s.udp.ActivateAndServe() }()
	go func() { _ = s.tcp.ActivateAndServe() }()
	<-started
	<-started
	return s, nil
}

// Shutdown stops serving and closes the sockets.
func (s *Server) Shutdown() {
	_ = s.udp.Shutdown()
	_ = s.tcp.Shutdown()
}

// Run serves DNS for the pods of this node until ctx ends: cluster names
// from informer caches of Services and EndpointSlices, the rest through
// the resolvers of cfg.ResolvConf. It listens at once; until the caches
// are filled, cluster names get SERVFAIL. When the API server cannot be
// reached the caches keep their last contents, so names keep resolving.
// It logs through the logger ctx carries, with component=dns and the
// node's name.
func Run(ctx context.Context, c *client.Client, cfg Config) error {
	ctx, log := logging.With(ctx, "component", "dns", "node", cfg.NodeName)
	if err := cfg.Validate(); err != nil {
		return err
	}
	f := informers.NewFactory(c, 0)
	services, slices := f.Services(), f.EndpointSlices()
	if err := services.AddIndexers(ServiceIndexers()); err != nil {
		return err
	}
	if err := slices.AddIndexers(SliceIndexers()); err != nil {
		return err
	}
	h, err := NewHandler(cfg, services.GetIndexer(), slices.GetIndexer())
	if err != nil {
		return err
	}
	h.Log = log
	var synced atomic.Bool
	h.Ready = synced.Load

	addr := net.JoinHostPort(cfg.Address, strconv.Itoa(cfg.Port))
	srv, err := Listen(addr, h)
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	if cfg.Listening != nil {
		cfg.Listening(srv.UDPAddr, srv.TCPAddr)
	}
	log.Info("DNS server listening", "address", srv.UDPAddr.String(), "domain", cfg.domain(), "upstreams", h.Forwarder.Upstreams())

	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		f.Wait()
	}()
	f.Start(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), services.HasSynced, slices.HasSynced) {
		return nil
	}
	synced.Store(true)
	log.Info("DNS caches synced; answering cluster names")
	<-ctx.Done()
	return nil
}

// NewHandler builds the handler of cfg over Service and EndpointSlice
// caches that have ServiceIndexers and SliceIndexers (and the namespace
// index on Services).
func NewHandler(cfg Config, services, slices cache.Indexer) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	self, _ := netip.ParseAddr(cfg.Address)
	fwd := NewForwarder(cfg.ResolvConf, []netip.AddrPort{netip.AddrPortFrom(self.Unmap(), uint16(cfg.Port))}, cfg.UpstreamTimeout, cfg.CacheSize)
	return &Handler{
		Records: &Records{
			Domain:       cfg.domain(),
			TTL:          uint32(cfg.TTL.Seconds()),
			ReverseZones: cfg.reverseZones(),
			Services:     services,
			Slices:       slices,
		},
		Forwarder: fwd,
		Clients:   &Clients{Networks: cfg.clientNetworks()},
	}, nil
}
