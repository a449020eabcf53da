package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	miekg "github.com/miekg/dns"
)

// upstreamBufSize is the EDNS0 buffer size offered to upstream resolvers:
// the size that avoids IP fragmentation on any path (DNS Flag Day 2020).
const upstreamBufSize = 1232

// resolvConfCheck is how often the upstream resolv.conf is looked at for
// changes (systemd-resolved and DHCP clients rewrite it).
const resolvConfCheck = 2 * time.Second

// Forwarder sends questions outside the cluster domain to the node's own
// resolvers, the nameservers of its resolv.conf, one after the other
// until one answers, and caches their answers.
type Forwarder struct {
	// path is the resolv.conf the upstreams come from.
	path string
	// skip are addresses never used as upstreams: the server's own, which
	// would make a loop.
	skip    []netip.AddrPort
	timeout time.Duration
	cache   *Cache
	// port is the upstreams' port: 53, as resolv.conf has no ports
	// (tests serve their upstream on another).
	port string

	// mu guards upstreams, readErr, modTime and checked.
	mu        sync.Mutex
	upstreams []string // host:port
	readErr   error    // why the resolv.conf could not be read, if so
	modTime   time.Time
	checked   time.Time
}

// NewForwarder returns a forwarder to the nameservers of the resolv.conf
// at path (read again when it changes), skipping the addresses in skip,
// each tried for timeout, with a cache of cacheSize answers. A
// resolv.conf that cannot be read leaves it without upstreams (every
// question forwarded fails, saying why) until it can.
func NewForwarder(path string, skip []netip.AddrPort, timeout time.Duration, cacheSize int) *Forwarder {
	f := &Forwarder{path: path, skip: skip, timeout: timeout, cache: NewCache(cacheSize), port: "53"}
	f.reload(true)
	return f
}

// Upstreams are the resolvers questions go to, host:port.
func (f *Forwarder) Upstreams() []string {
	ups, _ := f.current()
	return ups
}

// current returns the upstreams, and why there are none if the
// resolv.conf could not be read.
func (f *Forwarder) current() ([]string, error) {
	f.reload(false)
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.upstreams), f.readErr
}

// reload reads the resolv.conf again if it changed since the last look,
// which is at most every resolvConfCheck unless force.
func (f *Forwarder) reload(force bool) {
	now := time.Now()
	f.mu.Lock()
	if !force && now.Sub(f.checked) < resolvConfCheck {
		f.mu.Unlock()
		return
	}
	f.checked = now
	last := f.modTime
	f.mu.Unlock()

	fail := func(err error) {
		f.mu.Lock()
		f.upstreams, f.readErr, f.modTime = nil, fmt.Errorf("upstream resolvers: %w", err), time.Time{}
		f.mu.Unlock()
	}
	fi, err := os.Stat(f.path)
	if err != nil {
		fail(err)
		return
	}
	if !force && fi.ModTime().Equal(last) {
		return
	}
	cc, err := miekg.ClientConfigFromFile(f.path)
	if err != nil {
		fail(err)
		return
	}
	var ups []string
	for _, s := range cc.Servers {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			continue
		}
		ap, err := netip.ParseAddrPort(net.JoinHostPort(ip.Unmap().String(), f.port))
		if err != nil || slices.Contains(f.skip, ap) {
			continue
		}
		ups = append(ups, ap.String())
	}
	f.mu.Lock()
	f.upstreams, f.readErr, f.modTime = ups, nil, fi.ModTime()
	f.mu.Unlock()
}

// ErrNoUpstream is returned by Forward when no resolver answered.
var ErrNoUpstream = errors.New("no upstream resolver answered")

// Forward answers req from the cache or from the first upstream that
// answers it, with the upstream's OPT record if it sent one (the caller
// puts its own in its place). overTCP says how the client asked: a question that came over
// TCP goes upstream over TCP; one over UDP goes over UDP, and again over
// TCP if the answer was truncated.
func (f *Forwarder) Forward(ctx context.Context, req *miekg.Msg, overTCP bool) (*miekg.Msg, error) {
	if m := f.cache.Get(req); m != nil {
		return m, nil
	}
	up := req.Copy()
	up.Id = miekg.Id()
	if opt := up.IsEdns0(); opt != nil {
		opt.SetUDPSize(upstreamBufSize)
	} else {
		up.SetEdns0(upstreamBufSize, false)
	}
	ups, readErr := f.current()
	errs := []error{readErr}
	for _, server := range ups {
		resp, err := f.exchange(ctx, up, server, overTCP)
		if err == nil && resp.Truncated && !overTCP {
			resp, err = f.exchange(ctx, up, server, true)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", server, err))
			continue
		}
		if resp.Rcode == miekg.RcodeServerFailure || resp.Rcode == miekg.RcodeRefused {
			errs = append(errs, fmt.Errorf("%s: %s", server, miekg.RcodeToString[resp.Rcode]))
			continue
		}
		f.cache.Put(req, resp)
		resp.Id = req.Id
		echoQuestion(resp, req)
		return resp, nil
	}
	return nil, errors.Join(append([]error{ErrNoUpstream}, errs...)...)
}

func (f *Forwarder) exchange(ctx context.Context, m *miekg.Msg, server string, overTCP bool) (*miekg.Msg, error) {
	c := &miekg.Client{Net: "udp", Timeout: f.timeout, UDPSize: upstreamBufSize}
	if overTCP {
		c.Net = "tcp"
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	resp, _, err := c.ExchangeContext(ctx, m, server)
	return resp, err
}
