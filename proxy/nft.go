package proxy

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Registers. A 16-byte register NFT_REG_1 overlaps the 4-byte registers
// 8..11; a concatenated key is loaded into consecutive 4-byte registers
// starting at reg32(0) and looked up from NFT_REG_1.
const (
	reg1     = 1
	reg2     = 2
	reg32At0 = 8
)

var (
	serviceIPKeyType = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService)
	nodePortKeyType  = nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService)
	endpointDataType = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService)
	hairpinKeyType   = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeIPAddr)
)

// kernelSet is one named set or map of the table with its elements,
// encoded for the kernel and indexed by their key bytes, so that two
// versions can be compared element by element.
type kernelSet struct {
	set   *nftables.Set
	elems map[string]nftables.SetElement
}

// kernelSets encodes every named set and map of rs: the verdict maps,
// the endpoint maps, the hairpin set.
func kernelSets(table *nftables.Table, rs *Ruleset) []kernelSet {
	var out []kernelSet
	for _, name := range sortedKeys(rs.Maps) {
		ks := kernelSet{set: mapSet(table, name), elems: make(map[string]nftables.SetElement, len(rs.Maps[name]))}
		for k, chain := range rs.Maps[name] {
			e := mapElement(k, chain)
			ks.elems[string(e.Key)] = e
		}
		out = append(out, ks)
	}
	for _, name := range sortedKeys(rs.Endpoints) {
		eps := rs.Endpoints[name]
		ks := kernelSet{
			set:   &nftables.Set{Table: table, Name: name, IsMap: true, KeyType: nftables.TypeInteger, DataType: endpointDataType},
			elems: make(map[string]nftables.SetElement, len(eps)),
		}
		for i, ep := range eps {
			key := u32(uint32(i)) // numgen writes host order
			port := ep.Port()
			ks.elems[string(key)] = nftables.SetElement{Key: key, Val: append(ip4(ep.Addr()), byte(port>>8), byte(port), 0, 0)}
		}
		out = append(out, ks)
	}
	hp := kernelSet{
		set:   &nftables.Set{Table: table, Name: SetHairpin, Concatenation: true, KeyType: hairpinKeyType},
		elems: make(map[string]nftables.SetElement, len(rs.Hairpin)),
	}
	for ip := range rs.Hairpin {
		key := append(ip4(ip), ip4(ip)...)
		hp.elems[string(key)] = nftables.SetElement{Key: key}
	}
	return append(out, hp)
}

// sameElement reports whether two elements with the same key have the
// same value.
func sameElement(a, b nftables.SetElement) bool {
	if (a.VerdictData == nil) != (b.VerdictData == nil) {
		return false
	}
	if a.VerdictData != nil && (a.VerdictData.Kind != b.VerdictData.Kind || a.VerdictData.Chain != b.VerdictData.Chain) {
		return false
	}
	return string(a.Val) == string(b.Val)
}

// mapSet describes one of the named verdict maps.
func mapSet(table *nftables.Table, name string) *nftables.Set {
	key := serviceIPKeyType
	if name == MapServiceNodePorts {
		key = nodePortKeyType
	}
	return &nftables.Set{
		Table:         table,
		Name:          name,
		IsMap:         true,
		Concatenation: true,
		KeyType:       key,
		DataType:      nftables.TypeVerdict,
	}
}

// mapKeyBytes encodes a key the way the kernel compares it: every field
// padded to 4 bytes, addresses and ports in network order.
func mapKeyBytes(k MapKey) []byte {
	var b []byte
	if k.IP.IsValid() {
		ip := k.IP.As4()
		b = append(b, ip[:]...)
	}
	b = append(b, k.Proto, 0, 0, 0)
	b = append(b, byte(k.Port>>8), byte(k.Port), 0, 0)
	return b
}

func mapElement(k MapKey, chain string) nftables.SetElement {
	return nftables.SetElement{Key: mapKeyBytes(k), VerdictData: &expr.Verdict{Kind: expr.VerdictGoto, Chain: chain}}
}

var hookNums = map[string]*nftables.ChainHook{
	"prerouting":  nftables.ChainHookPrerouting,
	"input":       nftables.ChainHookInput,
	"forward":     nftables.ChainHookForward,
	"output":      nftables.ChainHookOutput,
	"postrouting": nftables.ChainHookPostrouting,
}

// nftChain is the library's description of a chain.
func nftChain(table *nftables.Table, name string, c *Chain) *nftables.Chain {
	ch := &nftables.Chain{Table: table, Name: name}
	if c != nil && c.Hook != nil {
		ch.Type = nftables.ChainType(c.Hook.Type)
		ch.Hooknum = hookNums[c.Hook.Hook]
		ch.Priority = nftables.ChainPriorityRef(nftables.ChainPriority(c.Hook.Priority))
	}
	return ch
}

