package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files of the get tests in testdata/get/")

// getFixClock makes every age that get and describe print "30d": objects
// created by a test are seconds old, and 30 days and 12 hours later they
// are 30 days old whatever the exact seconds.
func getFixClock(t *testing.T) {
	t.Helper()
	saved := printClock
	printClock = func() time.Time { return time.Now().Add(30*24*time.Hour + 12*time.Hour) }
	t.Cleanup(func() { printClock = saved })
}

// getRun runs one skiffctl command against the API server that the
// kubeconfig file names and returns what it printed.
func getRun(ctx context.Context, kubeconfig string, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	err = getRunTo(ctx, kubeconfig, &out, &errOut, args...)
	return out.String(), errOut.String(), err
}

func getRunTo(ctx context.Context, kubeconfig string, out, errOut interface{ Write([]byte) (int, error) }, args ...string) error {
	o := DefaultOptions()
	o.In = strings.NewReader("")
	o.Out, o.ErrOut = out, errOut
	o.Kubeconfig = kubeconfig
	o.Timeout = 30 * time.Second
	cmd := NewCommand(o)
	cmd.SetArgs(args)
	return cmd.ExecuteContext(ctx)
}

// getGolden compares got with testdata/get/name.golden, or rewrites the
// file with -rewrite.
func getGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "get", name+".golden")
	if *rewrite {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -rewrite to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (rerun with -rewrite if the change is right)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// getFixture creates the objects the get tests look at: pods, a
// deployment, services and an event in "default", a pod in "shop", and a
// node.
func getFixture(t *testing.T, ctx context.Context, c *client.Client) {
	t.Helper()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}))
	pod := func(ns, name string, labels map[string]string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.local/web:1.0"}}},
		}
	}
	must(c.Pods("default").Create(ctx, pod("default", "web-1", map[string]string{"app": "web"})))
	must(c.Pods("shop").Create(ctx, pod("shop", "db-1", map[string]string{"app": "db"})))

	// web-2 runs on node-1.
	web2 := pod("default", "web-2", map[string]string{"app": "web", "tier": "front"})
	web2.Spec.NodeName = "node-1"
	web2, err := c.Pods("default").Create(ctx, web2)
	must(web2, err)
	web2.Status = corev1.PodStatus{
		Phase:      corev1.PodRunning,
		HostIP:     "192.168.1.10",
		PodIP:      "10.244.1.5",
		PodIPs:     []corev1.PodIP{{IP: "10.244.1.5"}},
		QOSClass:   corev1.PodQOSBestEffort,
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		ContainerStatuses: []corev1.ContainerStatus{{
			Name: "app", Image: "registry.local/web:1.0", Ready: true,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}},
		}},
	}
	must(c.Pods("default").UpdateStatus(ctx, web2))

	two := int32(2)
	must(c.Deployments("default").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: &two,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.local/web:1.0"}}},
			},
		},
	}))
	must(c.Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10", Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Port: 80}}},
	}))
	must(c.Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web-np"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.0.11", Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, NodePort: 30080}, {Name: "https", Port: 443, NodePort: 30443}}},
	}))
	must(c.Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1", Labels: map[string]string{"node-role.kubernetes.io/control-plane": ""}},
		Status: corev1.NodeStatus{
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
				LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(), Reason: "KubeletReady", Message: "kubelet is posting ready status"}},
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.168.1.10"}},
			NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v0.1.0", OSImage: "Debian GNU/Linux 12 (bookworm)",
				KernelVersion: "6.1.0", ContainerRuntimeVersion: "skiff://0.1.0", OperatingSystem: "linux", Architecture: "amd64"},
		},
	}))
	must(c.Events("default").Create(ctx, &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "web-1.1"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-1", APIVersion: "v1"},
		Reason:         "Scheduled", Message: "Successfully assigned default/web-1 to node-1", Type: corev1.EventTypeNormal,
		Source:         corev1.EventSource{Component: "skiff-scheduler"},
		FirstTimestamp: metav1.Now(), LastTimestamp: metav1.Now(), Count: 1,
	}))
}

