package registry

import (
	"net/netip"
	"testing"
)

func TestIPRange(t *testing.T) {
	r := newIPRange(netip.MustParsePrefix("10.96.0.0/16"))
	if r.size != 65534 {
		t.Errorf("size %d, want 65534", r.size)
	}
	for ip, want := range map[string]int{"10.96.0.1": 0, "10.96.1.0": 255, "10.96.255.254": 65533} {
		off, ok := r.offset(netip.MustParseAddr(ip))
		if !ok || off != want {
			t.Errorf("offset(%s) = %d, %v, want %d", ip, off, ok, want)
		}
		if got := r.addr(want).String(); got != ip {
			t.Errorf("addr(%d) = %s, want %s", want, got, ip)
		}
	}
	for _, ip := range []string{"10.96.0.0", "10.96.255.255", "10.97.0.1", "::1"} {
		if _, ok := r.offset(netip.MustParseAddr(ip)); ok {
			t.Errorf("%s is in the range", ip)
		}
	}
	for _, bad := range []string{"10.96.0.0/31", "10.0.0.0/8", "fd00::/112"} {
		if CheckServiceIPRange(netip.MustParsePrefix(bad)) == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestBitmapRoundTrip(t *testing.T) {
	b := newBitmap()
	for _, i := range []int{0, 7, 8, 65533} {
		b.set(i)
	}
	b.clear(7)
	rng, got, err := decodeRange([]byte(encodeRange("10.96.0.0/16", b)))
	if err != nil || rng != "10.96.0.0/16" || got.count() != 3 || !got.has(65533) || got.has(7) {
		t.Fatalf("round trip: %v %q count %d", err, rng, got.count())
	}
	if i, ok := got.firstFree(0, 10); !ok || i != 1 {
		t.Errorf("firstFree = %d, %v, want 1", i, ok)
	}
}
