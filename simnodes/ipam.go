package simnodes

import (
	"fmt"
	"net/netip"
	"sync"
)

// ipam hands out fake pod addresses: each pod on node i gets a distinct
// address from node i's block of the address plan, held until the pod is
// gone. A block's addresses are handed out round-robin, so an address
// just released is the last to be reused, as a real kubelet's allocator
// does.
type ipam struct {
	plan addressPlan

	// mu guards byPod and blocks.
	mu sync.Mutex
	// byPod maps a pod key to the address it holds.
	byPod map[string]heldAddr
	// blocks maps a node index to the use of its block; created on first
	// use (a few dozen bytes), so nodes that never had a pod cost nothing.
	blocks map[int]*blockUse
}

// heldAddr is a pod's address: the n-th pod address of node's block.
type heldAddr struct{ node, n int }

// blockUse is a bitmap of a block's pod addresses.
type blockUse struct {
	used []uint64
	// next is where the search for a free address starts.
	next int
}

func newIPAM(plan addressPlan) *ipam {
	return &ipam{plan: plan, byPod: map[string]heldAddr{}, blocks: map[int]*blockUse{}}
}

// assign returns the address of the pod called key on node, taking a free
// one when the pod holds none there yet.
func (m *ipam) assign(key string, node int) (netip.Addr, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if h, ok := m.byPod[key]; ok {
		if h.node == node {
			return m.plan.podIP(node, h.n), nil
		}
		m.releaseLocked(key)
	}
	b := m.block(node)
	size := m.plan.podIPs()
	for k := range size {
		n := (b.next + k) % size
		if !b.has(n) {
			b.set(n, true)
			b.next = (n + 1) % size
			m.byPod[key] = heldAddr{node, n}
			return m.plan.podIP(node, n), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("all %d pod addresses of %s are in use", size, m.plan.block(node))
}

// reserve records that the pod called key on node already has address
// ip, as found in its status when simnodes starts. It reports false when
// ip is not one of node's pod addresses or another pod holds it.
func (m *ipam) reserve(key string, node int, ip netip.Addr) bool {
	n, ok := m.plan.podIndex(node, ip)
	if !ok {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if h, ok := m.byPod[key]; ok {
		if h == (heldAddr{node, n}) {
			return true
		}
		m.releaseLocked(key)
	}
	b := m.block(node)
	if b.has(n) {
		return false
	}
	b.set(n, true)
	m.byPod[key] = heldAddr{node, n}
	return true
}

// release frees the address of the pod called key, if it holds one.
func (m *ipam) release(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.releaseLocked(key)
}

func (m *ipam) releaseLocked(key string) {
	h, ok := m.byPod[key]
	if !ok {
		return
	}
	delete(m.byPod, key)
	m.blocks[h.node].set(h.n, false)
}

func (m *ipam) block(node int) *blockUse {
	b, ok := m.blocks[node]
	if !ok {
		b = &blockUse{used: make([]uint64, (m.plan.podIPs()+63)/64)}
		m.blocks[node] = b
	}
	return b
}

func (b *blockUse) has(n int) bool { return b.used[n/64]&(1<<(n%64)) != 0 }

func (b *blockUse) set(n int, used bool) {
	if used {
		b.used[n/64] |= 1 << (n % 64)
	} else {
		b.used[n/64] &^= 1 << (n % 64)
	}
}