// addRules queues the rules of chain name on conn.
func addRules(conn *nftables.Conn, table *nftables.Table, name string, c *Chain) error {
	ch := &nftables.Chain{Table: table, Name: name}
	for _, r := range c.Rules {
		var exprs []expr.Any
		for _, s := range r {
			e, err := stmtExprs(s)
			if err != nil {
				return fmt.Errorf("chain %q: rule %q: %w", name, r, err)
			}
			exprs = append(exprs, e...)
		}
		conn.AddRule(&nftables.Rule{Table: table, Chain: ch, Exprs: exprs})
	}
	return nil
}

func u32(v uint32) []byte { return binaryutil.NativeEndian.PutUint32(v) }

func ip4(a netip.Addr) []byte { b := a.As4(); return b[:] }

// prefixMatch compares the masked IP header field at offset with p.
func prefixMatch(offset uint32, p netip.Prefix, op expr.CmpOp) []expr.Any {
	p = p.Masked()
	m := make([]byte, 4)
	for i := 0; i < p.Bits(); i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return []expr.Any{
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: m, Xor: make([]byte, 4)},
		&expr.Cmp{Op: op, Register: reg1, Data: ip4(p.Addr())},
	}
}

const (
	offSaddr = 12
	offDaddr = 16
)

// stmtExprs translates one statement into kernel expressions.
func stmtExprs(s Stmt) ([]expr.Any, error) {
	switch s := s.(type) {
	case ctNew:
		return []expr.Any{
			&expr.Ct{Register: reg1, Key: expr.CtKeySTATE},
			&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: u32(expr.CtStateBitNEW), Xor: u32(0)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: u32(0)},
		}, nil
	case srcNotIn:
		return prefixMatch(offSaddr, s.Prefix, expr.CmpOpNeq), nil
	case dstIn:
		return prefixMatch(offDaddr, s.Prefix, expr.CmpOpEq), nil
	case dstNotIn:
		return prefixMatch(offDaddr, s.Prefix, expr.CmpOpNeq), nil
	case dstLocal:
		return []expr.Any{
			&expr.Fib{Register: reg1, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: u32(unix.RTN_LOCAL)},
		}, nil
	case l4proto:
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{s.Proto}},
		}, nil
	case markMasq:
		return setMark(^MasqueradeMark, MasqueradeMark), nil // mark | bit
	case clearMarkMasq:
		return setMark(0xffffffff, MasqueradeMark), nil // mark ^ bit
	case markReject:
		return setMark(^RejectMark, RejectMark), nil // mark | bit
	case markedReject:
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyMARK, Register: reg1},
			&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: u32(RejectMark), Xor: u32(0)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: u32(RejectMark)},
		}, nil
	case returnIfNotMarked:
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyMARK, Register: reg1},
			&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: u32(MasqueradeMark), Xor: u32(0)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: u32(0)},
			&expr.Verdict{Kind: expr.VerdictReturn},
		}, nil
	case masquerade:
		return []expr.Any{&expr.Masq{FullyRandom: true}}, nil
	case dnat:
		return []expr.Any{
			&expr.Immediate{Register: reg1, Data: ip4(s.To.Addr())},
			&expr.Immediate{Register: reg2, Data: binaryutil.BigEndian.PutUint16(s.To.Port())},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4,
				RegAddrMin: reg1, RegProtoMin: reg2, Specified: true},
		}, nil
	case vmapLookup:
		var load []expr.Any
		next := uint32(reg32At0)
		if !s.NodePorts {
			load = append(load, &expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: offDaddr, Len: 4})
			next++
		}
		protoReg := next
		if protoReg == reg32At0 {
			protoReg = reg1
		}
		portReg := next + 1
		load = append(load,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: protoReg},
			&expr.Payload{DestRegister: portReg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Lookup{SourceRegister: reg1, DestRegister: 0, IsDestRegSet: true, SetName: s.Map},
		)
		return load, nil
	case dnatRandom:
		// The map's value is address . port, each padded to 4 bytes: the
		// lookup writes them to NFT_REG_1, that is reg32 0 and 1.
		return []expr.Any{
			&expr.Numgen{Register: reg1, Modulus: uint32(s.N), Type: unix.NFT_NG_RANDOM},
			&expr.Lookup{SourceRegister: reg1, DestRegister: reg1, IsDestRegSet: true, SetName: s.Map},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4,
				RegAddrMin: reg1, RegProtoMin: reg32At0 + 1, Specified: true},
		}, nil
	case hairpin:
		// Source and destination addresses are adjacent in the header:
		// one load gives the key "saddr . daddr".
		return []expr.Any{
			&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: offSaddr, Len: 8},
			&expr.Lookup{SourceRegister: reg1, SetName: SetHairpin},
		}, nil
	case jump:
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: s.Chain}}, nil
	case goTo:
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictGoto, Chain: s.Chain}}, nil
	case drop:
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}, nil
	case tcpReset:
		return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_TCP_RST}}, nil
	case icmpPortUnreachable:
		return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: 3 /* port unreachable */}}, nil
	}
	return nil, fmt.Errorf("unknown statement %T", s)
}

// setMark is "meta mark set (meta mark & mask) ^ xor".
func setMark(mask, xor uint32) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: reg1},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: u32(mask), Xor: u32(xor)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: reg1},
	}
}