// TestGet runs get in each output shape against a real API server and
// compares what it prints with golden files in testdata/get.
func TestGet(t *testing.T) {
	srv := testenv.StartServer(t)
	kubeconfig := ctlKubeconfig(t, srv)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	getFixture(t, ctx, c)
	getFixClock(t)

	tests := []struct {
		name string
		args []string
	}{
		{"pods", []string{"get", "pods"}},
		{"pods-short-name", []string{"get", "po"}},
		{"pods-wide", []string{"get", "pods", "-o", "wide"}},
		{"pods-all-namespaces", []string{"get", "pods", "-A"}},
		{"pods-show-labels", []string{"get", "pod", "--show-labels"}},
		{"pods-label-selector", []string{"get", "pods", "-l", "app=web,tier=front"}},
		{"pods-field-selector", []string{"get", "pods", "--field-selector", "status.phase=Running"}},
		{"pods-other-namespace", []string{"get", "pods", "-n", "shop"}},
		{"pods-names", []string{"get", "pods", "web-2", "web-1"}},
		{"pods-name", []string{"get", "pods", "-A", "-o", "name"}},
		{"pod-slash-name", []string{"get", "pod/web-1"}},
		{"mixed-slash-names", []string{"get", "pod/web-1", "svc/web"}},
		{"deploy-and-svc", []string{"get", "deploy,svc"}},
		{"deployments-wide", []string{"get", "deployments.apps", "-o", "wide"}},
		{"services", []string{"get", "svc"}},
		{"nodes-wide", []string{"get", "no", "-o", "wide"}},
		{"namespaces", []string{"get", "ns"}},
		{"events", []string{"get", "ev"}},
		{"deploy-name", []string{"get", "deploy", "-o", "name"}},
		// Several types asked for: every name has its type, even when
		// only one of the types has objects.
		{"pods-and-deploy-by-label", []string{"get", "po,deploy", "-l", "tier=front"}},
		{"all", []string{"get", "all"}},
		{"all-names", []string{"get", "all", "-o", "name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, err := getRun(ctx, kubeconfig, tt.args...)
			if err != nil {
				t.Fatalf("%v: %v (stderr %q)", tt.args, err, errOut)
			}
			if errOut != "" {
				t.Errorf("stderr: got %q, want nothing", errOut)
			}
			getGolden(t, tt.name, out)
		})
	}

	t.Run("nothing found", func(t *testing.T) {
		for _, tt := range []struct {
			args []string
			want string
		}{
			{[]string{"get", "pods", "-n", "empty"}, "No resources found in empty namespace.\n"},
			{[]string{"get", "pods", "-A", "-l", "app=none"}, "No resources found\n"},
			{[]string{"get", "nodes", "-l", "app=none"}, "No resources found\n"},
			{[]string{"get", "all", "-n", "empty"}, "No resources found in empty namespace.\n"},
		} {
			out, errOut, err := getRun(ctx, kubeconfig, tt.args...)
			if err != nil || out != "" || errOut != tt.want {
				t.Errorf("%v: got stdout %q, stderr %q, error %v; want only stderr %q", tt.args, out, errOut, err, tt.want)
			}
		}
	})

	t.Run("not found", func(t *testing.T) {
		_, _, err := getRun(ctx, kubeconfig, "get", "pods", "nope")
		if !apierrors.IsNotFound(err) {
			t.Fatalf("got %v, want NotFound", err)
		}
		if got, want := FormatError(err), `Error from server (NotFound): pods "nope" not found`; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
		// Found objects are printed, then an error line per missing
		// one, in order.
		out, errOut, err := getRun(ctx, kubeconfig, "get", "pods", "web-1", "nope", "nada")
		want := "Error from server (NotFound): pods \"nope\" not found\n" +
			"Error from server (NotFound): pods \"nada\" not found"
		if !apierrors.IsNotFound(err) || !strings.Contains(out, "web-1") || errOut != "" || FormatError(err) != want {
			t.Errorf("got stdout %q, stderr %q, error %q; want web-1 printed and the error\n%s", out, errOut, FormatError(err), want)
		}
	})

	t.Run("bad arguments", func(t *testing.T) {
		for _, tt := range []struct {
			args []string
			want string
		}{
			{[]string{"get", "foos"}, `the server doesn't have a resource type "foos"`},
			{[]string{"get"}, "you must specify the type of resource to get"},
			{[]string{"get", "pods", "web-1", "-l", "app=web"}, "name cannot be provided when a selector is specified"},
			{[]string{"get", "pods", "-o", "xml"}, `unable to match a printer suitable for the output format "xml"`},
			{[]string{"get", "pods", "svc/web"}, "arguments in resource/name form must have a single resource and name"},
			{[]string{"get", "pods", "web-1", "-A"}, "a resource cannot be retrieved by name across all namespaces"},
			{[]string{"get", "pod/web-1", "-A"}, "a resource cannot be retrieved by name across all namespaces"},
			{[]string{"get", "pods", "web-1", "-A", "-w"}, "a resource cannot be retrieved by name across all namespaces"},
		} {
			_, _, err := getRun(ctx, kubeconfig, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%v: got error %v, want one containing %q", tt.args, err, tt.want)
			}
		}
	})

	t.Run("yaml and json", func(t *testing.T) {
		// One object named: the object itself.
		for _, format := range []string{"yaml", "json"} {
			out, _, err := getRun(ctx, kubeconfig, "get", "deploy", "web", "-o", format)
			if err != nil {
				t.Fatal(err)
			}
			var d appsv1.Deployment
			if err := yaml.UnmarshalStrict([]byte(out), &d); err != nil {
				t.Fatalf("-o %s: %v\n%s", format, err, out)
			}
			if d.Kind != "Deployment" || d.APIVersion != "apps/v1" || d.Name != "web" || *d.Spec.Replicas != 2 {
				t.Errorf("-o %s: got %s %s %s", format, d.APIVersion, d.Kind, d.Name)
			}
		}
		// A list (even of one): a List whose items carry their kind.
		for _, args := range [][]string{
			{"get", "pods", "-o", "json"},
			{"get", "pods", "-l", "tier=front", "-o", "yaml"},
			{"get", "pod/web-1", "svc/web", "-o", "yaml"},
		} {
			out, _, err := getRun(ctx, kubeconfig, args...)
			if err != nil {
				t.Fatal(err)
			}
			var list struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				Items      []struct {
					APIVersion string            `json:"apiVersion"`
					Kind       string            `json:"kind"`
					Metadata   metav1.ObjectMeta `json:"metadata"`
				} `json:"items"`
			}
			if err := yaml.Unmarshal([]byte(out), &list); err != nil {
				t.Fatalf("%v: %v", args, err)
			}
			var got []string
			for _, it := range list.Items {
				got = append(got, it.APIVersion+" "+it.Kind+" "+it.Metadata.Name)
			}
			if list.APIVersion != "v1" || list.Kind != "List" || len(got) == 0 {
				t.Errorf("%v: got %s %s %q", args, list.APIVersion, list.Kind, got)
			}
			for _, g := range got {
				if !strings.HasPrefix(g, "v1 Pod ") && !strings.HasPrefix(g, "v1 Service ") {
					t.Errorf("%v: got item %q", args, g)
				}
			}
		}
		// JSON is indented by four spaces, as kubectl's.
		out, _, _ := getRun(ctx, kubeconfig, "get", "pods", "-o", "json")
		if !strings.HasPrefix(out, "{\n    \"apiVersion\": \"v1\",\n    \"items\": [") || !json.Valid([]byte(out)) {
			t.Errorf("got %.80q...", out)
		}
	})
}

