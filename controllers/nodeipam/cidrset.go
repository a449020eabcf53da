package nodeipam

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// MaxNodeCIDRBits is how many more bits a node's CIDR may have than the
// cluster CIDR: at most 2^16 node CIDRs, Kubernetes' limit too.
const MaxNodeCIDRBits = 16

// MaxNodeCIDRMaskSize is the smallest node CIDR allowed (/30): the
// kubelet needs a network, a gateway and at least one pod address.
const MaxNodeCIDRMaskSize = 30

// ErrFull is returned by Allocate when every node CIDR is held.
var ErrFull = errors.New("no remaining CIDRs")

// ValidateRange checks that cluster can be cut into node CIDRs of
// maskSize bits: an IPv4 network address, and a mask size between the
// cluster's and /30, at most MaxNodeCIDRBits more than the cluster's.
func ValidateRange(cluster netip.Prefix, maskSize int) error {
	switch {
	case !cluster.IsValid() || !cluster.Addr().Is4():
		return fmt.Errorf("cluster CIDR %s: must be an IPv4 CIDR such as 10.244.0.0/16", cluster)
	case cluster.Masked() != cluster:
		return fmt.Errorf("cluster CIDR %s: must be a network address (%s)", cluster, cluster.Masked())
	case maskSize < cluster.Bits() || maskSize > MaxNodeCIDRMaskSize:
		return fmt.Errorf("node CIDR mask size %d: must be between %d (the cluster CIDR's) and %d", maskSize, cluster.Bits(), MaxNodeCIDRMaskSize)
	case maskSize-cluster.Bits() > MaxNodeCIDRBits:
		return fmt.Errorf("node CIDR mask size %d: may be at most %d more than the cluster CIDR's (%d), or there would be more than %d node CIDRs",
			maskSize, MaxNodeCIDRBits, cluster.Bits(), 1<<MaxNodeCIDRBits)
	}
	return nil
}

// CIDRSet hands out the node CIDRs ("blocks") of a cluster CIDR to owners
// (node names), each owner holding at most one prefix. It is the pure
// core of the controller: no API calls, no locking (the caller locks).
//
// A block may have several holders: prefixes set by someone else (a
// kubelet's --pod-cidr) are recorded with Occupy even when they collide,
// so that the block stays taken until the last of them is released.
type CIDRSet struct {
	cluster  netip.Prefix
	maskSize int
	// holders counts, per block, the owners whose prefix covers it.
	holders []int32
	used    int // blocks with at least one holder
	owners  map[string]holding
	// next is where the search for a free block starts: just past the
	// last block handed out, so that a block just released is given out
	// again as late as possible (other nodes may still route to its old
	// owner for a moment).
	next int
}

// holding is an owner's prefix and the blocks [lo, hi) it covers.
type holding struct {
	prefix netip.Prefix
	lo, hi int
}

// NewCIDRSet returns an empty set of the node CIDRs of cluster.
func NewCIDRSet(cluster netip.Prefix, maskSize int) (*CIDRSet, error) {
	if err := ValidateRange(cluster, maskSize); err != nil {
		return nil, err
	}
	return &CIDRSet{
		cluster:  cluster,
		maskSize: maskSize,
		holders:  make([]int32, 1<<(maskSize-cluster.Bits())),
		owners:   map[string]holding{},
	}, nil
}

// Cluster returns the cluster CIDR.
func (s *CIDRSet) Cluster() netip.Prefix { return s.cluster }

// Size returns how many node CIDRs the cluster CIDR holds.
func (s *CIDRSet) Size() int { return len(s.holders) }

// Used returns how many node CIDRs are held.
func (s *CIDRSet) Used() int { return s.used }

// Get returns the prefix owner holds.
func (s *CIDRSet) Get(owner string) (netip.Prefix, bool) {
	h, ok := s.owners[owner]
	return h.prefix, ok
}

// Allocate gives owner the next free node CIDR, searching from just past
// the last one given. An owner that holds a prefix already gets it again.
// It returns ErrFull when no block is free.
func (s *CIDRSet) Allocate(owner string) (netip.Prefix, error) {
	if h, ok := s.owners[owner]; ok {
		return h.prefix, nil
	}
	n := len(s.holders)
	for i := range n {
		b := (s.next + i) % n
		if s.holders[b] == 0 {
			p := s.block(b)
			s.hold(owner, holding{prefix: p, lo: b, hi: b + 1})
			s.next = (b + 1) % n
			return p, nil
		}
	}
	return netip.Prefix{}, ErrFull
}

// Occupy records that owner holds p, a prefix chosen by someone else,
// replacing what owner held before. Every block p overlaps is taken,
// however p's size compares with the node CIDRs'. It returns the other
// owners already holding one of those blocks (sorted), and whether p lies
// wholly inside the cluster CIDR. A prefix outside it is recorded (Get
// returns it) but takes no block.
func (s *CIDRSet) Occupy(owner string, p netip.Prefix) (collisions []string, inside bool) {
	p = p.Masked()
	s.Release(owner)
	lo, hi := s.overlap(p)
	if lo < hi {
		for o, h := range s.owners {
			if h.lo < hi && lo < h.hi {
				collisions = append(collisions, o)
			}
		}
		slices.Sort(collisions)
	}
	s.hold(owner, holding{prefix: p, lo: lo, hi: hi})
	inside = p.IsValid() && p.Bits() >= s.cluster.Bits() && s.cluster.Contains(p.Addr())
	return collisions, inside
}

// Release forgets owner's prefix; blocks nobody else holds become free.
// It reports whether owner held one.
func (s *CIDRSet) Release(owner string) bool {
	h, ok := s.owners[owner]
	if !ok {
		return false
	}
	delete(s.owners, owner)
	for b := h.lo; b < h.hi; b++ {
		s.holders[b]--
		if s.holders[b] == 0 {
			s.used--
		}
	}
	return true
}

func (s *CIDRSet) hold(owner string, h holding) {
	s.owners[owner] = h
	for b := h.lo; b < h.hi; b++ {
		if s.holders[b] == 0 {
			s.used++
		}
		s.holders[b]++
	}
}

// shift is how many address bits a block spans.
func (s *CIDRSet) shift() int { return 32 - s.maskSize }

// block returns the node CIDR number b.
func (s *CIDRSet) block(b int) netip.Prefix {
	start := ipv4(s.cluster.Addr()) + uint64(b)<<s.shift()
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], uint32(start))
	return netip.PrefixFrom(netip.AddrFrom4(a), s.maskSize)
}

// overlap returns the blocks [lo, hi) that p overlaps; lo == hi when it
// overlaps none (another IP family, or elsewhere).
func (s *CIDRSet) overlap(p netip.Prefix) (lo, hi int) {
	if !p.IsValid() || !p.Addr().Is4() {
		return 0, 0
	}
	pFirst, pLast := span(p)
	cFirst, cLast := span(s.cluster)
	first, last := max(pFirst, cFirst), min(pLast, cLast)
	if first > last {
		return 0, 0
	}
	return int((first - cFirst) >> s.shift()), int((last-cFirst)>>s.shift()) + 1
}

// span returns the first and last address of an IPv4 prefix as numbers.
func span(p netip.Prefix) (first, last uint64) {
	first = ipv4(p.Masked().Addr())
	return first, first + 1<<(32-p.Bits()) - 1
}

func ipv4(a netip.Addr) uint64 {
	b := a.As4()
	return uint64(binary.BigEndian.Uint32(b[:]))
}
