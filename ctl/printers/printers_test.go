package printers

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files in testdata/")

// now is the fixed clock every table in these tests is rendered at.
var now = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// ago is a timestamp d before now.
func ago(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }

func agoPtr(d time.Duration) *metav1.Time { t := ago(d); return &t }

func objMeta(ns, name string, age time.Duration, labels map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: ago(age), Labels: labels}
}

// golden compares got with testdata/name.golden, or rewrites the file
// with -rewrite.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *rewrite {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -rewrite to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (rerun with -rewrite if the change is right)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// render builds the table of objs and writes it as get does, with a
// header.
func render(objs []runtime.Object, opts Options, now time.Time) (string, error) {
	t, err := NewTable(objs, opts, now)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := NewTableWriter(&buf).Write(t); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// Containers in the states kubelets report.
var (
	running = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: ago(time.Hour)}}
	waiting = func(reason string) corev1.ContainerState {
		return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}
	}
	terminated = func(reason string, code, signal int32) corev1.ContainerState {
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: code, Signal: signal, FinishedAt: ago(time.Minute)}}
	}
	// restarted is a last state: the container ended d ago.
	restarted = func(d time.Duration) corev1.ContainerState {
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 1, FinishedAt: ago(d)}}
	}
)

func containers(names ...string) []corev1.Container {
	var cs []corev1.Container
	for _, n := range names {
		cs = append(cs, corev1.Container{Name: n, Image: "registry.local/" + n + ":1.0"})
	}
	return cs
}

func status(name string, state corev1.ContainerState, ready bool) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, State: state, Ready: ready}
}

func readyCondition(s corev1.ConditionStatus) corev1.PodCondition {
	return corev1.PodCondition{Type: corev1.PodReady, Status: s}
}

