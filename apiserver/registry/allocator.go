package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"net/netip"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
)

// Where the allocation bitmaps live in etcd.
const (
	ServiceIPsKey       = "/registry/ranges/serviceips"
	ServiceNodePortsKey = "/registry/ranges/servicenodeports"
)

// Default ranges, as in the architecture brief.
var (
	DefaultServiceIPRange       = netip.MustParsePrefix("10.96.0.0/16")
	DefaultServiceNodePortRange = utilnet.PortRange{Base: 30000, Size: 2768}
)

// ipRange is the set of addresses of a service CIDR that services may
// get: every address but the network and broadcast ones. Offset 0 (the
// first usable address, 10.96.0.1 by default) is the kubernetes service's
// and is only handed out when asked for by name.
type ipRange struct {
	prefix netip.Prefix
	first  netip.Addr // offset 0
	size   int
}

// MaxServiceIPRangeBits bounds a service CIDR to 2^20 addresses (a /12 for
// IPv4), so that its bitmap stays small (128 KiB).
const MaxServiceIPRangeBits = 20

// CheckServiceIPRange reports whether p can be a service CIDR: an IPv4
// prefix with at least two usable addresses and at most 2^20 addresses.
func CheckServiceIPRange(p netip.Prefix) error {
	switch {
	case !p.IsValid():
		return fmt.Errorf("not a CIDR")
	case !p.Addr().Is4():
		return fmt.Errorf("only IPv4 service ranges are supported")
	case p.Bits() > 30:
		return fmt.Errorf("%s is too small: the prefix must be /30 or shorter", p)
	case 32-p.Bits() > MaxServiceIPRangeBits:
		return fmt.Errorf("%s is too large: the prefix must be /%d or longer", p, 32-MaxServiceIPRangeBits)
	}
	return nil
}

func newIPRange(p netip.Prefix) ipRange {
	p = p.Masked()
	return ipRange{prefix: p, first: p.Addr().Next(), size: 1<<(32-p.Bits()) - 2}
}

// offset returns ip's position in the range, or false when it is outside.
func (r ipRange) offset(ip netip.Addr) (int, bool) {
	if !ip.Is4() || !r.prefix.Contains(ip) {
		return 0, false
	}
	a, f := ip.As4(), r.first.As4()
	n := int(a[0])<<24 | int(a[1])<<16 | int(a[2])<<8 | int(a[3])
	m := int(f[0])<<24 | int(f[1])<<16 | int(f[2])<<8 | int(f[3])
	if n < m || n-m >= r.size {
		return 0, false
	}
	return n - m, true
}

// addr is the address at offset i.
func (r ipRange) addr(i int) netip.Addr {
	f := r.first.As4()
	n := uint32(f[0])<<24 | uint32(f[1])<<16 | uint32(f[2])<<8 | uint32(f[3])
	n += uint32(i)
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// bitmap is one bit per value of a range; set means allocated.
type bitmap struct{ bits *big.Int }

func newBitmap() bitmap         { return bitmap{bits: new(big.Int)} }
func (b bitmap) has(i int) bool { return b.bits.Bit(i) == 1 }
func (b bitmap) set(i int)      { b.bits.SetBit(b.bits, i, 1) }
func (b bitmap) clear(i int)    { b.bits.SetBit(b.bits, i, 0) }
func (b bitmap) clone() bitmap  { return bitmap{bits: new(big.Int).Set(b.bits)} }
func (b bitmap) count() (n int) {
	for _, w := range b.bits.Bits() {
		for ; w != 0; w &= w - 1 {
			n++
		}
	}
	return n
}

// firstFree returns the lowest clear bit at or above from, below size.
func (b bitmap) firstFree(from, size int) (int, bool) {
	for i := from; i < size; i++ {
		if b.bits.Bit(i) == 0 {
			return i, true
		}
	}
	return 0, false
}

// rangeState is one bitmap as stored in etcd: the range it describes (so
// that a changed flag is noticed), the bits, and the key's mod revision
// (0 while the key does not exist).
type rangeState struct {
	rng    string
	bits   bitmap
	modRev int64
}

// encodeRange is the stored form: Kubernetes' RangeAllocation as JSON.
func encodeRange(rng string, b bitmap) string {
	data, _ := json.Marshal(corev1.RangeAllocation{Range: rng, Data: b.bits.Bytes()})
	return string(data)
}

func decodeRange(data []byte) (string, bitmap, error) {
	var ra corev1.RangeAllocation
	if err := json.Unmarshal(data, &ra); err != nil {
		return "", bitmap{}, err
	}
	return ra.Range, bitmap{bits: new(big.Int).SetBytes(ra.Data)}, nil
}

// readRange reads a bitmap key. A missing key is an empty state with
// modRev 0.
func readRange(ctx context.Context, client *clientv3.Client, key string) (rangeState, int64, error) {
	resp, err := client.Get(ctx, key)
	if err != nil {
		return rangeState{}, 0, err
	}
	if len(resp.Kvs) == 0 {
		return rangeState{bits: newBitmap()}, resp.Header.Revision, nil
	}
	rng, bits, err := decodeRange(resp.Kvs[0].Value)
	if err != nil {
		return rangeState{}, 0, fmt.Errorf("decoding %s: %w", key, err)
	}
	return rangeState{rng: rng, bits: bits, modRev: resp.Kvs[0].ModRevision}, resp.Header.Revision, nil
}
