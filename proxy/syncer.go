package proxy

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/google/nftables"
	mnl "github.com/mdlayher/netlink"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// socketBuffer is the send and receive buffer of the netlink socket a
// sync uses. A full sync of a big cluster is one batch of several MB (it
// must fit one sendmsg to be one transaction), and the kernel queues an
// acknowledgement per message before the first is read.
const socketBuffer = 256 << 20

// maxElementsPerMessage keeps one map-element message well under the
// 64 KiB limit of a netlink attribute.
const maxElementsPerMessage = 500

// SyncStats describes one Sync.
type SyncStats struct {
	// Full is true when the table was replaced as a whole.
	Full bool
	// Messages is the number of netlink messages of the transaction
	// (zero when nothing had changed).
	Messages int
	// ChainsChanged counts chains added, rewritten or deleted.
	ChainsChanged int
	// ElementsChanged counts set and map elements written or deleted (a
	// changed element counts twice: deleted, then added).
	ElementsChanged int
	// ConntrackDeleted counts the conntrack entries flushed.
	ConntrackDeleted uint
}

// Syncer writes Rulesets into the proxy's nftables table in one network
// namespace. Every Sync is one nftables transaction: the kernel applies
// all of it or none of it, and packets never see a half-written table.
//
// The first Sync (and any Sync asked to be full, or following a failed
// one) replaces the whole table: "add table; delete table; add table and
// its content". That removes whatever an earlier proxy left, without a
// moment where the table is missing. Later Syncs write only the
// difference with the Ruleset last applied: new chains, rewritten chains,
// changed map elements, deleted chains.
//
// A Syncer is safe for use by one goroutine at a time; calls are
// serialized.
type Syncer struct {
	// nsFD is the open network namespace, or -1 for the caller's own.
	nsFD  int
	table *nftables.Table

	// mu guards applied and flushed, and makes Sync and Delete take
	// turns: one transaction at a time.
	mu sync.Mutex
	// applied is what the kernel has, nil when unknown.
	applied *Ruleset
	// flushed is the ruleset whose endpoints conntrack was last
	// cleaned against: a flush that failed is tried again at the next
	// Sync, against the same old endpoints.
	flushed *Ruleset
}

// NewSyncer returns a Syncer for the network namespace at netnsPath;
// empty means the namespace of the process (of the calling thread, to be
// exact). It touches nothing until the first Sync.
func NewSyncer(netnsPath string) (*Syncer, error) {
	s := &Syncer{nsFD: -1, table: &nftables.Table{Family: nftables.TableFamilyIPv4, Name: TableName}}
	if netnsPath != "" {
		fd, err := unix.Open(netnsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("proxy: open network namespace %q: %w", netnsPath, err)
		}
		s.nsFD = fd
	}
	return s, nil
}

// Close releases the namespace. The table stays.
func (s *Syncer) Close() error {
	if s.nsFD >= 0 {
		err := unix.Close(s.nsFD)
		s.nsFD = -1
		return err
	}
	return nil
}

// conn opens an nftables connection into the Syncer's namespace with
// buffers big enough for a full sync.
func (s *Syncer) conn() (*nftables.Conn, error) {
	opts := []nftables.ConnOption{nftables.WithSockOptions(bigBuffers)}
	if s.nsFD >= 0 {
		opts = append(opts, nftables.WithNetNSFd(s.nsFD))
	}
	return nftables.New(opts...)
}

func bigBuffers(c *mnl.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		// The FORCE variants ignore net.core.[rw]mem_max (we are root).
		serr = errors.Join(
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, socketBuffer),
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, socketBuffer))
	})
	return errors.Join(err, serr)
}

