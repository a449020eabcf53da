package ctl

import (
	"context"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/testenv"
)

// describeFixture creates a pod, a deployment with its replica sets, a
// service with an endpoint slice and a node with its lease, each with an
// event about it.
func describeFixture(t *testing.T, ctx context.Context, c *client.Client) {
	t.Helper()
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	event := func(ns, name string, about corev1.ObjectReference, typ, reason, from, msg string, count int32) {
		t.Helper()
		_, err := c.Events(ns).Create(ctx, &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Namespace: ns, Name: name},
			InvolvedObject: about, Type: typ, Reason: reason, Message: msg,
			Source:         corev1.EventSource{Component: from},
			FirstTimestamp: metav1.Now(), LastTimestamp: metav1.Now(), Count: count,
		})
		check(err)
	}

	// A pod on node-1 with two containers.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Labels: map[string]string{"app": "web"},
			Annotations: map[string]string{"example.com/owner": "team-a"}},
		Spec: corev1.PodSpec{
			NodeName: "node-1",
			Containers: []corev1.Container{{
				Name: "app", Image: "registry.local/web:1.0",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
				Env: []corev1.EnvVar{
					{Name: "MODE", Value: "production"},
					{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}},
				},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
				},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}},
					TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3},
				VolumeMounts: []corev1.VolumeMount{{Name: "cache", MountPath: "/cache"}},
			}, {
				Name: "sidecar", Image: "registry.local/proxy:2.1", Command: []string{"proxy", "--port=80"},
			}},
			Volumes: []corev1.Volume{{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}
	pod, err := c.Pods("default").Create(ctx, pod)
	check(err)
	pod.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, HostIP: "192.168.1.10", PodIP: "10.244.1.5", PodIPs: []corev1.PodIP{{IP: "10.244.1.5"}},
		StartTime: &pod.CreationTimestamp,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue},
			{Type: corev1.PodReady, Status: corev1.ConditionFalse},
		},
		ContainerStatuses: []corev1.ContainerStatus{
			{Name: "app", Image: "registry.local/web:1.0", ContainerID: "skiff://abc123", Ready: true, RestartCount: 0,
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}},
			{Name: "sidecar", Image: "registry.local/proxy:2.1", RestartCount: 3,
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					Reason: "Error", ExitCode: 2, StartedAt: metav1.Now(), FinishedAt: metav1.Now()}}},
		},
	}
	pod, err = c.Pods("default").UpdateStatus(ctx, pod)
	check(err)
	podRef := corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: "default", Name: "web-1", UID: pod.UID}
	event("default", "web-1.1", podRef, corev1.EventTypeNormal, "Scheduled", "skiff-scheduler", "Successfully assigned default/web-1 to node-1", 1)
	sidecarRef := podRef
	sidecarRef.FieldPath = "spec.containers{sidecar}"
	event("default", "web-1.2", sidecarRef, corev1.EventTypeWarning, "BackOff", "kubelet", "Back-off restarting failed container", 3)
	// An event about another pod of the same name must not show.
	otherRef := podRef
	otherRef.UID = "an-older-pod"
	event("default", "web-1.3", otherRef, corev1.EventTypeNormal, "Killing", "kubelet", "Stopping an older web-1", 1)

	// A deployment, its current replica set and an old one.
	three := int32(3)
	template := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.local/web:1.0"}}},
	}
	d, err := c.Deployments("default").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: &three, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: template},
	})
	check(err)
	owner := []metav1.OwnerReference{*metav1.NewControllerRef(d, appsv1.SchemeGroupVersion.WithKind("Deployment"))}
	replicaSet := func(name, hash, image string, replicas int32) {
		t.Helper()
		tmpl := template.DeepCopy()
		tmpl.Labels = map[string]string{"app": "web", "pod-template-hash": hash}
		tmpl.Spec.Containers[0].Image = image
		_, err := c.ReplicaSets("default").Create(ctx, &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: tmpl.Labels, OwnerReferences: owner},
			Spec: appsv1.ReplicaSetSpec{Replicas: &replicas,
				Selector: &metav1.LabelSelector{MatchLabels: tmpl.Labels}, Template: *tmpl},
		})
		check(err)
	}
	replicaSet("web-old", "5b4c8d7f9", "registry.local/web:0.9", 0)
	replicaSet("web-new", "7d9f8b6c5", "registry.local/web:1.0", 3)
	event("default", "web.1", corev1.ObjectReference{Kind: "Deployment", APIVersion: "apps/v1", Namespace: "default", Name: "web", UID: d.UID},
		corev1.EventTypeNormal, "ScalingReplicaSet", "deployment-controller", "Scaled up replica set web-new to 3", 1)

	// A service and its endpoint slice.
	svc, err := c.Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10", Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	})
	check(err)
	ready, notReady := true, false
	portName, port := "http", int32(8080)
	_, err = c.EndpointSlices("default").Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-abcde", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Port: &port}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.244.1.5"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}},
			{Addresses: []string{"10.244.1.6"}, Conditions: discoveryv1.EndpointConditions{Ready: &notReady}},
		},
	})
	check(err)
	event("default", "web.2", corev1.ObjectReference{Kind: "Service", APIVersion: "v1", Namespace: "default", Name: "web", UID: svc.UID},
		corev1.EventTypeWarning, "FailedToUpdateEndpoint", "endpointslice-controller", "Failed to update endpoint default/web", 1)

	// A node, its lease, and an event from its kubelet, which names the
	// node by its name in place of a uid.
	_, err = c.Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1", Labels: map[string]string{"kubernetes.io/hostname": "node-1"}},
		Spec:       corev1.NodeSpec{PodCIDR: "10.244.1.0/24", PodCIDRs: []string{"10.244.1.0/24"}},
		Status: corev1.NodeStatus{
			Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi"), corev1.ResourcePods: resource.MustParse("110")},
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi"), corev1.ResourcePods: resource.MustParse("110")},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
				LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(), Reason: "KubeletReady", Message: "kubelet is posting ready status"}},
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.168.1.10"}, {Type: corev1.NodeHostName, Address: "node-1"}},
			NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v0.1.0", OSImage: "Debian GNU/Linux 12 (bookworm)", KernelVersion: "6.1.0",
				ContainerRuntimeVersion: "skiff://0.1.0", OperatingSystem: "linux", Architecture: "amd64"},
		},
	})
	check(err)
	holder := "node-1"
	renew := metav1.NewMicroTime(metav1.Now().Time)
	_, err = c.Leases(corev1.NamespaceNodeLease).Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1"},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, RenewTime: &renew},
	})
	check(err)
	event("default", "node-1.1", corev1.ObjectReference{Kind: "Node", Name: "node-1", UID: "node-1"},
		corev1.EventTypeNormal, "NodeReady", "kubelet", "Node node-1 status is now: NodeReady", 1)
}

