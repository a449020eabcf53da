package algorithm

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestPodRequests(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	container := func(cpu, memory string) corev1.Container {
		return corev1.Container{Resources: corev1.ResourceRequirements{Requests: resourceList(cpu, memory)}}
	}
	sidecar := func(cpu, memory string) corev1.Container {
		c := container(cpu, memory)
		c.RestartPolicy = &always
		return c
	}
	pod := func(spec corev1.PodSpec) *corev1.Pod { return &corev1.Pod{Spec: spec} }
	const Mi = 1 << 20
	tests := []struct {
		name    string
		pod     *corev1.Pod
		want    Resources
		nonZero Resources
	}{
		{"no containers", pod(corev1.PodSpec{}), Resources{Pods: 1}, Resources{Pods: 1}},
		{"containers add up", pod(corev1.PodSpec{Containers: []corev1.Container{container("100m", "64Mi"), container("250m", "128Mi")}}),
			Resources{350, 192 * Mi, 1}, Resources{350, 192 * Mi, 1}},
		{"missing requests count only when scoring", pod(corev1.PodSpec{Containers: []corev1.Container{container("", ""), container("1", "")}}),
			Resources{1000, 0, 1}, Resources{1100, 400 * Mi, 1}},
		{"init container larger than the sum", pod(corev1.PodSpec{
			InitContainers: []corev1.Container{container("2", "64Mi")},
			Containers:     []corev1.Container{container("500m", "1Gi")},
		}), Resources{2000, 1024 * Mi, 1}, Resources{2000, 1024 * Mi, 1}},
		{"largest init container, not their sum", pod(corev1.PodSpec{
			InitContainers: []corev1.Container{container("1", "64Mi"), container("1500m", "32Mi")},
			Containers:     []corev1.Container{container("100m", "16Mi")},
		}), Resources{1500, 64 * Mi, 1}, Resources{1500, 64 * Mi, 1}},
		{"sidecars run next to the containers and later init containers", pod(corev1.PodSpec{
			InitContainers: []corev1.Container{sidecar("500m", "100Mi"), container("1", "10Mi")},
			Containers:     []corev1.Container{container("200m", "50Mi")},
		}), Resources{1500, 150 * Mi, 1}, Resources{1500, 150 * Mi, 1}},
		{"overhead is added", pod(corev1.PodSpec{
			Containers: []corev1.Container{container("1", "1Gi")},
			Overhead:   resourceList("250m", "120Mi"),
		}), Resources{1250, 1144 * Mi, 1}, Resources{1250, 1144 * Mi, 1}},
		{"pod-level requests replace the containers'", pod(corev1.PodSpec{
			Containers: []corev1.Container{container("1", "1Gi"), container("", "")},
			Resources:  &corev1.ResourceRequirements{Requests: resourceList("3", "")},
		}), Resources{3000, 1024 * Mi, 1}, Resources{3000, 1224 * Mi, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PodRequests(tt.pod); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if got := podRequests(tt.pod, true); got != tt.nonZero {
				t.Errorf("non-zero: got %v, want %v", got, tt.nonZero)
			}
		})
	}
}

func TestNewNodeInfo(t *testing.T) {
	ni := NewNodeInfo(testNode("n", "3500m", "2Gi", withPodLimit("30")))
	if want := (Resources{3500, 2 << 30, 30}); ni.Allocatable != want {
		t.Errorf("got allocatable %v, want %v", ni.Allocatable, want)
	}
	if ni.Requested != (Resources{}) || len(ni.Pods) != 0 {
		t.Errorf("got %v and %d pods, want an empty node", ni.Requested, len(ni.Pods))
	}
	ni.AddPod(testPod("a", "1", "1Gi"))
	ni.SetNode(testNode("n", "8", "16Gi"))
	if ni.Allocatable.MilliCPU != 8000 || len(ni.Pods) != 1 || ni.Requested.MilliCPU != 1000 {
		t.Errorf("after SetNode: got allocatable %v, requested %v, %d pods", ni.Allocatable, ni.Requested, len(ni.Pods))
	}
}