// Sync makes the table hold want. full forces a whole-table replacement.
// On error the table is as before (the transaction was refused) and the
// next Sync replaces it as a whole.
func (s *Syncer) Sync(want *Ruleset, full bool) (SyncStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	conn, err := s.conn()
	if err != nil {
		return SyncStats{}, fmt.Errorf("proxy: open nftables: %w", err)
	}
	prev := s.applied
	var st SyncStats
	if prev == nil || full || baseChanged(prev, want) {
		st, err = s.queueFull(conn, want)
	} else {
		st, err = s.queueDiff(conn, prev, want)
	}
	if err == nil && st.Messages > 0 {
		err = conn.Flush()
	}
	if err != nil {
		s.applied = nil
		return st, fmt.Errorf("proxy: write table %q: %w", TableName, err)
	}
	s.applied = want

	if s.flushed == nil || !targetsEqual(s.flushed.Targets, want.Targets) {
		n, err := s.flushConntrack(s.flushed, want)
		st.ConntrackDeleted = n
		if err != nil {
			// The rules are right; a stale flow is the lesser harm,
			// and the flush is tried again at the next Sync.
			return st, fmt.Errorf("proxy: flush conntrack entries of removed endpoints: %w", err)
		}
		s.flushed = want
	}
	return st, nil
}

// queueFull queues the replacement of the whole table.
func (s *Syncer) queueFull(conn *nftables.Conn, want *Ruleset) (SyncStats, error) {
	st := SyncStats{Full: true}
	t := s.table
	// "add" does not fail on an existing table, so the delete that
	// follows always has something to delete.
	conn.AddTable(t)
	conn.DelTable(t)
	conn.AddTable(t)
	st.Messages += 3
	names := sortedKeys(want.Chains)
	for _, name := range names {
		conn.AddChain(nftChain(t, name, want.Chains[name]))
	}
	st.Messages += len(names)
	st.ChainsChanged = len(names)
	for _, ks := range kernelSets(t, want) {
		if err := conn.AddSet(ks.set, nil); err != nil {
			return st, fmt.Errorf("set %q: %w", ks.set.Name, err)
		}
		st.Messages++
		elems := make([]nftables.SetElement, 0, len(ks.elems))
		for _, e := range ks.elems {
			elems = append(elems, e)
		}
		n, err := addElements(conn, ks.set, elems)
		st.Messages += n
		st.ElementsChanged += len(elems)
		if err != nil {
			return st, fmt.Errorf("set %q: %w", ks.set.Name, err)
		}
	}
	for _, name := range names {
		c := want.Chains[name]
		if err := addRules(conn, t, name, c); err != nil {
			return st, err
		}
		st.Messages += len(c.Rules)
	}
	return st, nil
}

// queueDiff queues the changes from prev to want, in an order the kernel
// accepts within one transaction: a chain exists before anything refers to
// it, and nothing refers to a chain any more when it is deleted.
func (s *Syncer) queueDiff(conn *nftables.Conn, prev, want *Ruleset) (SyncStats, error) {
	var st SyncStats
	t := s.table
	names := sortedKeys(want.Chains)
	// 1. New chains, empty.
	for _, name := range names {
		if prev.Chains[name] == nil {
			conn.AddChain(nftChain(t, name, want.Chains[name]))
			st.Messages++
		}
	}
	// 1b. New endpoint maps, empty (elements come in step 3).
	oldSets := map[string]kernelSet{}
	for _, ks := range kernelSets(t, prev) {
		oldSets[ks.set.Name] = ks
	}
	newSets := kernelSets(t, want)
	for _, ks := range newSets {
		if _, ok := oldSets[ks.set.Name]; !ok {
			if err := conn.AddSet(ks.set, nil); err != nil {
				return st, fmt.Errorf("set %q: %w", ks.set.Name, err)
			}
			st.Messages++
		}
	}
	// 2. Rules of new and changed chains.
	for _, name := range names {
		c, old := want.Chains[name], prev.Chains[name]
		if old != nil && old.equal(c) {
			continue
		}
		if old != nil {
			conn.FlushChain(&nftables.Chain{Table: t, Name: name})
			st.Messages++
		}
		if err := addRules(conn, t, name, c); err != nil {
			return st, err
		}
		st.Messages += len(c.Rules)
		st.ChainsChanged++
	}
	// 3. Set and map elements: removed and changed ones out, new and
	// changed ones in.
	for _, ks := range newSets {
		oldM, newM := oldSets[ks.set.Name].elems, ks.elems
		var dels, adds []nftables.SetElement
		for k, e := range oldM {
			if n, ok := newM[k]; !ok || !sameElement(n, e) {
				dels = append(dels, e)
			}
		}
		for k, e := range newM {
			if o, ok := oldM[k]; !ok || !sameElement(o, e) {
				adds = append(adds, e)
			}
		}
		for chunk := range slices.Chunk(dels, maxElementsPerMessage) {
			if err := conn.SetDeleteElements(ks.set, chunk); err != nil {
				return st, fmt.Errorf("set %q: %w", ks.set.Name, err)
			}
			st.Messages++
		}
		n, err := addElements(conn, ks.set, adds)
		st.Messages += n
		st.ElementsChanged += len(dels) + len(adds)
		if err != nil {
			return st, fmt.Errorf("set %q: %w", ks.set.Name, err)
		}
	}
	// 4. Chains no longer wanted: emptied first, all of them, since
	// they may refer to each other (ext → svc) and to endpoint maps;
	// then the endpoint maps no longer wanted (rules that used them are
	// gone by now); then the chains.
	var gone []*nftables.Chain
	for _, name := range sortedKeys(prev.Chains) {
		if want.Chains[name] == nil {
			ch := &nftables.Chain{Table: t, Name: name}
			conn.FlushChain(ch)
			gone = append(gone, ch)
		}
	}
	for _, name := range sortedKeys(prev.Endpoints) {
		if _, ok := want.Endpoints[name]; !ok {
			conn.DelSet(oldSets[name].set)
			st.Messages++
		}
	}
	for _, ch := range gone {
		conn.DelChain(ch)
	}
	st.Messages += 2 * len(gone)
	st.ChainsChanged += len(gone)
	return st, nil
}

