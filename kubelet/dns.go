package kubelet

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Kubernetes' limits on what a pod's resolv.conf may hold (those of its
// ExpandedDNSConfig, now the only ones): resolvers read no more.
const (
	maxDNSNameservers     = 3
	maxDNSSearchPaths     = 32
	maxDNSSearchListChars = 2048
)

// resolverConfig is the content of a resolv.conf.
type resolverConfig struct {
	nameservers, searches, options []string
}

// dnsEvent is a warning about a pod's DNS configuration, recorded as an
// event on the pod.
type dnsEvent struct {
	reason, message string
}

// resolvConf is the pod's /etc/resolv.conf. The warnings about it
// (limits exceeded, no cluster DNS) are recorded as events when it
// differs from what the pod has, so once per change rather than once
// per sync.
func (k *Kubelet) resolvConf(pod *corev1.Pod) []byte {
	host, err := readResolvConf(k.cfg.ResolvConf)
	if err != nil {
		// As if the node had no resolvers: the pod still starts, and
		// names outside the cluster fail inside it.
		host = resolverConfig{}
	}
	rc, warnings := podResolverConfig(pod, host, k.cfg.ClusterDNS, k.cfg.ClusterDomain)
	b := rc.bytes()
	if k.events != nil && len(warnings) > 0 {
		if old, err := os.ReadFile(filepath.Join(k.podEtcDir(pod.UID), "resolv.conf")); err != nil || !bytes.Equal(old, b) {
			for _, w := range warnings {
				k.events.Eventf(pod, corev1.EventTypeWarning, w.reason, "%s", w.message)
			}
		}
	}
	return b
}

// podResolverConfig decides a pod's resolver configuration as
// Kubernetes' kubelet does, from its dnsPolicy and dnsConfig, the node's
// resolv.conf (host) and the kubelet's --cluster-dns and
// --cluster-domain:
//
//   - ClusterFirst (the default), and ClusterFirstWithHostNet: the
//     cluster's nameservers; search NAMESPACE.svc.DOMAIN svc.DOMAIN
//     DOMAIN and then the node's search domains; options ndots:5. A
//     hostNetwork pod with ClusterFirst gets Default instead, and so does
//     every ClusterFirst pod when the kubelet has no cluster DNS (with a
//     MissingClusterDNS warning).
//   - Default: the node's configuration. Loopback nameservers (a local
//     caching resolver such as systemd-resolved's 127.0.0.53) are left
//     out for pods with a network namespace of their own, where they
//     would be the pod's own loopback.
//   - None: nothing but the pod's dnsConfig.
//
// The pod's dnsConfig is then added to the first two: its nameservers
// and searches after the others (without duplicates), its options
// replacing those of the same name. At most 3 nameservers and 32 search
// domains of 2048 characters in all are kept (search domains over 253
// characters are dropped), with a DNSConfigForming warning when some are
// left out.
func podResolverConfig(pod *corev1.Pod, host resolverConfig, clusterDNS []string, domain string) (resolverConfig, []dnsEvent) {
	var warnings []dnsEvent
	var rc resolverConfig
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = corev1.DNSClusterFirst
	}
	if policy == corev1.DNSClusterFirst && pod.Spec.HostNetwork {
		policy = corev1.DNSDefault
	}
	if (policy == corev1.DNSClusterFirst || policy == corev1.DNSClusterFirstWithHostNet) && len(clusterDNS) == 0 {
		warnings = append(warnings, dnsEvent{"MissingClusterDNS", fmt.Sprintf("pod: %q. kubelet does not have ClusterDNS IP configured and cannot create Pod using %q policy. Falling back to %q policy.",
			pod.Name+"_"+pod.Namespace+"("+string(pod.UID)+")", corev1.DNSClusterFirst, corev1.DNSDefault)})
		policy = corev1.DNSDefault
	}
	switch policy {
	case corev1.DNSClusterFirst, corev1.DNSClusterFirstWithHostNet:
		rc.nameservers = slices.Clone(clusterDNS)
		if domain != "" {
			rc.searches = []string{pod.Namespace + ".svc." + domain, "svc." + domain, domain}
		}
		rc.searches = omitDuplicates(append(rc.searches, host.searches...))
		rc.options = []string{"ndots:5"}
	case corev1.DNSDefault:
		for _, ns := range host.nameservers {
			if a, err := netip.ParseAddr(ns); err == nil && a.IsLoopback() && !pod.Spec.HostNetwork {
				continue
			}
			rc.nameservers = append(rc.nameservers, ns)
		}
		rc.searches = slices.Clone(host.searches)
		rc.options = slices.Clone(host.options)
	case corev1.DNSNone:
	}
	if c := pod.Spec.DNSConfig; c != nil {
		rc.nameservers = omitDuplicates(append(rc.nameservers, c.Nameservers...))
		rc.searches = omitDuplicates(append(rc.searches, c.Searches...))
		rc.options = mergeDNSOptions(rc.options, c.Options)
	}

	if len(rc.nameservers) > maxDNSNameservers {
		rc.nameservers = rc.nameservers[:maxDNSNameservers]
		warnings = append(warnings, dnsEvent{"DNSConfigForming", "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: " + strings.Join(rc.nameservers, " ")})
	}
	var cut bool
	rc.searches, cut = fitSearches(rc.searches)
	if cut {
		warnings = append(warnings, dnsEvent{"DNSConfigForming", "Search Line limits were exceeded, some search paths have been omitted, the applied search line is: " + strings.Join(rc.searches, " ")})
	}
	return rc, warnings
}

