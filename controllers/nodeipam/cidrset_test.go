package nodeipam_test

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/skiffdev/skiff/controllers/nodeipam"
)

func newSet(t *testing.T, cluster string, mask int) *nodeipam.CIDRSet {
	t.Helper()
	s, err := nodeipam.NewCIDRSet(netip.MustParsePrefix(cluster), mask)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func allocate(t *testing.T, s *nodeipam.CIDRSet, owner, want string) {
	t.Helper()
	got, err := s.Allocate(owner)
	if err != nil || got.String() != want {
		t.Fatalf("Allocate(%q): got %v, %v, want %s", owner, got, err, want)
	}
}

func TestValidateRange(t *testing.T) {
	tests := []struct {
		cluster string
		mask    int
		wantErr string
	}{
		{"10.244.0.0/16", 24, ""},
		{"10.244.0.0/16", 16, ""},
		{"10.0.0.0/8", 24, ""},
		{"10.244.0.0/22", 30, ""},
		{"fd00::/48", 64, "must be an IPv4 CIDR"},
		{"10.244.1.0/16", 24, "must be a network address (10.244.0.0/16)"},
		{"10.244.0.0/16", 15, "must be between 16 (the cluster CIDR's) and 30"},
		{"10.244.0.0/16", 31, "must be between 16 (the cluster CIDR's) and 30"},
		{"10.0.0.0/8", 25, "may be at most 16 more than the cluster CIDR's (8)"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s-%d", tt.cluster, tt.mask), func(t *testing.T) {
			err := nodeipam.ValidateRange(netip.MustParsePrefix(tt.cluster), tt.mask)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestAllocateNextFitAndFull(t *testing.T) {
	s := newSet(t, "10.244.0.0/22", 24)
	if s.Size() != 4 {
		t.Fatalf("Size: got %d, want 4", s.Size())
	}
	allocate(t, s, "a", "10.244.0.0/24")
	allocate(t, s, "b", "10.244.1.0/24")
	allocate(t, s, "a", "10.244.0.0/24") // again: the same
	allocate(t, s, "c", "10.244.2.0/24")
	// A block just released is handed out after the untouched ones.
	s.Release("b")
	allocate(t, s, "d", "10.244.3.0/24")
	allocate(t, s, "e", "10.244.1.0/24")
	if _, err := s.Allocate("f"); !errors.Is(err, nodeipam.ErrFull) {
		t.Fatalf("Allocate on a full set: got %v, want ErrFull", err)
	}
	if s.Used() != 4 {
		t.Errorf("Used: got %d, want 4", s.Used())
	}
	if !s.Release("a") || s.Release("a") {
		t.Error("Release: want true once, then false")
	}
	allocate(t, s, "f", "10.244.0.0/24")
}

func TestOccupy(t *testing.T) {
	s := newSet(t, "10.244.0.0/16", 24)
	occupy := func(owner, cidr string, wantCollisions []string, wantInside bool) {
		t.Helper()
		got, inside := s.Occupy(owner, netip.MustParsePrefix(cidr))
		if !slices.Equal(got, wantCollisions) || inside != wantInside {
			t.Errorf("Occupy(%q, %s): got %v, %v, want %v, %v", owner, cidr, got, inside, wantCollisions, wantInside)
		}
	}
	occupy("kubelet", "10.244.0.0/24", nil, true)
	occupy("wide", "10.244.2.0/23", nil, true)     // blocks 2 and 3
	occupy("narrow", "10.244.4.128/25", nil, true) // inside block 4
	occupy("dup", "10.244.0.0/24", []string{"kubelet"}, true)
	occupy("over", "10.244.3.0/24", []string{"wide"}, true)
	occupy("away", "192.168.0.0/24", nil, false)
	occupy("v6", "fd00::/64", nil, false)
	occupy("huge", "10.0.0.0/8", []string{"dup", "kubelet", "narrow", "over", "wide"}, false)
	s.Release("huge")
	if p, ok := s.Get("away"); !ok || p.String() != "192.168.0.0/24" {
		t.Errorf("Get(away): got %v, %v", p, ok)
	}
	if got := s.Used(); got != 4 {
		t.Errorf("Used: got %d, want 4 (blocks 0, 2, 3, 4)", got)
	}
	// Block 0 stays taken until both of its holders are gone.
	s.Release("kubelet")
	allocate(t, s, "n1", "10.244.1.0/24")
	allocate(t, s, "n2", "10.244.5.0/24")
	s.Release("dup")
	// Occupy replaces what an owner held.
	occupy("n2", "10.244.6.0/24", nil, true)
	if got := s.Used(); got != 5 {
		t.Errorf("Used: got %d, want 5 (blocks 1, 2, 3, 4, 6)", got)
	}
}