// describeLines checks that out has every pattern, each a regular
// expression matched against one line.
func describeLines(t *testing.T, out string, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		if !regexp.MustCompile(`(?m)^` + p + `$`).MatchString(out) {
			t.Errorf("no line matches %q in:\n%s", p, out)
		}
	}
}

func TestDescribe(t *testing.T) {
	srv := testenv.StartServer(t)
	kubeconfig := ctlKubeconfig(t, srv)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	describeFixture(t, ctx, c)
	getFixClock(t)

	describe := func(args ...string) string {
		t.Helper()
		out, errOut, err := getRun(ctx, kubeconfig, append([]string{"describe"}, args...)...)
		if err != nil {
			t.Fatalf("describe %v: %v (stderr %q)", args, err, errOut)
		}
		return out
	}

	t.Run("pod", func(t *testing.T) {
		out := describe("pod", "web-1")
		describeLines(t, out,
			`Name:\s+web-1`,
			`Namespace:\s+default`,
			`Node:\s+node-1/192.168.1.10`,
			`Start Time:\s+\w{3}, \d\d \w{3} \d{4} .*`,
			`Labels:\s+app=web`,
			`Annotations:\s+example.com/owner: team-a`,
			`Status:\s+Running`,
			`IP:\s+10.244.1.5`,
			`IPs:`,
			`  IP:\s+10.244.1.5`,
			`Containers:`,
			`  app:`,
			`    Container ID:\s+skiff://abc123`,
			`    Image:\s+registry.local/web:1.0`,
			`    Port:\s+8080/TCP \(http\)`,
			`    Host Port:\s+0/TCP \(http\)`,
			`    State:\s+Running`,
			`      Started:\s+.*`,
			`    Ready:\s+True`,
			`    Restart Count:\s+0`,
			`    Limits:`,
			`      memory:\s+128Mi`,
			`    Requests:`,
			`      cpu:\s+250m`,
			`    Readiness:\s+http-get http://:8080/healthz delay=0s timeout=1s period=10s successThreshold=1 failureThreshold=3`,
			`    Environment:`,
			`      MODE:\s+production`,
			`      POD_NAME:\s+web-1 \(v1:metadata.name\)`,
			`    Mounts:`,
			`      /cache from cache \(rw\)`,
			`  sidecar:`,
			`    Command:`,
			`      proxy`,
			`      --port=80`,
			`    State:\s+Waiting`,
			`      Reason:\s+CrashLoopBackOff`,
			`    Last State:\s+Terminated`,
			`      Exit Code:\s+2`,
			`    Restart Count:\s+3`,
			`    Environment:\s+<none>`,
			`    Mounts:\s+<none>`,
			`Conditions:`,
			`  Type\s+Status`,
			`  Initialized \s+True `,
			`  Ready \s+False `,
			`Volumes:`,
			`  cache:`,
			`    Type:\s+EmptyDir \(a temporary directory that shares a pod's lifetime\)`,
			`QoS Class:\s+Burstable`,
			`Node-Selectors:\s+<none>`,
			// The API server adds Kubernetes' default tolerations.
			`Tolerations:\s+node.kubernetes.io/not-ready:NoExecute op=Exists for 300s`,
			`\s+node.kubernetes.io/unreachable:NoExecute op=Exists for 300s`,
			`Events:`,
			`  Type\s+Reason\s+Age\s+From\s+Message`,
			`  ----\s+------\s+----\s+----\s+-------`,
			`  Normal\s+Scheduled\s+30d\s+skiff-scheduler\s+Successfully assigned default/web-1 to node-1`,
			`  Warning\s+BackOff\s+30d \(x3 over 30d\)\s+kubelet\s+spec.containers\{sidecar\}: Back-off restarting failed container`,
		)
		if strings.Contains(out, "older web-1") {
			t.Errorf("the event of another pod called web-1 is shown:\n%s", out)
		}
	})

	t.Run("deployment", func(t *testing.T) {
		out := describe("deployment", "web")
		describeLines(t, out,
			`Name:\s+web`,
			`CreationTimestamp:\s+.*`,
			`Selector:\s+app=web`,
			`Replicas:\s+3 desired \| 0 updated \| 0 total \| 0 available \| 0 unavailable`,
			`StrategyType:\s+RollingUpdate`,
			`MinReadySeconds:\s+0`,
			`RollingUpdateStrategy:\s+25% max unavailable, 25% max surge`,
			`Pod Template:`,
			`  Labels:\s+app=web`,
			`  Containers:`,
			`   app:`,
			`    Image:\s+registry.local/web:1.0`,
			`  Volumes:\s+<none>`,
			`OldReplicaSets:\s+web-old \(0/0 replicas created\)`,
			`NewReplicaSet:\s+web-new \(0/3 replicas created\)`,
			`  Normal\s+ScalingReplicaSet\s+30d\s+deployment-controller\s+Scaled up replica set web-new to 3`,
		)
	})

	t.Run("replicaset", func(t *testing.T) {
		out := describe("rs", "web-new")
		describeLines(t, out,
			`Name:\s+web-new`,
			`Selector:\s+app=web,pod-template-hash=7d9f8b6c5`,
			`Controlled By:\s+Deployment/web`,
			`Replicas:\s+0 current / 3 desired`,
			`Pods Status:\s+0 Running / 0 Waiting / 0 Succeeded / 0 Failed`,
			`Pod Template:`,
			`Events:\s+<none>`,
		)
	})

	t.Run("service", func(t *testing.T) {
		out := describe("svc", "web")
		describeLines(t, out,
			`Name:\s+web`,
			`Selector:\s+app=web`,
			`Type:\s+ClusterIP`,
			`IP:\s+10.96.0.10`,
			`IPs:\s+10.96.0.10`,
			`Port:\s+http\s+80/TCP`,
			`TargetPort:\s+8080/TCP`,
			`Endpoints:\s+10.244.1.5:8080`,
			`Session Affinity:\s+None`,
			`  Warning\s+FailedToUpdateEndpoint\s+30d\s+endpointslice-controller\s+Failed to update endpoint default/web`,
		)
	})

	t.Run("node", func(t *testing.T) {
		out := describe("node", "node-1")
		describeLines(t, out,
			`Name:\s+node-1`,
			`Roles:\s+<none>`,
			`Labels:\s+kubernetes.io/hostname=node-1`,
			`Taints:\s+<none>`,
			`Unschedulable:\s+false`,
			`Lease:`,
			`  HolderIdentity:\s+node-1`,
			`  AcquireTime:\s+<unset>`,
			`Conditions:`,
			`  Ready \s+True \s+.* \s+KubeletReady \s+kubelet is posting ready status`,
			`Addresses:`,
			`  InternalIP:\s+192.168.1.10`,
			`Capacity:`,
			`  cpu:\s+2`,
			`  memory:\s+4Gi`,
			`System Info:`,
			`  Kernel Version:\s+6.1.0`,
			`  Kubelet Version:\s+v0.1.0`,
			`PodCIDR:\s+10.244.1.0/24`,
			`PodCIDRs:\s+10.244.1.0/24`,
			`Non-terminated Pods:\s+\(1 in total\)`,
			`  default\s+web-1\s+250m \(12%\)\s+0 \(0%\)\s+64Mi \(1%\)\s+128Mi \(3%\)\s+30d`,
			`  cpu\s+250m \(12%\)\s+0 \(0%\)`,
			`  Normal\s+NodeReady\s+30d\s+kubelet\s+Node node-1 status is now: NodeReady`,
		)
	})

	t.Run("namespace and generic", func(t *testing.T) {
		describeLines(t, describe("ns", "default"), `Name:\s+default`, `Status:\s+Active`, `No resource quota.`)
		describeLines(t, describe("lease", "node-1", "-n", "kube-node-lease"),
			`Name:\s+node-1`, `Namespace:\s+kube-node-lease`, `Kind:\s+Lease`, `Spec:`, `  holderIdentity: node-1`)
	})

	t.Run("name prefix", func(t *testing.T) {
		// "web" names no pod; it is the prefix of web-1's name.
		out := describe("pods", "web")
		describeLines(t, out, `Name:\s+web-1`, `  Normal\s+Scheduled\s+30d\s+skiff-scheduler\s+Successfully assigned default/web-1 to node-1`)
		// Each of several objects has its events, as in kubectl.
		out = describe("rs")
		describeLines(t, out, `Name:\s+web-new`, `Events:\s+<none>`, `Name:\s+web-old`, `Events:\s+<none>`)
		if n := strings.Count(out, "Events:"); n != 2 {
			t.Errorf("got %d Events sections for two replica sets, want 2:\n%s", n, out)
		}
		out = describe("rs", "--show-events=false")
		if strings.Contains(out, "Events:") {
			t.Errorf("events shown with --show-events=false:\n%s", out)
		}
	})

	t.Run("not found", func(t *testing.T) {
		_, _, err := getRun(ctx, kubeconfig, "describe", "pod", "nope")
		if !apierrors.IsNotFound(err) || FormatError(err) != `Error from server (NotFound): pods "nope" not found` {
			t.Errorf("got %v, want pods \"nope\" not found", err)
		}
	})

	t.Run("names across all namespaces", func(t *testing.T) {
		_, _, err := getRun(ctx, kubeconfig, "describe", "pod", "web-1", "-A")
		if want := "error: a resource cannot be retrieved by name across all namespaces"; FormatError(err) != want {
			t.Errorf("got %v, want %q", err, want)
		}
	})
}