// syncBuffer is a bytes.Buffer safe to write from the command's goroutine
// while the test reads it.
type syncBuffer struct {
	// mu guards buf.
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// getWatch runs a get -w command until the returned stop function is
// called; stop returns the command's error.
func getWatch(t *testing.T, kubeconfig string, out *syncBuffer, args ...string) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(testenv.Context(t))
	done := make(chan error, 1)
	var errOut syncBuffer
	go func() { done <- getRunTo(ctx, kubeconfig, out, &errOut, args...) }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			t.Fatal("get -w did not end after its context was cancelled")
			return nil
		}
	}
	t.Cleanup(func() { stop() })
	return stop
}

func TestGetWatch(t *testing.T) {
	srv := testenv.StartServer(t)
	kubeconfig := ctlKubeconfig(t, srv)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	getFixture(t, ctx, c)
	getFixClock(t)

	waitFor := func(out *syncBuffer, what string, cond func(string) bool) {
		t.Helper()
		wait.For(t, 30*time.Second, what, func() (bool, error) {
			s := out.String()
			return cond(s), errors.New(s)
		})
	}
	lines := func(s string) []string { return strings.Split(strings.TrimSuffix(s, "\n"), "\n") }

	t.Run("list then changes", func(t *testing.T) {
		// A pod with a longer name than the others: the initial list is
		// one table, aligned to its longest name.
		canary := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "web-canary-1"},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.local/web:1.0"}}},
		}
		if _, err := c.Pods("default").Create(ctx, canary); err != nil {
			t.Fatal(err)
		}
		var out syncBuffer
		stop := getWatch(t, kubeconfig, &out, "get", "pods", "-w")
		waitFor(&out, "the initial table", func(s string) bool { return strings.Contains(s, "web-canary-1 ") })
		initial := out.String()
		want := "" +
			"NAME           READY   STATUS    RESTARTS   AGE\n" +
			"web-1          0/1     Pending   0          30d\n" +
			"web-2          1/1     Running   0          30d\n" +
			"web-canary-1   0/1     Pending   0          30d\n"
		if initial != want {
			t.Fatalf("initial table: got\n%s\nwant\n%s", initial, want)
		}

		// A new pod is one row more, under the same header.
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "web-3"},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.local/web:1.0"}}},
		}
		p, err := c.Pods("default").Create(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(&out, "a row for the new pod", func(s string) bool { return strings.Contains(s, "web-3") })

		// A change to it is another row.
		p.Status.Phase = corev1.PodRunning
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Image: "registry.local/web:1.0",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}, RestartCount: 4}}
		if _, err := c.Pods("default").UpdateStatus(ctx, p); err != nil {
			t.Fatal(err)
		}
		waitFor(&out, "a row for the change", func(s string) bool { return strings.Contains(s, "CrashLoopBackOff") })
		if err := stop(); err != nil {
			t.Fatalf("get -w ended with %v", err)
		}

		// Later rows keep the widths of the initial table; a longer
		// cell pushes the rest of its row.
		got := lines(out.String())
		wantRows := []string{
			"web-3          0/1     Pending   0          30d",
			"web-3          0/1     CrashLoopBackOff   4          30d",
		}
		if len(got) != 6 || got[4] != wantRows[0] || got[5] != wantRows[1] {
			t.Errorf("got\n%s\nwant the initial table, then\n%s", strings.Join(got, "\n"), strings.Join(wantRows, "\n"))
		}
		if strings.Count(out.String(), "NAME") != 1 {
			t.Errorf("the header was repeated:\n%s", out.String())
		}
	})

	t.Run("one object, watch only", func(t *testing.T) {
		var out syncBuffer
		stop := getWatch(t, kubeconfig, &out, "get", "pod", "web-1", "-w", "--watch-only", "-o", "name")
		// Nothing is printed before a change; wait until the watch is
		// open by changing the pod until a change shows.
		wait.For(t, 30*time.Second, "the label change to show", func() (bool, error) {
			if _, err := c.Pods("default").Patch(ctx, "web-1", types.MergePatchType,
				[]byte(`{"metadata":{"labels":{"touched":"`+time.Now().Format("150405.000000")+`"}}}`)); err != nil {
				return false, err
			}
			return strings.Contains(out.String(), "pod/web-1\n"), nil
		})
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		for _, l := range lines(out.String()) {
			if l != "pod/web-1" {
				t.Errorf("got line %q, want only pod/web-1 (other pods changed too)", l)
			}
		}
	})

	t.Run("missing object", func(t *testing.T) {
		_, _, err := getRun(ctx, kubeconfig, "get", "pod", "nope", "-w")
		if !apierrors.IsNotFound(err) {
			t.Errorf("got %v, want NotFound", err)
		}
		_, _, err = getRun(ctx, kubeconfig, "get", "pods,svc", "-w")
		if err == nil || !strings.Contains(err.Error(), "single resource type") {
			t.Errorf("got %v, want an error about a single resource type", err)
		}
	})
}