func addElements(conn *nftables.Conn, set *nftables.Set, elems []nftables.SetElement) (int, error) {
	n := 0
	for chunk := range slices.Chunk(elems, maxElementsPerMessage) {
		if err := conn.SetAddElements(set, chunk); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// baseChanged reports whether any chain but the per-service ones
// differs (the configuration changed): then the whole table is rewritten.
func baseChanged(prev, want *Ruleset) bool {
	for name, c := range want.Chains {
		if isServiceChain(name) {
			continue
		}
		if old := prev.Chains[name]; old == nil || !old.equal(c) {
			return true
		}
	}
	return false
}

func isServiceChain(name string) bool {
	for _, p := range []string{"svc-", "ext-"} {
		if len(name) > len(p) && name[:len(p)] == p {
			return true
		}
	}
	return false
}

// Delete removes the table, if there is one.
func (s *Syncer) Delete() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	conn, err := s.conn()
	if err != nil {
		return err
	}
	conn.AddTable(s.table)
	conn.DelTable(s.table)
	s.applied = nil
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("proxy: delete table %q: %w", TableName, err)
	}
	return nil
}

// Drifted reports whether the kernel's table no longer has exactly the
// chains of the Ruleset last applied (someone deleted the table or a
// chain, or added one), or whether that Ruleset is unknown. It reads the
// chain names only, which is cheap; a periodic resync uses it to decide
// whether to rewrite the whole table.
func (s *Syncer) Drifted() bool {
	s.mu.Lock()
	applied := s.applied
	s.mu.Unlock()
	if applied == nil {
		return true
	}
	have, err := s.Chains()
	if err != nil || len(have) != len(applied.Chains) {
		return true
	}
	for _, name := range have {
		if applied.Chains[name] == nil {
			return true
		}
	}
	return false
}

// Chains lists the chains the kernel has in the table, for tests and
// debugging.
func (s *Syncer) Chains() ([]string, error) {
	conn, err := s.conn()
	if err != nil {
		return nil, err
	}
	all, err := conn.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, c := range all {
		if c.Table.Name == TableName {
			names = append(names, c.Name)
		}
	}
	slices.Sort(names)
	return names, nil
}

func targetsEqual(a, b map[MapKey][]netip.AddrPort) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !slices.Equal(v, w) {
			return false
		}
	}
	return true
}

// netlinkHandle opens a netlink handle of the given family in the
// Syncer's namespace.
func (s *Syncer) netlinkHandle(family int) (*netlink.Handle, error) {
	if s.nsFD >= 0 {
		return netlink.NewHandleAt(netns.NsHandle(s.nsFD), family)
	}
	return netlink.NewHandle(family)
}
