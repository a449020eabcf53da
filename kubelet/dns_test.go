package kubelet

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestPodResolverConfig(t *testing.T) {
	host, err := parseResolvConf(strings.NewReader(`# the node's
nameserver 127.0.0.53
nameserver 192.0.2.53
search corp.example. lab.example
options edns0 trust-ad
`))
	if err != nil {
		t.Fatal(err)
	}
	clusterDNS := []string{"169.254.20.10"}
	pod := func(policy corev1.DNSPolicy, hostNet bool, c *corev1.PodDNSConfig) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "shop", UID: "u1"},
			Spec:       corev1.PodSpec{DNSPolicy: policy, HostNetwork: hostNet, DNSConfig: c},
		}
	}
	var longSearches []string
	for i := range 40 {
		longSearches = append(longSearches, fmt.Sprintf("d%d.example", i))
	}
	tests := []struct {
		name       string
		pod        *corev1.Pod
		clusterDNS []string
		want       string
		warnings   []string
	}{{
		name: "ClusterFirst",
		pod:  pod(corev1.DNSClusterFirst, false, nil),
		want: "nameserver 169.254.20.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local corp.example lab.example\noptions ndots:5\n",
	}, {
		name: "no policy is ClusterFirst",
		pod:  pod("", false, nil),
		want: "nameserver 169.254.20.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local corp.example lab.example\noptions ndots:5\n",
	}, {
		name: "Default: the node's, without loopback resolvers",
		pod:  pod(corev1.DNSDefault, false, nil),
		want: "nameserver 192.0.2.53\nsearch corp.example lab.example\noptions edns0 trust-ad\n",
	}, {
		name: "ClusterFirst on the host network is Default, loopback resolvers included",
		pod:  pod(corev1.DNSClusterFirst, true, nil),
		want: "nameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch corp.example lab.example\noptions edns0 trust-ad\n",
	}, {
		name: "ClusterFirstWithHostNet",
		pod:  pod(corev1.DNSClusterFirstWithHostNet, true, nil),
		want: "nameserver 169.254.20.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local corp.example lab.example\noptions ndots:5\n",
	}, {
		name: "None with dnsConfig",
		pod: pod(corev1.DNSNone, false, &corev1.PodDNSConfig{
			Nameservers: []string{"192.0.2.1"}, Searches: []string{"a.example"},
			Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("2")}, {Name: "edns0"}},
		}),
		want: "nameserver 192.0.2.1\nsearch a.example\noptions ndots:2 edns0\n",
	}, {
		name: "dnsConfig merged into ClusterFirst",
		pod: pod(corev1.DNSClusterFirst, false, &corev1.PodDNSConfig{
			Nameservers: []string{"192.0.2.1", "169.254.20.10"}, Searches: []string{"svc.cluster.local", "extra.example"},
			Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("1")}, {Name: "single-request"}},
		}),
		want: "nameserver 169.254.20.10\nnameserver 192.0.2.1\nsearch shop.svc.cluster.local svc.cluster.local cluster.local corp.example lab.example extra.example\noptions ndots:1 single-request\n",
	}, {
		name:       "no cluster DNS: Default, with a warning",
		pod:        pod(corev1.DNSClusterFirst, false, nil),
		clusterDNS: []string{},
		want:       "nameserver 192.0.2.53\nsearch corp.example lab.example\noptions edns0 trust-ad\n",
		warnings:   []string{`MissingClusterDNS: pod: "p_shop(u1)". kubelet does not have ClusterDNS IP configured and cannot create Pod using "ClusterFirst" policy. Falling back to "Default" policy.`},
	}, {
		name: "too many nameservers",
		pod:  pod(corev1.DNSClusterFirst, false, &corev1.PodDNSConfig{Nameservers: []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}}),
		want: "nameserver 169.254.20.10\nnameserver 192.0.2.1\nnameserver 192.0.2.2\nsearch shop.svc.cluster.local svc.cluster.local cluster.local corp.example lab.example\noptions ndots:5\n",
		warnings: []string{
			"DNSConfigForming: Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: 169.254.20.10 192.0.2.1 192.0.2.2",
		},
	}, {
		name: "too many search domains",
		pod:  pod(corev1.DNSNone, false, &corev1.PodDNSConfig{Nameservers: []string{"192.0.2.1"}, Searches: append([]string{strings.Repeat("x", 254)}, longSearches...)}),
		want: "nameserver 192.0.2.1\nsearch " + strings.Join(longSearches[:31], " ") + "\n",
		warnings: []string{
			"DNSConfigForming: Search Line limits were exceeded, some search paths have been omitted, the applied search line is: " + strings.Join(longSearches[:31], " "),
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dns := clusterDNS
			if tc.clusterDNS != nil {
				dns = tc.clusterDNS
			}
			rc, warnings := podResolverConfig(tc.pod, host, dns, "cluster.local")
			got := strings.TrimPrefix(string(rc.bytes()), "# Written by Skiff's kubelet.\n")
			if got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
			var gotW []string
			for _, w := range warnings {
				gotW = append(gotW, w.reason+": "+w.message)
			}
			if strings.Join(gotW, "\n") != strings.Join(tc.warnings, "\n") {
				t.Errorf("warnings %q, want %q", gotW, tc.warnings)
			}
		})
	}
}

// The search line is cut to 2048 characters, from the end.
func TestFitSearchesLength(t *testing.T) {
	var in []string
	for i := range 20 {
		in = append(in, fmt.Sprintf("%03d.%s", i, strings.Repeat("a", 200)))
	}
	got, cut := fitSearches(in)
	if !cut || len(strings.Join(got, " ")) > maxDNSSearchListChars || len(got) != 9 {
		t.Errorf("got %d domains of %d characters (cut %v), want the first 9 within %d", len(got), len(strings.Join(got, " ")), cut, maxDNSSearchListChars)
	}
}