func TestAddRemovePod(t *testing.T) {
	ni := NewNodeInfo(testNode("n", "4", "8Gi"))
	a := testPod("a", "1", "1Gi", withOwner("rs"), withHostPorts(corev1.ContainerPort{HostPort: 80, ContainerPort: 80}))
	b := testPod("b", "500m", "", withOwner("rs"), withHostPorts(corev1.ContainerPort{HostPort: 53, ContainerPort: 53, Protocol: corev1.ProtocolUDP, HostIP: "10.0.0.1"}))
	c := testPod("c", "", "", withHostPorts(corev1.ContainerPort{HostPort: 80, ContainerPort: 80}))
	ni.AddPod(a)
	ni.AddPod(b)
	ni.AddPod(c)

	check := func(step string, requested, nonZero Resources, ports []string, owned int) {
		t.Helper()
		if ni.Requested != requested {
			t.Errorf("%s: got requested %v, want %v", step, ni.Requested, requested)
		}
		if ni.NonZeroRequested != nonZero {
			t.Errorf("%s: got non-zero requested %v, want %v", step, ni.NonZeroRequested, nonZero)
		}
		if len(ni.UsedPorts) != len(ports) {
			t.Errorf("%s: got ports %v, want %v", step, ni.UsedPorts, ports)
		}
		for _, p := range ports {
			if !ni.UsedPorts[p] {
				t.Errorf("%s: got ports %v, want %v", step, ni.UsedPorts, ports)
			}
		}
		if ni.ownerPods["rs"] != owned {
			t.Errorf("%s: got %d pods of rs, want %d", step, ni.ownerPods["rs"], owned)
		}
	}
	const Mi = 1 << 20
	check("added", Resources{1500, 1024 * Mi, 3}, Resources{1600, 1424 * Mi, 3}, []string{"TCP/0.0.0.0/80", "UDP/10.0.0.1/53"}, 2)

	// Adding the same UID again replaces the pod rather than counting it twice.
	bigger := testPod("a", "2", "1Gi", withOwner("rs"), withHostPorts(corev1.ContainerPort{HostPort: 80, ContainerPort: 80}))
	ni.AddPod(bigger)
	check("re-added", Resources{2500, 1024 * Mi, 3}, Resources{2600, 1424 * Mi, 3}, []string{"TCP/0.0.0.0/80", "UDP/10.0.0.1/53"}, 2)

	clone := ni.Clone()

	// Removing by UID subtracts what the stored copy added, even when the
	// caller passes an older version. Port 80 stays taken by c.
	if !ni.RemovePod(a) {
		t.Fatal("RemovePod(a) = false, want true")
	}
	check("removed a", Resources{500, 0, 2}, Resources{600, 400 * Mi, 2}, []string{"TCP/0.0.0.0/80", "UDP/10.0.0.1/53"}, 1)
	if ni.RemovePod(a) {
		t.Error("RemovePod(a) again = true, want false")
	}
	ni.RemovePod(c)
	ni.RemovePod(b)
	check("removed all", Resources{}, Resources{}, nil, 0)
	if len(ni.Pods) != 0 {
		t.Errorf("got %d pods, want 0", len(ni.Pods))
	}

	// The clone kept its own state.
	if len(clone.Pods) != 3 || clone.Requested.MilliCPU != 2500 || !clone.UsedPorts["TCP/0.0.0.0/80"] || clone.ownerPods["rs"] != 2 {
		t.Errorf("clone changed with the original: %d pods, %v, ports %v, owners %v", len(clone.Pods), clone.Requested, clone.UsedPorts, clone.ownerPods)
	}
	clone.AddPod(testPod("d", "1", ""))
	if len(ni.Pods) != 0 {
		t.Error("original changed with the clone")
	}
}
