package network

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// ErrNoAddresses is wrapped by Attach when every address of the pod CIDR
// is taken.
var ErrNoAddresses = errors.New("no free IP address")

// ipStore is the IP address book: one file per allocated address, named
// after the address and holding the pod ID, in one directory. The files
// are the truth; byPod and byIP are an index of them kept in memory.
//
// A new file is first written under a temporary name and then hard-linked
// to its final name. link(2) fails when the name exists, so two
// allocations can never both claim one address, and a file under its
// final name is always complete.
type ipStore struct {
	dir   string
	byPod map[string]netip.Addr
	byIP  map[netip.Addr]string
	last  netip.Addr // the address handed out last; the search resumes after it
}

// tmpPrefix marks files that are still being written.
const tmpPrefix = ".tmp-"

func openIPStore(dir string) (*ipStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create IP store: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read IP store: %w", err)
	}
	s := &ipStore{dir: dir, byPod: map[string]netip.Addr{}, byIP: map[netip.Addr]string{}}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, tmpPrefix) {
			os.Remove(filepath.Join(dir, name)) // left by a crash mid-write
			continue
		}
		ip, err := netip.ParseAddr(name)
		if err != nil {
			continue // not ours
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("read IP store: %w", err)
		}
		pod := strings.TrimSpace(string(data))
		s.byIP[ip] = pod
		if pod != "" {
			s.byPod[pod] = ip
		}
	}
	return s, nil
}

// reserve returns the address of podID, allocating one from cidr when the
// pod has none. fresh reports a new allocation.
func (s *ipStore) reserve(podID string, cidr netip.Prefix, gateway netip.Addr) (ip netip.Addr, fresh bool, err error) {
	if ip, ok := s.byPod[podID]; ok {
		return ip, false, nil
	}

	tmp, err := s.writeTemp(podID)
	if err != nil {
		return netip.Addr{}, false, err
	}
	defer os.Remove(tmp)

	first, last := hostRange(cidr)
	start := s.last
	if !start.IsValid() || !cidr.Contains(start) {
		start = last // so that the search begins at first
	}
	for cand := next(start, first, last); ; cand = next(cand, first, last) {
		if _, taken := s.byIP[cand]; !taken && cand != gateway {
			err := os.Link(tmp, filepath.Join(s.dir, cand.String()))
			switch {
			case err == nil:
				s.byIP[cand] = podID
				s.byPod[podID] = cand
				s.last = cand
				return cand, true, nil
			case errors.Is(err, fs.ErrExist):
				// Written behind our back; respect it.
				s.byIP[cand] = ""
			default:
				return netip.Addr{}, false, fmt.Errorf("record IP %s: %w", cand, err)
			}
		}
		if cand == start {
			break
		}
	}
	return netip.Addr{}, false, fmt.Errorf("pod CIDR %s: %w (%d in use)", cidr, ErrNoAddresses, s.countIn(cidr))
}

// writeTemp writes podID to a new temporary file in the store.
func (s *ipStore) writeTemp(podID string) (string, error) {
	var r [8]byte
	rand.Read(r[:])
	name := filepath.Join(s.dir, tmpPrefix+hex.EncodeToString(r[:]))
	if err := os.WriteFile(name, []byte(podID+"\n"), 0o644); err != nil {
		os.Remove(name)
		return "", fmt.Errorf("record IP: %w", err)
	}
	return name, nil
}

// release frees the address of podID, if it has one.
func (s *ipStore) release(podID string) error {
	ip, ok := s.byPod[podID]
	if !ok {
		return nil
	}
	if err := os.Remove(filepath.Join(s.dir, ip.String())); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("release IP %s: %w", ip, err)
	}
	delete(s.byPod, podID)
	delete(s.byIP, ip)
	return nil
}

func (s *ipStore) countIn(cidr netip.Prefix) int {
	n := 0
	for ip := range s.byIP {
		if cidr.Contains(ip) {
			n++
		}
	}
	return n
}

// hostRange is the first and last usable host address of an IPv4 prefix:
// everything except the network address and the broadcast address.
func hostRange(cidr netip.Prefix) (first, last netip.Addr) {
	base := cidr.Masked().Addr().As4()
	n := binary.BigEndian.Uint32(base[:])
	size := uint32(1) << (32 - cidr.Bits())
	return addrFrom(n + 1), addrFrom(n + size - 2)
}

// next is the address after a in [first, last], wrapping around.
func next(a, first, last netip.Addr) netip.Addr {
	if a == last {
		return first
	}
	return a.Next()
}

func addrFrom(n uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], n)
	return netip.AddrFrom4(b)
}