// testPods covers the pod STATUS cases kubectl distinguishes.
func testPods() []runtime.Object {
	always := corev1.ContainerRestartPolicyAlways
	started := true
	crash := status("app", waiting("CrashLoopBackOff"), false)
	crash.RestartCount = 5
	crash.LastTerminationState = restarted(30 * time.Second)
	restartedApp := status("app", running, true)
	restartedApp.RestartCount = 2
	restartedApp.LastTerminationState = restarted(5 * time.Minute)
	initCrash := status("migrate", waiting("CrashLoopBackOff"), false)
	initCrash.RestartCount = 3
	initCrash.LastTerminationState = restarted(2 * time.Minute)

	return []runtime.Object{
		&corev1.Pod{ObjectMeta: objMeta("default", "pending", 5*time.Second, map[string]string{"app": "web"}),
			Spec:   corev1.PodSpec{Containers: containers("app")},
			Status: corev1.PodStatus{Phase: corev1.PodPending}},
		&corev1.Pod{ObjectMeta: objMeta("default", "creating", 90*time.Second, map[string]string{"app": "web", "tier": "front"}),
			Spec: corev1.PodSpec{Containers: containers("app"), NodeName: "node-1"},
			Status: corev1.PodStatus{Phase: corev1.PodPending,
				ContainerStatuses: []corev1.ContainerStatus{status("app", waiting("ContainerCreating"), false)}}},
		&corev1.Pod{ObjectMeta: objMeta("default", "running", 3*time.Hour+12*time.Minute, map[string]string{"app": "web"}),
			Spec: corev1.PodSpec{Containers: containers("app", "proxy"), NodeName: "node-1"},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.1.7", PodIPs: []corev1.PodIP{{IP: "10.244.1.7"}},
				Conditions:        []corev1.PodCondition{readyCondition(corev1.ConditionTrue)},
				ContainerStatuses: []corev1.ContainerStatus{restartedApp, status("proxy", running, true)}}},
		&corev1.Pod{ObjectMeta: objMeta("shop", "crashloop", 10*time.Minute, nil),
			Spec: corev1.PodSpec{Containers: containers("app"), NodeName: "node-2"},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIPs: []corev1.PodIP{{IP: "10.244.2.3"}},
				ContainerStatuses: []corev1.ContainerStatus{crash}}},
		&corev1.Pod{ObjectMeta: objMeta("shop", "completed", 3*24*time.Hour, nil),
			Spec: corev1.PodSpec{Containers: containers("job"), NodeName: "node-2"},
			Status: corev1.PodStatus{Phase: corev1.PodSucceeded,
				ContainerStatuses: []corev1.ContainerStatus{status("job", terminated("Completed", 0, 0), false)}}},
		&corev1.Pod{ObjectMeta: objMeta("shop", "failed", 40*24*time.Hour, nil),
			Spec: corev1.PodSpec{Containers: containers("job"), NodeName: "node-2"},
			Status: corev1.PodStatus{Phase: corev1.PodFailed,
				ContainerStatuses: []corev1.ContainerStatus{status("job", terminated("Error", 1, 0), false)}}},
		&corev1.Pod{ObjectMeta: objMeta("shop", "killed", time.Hour, nil),
			Spec: corev1.PodSpec{Containers: containers("job"), NodeName: "node-2"},
			Status: corev1.PodStatus{Phase: corev1.PodFailed,
				ContainerStatuses: []corev1.ContainerStatus{status("job", terminated("", 137, 9), false)}}},
		&corev1.Pod{
			ObjectMeta: func() metav1.ObjectMeta {
				m := objMeta("default", "terminating", 2*time.Hour, nil)
				m.DeletionTimestamp = agoPtr(10 * time.Second)
				return m
			}(),
			Spec: corev1.PodSpec{Containers: containers("app"), NodeName: "node-1"},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIPs: []corev1.PodIP{{IP: "10.244.1.9"}},
				Conditions:        []corev1.PodCondition{readyCondition(corev1.ConditionTrue)},
				ContainerStatuses: []corev1.ContainerStatus{status("app", running, true)}}},
		&corev1.Pod{
			ObjectMeta: func() metav1.ObjectMeta {
				m := objMeta("default", "lost", 2*time.Hour, nil)
				m.DeletionTimestamp = agoPtr(10 * time.Second)
				return m
			}(),
			Spec: corev1.PodSpec{Containers: containers("app"), NodeName: "node-3"},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, Reason: "NodeLost",
				ContainerStatuses: []corev1.ContainerStatus{status("app", running, true)}}},
		&corev1.Pod{ObjectMeta: objMeta("default", "init-running", 20*time.Second, nil),
			Spec: corev1.PodSpec{InitContainers: containers("fetch", "migrate"), Containers: containers("app"), NodeName: "node-1"},
			Status: corev1.PodStatus{Phase: corev1.PodPending,
				InitContainerStatuses: []corev1.ContainerStatus{
					status("fetch", terminated("Completed", 0, 0), false),
					status("migrate", running, false),
				},
				ContainerStatuses: []corev1.ContainerStatus{status("app", waiting("PodInitializing"), false)}}},
		&corev1.Pod{ObjectMeta: objMeta("default", "init-crash", 8*time.Minute, nil),
			Spec: corev1.PodSpec{InitContainers: containers("fetch", "migrate"), Containers: containers("app"), NodeName: "node-1"},
			Status: corev1.PodStatus{Phase: corev1.PodPending,
				InitContainerStatuses: []corev1.ContainerStatus{
					status("fetch", terminated("Completed", 0, 0), false),
					initCrash,
				},
				ContainerStatuses: []corev1.ContainerStatus{status("app", waiting("PodInitializing"), false)}}},
		&corev1.Pod{ObjectMeta: objMeta("default", "init-error", 8*time.Minute, nil),
			Spec: corev1.PodSpec{InitContainers: containers("fetch"), Containers: containers("app"), NodeName: "node-1"},
			Status: corev1.PodStatus{Phase: corev1.PodPending,
				InitContainerStatuses: []corev1.ContainerStatus{status("fetch", terminated("Error", 2, 0), false)}}},
		&corev1.Pod{ObjectMeta: objMeta("default", "sidecar", 7*time.Hour+59*time.Minute, nil),
			Spec: corev1.PodSpec{
				InitContainers: []corev1.Container{{Name: "log", Image: "registry.local/log:1.0", RestartPolicy: &always}},
				Containers:     containers("app"), NodeName: "node-1",
				ReadinessGates: []corev1.PodReadinessGate{{ConditionType: "example.com/lb"}, {ConditionType: "example.com/dns"}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIPs: []corev1.PodIP{{IP: "10.244.1.11"}}, NominatedNodeName: "node-2",
				Conditions: []corev1.PodCondition{
					{Type: corev1.PodInitialized, Status: corev1.ConditionTrue},
					{Type: "example.com/lb", Status: corev1.ConditionTrue},
					readyCondition(corev1.ConditionFalse),
				},
				InitContainerStatuses: []corev1.ContainerStatus{{Name: "log", State: running, Ready: true, Started: &started}},
				ContainerStatuses:     []corev1.ContainerStatus{status("app", running, true)}}},
		&corev1.Pod{ObjectMeta: objMeta("default", "half-done", 30*time.Minute, nil),
			Spec: corev1.PodSpec{Containers: containers("worker", "app"), NodeName: "node-1"},
			Status: corev1.PodStatus{Phase: corev1.PodRunning,
				Conditions: []corev1.PodCondition{readyCondition(corev1.ConditionFalse)},
				ContainerStatuses: []corev1.ContainerStatus{
					status("worker", terminated("Completed", 0, 0), false),
					status("app", running, true),
				}}},
		&corev1.Pod{ObjectMeta: objMeta("default", "gated", 3*time.Second, nil),
			Spec: corev1.PodSpec{Containers: containers("app")},
			Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonSchedulingGated}}}},
	}
}

