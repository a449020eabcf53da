package simnodes

import (
	"fmt"
	"net/netip"
	"testing"
)

func TestAddressPlan(t *testing.T) {
	plan, err := newAddressPlan("10.128.0.0/10", 5000, 110)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		got  fmt.Stringer
		want string
	}{
		{plan.block(0), "10.128.0.0/24"},
		{plan.nodeIP(0), "10.128.0.1"},
		{plan.podIP(0, 0), "10.128.0.2"},
		{plan.podIP(0, plan.podIPs()-1), "10.128.0.254"},
		{plan.block(4999), "10.147.135.0/24"},
		{plan.nodeIP(300), "10.129.44.1"},
	}
	for _, tt := range tests {
		if tt.got.String() != tt.want {
			t.Errorf("got %v, want %s", tt.got, tt.want)
		}
	}
	if n, ok := plan.podIndex(3, netip.MustParseAddr("10.128.3.7")); !ok || n != 5 {
		t.Errorf("podIndex(3, 10.128.3.7): got %d %v, want 5 true", n, ok)
	}
	for _, ip := range []string{"10.128.3.1", "10.128.3.255", "10.128.4.7", "fd00::1"} {
		if _, ok := plan.podIndex(3, netip.MustParseAddr(ip)); ok {
			t.Errorf("podIndex(3, %s): got a pod address", ip)
		}
	}

	big, err := newAddressPlan("10.0.0.0/8", 2, 300)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := big.block(1).String(), "10.0.2.0/23"; got != want {
		t.Errorf("block for 300 pods: got %s, want %s", got, want)
	}
}

func TestIPAM(t *testing.T) {
	plan, err := newAddressPlan("10.0.0.0/16", 4, 110)
	if err != nil {
		t.Fatal(err)
	}
	m := newIPAM(plan)
	seen := map[netip.Addr]string{}
	for i := range plan.podIPs() {
		key := fmt.Sprintf("ns/p%d", i)
		ip, err := m.assign(key, 1)
		if err != nil {
			t.Fatalf("pod %d: %v", i, err)
		}
		if other, dup := seen[ip]; dup {
			t.Fatalf("%s and %s both got %s", other, key, ip)
		}
		seen[ip] = key
		if again, _ := m.assign(key, 1); again != ip {
			t.Fatalf("%s: second assign got %s, want %s", key, again, ip)
		}
	}
	if _, err := m.assign("ns/one-too-many", 1); err == nil {
		t.Fatalf("a full block handed out another address")
	}

	// A released address is handed out again only when it is the last
	// one free.
	released, _ := m.assign("ns/p7", 1)
	m.release("ns/p7")
	if got, _ := m.assign("ns/new", 1); got != released {
		t.Errorf("only free address: got %s, want %s", got, released)
	}
	if ip, _ := m.assign("ns/other-node", 2); !plan.block(2).Contains(ip) {
		t.Errorf("pod on node 2: got %s, outside %s", ip, plan.block(2))
	}

	// Addresses found in pods' status are kept; a clash is refused.
	r := newIPAM(plan)
	held := plan.podIP(0, 0)
	if !r.reserve("ns/old", 0, held) {
		t.Errorf("reserve of a free address refused")
	}
	if r.reserve("ns/clash", 0, held) {
		t.Errorf("reserve of a held address accepted")
	}
	if r.reserve("ns/foreign", 0, plan.nodeIP(0)) {
		t.Errorf("reserve of the node's address accepted")
	}
	if got, _ := r.assign("ns/new", 0); got == held {
		t.Errorf("assign handed out the reserved %s", held)
	}
}

func TestImageID(t *testing.T) {
	tests := []struct{ image, repo string }{
		{"nginx", "nginx@sha256:"},
		{"nginx:1.27", "nginx@sha256:"},
		{"registry.example.com:5000/team/app", "registry.example.com:5000/team/app@sha256:"},
		{"registry.example.com:5000/team/app:v2", "registry.example.com:5000/team/app@sha256:"},
		{"busybox@sha256:abcd", "busybox@sha256:abcd"},
	}
	for _, tt := range tests {
		got := imageID(tt.image)
		if len(got) < len(tt.repo) || got[:len(tt.repo)] != tt.repo {
			t.Errorf("imageID(%q): got %q, want it to start with %q", tt.image, got, tt.repo)
		}
	}
}
