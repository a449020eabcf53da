package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func newNode() *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-a", ResourceVersion: "7"},
		Spec:       corev1.NodeSpec{PodCIDR: "10.244.1.0/24"},
		Status: corev1.NodeStatus{
			Capacity:  corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourcePods: resource.MustParse("110")},
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.168.1.10"}},
		},
	}
}

func TestValidateNode(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*corev1.Node)
		want   []string
	}{
		{"valid", func(*corev1.Node) {}, nil},
		{"namespaced", func(n *corev1.Node) { n.Namespace = "default" },
			[]string{"metadata.namespace: Forbidden: not allowed on this type"}},
		{"bad pod CIDR", func(n *corev1.Node) { n.Spec.PodCIDR = "10.244.1.0/33" }, []string{
			`spec.podCIDR: Invalid value: "10.244.1.0/33": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)`,
			`spec.podCIDRs[0]: Invalid value: "10.244.1.0/33": must be a valid CIDR value`,
		}},
		{"pod CIDR with host bits", func(n *corev1.Node) { n.Spec.PodCIDR = "10.244.1.7/24" }, []string{
			`spec.podCIDR: Invalid value: "10.244.1.7/24": must not have bits set beyond the prefix length`,
			`spec.podCIDRs[0]: Invalid value: "10.244.1.7/24": must not have bits set beyond the prefix length`,
		}},
		{"dual-stack pod CIDRs", func(n *corev1.Node) { n.Spec.PodCIDRs = []string{"10.244.1.0/24", "fd00:10:244:1::/64"} }, nil},
		{"two IPv4 pod CIDRs", func(n *corev1.Node) { n.Spec.PodCIDRs = []string{"10.244.1.0/24", "10.245.1.0/24"} },
			[]string{`spec.podCIDRs: Invalid value: ["10.244.1.0/24","10.245.1.0/24"]: may specify no more than one CIDR for each IP family`}},
		{"taint", func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}
		}, nil},
		{"taint without effect", func(n *corev1.Node) { n.Spec.Taints = []corev1.Taint{{Key: "dedicated"}} },
			[]string{"spec.taints[0].effect: Required value"}},
		{"taint with bad effect", func(n *corev1.Node) { n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Effect: "NoPods"}} },
			[]string{`spec.taints[0].effect: Unsupported value: "NoPods": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"`}},
		{"taint with bad key", func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: "dedicated node", Effect: corev1.TaintEffectNoSchedule}}
		}, []string{`spec.taints[0].key: Invalid value: "dedicated node": name part must consist of`}},
		{"same taint twice", func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{
				{Key: "dedicated", Value: "a", Effect: corev1.TaintEffectNoSchedule},
				{Key: "dedicated", Value: "b", Effect: corev1.TaintEffectNoSchedule},
			}
		}, []string{`spec.taints[1]: Duplicate value: {"key":"dedicated","value":"b","effect":"NoSchedule"}: taints must be unique by key and effect pair`}},
		{"same key, other effect", func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{
				{Key: "dedicated", Effect: corev1.TaintEffectNoSchedule},
				{Key: "dedicated", Effect: corev1.TaintEffectNoExecute},
			}
		}, nil},
		{"negative capacity", func(n *corev1.Node) { n.Status.Capacity[corev1.ResourceMemory] = resource.MustParse("-1") }, []string{
			`status.capacity[memory]: Invalid value: "-1": must be greater than or equal to 0`,
			`status.allocatable[memory]: Invalid value: "-1": must be greater than or equal to 0`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := newNode()
			tc.mutate(n)
			checkErrors(t, create(n), tc.want...)
		})
	}
}

func TestValidateNodeUpdate(t *testing.T) {
	tests := []struct {
		name    string
		oldCIDR string
		newCIDR string
		want    []string
	}{
		{"pod CIDR unchanged", "10.244.1.0/24", "10.244.1.0/24", nil},
		{"pod CIDR assigned", "", "10.244.1.0/24", nil},
		{"pod CIDR changed", "10.244.1.0/24", "10.244.2.0/24",
			[]string{`spec.podCIDR: Forbidden: node updates may not change podCIDR except from "" to valid`}},
		{"pod CIDR removed", "10.244.1.0/24", "",
			[]string{`spec.podCIDR: Forbidden: node updates may not change podCIDR except from "" to valid`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := newNode()
			old.Spec.PodCIDR = tc.oldCIDR
			n := old.DeepCopy()
			n.Spec.PodCIDR = tc.newCIDR
			checkErrors(t, update(n, old), tc.want...)
			// The status subresource may not move the node either.
			checkErrors(t, ValidateStatusUpdate(n, old), tc.want...)
		})
	}
}

func TestValidateNamespace(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*corev1.Namespace)
		want   []string
	}{
		{"valid", func(*corev1.Namespace) {}, nil},
		{"dots in name", func(ns *corev1.Namespace) { ns.Name = "shop.prod" },
			[]string{`metadata.name: Invalid value: "shop.prod": must not contain dots`}},
		{"namespaced", func(ns *corev1.Namespace) { ns.Namespace = "default" },
			[]string{"metadata.namespace: Forbidden: not allowed on this type"}},
		{"unknown bare finalizer", func(ns *corev1.Namespace) { ns.Spec.Finalizers = []corev1.FinalizerName{"cleanup"} },
			[]string{`spec.finalizers[0]: Invalid value: "cleanup": name is neither a standard finalizer name nor is it fully qualified`}},
		{"qualified finalizer", func(ns *corev1.Namespace) {
			ns.Spec.Finalizers = []corev1.FinalizerName{"kubernetes", "example.com/cleanup"}
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}
			tc.mutate(ns)
			checkErrors(t, create(ns), tc.want...)
		})
	}
}

func TestValidateNamespaceStatusUpdate(t *testing.T) {
	now := metav1.Now()
	tests := []struct {
		name     string
		deleting bool
		phase    corev1.NamespacePhase
		want     []string
	}{
		{"active", false, corev1.NamespaceActive, nil},
		{"terminating while deleted", true, corev1.NamespaceTerminating, nil},
		{"terminating too early", false, corev1.NamespaceTerminating,
			[]string{`status.phase: Invalid value: "Terminating": may only be 'Active' if ` + "`deletionTimestamp`" + ` is empty`}},
		{"active while deleted", true, corev1.NamespaceActive,
			[]string{`status.phase: Invalid value: "Active": may only be 'Terminating' if ` + "`deletionTimestamp`" + ` is not empty`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", ResourceVersion: "3"}}
			if tc.deleting {
				old.DeletionTimestamp = &now
			}
			ns := old.DeepCopy()
			ns.Status.Phase = tc.phase
			checkErrors(t, ValidateStatusUpdate(ns, old), tc.want...)
		})
	}
}