func testDeployments() []runtime.Object {
	three, one := int32(3), int32(1)
	return []runtime.Object{
		&appsv1.Deployment{ObjectMeta: objMeta("default", "web", 25*time.Hour, map[string]string{"app": "web"}),
			Spec: appsv1.DeploymentSpec{Replicas: &three,
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: containers("app", "proxy")}}},
			Status: appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 2, AvailableReplicas: 2}},
		&appsv1.Deployment{ObjectMeta: objMeta("shop", "cart", 4*time.Minute+30*time.Second, nil),
			Spec: appsv1.DeploymentSpec{Replicas: &one,
				Selector: &metav1.LabelSelector{
					MatchLabels:      map[string]string{"app": "cart"},
					MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "track", Operator: metav1.LabelSelectorOpIn, Values: []string{"stable", "canary"}}},
				},
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: containers("cart")}}}},
	}
}

func testReplicaSets() []runtime.Object {
	three, zero := int32(3), int32(0)
	return []runtime.Object{
		&appsv1.ReplicaSet{ObjectMeta: objMeta("default", "web-7d9f8b6c5", 25*time.Hour, map[string]string{"app": "web", "pod-template-hash": "7d9f8b6c5"}),
			Spec: appsv1.ReplicaSetSpec{Replicas: &three,
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "pod-template-hash": "7d9f8b6c5"}},
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: containers("app", "proxy")}}},
			Status: appsv1.ReplicaSetStatus{Replicas: 3, ReadyReplicas: 2}},
		&appsv1.ReplicaSet{ObjectMeta: objMeta("default", "web-5b4c8d7f9", 9*24*time.Hour, map[string]string{"app": "web"}),
			Spec: appsv1.ReplicaSetSpec{Replicas: &zero,
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "pod-template-hash": "5b4c8d7f9"}},
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: containers("app")}}}},
	}
}

func testDaemonSets() []runtime.Object {
	return []runtime.Object{
		&appsv1.DaemonSet{ObjectMeta: objMeta("kube-system", "log-shipper", 6*24*time.Hour, map[string]string{"app": "log-shipper"}),
			Spec: appsv1.DaemonSetSpec{
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "log-shipper"}},
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: containers("shipper", "metrics")}}},
			Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, NumberReady: 2,
				UpdatedNumberScheduled: 1, NumberAvailable: 2, NumberMisscheduled: 1}},
		&appsv1.DaemonSet{ObjectMeta: objMeta("default", "gpu-agent", 45*time.Second, nil),
			Spec: appsv1.DaemonSetSpec{
				Selector: &metav1.LabelSelector{
					MatchLabels:      map[string]string{"app": "gpu-agent"},
					MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpExists}},
				},
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: containers("agent"),
					NodeSelector: map[string]string{"accelerator": "gpu", "kubernetes.io/os": "linux"}}}}},
	}
}