// fitSearches keeps the search domains within Kubernetes' limits and
// reports whether some were left out.
func fitSearches(searches []string) ([]string, bool) {
	cut := false
	if len(searches) > maxDNSSearchPaths {
		searches, cut = searches[:maxDNSSearchPaths], true
	}
	// Some resolvers (glibc 2.28) abort on a search domain over 253
	// characters.
	kept := searches[:0:0]
	for _, s := range searches {
		if len(s) > validation.DNS1123SubdomainMaxLength {
			cut = true
			continue
		}
		kept = append(kept, s)
	}
	for len(kept) > 0 && len(strings.Join(kept, " ")) > maxDNSSearchListChars {
		kept, cut = kept[:len(kept)-1], true
	}
	return kept, cut
}

func omitDuplicates(in []string) []string {
	var out []string
	for _, s := range in {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// mergeDNSOptions adds the pod's options to the base ones; an option of
// the pod replaces the base option of the same name. The order is the
// base's, then the pod's new names.
func mergeDNSOptions(base []string, pod []corev1.PodDNSConfigOption) []string {
	values := map[string]string{}
	var names []string
	set := func(name, value string) {
		if _, ok := values[name]; !ok {
			names = append(names, name)
		}
		values[name] = value
	}
	for _, o := range base {
		name, value, _ := strings.Cut(o, ":")
		set(name, value)
	}
	for _, o := range pod {
		set(o.Name, ptrValue(o.Value))
	}
	var out []string
	for _, n := range names {
		if v := values[n]; v != "" {
			out = append(out, n+":"+v)
		} else {
			out = append(out, n)
		}
	}
	return out
}

func ptrValue(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// bytes is the resolv.conf file.
func (rc resolverConfig) bytes() []byte {
	var b bytes.Buffer
	b.WriteString("# Written by Skiff's kubelet.\n")
	for _, ns := range rc.nameservers {
		fmt.Fprintf(&b, "nameserver %s\n", ns)
	}
	if len(rc.searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(rc.searches, " "))
	}
	if len(rc.options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(rc.options, " "))
	}
	return b.Bytes()
}

// readResolvConf reads a resolv.conf as resolvers do: nameserver lines
// add up, the last search line and the last options line win, comments
// start with # or ;.
func readResolvConf(path string) (resolverConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		return resolverConfig{}, err
	}
	defer f.Close()
	return parseResolvConf(io.LimitReader(f, 1<<20))
}

func parseResolvConf(r io.Reader) (resolverConfig, error) {
	var rc resolverConfig
	s := bufio.NewScanner(r)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") || strings.HasPrefix(fields[0], ";") {
			continue
		}
		switch fields[0] {
		case "nameserver":
			if len(fields) > 1 {
				rc.nameservers = append(rc.nameservers, fields[1])
			}
		case "search", "domain": // the last of them wins
			rc.searches = nil
			for _, d := range fields[1:] {
				// The same domain with and without its trailing dot is
				// one, for the limits.
				rc.searches = append(rc.searches, strings.TrimSuffix(d, "."))
			}
		case "options":
			rc.options = slices.Clone(fields[1:])
		}
	}
	return rc, s.Err()
}
