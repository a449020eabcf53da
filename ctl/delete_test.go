package ctl

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/testenv"
	"github.com/skiffdev/skiff/internal/wait"
)

// ctlPod creates a pod; with node set, it is also bound to that node, so
// that deleting it waits for the node's confirmation (a delete with grace
// period 0, as the kubelet sends once the containers have stopped).
func ctlPod(t *testing.T, c *client.Client, ns, name, node string, labels map[string]string) *corev1.Pod {
	t.Helper()
	ctx := testenv.Context(t)
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}},
	}
	p, err := c.Pods(ns).Create(ctx, p)
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", ns, name, err)
	}
	if node != "" {
		b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: name}, Target: corev1.ObjectReference{Kind: "Node", Name: node}}
		if err := c.Pods(ns).Bind(ctx, b); err != nil {
			t.Fatalf("bind pod %s/%s: %v", ns, name, err)
		}
	}
	return p
}

// confirmDeletion removes a bound pod as its kubelet would.
func confirmDeletion(t *testing.T, c *client.Client, ns, name string) {
	t.Helper()
	err := c.Pods(ns).Delete(testenv.Context(t), name, metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("confirm deletion of %s/%s: %v", ns, name, err)
	}
}

func podNames(t *testing.T, c *client.Client, ns string) []string {
	t.Helper()
	list, err := c.Pods(ns).List(testenv.Context(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range list.Items {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	return names
}

func TestDelete(t *testing.T) {
	srv := testenv.StartServer(t)
	kubeconfig := ctlKubeconfig(t, srv)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	dir := t.TempDir()

	t.Run("select", func(t *testing.T) {
		cases := []struct {
			name    string
			pods    map[string]map[string]string // name → labels
			args    []string
			want    string
			wantErr string
			left    []string
		}{
			{
				name: "by name",
				pods: map[string]map[string]string{"a": nil, "b": nil},
				args: []string{"pod", "a"},
				want: "pod \"a\" deleted\n",
				left: []string{"b"},
			},
			{
				name: "type/name",
				pods: map[string]map[string]string{"a": nil, "b": nil, "c": nil},
				args: []string{"po/a", "pods/c"},
				want: "pod \"a\" deleted\npod \"c\" deleted\n",
				left: []string{"b"},
			},
			{
				name: "by label",
				pods: map[string]map[string]string{"x1": {"app": "x"}, "x2": {"app": "x"}, "y": {"app": "y"}},
				args: []string{"pods", "-l", "app=x"},
				want: "pod \"x1\" deleted\npod \"x2\" deleted\n",
				left: []string{"y"},
			},
			{
				name: "all",
				pods: map[string]map[string]string{"a": nil, "b": nil},
				args: []string{"pods", "--all"},
				want: "pod \"a\" deleted\npod \"b\" deleted\n",
			},
			{
				name: "all of nothing",
				args: []string{"pods", "--all"},
				want: "No resources found\n",
			},
			{
				name:    "not found",
				args:    []string{"pod", "nope"},
				wantErr: `Error from server (NotFound): pods "nope" not found`,
			},
			{
				name: "not found, ignored",
				args: []string{"pod", "nope", "--ignore-not-found"},
			},
			{
				// The others are still deleted; the error is returned.
				name:    "one of two not found",
				pods:    map[string]map[string]string{"b": nil},
				args:    []string{"pod", "nope", "b"},
				want:    "pod \"b\" deleted\n",
				wantErr: `Error from server (NotFound): pods "nope" not found`,
			},
			{
				name:    "names and a selector",
				pods:    map[string]map[string]string{"a": nil},
				args:    []string{"pod", "a", "-l", "app=x"},
				wantErr: "error: names cannot be given together with -l, --field-selector or --all",
				left:    []string{"a"},
			},
			{
				name:    "names across all namespaces",
				pods:    map[string]map[string]string{"a": nil},
				args:    []string{"pod", "a", "-A"},
				wantErr: "error: a resource cannot be retrieved by name across all namespaces",
				left:    []string{"a"},
			},
			{
				name: "category",
				pods: map[string]map[string]string{"a": nil, "b": nil},
				args: []string{"all", "--all"},
				want: "pod \"a\" deleted\npod \"b\" deleted\n",
			},
			{
				name:    "type alone",
				pods:    map[string]map[string]string{"a": nil},
				args:    []string{"pods"},
				wantErr: "error: resource(s) were provided, but no name was specified; give names, -l SELECTOR or --all",
				left:    []string{"a"},
			},
		}
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ns := "sel" + string(rune('a'+i))
				ctlNamespace(t, c, ns)
				for name, labels := range tc.pods {
					ctlPod(t, c, ns, name, "", labels)
				}
				out, errOut, err := ctlRun(t, kubeconfig, "", append([]string{"delete", "-n", ns}, tc.args...)...)
				if tc.wantErr == "" && err != nil {
					t.Fatalf("delete: %v (stderr %q)", err, errOut)
				}
				if tc.wantErr != "" && (err == nil || FormatError(err) != tc.wantErr) {
					t.Errorf("got error %v, want %q", err, tc.wantErr)
				}
				if out != tc.want {
					t.Errorf("got %q, want %q", out, tc.want)
				}
				if got := podNames(t, c, ns); !slices.Equal(got, tc.left) {
					t.Errorf("pods left: got %v, want %v", got, tc.left)
				}
			})
		}
	})

	t.Run("by file", func(t *testing.T) {
		ctlNamespace(t, c, "file")
		ctlPod(t, c, "file", "one", "", nil)
		ctlPod(t, c, "file", "two", "", nil)
		path := ctlFile(t, dir, "pods.yaml", podYAML("one")+"---\n"+podYAML("two"))
		out, errOut, err := ctlRun(t, kubeconfig, "", "delete", "-n", "file", "-f", path)
		if want := "pod \"one\" deleted\npod \"two\" deleted\n"; err != nil || out != want {
			t.Errorf("got %q, %v (stderr %q); want %q", out, err, errOut, want)
		}
		if got := podNames(t, c, "file"); len(got) != 0 {
			t.Errorf("pods left: %v", got)
		}
		// Every object is tried, and each error is reported in order.
		_, _, err = ctlRun(t, kubeconfig, "", "delete", "-n", "file", "-f", path)
		want := `Error from server (NotFound): error when deleting "` + path + `" (document 1, line 1): pods "one" not found` + "\n" +
			`Error from server (NotFound): error when deleting "` + path + `" (document 2, line 10): pods "two" not found`
		if err == nil || FormatError(err) != want {
			t.Errorf("again: got %v, want %q", err, want)
		}

		// A kind Skiff does not serve is reported; the rest is deleted.
		ctlPod(t, c, "file", "three", "", nil)
		mixed := ctlFile(t, dir, "mixed.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: cfg\n---\n"+podYAML("three"))
		out, _, err = ctlRun(t, kubeconfig, "", "delete", "-n", "file", "-f", mixed)
		want = `error: resource mapping not found for name: "cfg" namespace: "" from "` + mixed + `" (document 1, line 1): no matches for kind "Widget" in version "example.com/v1"`
		if out != "pod \"three\" deleted\n" || FormatError(err) != want {
			t.Errorf("mixed kinds: got %q, %q; want pod \"three\" deleted and %q", out, FormatError(err), want)
		}
	})

	t.Run("waits until gone", func(t *testing.T) {
		ctlNamespace(t, c, "wait")
		ctlPod(t, c, "wait", "slow", "node-1", nil)

		type result struct {
			out string
			err error
		}
		done := make(chan result, 1)
		go func() {
			// ctlRun never calls t.Fatal, so it may run on this goroutine.
			out, _, err := ctlRun(t, kubeconfig, "", "delete", "-n", "wait", "pod", "slow")
			done <- result{out, err}
		}()

		wait.For(t, 10*time.Second, "the pod to be marked deleted", func() (bool, error) {
			p, err := c.Pods("wait").Get(ctx, "slow")
			return err == nil && p.DeletionTimestamp != nil, err
		})
		confirmDeletion(t, c, "wait", "slow")
		select {
		case r := <-done:
			if want := "pod \"slow\" deleted\n"; r.err != nil || r.out != want {
				t.Errorf("got %q, %v; want %q", r.out, r.err, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("delete still waiting 10s after the pod was removed")
		}
		if _, err := c.Pods("wait").Get(ctx, "slow"); !apierrors.IsNotFound(err) {
			t.Errorf("get after delete: %v, want NotFound", err)
		}
	})

	t.Run("no wait, and a timeout", func(t *testing.T) {
		ctlNamespace(t, c, "nowait")
		cases := []struct {
			name    string
			args    []string
			wantErr string
		}{
			{name: "--wait=false", args: []string{"--wait=false"}},
			{name: "--timeout", args: []string{"--timeout=200ms"}, wantErr: "error: timed out waiting for the condition on pods/slow"},
		}
		for _, tc := range cases {
			ctlPod(t, c, "nowait", "slow", "node-1", nil)
			out, _, err := ctlRun(t, kubeconfig, "", append([]string{"delete", "-n", "nowait", "pod", "slow"}, tc.args...)...)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || FormatError(err) != tc.wantErr) {
				t.Errorf("%s: got error %v, want %q", tc.name, err, tc.wantErr)
			}
			if want := "pod \"slow\" deleted\n"; out != want {
				t.Errorf("%s: got %q, want %q", tc.name, out, want)
			}
			p, err := c.Pods("nowait").Get(ctx, "slow")
			if err != nil || p.DeletionTimestamp == nil {
				t.Errorf("%s: got %v, %v; want the pod still there, marked deleted", tc.name, p, err)
			}
			confirmDeletion(t, c, "nowait", "slow")
		}
	})

	t.Run("cascade", func(t *testing.T) {
		ctlNamespace(t, c, "cascade")
		cases := []struct {
			cascade   string
			finalizer string
		}{
			{"orphan", metav1.FinalizerOrphanDependents},
			{"foreground", metav1.FinalizerDeleteDependents},
		}
		for _, tc := range cases {
			path := ctlFile(t, dir, "cascade.yaml", deploymentYAML("web-"+tc.cascade, "nginx", "", "", ""))
			if _, errOut, err := ctlRun(t, kubeconfig, "", "apply", "-n", "cascade", "-f", path); err != nil {
				t.Fatalf("apply: %v (stderr %q)", err, errOut)
			}
			// No garbage collector runs here to remove the finalizer, so
			// do not wait.
			out, errOut, err := ctlRun(t, kubeconfig, "", "delete", "-n", "cascade", "deploy", "web-"+tc.cascade, "--cascade="+tc.cascade, "--wait=false")
			if want := `deployment.apps "web-` + tc.cascade + `" deleted` + "\n"; err != nil || out != want {
				t.Errorf("--cascade=%s: got %q, %v (stderr %q); want %q", tc.cascade, out, err, errOut, want)
			}
			var d *appsv1.Deployment
			if d, err = c.Deployments("cascade").Get(ctx, "web-"+tc.cascade); err != nil {
				t.Fatalf("--cascade=%s: %v", tc.cascade, err)
			}
			if !slices.Contains(d.Finalizers, tc.finalizer) {
				t.Errorf("--cascade=%s: finalizers %v, want %q", tc.cascade, d.Finalizers, tc.finalizer)
			}
		}
		_, _, err := ctlRun(t, kubeconfig, "", "delete", "-n", "cascade", "deploy", "x", "--cascade=sideways")
		if err == nil || !strings.Contains(err.Error(), `invalid cascade value (sideways)`) {
			t.Errorf("--cascade=sideways: got %v, want an invalid cascade value error", err)
		}
	})

	t.Run("says what it waits on", func(t *testing.T) {
		saved := waitNotice
		waitNotice = 0
		t.Cleanup(func() { waitNotice = saved })
		ctlNamespace(t, c, "team-a")
		ctlNamespace(t, c, "notice")
		ctlPod(t, c, "notice", "slow", "node-1", nil)
		cases := []struct {
			name       string
			args       []string
			wantOut    string
			wantNotice string
			wantErr    string
		}{
			{
				// The namespace controller (not running here) removes
				// the finalizer; the namespace rightly waits for it.
				name:       "namespace",
				args:       []string{"ns", "team-a"},
				wantOut:    "namespace \"team-a\" deleted\n",
				wantNotice: `waiting for namespace "team-a" to be finalized (finalizers: kubernetes); the namespace controller removes it`,
				wantErr:    "error: timed out waiting for the condition on namespaces/team-a",
			},
			{
				name:       "pod on a node",
				args:       []string{"-n", "notice", "pod", "slow"},
				wantOut:    "pod \"slow\" deleted\n",
				wantNotice: `waiting for pod "slow" to end its graceful deletion (grace period 30s); the kubelet of node "node-1" removes it once its containers have stopped`,
				wantErr:    "error: timed out waiting for the condition on pods/slow",
			},
		}
		for _, tc := range cases {
			out, errOut, err := ctlRun(t, kubeconfig, "", append([]string{"delete", "--timeout=1s"}, tc.args...)...)
			if out != tc.wantOut || errOut != tc.wantNotice+"\n" || FormatError(err) != tc.wantErr {
				t.Errorf("%s: got stdout %q, stderr %q, error %q; want %q, %q, %q",
					tc.name, out, errOut, FormatError(err), tc.wantOut, tc.wantNotice+"\n", tc.wantErr)
			}
		}
		confirmDeletion(t, c, "notice", "slow")
	})

	t.Run("interrupted", func(t *testing.T) {
		ctlNamespace(t, c, "interrupted")
		runCtx, interrupt := context.WithCancel(ctx)
		type result struct {
			out, errOut string
			err         error
		}
		done := make(chan result, 1)
		go func() {
			out, errOut, err := ctlRunContext(runCtx, kubeconfig, "", "delete", "ns", "interrupted")
			done <- result{out, errOut, err}
		}()
		wait.For(t, 10*time.Second, "the namespace to be terminating", func() (bool, error) {
			ns, err := c.Namespaces().Get(ctx, "interrupted")
			return err == nil && ns.DeletionTimestamp != nil, err
		})
		interrupt()
		select {
		case r := <-done:
			// Exit status 1, and nothing more to say.
			if r.err == nil || FormatError(r.err) != "" || strings.Contains(r.errOut, "canceled") {
				t.Errorf("got stdout %q, stderr %q, error %v; want an error that FormatError leaves unsaid", r.out, r.errOut, r.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("delete still waiting 10s after it was interrupted")
		}
	})
}