func testControllerRevisions() []runtime.Object {
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "log-shipper", UID: "ds-uid"}}
	owner := []metav1.OwnerReference{*metav1.NewControllerRef(ds, appsv1.SchemeGroupVersion.WithKind("DaemonSet"))}
	v1 := objMeta("kube-system", "log-shipper-5d8f7c9b4", 6*24*time.Hour, nil)
	v1.OwnerReferences = owner
	v2 := objMeta("kube-system", "log-shipper-7b6c5d4f8", 10*time.Minute, nil)
	v2.OwnerReferences = owner
	return []runtime.Object{
		&appsv1.ControllerRevision{ObjectMeta: v1, Revision: 1},
		&appsv1.ControllerRevision{ObjectMeta: v2, Revision: 2},
		// A revision whose controller is gone (orphaned) has none.
		&appsv1.ControllerRevision{ObjectMeta: objMeta("default", "orphan-6c7d8e9f0", time.Hour, nil), Revision: 4},
	}
}

func testServices() []runtime.Object {
	port := func(p, node int32) corev1.ServicePort {
		return corev1.ServicePort{Port: p, NodePort: node, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(p)}
	}
	return []runtime.Object{
		&corev1.Service{ObjectMeta: objMeta("default", "kubernetes", 30*24*time.Hour, map[string]string{"component": "apiserver"}),
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.1", ClusterIPs: []string{"10.96.0.1"},
				Ports: []corev1.ServicePort{port(443, 0)}}},
		&corev1.Service{ObjectMeta: objMeta("default", "web", 2*time.Hour, map[string]string{"app": "web"}),
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.12.4", ClusterIPs: []string{"10.96.12.4"},
				Selector: map[string]string{"app": "web", "tier": "front"},
				Ports:    []corev1.ServicePort{port(80, 0), port(443, 30443)}}},
		&corev1.Service{ObjectMeta: objMeta("default", "dns", 2*time.Hour, nil),
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "None", ClusterIPs: []string{"None"},
				Selector: map[string]string{"app": "dns"},
				Ports: []corev1.ServicePort{{Port: 53, Protocol: corev1.ProtocolUDP},
					{Port: 53, Protocol: corev1.ProtocolTCP}}}},
		&corev1.Service{ObjectMeta: objMeta("shop", "lb-pending", time.Minute, nil),
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.96.3.3", ClusterIPs: []string{"10.96.3.3"},
				Ports: []corev1.ServicePort{port(80, 31080)}}},
		&corev1.Service{ObjectMeta: objMeta("shop", "lb", time.Minute, nil),
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.96.3.4", ClusterIPs: []string{"10.96.3.4"},
				ExternalIPs: []string{"192.0.2.10"}, Ports: []corev1.ServicePort{port(80, 31081)}},
			Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{
				{IP: "203.0.113.20"}, {Hostname: "lb.example.com"}}}}},
		&corev1.Service{ObjectMeta: objMeta("shop", "db", time.Minute, nil),
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"}},
		&corev1.Service{ObjectMeta: objMeta("shop", "noports", time.Minute, nil),
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.3.9", ClusterIPs: []string{"10.96.3.9"}}},
	}
}

