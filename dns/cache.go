package dns

import (
	"container/list"
	"strings"
	"sync"
	"time"

	miekg "github.com/miekg/dns"
)

// Cache bounds. An answer is kept for the smallest TTL of its records,
// but never longer than these; a negative answer (NXDOMAIN, or NODATA)
// for its SOA's minimum (RFC 2308).
const (
	MaxCacheTTL    = time.Hour
	MaxNegativeTTL = 30 * time.Minute
)

// cacheKey is what makes two questions the same for the cache. The DO and
// CD bits change what an upstream answers (signatures, unchecked data),
// so they are part of it.
type cacheKey struct {
	name   string
	qtype  uint16
	qclass uint16
	do, cd bool
}

func keyOf(req *miekg.Msg) cacheKey {
	q := req.Question[0]
	k := cacheKey{name: strings.ToLower(q.Name), qtype: q.Qtype, qclass: q.Qclass, cd: req.CheckingDisabled}
	if opt := req.IsEdns0(); opt != nil {
		k.do = opt.Do()
	}
	return k
}

type cacheEntry struct {
	key     cacheKey
	msg     *miekg.Msg
	stored  time.Time
	expires time.Time
}

// Cache is a bounded cache of forwarded answers, least recently used out
// first. Answers come back with their TTLs lowered by the time they spent
// in the cache, so that a client never keeps a record longer than its
// owner said.
type Cache struct {
	max int
	now func() time.Time

	// mu guards lru and entries.
	mu      sync.Mutex
	lru     *list.List // of *cacheEntry, most recently used first
	entries map[cacheKey]*list.Element
}

// NewCache returns a cache holding at most max answers; max 0 caches
// nothing.
func NewCache(max int) *Cache {
	return &Cache{max: max, now: time.Now, lru: list.New(), entries: map[cacheKey]*list.Element{}}
}

// Len is the number of answers held.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// Get returns a copy of the cached answer to req, its TTLs aged and its
// ID and question req's (in req's spelling, see echoQuestion), or nil.
func (c *Cache) Get(req *miekg.Msg) *miekg.Msg {
	k := keyOf(req)
	now := c.now()
	c.mu.Lock()
	el, ok := c.entries[k]
	if !ok {
		c.mu.Unlock()
		return nil
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.lru.Remove(el)
		delete(c.entries, k)
		c.mu.Unlock()
		return nil
	}
	c.lru.MoveToFront(el)
	c.mu.Unlock()

	m := e.msg.Copy()
	m.Id = req.Id
	echoQuestion(m, req)
	age := uint32(now.Sub(e.stored) / time.Second)
	for _, section := range [][]miekg.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range section {
			if rr.Header().Rrtype == miekg.TypeOPT {
				continue
			}
			h := rr.Header()
			if h.Ttl > age {
				h.Ttl -= age
			} else {
				h.Ttl = 0
			}
		}
	}
	return m
}

// Put remembers resp as the answer to req, for as long as its TTLs
// allow. Answers that must not be cached (truncated ones, server
// failures, negative answers without an SOA) are ignored.
func (c *Cache) Put(req, resp *miekg.Msg) {
	if c.max <= 0 {
		return
	}
	ttl, ok := cacheTTL(resp)
	if !ok || ttl <= 0 {
		return
	}
	now := c.now()
	e := &cacheEntry{key: keyOf(req), msg: resp.Copy(), stored: now, expires: now.Add(ttl)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[e.key]; ok {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.entries[e.key] = c.lru.PushFront(e)
	for c.lru.Len() > c.max {
		last := c.lru.Back()
		c.lru.Remove(last)
		delete(c.entries, last.Value.(*cacheEntry).key)
	}
}

// cacheTTL is how long resp may be cached.
func cacheTTL(resp *miekg.Msg) (time.Duration, bool) {
	if resp.Truncated {
		return 0, false
	}
	switch resp.Rcode {
	case miekg.RcodeSuccess, miekg.RcodeNameError:
	default:
		return 0, false
	}
	if resp.Rcode == miekg.RcodeSuccess && len(resp.Answer) > 0 {
		ttl := uint32(MaxCacheTTL / time.Second)
		for _, section := range [][]miekg.RR{resp.Answer, resp.Ns} {
			for _, rr := range section {
				ttl = min(ttl, rr.Header().Ttl)
			}
		}
		return time.Duration(ttl) * time.Second, true
	}
	// NXDOMAIN or NODATA: as long as the SOA says (RFC 2308 §5).
	for _, rr := range resp.Ns {
		if soa, ok := rr.(*miekg.SOA); ok {
			ttl := min(soa.Hdr.Ttl, soa.Minttl, uint32(MaxNegativeTTL/time.Second))
			return time.Duration(ttl) * time.Second, true
		}
	}
	return 0, false
}

// echoQuestion puts req's question, as req spells it, into resp, and that
// spelling into the owner names of resp's records that are the question's
// name. Clients that randomize the case of their questions (DNS 0x20)
// check that the answer repeats it; a cached answer, or an upstream's,
// may spell the name otherwise.
func echoQuestion(resp, req *miekg.Msg) {
	if len(req.Question) == 0 {
		return
	}
	var old string
	if len(resp.Question) > 0 {
		old = resp.Question[0].Name
	}
	resp.Question = []miekg.Question{req.Question[0]}
	name := req.Question[0].Name
	if old == "" || old == name {
		return
	}
	for _, section := range [][]miekg.RR{resp.Answer, resp.Ns, resp.Extra} {
		for _, rr := range section {
			if h := rr.Header(); h.Rrtype != miekg.TypeOPT && strings.EqualFold(h.Name, old) {
				h.Name = name
			}
		}
	}
}