func testNodes() []runtime.Object {
	info := corev1.NodeSystemInfo{KubeletVersion: "v0.1.0", OSImage: "Debian GNU/Linux 12 (bookworm)",
		KernelVersion: "6.1.0-18-amd64", ContainerRuntimeVersion: "skiff://0.1.0"}
	return []runtime.Object{
		&corev1.Node{ObjectMeta: objMeta("", "node-1", 12*24*time.Hour, map[string]string{
			"kubernetes.io/hostname": "node-1", "node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/master": ""}),
			Status: corev1.NodeStatus{NodeInfo: info,
				Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
				Addresses: []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "node-1"},
					{Type: corev1.NodeInternalIP, Address: "192.168.1.10"}, {Type: corev1.NodeExternalIP, Address: "203.0.113.10"}}}},
		&corev1.Node{ObjectMeta: objMeta("", "node-2", 47*time.Hour, map[string]string{"kubernetes.io/role": "worker"}),
			Spec: corev1.NodeSpec{Unschedulable: true},
			Status: corev1.NodeStatus{NodeInfo: info,
				Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown}},
				Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.168.1.11"}}}},
		&corev1.Node{ObjectMeta: objMeta("", "node-3", 10*time.Second, nil)},
	}
}

func testNamespaces() []runtime.Object {
	terminating := objMeta("", "old", 400*24*time.Hour, nil)
	terminating.DeletionTimestamp = agoPtr(time.Minute)
	return []runtime.Object{
		&corev1.Namespace{ObjectMeta: objMeta("", "default", 3*365*24*time.Hour, map[string]string{"kubernetes.io/metadata.name": "default"}),
			Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}},
		&corev1.Namespace{ObjectMeta: terminating, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}},
	}
}

func testEvents() []runtime.Object {
	return []runtime.Object{
		&corev1.Event{ObjectMeta: objMeta("default", "web-1.17c1", 5*time.Minute, nil),
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-1", FieldPath: "spec.containers{app}"},
			Reason:         "BackOff", Message: "Back-off restarting failed container app\n", Type: corev1.EventTypeWarning,
			Source:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
			FirstTimestamp: ago(5 * time.Minute), LastTimestamp: ago(20 * time.Second), Count: 7},
		&corev1.Event{ObjectMeta: objMeta("default", "web-1.17c0", 6*time.Minute, nil),
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-1"},
			Reason:         "Scheduled", Message: "Successfully assigned default/web-1 to node-1", Type: corev1.EventTypeNormal,
			EventTime: metav1.NewMicroTime(now.Add(-6 * time.Minute)), ReportingController: "skiff-scheduler", ReportingInstance: "skiff-scheduler-node-1",
			Action: "Binding"},
		&corev1.Event{ObjectMeta: objMeta("shop", "cart.17c2", time.Hour, nil),
			InvolvedObject: corev1.ObjectReference{Kind: "Deployment", Namespace: "shop", Name: "cart"},
			Reason:         "ScalingReplicaSet", Message: "Scaled up replica set cart-6b7 to 1", Type: corev1.EventTypeNormal,
			EventTime: metav1.NewMicroTime(now.Add(-time.Hour)), ReportingController: "deployment-controller",
			Series: &corev1.EventSeries{Count: 3, LastObservedTime: metav1.NewMicroTime(now.Add(-2 * time.Minute))}},
	}
}

func testLeases() []runtime.Object {
	holder := "node-1"
	return []runtime.Object{
		&coordinationv1.Lease{ObjectMeta: objMeta("kube-node-lease", "node-1", 12*24*time.Hour, nil),
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder}},
		&coordinationv1.Lease{ObjectMeta: objMeta("kube-system", "skiff-scheduler", time.Hour, nil)},
	}
}

func testEndpointSlices() []runtime.Object {
	p80, p443 := int32(80), int32(443)
	name := "metrics"
	ready := true
	ep := func(addrs ...string) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{Addresses: addrs, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}
	}
	return []runtime.Object{
		&discoveryv1.EndpointSlice{ObjectMeta: objMeta("default", "web-x7k2p", 2*time.Hour, map[string]string{"kubernetes.io/service-name": "web"}),
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Port: &p80}, {Port: &p443}, {Name: &name}, {}},
			Endpoints:   []discoveryv1.Endpoint{ep("10.244.1.7"), ep("10.244.1.8"), ep("10.244.2.3", "10.244.2.4"), ep("10.244.3.2")}},
		&discoveryv1.EndpointSlice{ObjectMeta: objMeta("default", "empty-abcde", time.Minute, nil),
			AddressType: discoveryv1.AddressTypeIPv4},
	}
}

func testConfigMaps() []runtime.Object {
	return []runtime.Object{
		&corev1.ConfigMap{ObjectMeta: objMeta("default", "web-config", 3*time.Hour, map[string]string{"app": "web"}),
			Data: map[string]string{"nginx.conf": "server {}", "LOG_LEVEL": "debug"}, BinaryData: map[string][]byte{"logo.png": {0x89, 'P', 'N', 'G'}}},
		&corev1.ConfigMap{ObjectMeta: objMeta("kube-system", "empty", 20*24*time.Hour, nil)},
	}
}

func testSecrets() []runtime.Object {
	return []runtime.Object{
		&corev1.Secret{ObjectMeta: objMeta("default", "db", 90*time.Minute, map[string]string{"app": "db"}),
			Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"username": []byte("admin"), "password": []byte("hunter22")}},
		&corev1.Secret{ObjectMeta: objMeta("default", "web-tls", 5*24*time.Hour, nil),
			Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": []byte("cert"), "tls.key": []byte("key")}},
		&corev1.Secret{ObjectMeta: objMeta("shop", "regcred", 45*time.Second, nil),
			Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{".dockerconfigjson": []byte("{}")}},
	}
}

func testServiceAccounts() []runtime.Object {
	return []runtime.Object{
		&corev1.ServiceAccount{ObjectMeta: objMeta("default", "default", 30*24*time.Hour, nil)},
		&corev1.ServiceAccount{ObjectMeta: objMeta("default", "builder", 2*time.Hour, map[string]string{"team": "ci"}),
			Secrets: []corev1.ObjectReference{{Name: "builder-token"}}},
	}
}

// testJobs covers each STATUS kubectl shows and the COMPLETIONS forms.
func testJobs() []runtime.Object {
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/controller-uid": "4b1f2c"}}
	started := func(d time.Duration) *metav1.Time { t := ago(d); return &t }
	cond := func(t batchv1.JobConditionType) []batchv1.JobCondition {
		return []batchv1.JobCondition{{Type: t, Status: corev1.ConditionTrue}}
	}
	job := func(name string, age time.Duration, completions, parallelism *int32, st batchv1.JobStatus) *batchv1.Job {
		return &batchv1.Job{ObjectMeta: objMeta("default", name, age, map[string]string{"job-name": name}),
			Spec: batchv1.JobSpec{Completions: completions, Parallelism: parallelism, Selector: sel,
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: containers("pi")}}},
			Status: st}
	}
	five, two, three := new(int32(5)), new(int32(2)), new(int32(3))
	terminating := job("going", time.Hour, five, two, batchv1.JobStatus{StartTime: started(time.Hour)})
	terminating.DeletionTimestamp = started(time.Second)
	return []runtime.Object{
		job("pi", 3*time.Minute, five, two, batchv1.JobStatus{Succeeded: 2, Active: 2, StartTime: started(3 * time.Minute)}),
		job("done", 2*time.Hour, five, two, batchv1.JobStatus{Succeeded: 5, StartTime: started(2 * time.Hour),
			CompletionTime: started(2*time.Hour - 95*time.Second), Conditions: cond(batchv1.JobComplete)}),
		job("flaky", 10*time.Minute, nil, nil, batchv1.JobStatus{Failed: 7, StartTime: started(10 * time.Minute), Conditions: cond(batchv1.JobFailed)}),
		job("queue", 30*time.Second, nil, three, batchv1.JobStatus{Active: 3, StartTime: started(30 * time.Second)}),
		job("later", time.Minute, five, two, batchv1.JobStatus{Conditions: cond(batchv1.JobSuspended)}),
		job("stopping", time.Minute, five, two, batchv1.JobStatus{StartTime: started(time.Minute), Conditions: cond(batchv1.JobFailureTarget)}),
		terminating,
	}
}

func testCronJobs() []runtime.Object {
	cj := func(name, schedule string, tz *string, suspend bool, active int, last *metav1.Time, age time.Duration) *batchv1.CronJob {
		c := &batchv1.CronJob{ObjectMeta: objMeta("default", name, age, map[string]string{"team": "ops"}),
			Spec: batchv1.CronJobSpec{Schedule: schedule, TimeZone: tz, Suspend: new(suspend),
				JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: containers("backup")}}}}}}
		for i := range active {
			c.Status.Active = append(c.Status.Active, corev1.ObjectReference{Name: fmt.Sprintf("%s-%d", name, i)})
		}
		c.Status.LastScheduleTime = last
		return c
	}
	last := ago(4 * time.Minute)
	return []runtime.Object{
		cj("backup", "0 3 * * *", new("Europe/Paris"), false, 1, &last, 48*time.Hour),
		cj("hello", "*/5 * * * *", nil, false, 0, nil, 2*time.Minute),
		cj("paused", "@hourly", nil, true, 0, &last, time.Hour),
	}
}

// TestTables renders each resource's table in each layout and compares
// it with the golden files testdata/<resource>-<layout>.golden.
func TestTables(t *testing.T) {
	resources := []struct {
		name string
		objs []runtime.Object
	}{
		{"pods", testPods()},
		{"deployments", testDeployments()},
		{"replicasets", testReplicaSets()},
		{"daemonsets", testDaemonSets()},
		{"controllerrevisions", testControllerRevisions()},
		{"jobs", testJobs()},
		{"cronjobs", testCronJobs()},
		{"services", testServices()},
		{"nodes", testNodes()},
		{"namespaces", testNamespaces()},
		{"events", testEvents()},
		{"leases", testLeases()},
		{"endpointslices", testEndpointSlices()},
		{"configmaps", testConfigMaps()},
		{"secrets", testSecrets()},
		{"serviceaccounts", testServiceAccounts()},
	}
	layouts := []struct {
		name string
		opts Options
	}{
		{"normal", Options{}},
		{"wide", Options{Wide: true}},
		{"all-namespaces", Options{WithNamespace: true}},
		{"show-labels", Options{ShowLabels: true}},
	}
	for _, r := range resources {
		for _, l := range layouts {
			t.Run(r.name+"-"+l.name, func(t *testing.T) {
				got, err := render(r.objs, l.opts, now)
				if err != nil {
					t.Fatal(err)
				}
				golden(t, r.name+"-"+l.name, got)
			})
		}
	}
}

// TestPodStatus checks the STATUS, READY and RESTARTS cells of each pod
// case by name, so that a failure says which rule broke.
func TestPodStatus(t *testing.T) {
	want := map[string]struct{ ready, status, restarts string }{
		"pending":      {"0/1", "Pending", "0"},
		"creating":     {"0/1", "ContainerCreating", "0"},
		"running":      {"2/2", "Running", "2 (5m ago)"},
		"crashloop":    {"0/1", "CrashLoopBackOff", "5 (30s ago)"},
		"completed":    {"0/1", "Completed", "0"},
		"failed":       {"0/1", "Error", "0"},
		"killed":       {"0/1", "Signal:9", "0"},
		"terminating":  {"1/1", "Terminating", "0"},
		"lost":         {"1/1", "Unknown", "0"},
		"init-running": {"0/1", "Init:1/2", "0"},
		"init-crash":   {"0/1", "Init:CrashLoopBackOff", "3 (2m ago)"},
		"init-error":   {"0/1", "Init:Error", "0"},
		"sidecar":      {"2/2", "Running", "0"},
		"half-done":    {"1/2", "NotReady", "0"},
		"gated":        {"0/1", "SchedulingGated", "0"},
	}
	for _, obj := range testPods() {
		pod := obj.(*corev1.Pod)
		t.Run(pod.Name, func(t *testing.T) {
			w, ok := want[pod.Name]
			if !ok {
				t.Fatalf("no expectation for pod %q", pod.Name)
			}
			cells := podRow(pod, false, now)
			if got := (struct{ ready, status, restarts string }{cells[1], cells[2], cells[3]}); got != w {
				t.Errorf("got %+v, want %+v", got, w)
			}
		})
	}
}

func TestHumanAge(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-5 * time.Second, "<invalid>"},
		{-time.Second, "0s"},
		{0, "0s"},
		{119 * time.Second, "119s"},
		{5*time.Minute + 3*time.Second, "5m3s"},
		{5 * time.Minute, "5m"},
		{2*time.Hour + 59*time.Minute, "179m"},
		{3*time.Hour + 12*time.Minute, "3h12m"},
		{47 * time.Hour, "47h"},
		{3*24*time.Hour + 5*time.Hour, "3d5h"},
		{3 * 24 * time.Hour, "3d"},
		{40 * 24 * time.Hour, "40d"},
		{(2*365 + 4) * 24 * time.Hour, "2y4d"},
		{9 * 365 * 24 * time.Hour, "9y"},
	}
	for _, tt := range tests {
		if got := HumanAge(ago(tt.d), now); got != tt.want {
			t.Errorf("HumanAge(now-%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
	if got := HumanAge(metav1.Time{}, now); got != "<unknown>" {
		t.Errorf("HumanAge(zero) = %q, want <unknown>", got)
	}
}

// TestTableWriterRemembersWidths is what a watch relies on: rows written
// later are padded to the widths of the first table (a longer cell pushes
// the rest of its row), and the header is not repeated.
func TestTableWriterRemembersWidths(t *testing.T) {
	var buf bytes.Buffer
	w := NewTableWriter(&buf)
	pods := testPods()
	for _, i := range []int{2, 0, 3} {
		tbl, err := NewTable(pods[i:i+1], Options{}, now)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(tbl); err != nil {
			t.Fatal(err)
		}
	}
	want := "" +
		"NAME      READY   STATUS    RESTARTS     AGE\n" +
		"running   2/2     Running   2 (5m ago)   3h12m\n" +
		"pending   0/1     Pending   0            5s\n" +
		"crashloop   0/1     CrashLoopBackOff   5 (30s ago)   10m\n"
	if got := buf.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestWithKindAndSanitizing(t *testing.T) {
	got, err := render(testDeployments()[:1], Options{WithKind: true}, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := "deployment.apps/web   2/3"; !strings.Contains(got, want) {
		t.Errorf("got:\n%s\nwant a row starting %q", got, want)
	}
	// Event messages are cut at their first line break.
	got, err = render(testEvents()[:1], Options{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Back-off restarting failed container app\n"; !strings.HasSuffix(got, want) {
		t.Errorf("got:\n%s\nwant it to end with %q", got, want)
	}
	evil := testEvents()[0].(*corev1.Event)
	evil.Message = "line one\x1b[2J\nline two"
	got, err = render([]runtime.Object{evil}, Options{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := "line one^[[2J...\n"; !strings.HasSuffix(got, want) {
		t.Errorf("got:\n%s\nwant it to end with %q", got, want)
	}
}

func TestNewTableRejectsMixedResources(t *testing.T) {
	objs := append(testPods()[:1], testServices()[:1]...)
	if _, err := NewTable(objs, Options{}, now); err == nil {
		t.Error("a table of pods and services: got no error")
	}
}

func TestOutputFormats(t *testing.T) {
	pods := testPods()[:2]
	deploy := testDeployments()[:1]
	for _, tt := range []struct {
		name  string
		print func(*bytes.Buffer) error
	}{
		{"pod-json", func(b *bytes.Buffer) error { return PrintJSON(b, pods[:1], false) }},
		{"pod-yaml", func(b *bytes.Buffer) error { return PrintYAML(b, pods[:1], false) }},
		{"pods-json", func(b *bytes.Buffer) error { return PrintJSON(b, pods, true) }},
		{"pods-yaml", func(b *bytes.Buffer) error { return PrintYAML(b, pods, true) }},
		{"empty-yaml", func(b *bytes.Buffer) error { return PrintYAML(b, nil, true) }},
		{"names", func(b *bytes.Buffer) error {
			return PrintNames(b, append(append([]runtime.Object{}, pods...), deploy...))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tt.print(&buf); err != nil {
				t.Fatal(err)
			}
			golden(t, "output-"+tt.name, buf.String())
		})
	}
}
