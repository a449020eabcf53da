package ctl

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffdev/skiff/apiserver"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/clientconfig"
	"github.com/skiffdev/skiff/internal/testenv"
)

// ctlRun runs skiffctl with args against the API server that the
// kubeconfig file names (see ctlKubeconfig), with stdin as its standard
// input, and returns what it printed.
func ctlRun(t *testing.T, kubeconfig, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return ctlRunContext(testenv.Context(t), kubeconfig, stdin, args...)
}

// ctlRunContext is ctlRun with a context that the test may cancel, as
// Ctrl-C does. It never calls t.Fatal, so it may run on any goroutine.
func ctlRunContext(ctx context.Context, kubeconfig, stdin string, args ...string) (stdout, stderr string, err error) {
	var out, errOut syncBuffer
	o := DefaultOptions()
	o.Streams = Streams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut}
	o.Kubeconfig = kubeconfig
	o.ConfigPaths = nil // never the files of the machine that runs the tests
	cmd := NewCommand(o)
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(ctx)
	o.Close()
	return out.String(), errOut.String(), err
}

// ctlKubeconfig writes an admin kubeconfig for srv into a temporary
// directory, as skiff server writes one, and returns its path: skiffctl
// connects with it as system:admin.
func ctlKubeconfig(t *testing.T, srv *apiserver.Server) string {
	t.Helper()
	return testenv.AdminKubeconfig(t, srv)
}

// ctlKubeconfigWith writes a kubeconfig of creds into a temporary
// directory and returns its path.
func ctlKubeconfigWith(t *testing.T, creds clientconfig.Credentials) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientconfig.WriteKubeconfig(path, creds); err != nil {
		t.Fatal(err)
	}
	return path
}

// ctlFile writes a manifest into dir and returns its path.
func ctlFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// ctlNamespace creates a namespace for one subtest.
func ctlNamespace(t *testing.T, c *client.Client, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := c.Namespaces().Create(testenv.Context(t), ns); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// deploymentYAML is a Deployment manifest as a user writes it. extraLabels
// and env are YAML fragments (already indented) that may be empty.
func deploymentYAML(name, image, replicas, extraLabels, env string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  labels:
    app: %[1]s
%[4]sspec:
%[3]s  selector:
    matchLabels:
      app: %[1]s
  template:
    metadata:
      labels:
        app: %[1]s
    spec:
      containers:
      - name: app
        image: %[2]s
%[5]s`, name, image, replicas, extraLabels, env)
}

func podYAML(name string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
  containers:
  - name: app
    image: busybox
`, name)
}

func TestApply(t *testing.T) {
	srv := testenv.StartServer(t)
	kubeconfig := ctlKubeconfig(t, srv)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	dir := t.TempDir()

	getDeployment := func(t *testing.T, ns, name string) *appsv1.Deployment {
		t.Helper()
		d, err := c.Deployments(ns).Get(ctx, name)
		if err != nil {
			t.Fatalf("get deployment %s/%s: %v", ns, name, err)
		}
		return d
	}

	t.Run("created, unchanged, configured", func(t *testing.T) {
		steps := []struct {
			name     string
			manifest string
			want     string
			check    func(t *testing.T, d *appsv1.Deployment)
		}{
			{
				name:     "new",
				manifest: deploymentYAML("web", "nginx:1.25", "  replicas: 2\n", "", ""),
				want:     "deployment.apps/web created\n",
				check: func(t *testing.T, d *appsv1.Deployment) {
					last := d.Annotations[lastAppliedAnnotation]
					if !strings.Contains(last, `"image":"nginx:1.25"`) || !strings.Contains(last, `"namespace":"default"`) || strings.Contains(last, "last-applied") {
						t.Errorf("last-applied annotation = %q, want the manifest with its namespace and without itself", last)
					}
				},
			},
			{
				name:     "same again",
				manifest: deploymentYAML("web", "nginx:1.25", "  replicas: 2\n", "", ""),
				want:     "deployment.apps/web unchanged\n",
			},
			{
				name:     "new image",
				manifest: deploymentYAML("web", "nginx:1.26", "  replicas: 2\n", "", ""),
				want:     "deployment.apps/web configured\n",
				check: func(t *testing.T, d *appsv1.Deployment) {
					if got := d.Spec.Template.Spec.Containers[0].Image; got != "nginx:1.26" {
						t.Errorf("image = %q, want nginx:1.26", got)
					}
					if !strings.Contains(d.Annotations[lastAppliedAnnotation], `"image":"nginx:1.26"`) {
						t.Errorf("last-applied annotation not updated: %q", d.Annotations[lastAppliedAnnotation])
					}
				},
			},
		}
		for _, step := range steps {
			path := ctlFile(t, dir, "web.yaml", step.manifest)
			out, errOut, err := ctlRun(t, kubeconfig, "", "apply", "-f", path)
			if err != nil {
				t.Fatalf("%s: apply: %v (stderr %q)", step.name, err, errOut)
			}
			if out != step.want {
				t.Errorf("%s: got %q, want %q", step.name, out, step.want)
			}
			if step.check != nil {
				step.check(t, getDeployment(t, "default", "web"))
			}
		}
	})

	t.Run("removed fields go, the cluster's stay", func(t *testing.T) {
		ctlNamespace(t, c, "prune")
		first := deploymentYAML("api", "api:1", "  replicas: 3\n", "    tier: backend\n",
			"        env:\n        - name: KEEP\n          value: \"1\"\n        - name: DROP\n          value: \"2\"\n")
		path := ctlFile(t, dir, "api.yaml", first)
		if _, errOut, err := ctlRun(t, kubeconfig, "", "apply", "-n", "prune", "-f", path); err != nil {
			t.Fatalf("apply: %v (stderr %q)", err, errOut)
		}

		// Others write too: a status, and a label the manifest never had.
		d := getDeployment(t, "prune", "api")
		d.Status.ObservedGeneration = d.Generation
		d.Status.Replicas = 3
		if _, err := c.Deployments("prune").UpdateStatus(ctx, d); err != nil {
			t.Fatalf("update status: %v", err)
		}
		if _, err := c.Deployments("prune").Patch(ctx, "api", types.MergePatchType, []byte(`{"metadata":{"labels":{"owner":"ops"}}}`)); err != nil {
			t.Fatalf("add label: %v", err)
		}

		// The manifest loses its replicas, a label and an env var.
		second := deploymentYAML("api", "api:1", "", "",
			"        env:\n        - name: KEEP\n          value: \"1\"\n")
		ctlFile(t, dir, "api.yaml", second)
		out, errOut, err := ctlRun(t, kubeconfig, "", "apply", "-n", "prune", "-f", path)
		if err != nil {
			t.Fatalf("apply: %v (stderr %q)", err, errOut)
		}
		if want := "deployment.apps/api configured\n"; out != want {
			t.Errorf("got %q, want %q", out, want)
		}
		d = getDeployment(t, "prune", "api")
		if _, ok := d.Labels["tier"]; ok {
			t.Errorf("label tier is still there: %v", d.Labels)
		}
		if got := d.Labels["owner"]; got != "ops" {
			t.Errorf("label owner = %q, want ops (another writer's label is kept)", got)
		}
		if env := d.Spec.Template.Spec.Containers[0].Env; len(env) != 1 || env[0].Name != "KEEP" {
			t.Errorf("env = %v, want only KEEP", env)
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
			t.Errorf("replicas = %v, want the default 1 once the manifest no longer sets 3", d.Spec.Replicas)
		}
		if d.Status.Replicas != 3 {
			t.Errorf("status.replicas = %d, want 3 (status is kept)", d.Status.Replicas)
		}
		if d.Spec.RevisionHistoryLimit == nil || *d.Spec.RevisionHistoryLimit != 10 {
			t.Errorf("revisionHistoryLimit = %v, want the server's default 10", d.Spec.RevisionHistoryLimit)
		}

		// Applying once more changes nothing.
		out, _, err = ctlRun(t, kubeconfig, "", "apply", "-n", "prune", "-f", path)
		if want := "deployment.apps/api unchanged\n"; err != nil || out != want {
			t.Errorf("apply again: got %q, %v; want %q", out, err, want)
		}
	})

	t.Run("bad document in the middle", func(t *testing.T) {
		// Documents 1 and 3 are fine; document 2 starts on line 20.
		unknownKind := "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: cfg\nspec:\n  a: b\n"
		cases := []struct {
			name      string
			bad       string
			want      []string // in this order, each on its own line
			thirdMade bool
		}{
			{
				name:      "unknown field",
				bad:       deploymentYAML("mid", "nginx", "  replica: 2\n", "", ""),
				want:      []string{`Error from server (BadRequest): error when applying "PATH" (document 2, line 20): `, `unknown field "spec.replica"`},
				thirdMade: true, // the server refused one object; the others are still applied
			},
			{
				name:      "unknown kind",
				bad:       unknownKind,
				want:      []string{`error: resource mapping not found for name: "cfg" namespace: "" from "PATH" (document 2, line 20): no matches for kind "Widget" in version "example.com/v1"`},
				thirdMade: true, // as kubectl: the others are still applied
			},
			{
				name: "syntax error",
				bad:  "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: [oops\n",
				// The parser's line is the file's line too.
				want:      []string{`error: error reading "PATH" (document 2, line 20): yaml: line 23: did not find expected`},
				thirdMade: false, // reading stops at a broken document
			},
			{
				// Each error on its own line, in the order of the file.
				name: "several",
				bad:  unknownKind + "---\n" + deploymentYAML("mid", "nginx", "  replica: 2\n", "", ""),
				want: []string{
					`error: resource mapping not found for name: "cfg" namespace: "" from "PATH" (document 2, line 20)`,
					"\n",
					`Error from server (BadRequest): error when applying "PATH" (document 3, line 27): `,
				},
				thirdMade: true,
			},
		}
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ns := fmt.Sprintf("bad%d", i)
				ctlNamespace(t, c, ns)
				manifest := deploymentYAML("first", "nginx", "", "", "") + "---\n" + tc.bad + "---\n" + deploymentYAML("third", "nginx", "", "", "")
				path := ctlFile(t, dir, ns+"/all.yaml", manifest)
				out, errOut, err := ctlRun(t, kubeconfig, "", "apply", "-n", ns, "-f", path)
				if err == nil {
					t.Fatalf("apply succeeded, want an error (stdout %q)", out)
				}
				msg := FormatError(err)
				rest := msg
				for _, w := range tc.want {
					w = strings.ReplaceAll(w, "PATH", path)
					i := strings.Index(rest, w)
					if i < 0 {
						t.Errorf("error %q lacks %q (after what came before)", msg, w)
						break
					}
					rest = rest[i+len(w):]
				}
				if errOut != "" {
					t.Errorf("stderr = %q, want nothing (the errors are returned)", errOut)
				}
				if !strings.Contains(out, "deployment.apps/first created\n") {
					t.Errorf("stdout = %q, want the first document applied", out)
				}
				getDeployment(t, ns, "first")
				_, err = c.Deployments(ns).Get(ctx, "third")
				if tc.thirdMade && err != nil {
					t.Errorf("third document: %v, want it applied", err)
				}
				if !tc.thirdMade && !apierrors.IsNotFound(err) {
					t.Errorf("third document: got %v, want NotFound", err)
				}
			})
		}
	})

	t.Run("bad field in an update", func(t *testing.T) {
		ctlNamespace(t, c, "typo")
		path := ctlFile(t, dir, "typo.yaml", deploymentYAML("typo", "nginx", "", "", ""))
		if _, errOut, err := ctlRun(t, kubeconfig, "", "apply", "-n", "typo", "-f", path); err != nil {
			t.Fatalf("apply: %v (stderr %q)", err, errOut)
		}
		where := `"` + path + `" (document 1, line 1): `
		cases := []struct {
			name, manifest, want string
		}{
			// Most mistakes reach the server in the patch, which refuses
			// the patched object.
			{
				"unknown scalar",
				deploymentYAML("typo", "nginx", "  replica: 2\n", "", ""),
				`Error from server (BadRequest): error when applying ` + where + `Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.replica"`,
			},
			{
				"unknown map",
				deploymentYAML("typo", "nginx", "  strategyy:\n    type: Recreate\n", "", ""),
				`Error from server (BadRequest): error when applying ` + where + `Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.strategyy"`,
			},
			// A list item without its merge key stops the diff here; the
			// object as a whole is then decoded to say what is wrong.
			{
				"container without a name",
				strings.Replace(deploymentYAML("typo", "nginx", "", "", ""), "      - name: app\n        image: nginx\n", "      - image: nginx\n        imagePulPolicy: Always\n", 1),
				`error: error when applying ` + where + `strict decoding error: unknown field "spec.template.spec.containers[0].imagePulPolicy"`,
			},
		}
		for _, tc := range cases {
			ctlFile(t, dir, "typo.yaml", tc.manifest)
			_, _, err := ctlRun(t, kubeconfig, "", "apply", "-n", "typo", "-f", path)
			if err == nil || FormatError(err) != tc.want {
				t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
			}
		}
	})

	t.Run("directory, recursively", func(t *testing.T) {
		ctlNamespace(t, c, "tree")
		tree := filepath.Join(dir, "tree")
		ctlFile(t, tree, "a.yaml", podYAML("a"))
		ctlFile(t, tree, "sub/b.yml", podYAML("b"))
		ctlFile(t, tree, "notes.txt", "not a manifest")

		cases := []struct {
			args []string
			want string
		}{
			{[]string{"-f", tree}, "pod/a created\n"},
			{[]string{"-R", "-f", tree}, "pod/a unchanged\npod/b created\n"},
		}
		for _, tc := range cases {
			out, errOut, err := ctlRun(t, kubeconfig, "", append([]string{"apply", "-n", "tree"}, tc.args...)...)
			if err != nil || out != tc.want {
				t.Errorf("apply %v: got %q, %v (stderr %q); want %q", tc.args, out, err, errOut, tc.want)
			}
		}
	})

	t.Run("standard input, List, namespaces first", func(t *testing.T) {
		list := `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata:
    name: l1
  spec:
    containers:
    - name: app
      image: busybox
- apiVersion: v1
  kind: Pod
  metadata:
    name: l2
  spec:
    containers:
    - name: app
      image: busybox
`
		team := strings.Replace(deploymentYAML("web", "nginx", "", "", ""), "  name: web\n", "  name: web\n  namespace: team\n", 1) +
			"---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n"
		cases := []struct {
			name  string
			stdin string
			args  []string
			want  string
		}{
			{"stdin", podYAML("piped"), []string{"-f", "-"}, "pod/piped created\n"},
			{"list", list, []string{"-f", "-"}, "pod/l1 created\npod/l2 created\n"},
			{"namespace after its deployment", team, []string{"-f", "-"}, "namespace/team created\ndeployment.apps/web created\n"},
			{"explicit -n", podYAML("in-team"), []string{"-n", "team", "-f", "-"}, "pod/in-team created\n"},
		}
		for _, tc := range cases {
			out, errOut, err := ctlRun(t, kubeconfig, tc.stdin, append([]string{"apply"}, tc.args...)...)
			if err != nil || out != tc.want {
				t.Errorf("%s: got %q, %v (stderr %q); want %q", tc.name, out, err, errOut, tc.want)
			}
		}
		if _, err := c.Pods("team").Get(ctx, "in-team"); err != nil {
			t.Errorf("pod in-team: %v, want it in namespace team", err)
		}
	})

	t.Run("namespace mismatch", func(t *testing.T) {
		manifest := strings.Replace(podYAML("lost"), "  name: lost\n", "  name: lost\n  namespace: team\n", 1)
		_, _, err := ctlRun(t, kubeconfig, manifest, "apply", "-n", "default", "-f", "-")
		want := `error: error when applying STDIN (document 1, line 1): the namespace from the provided object "team" does not match the namespace "default"`
		if err == nil || !strings.HasPrefix(FormatError(err), want) {
			t.Errorf("got %v, want an error starting %q", err, want)
		}
	})

	t.Run("dry run", func(t *testing.T) {
		for _, mode := range []string{"client", "server"} {
			out, errOut, err := ctlRun(t, kubeconfig, podYAML("dry"), "apply", "--dry-run="+mode, "-f", "-")
			if err != nil || !strings.HasPrefix(out, "pod/dry created (") {
				t.Errorf("--dry-run=%s: got %q, %v (stderr %q)", mode, out, err, errOut)
			}
		}
		if _, err := c.Pods("default").Get(ctx, "dry"); !apierrors.IsNotFound(err) {
			t.Errorf("get after dry runs: %v, want NotFound", err)
		}
	})
}

func TestCreate(t *testing.T) {
	srv := testenv.StartServer(t)
	kubeconfig := ctlKubeconfig(t, srv)
	c := testenv.NewClient(t, srv)
	path := ctlFile(t, t.TempDir(), "web.yaml", podYAML("web"))

	cases := []struct {
		name    string
		want    string
		wantErr string
	}{
		{name: "new", want: "pod/web created\n"},
		{name: "again", wantErr: `Error from server (AlreadyExists): error when creating "` + path + `" (document 1, line 1): pods "web" already exists`},
	}
	for _, tc := range cases {
		out, errOut, err := ctlRun(t, kubeconfig, "", "create", "-f", path)
		if tc.wantErr != "" {
			if err == nil || FormatError(err) != tc.wantErr || !apierrors.IsAlreadyExists(err) {
				t.Errorf("%s: got %v, want %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil || out != tc.want {
			t.Errorf("%s: got %q, %v (stderr %q); want %q", tc.name, out, err, errOut, tc.want)
		}
	}
	// A kind Skiff does not serve is reported; the rest is created.
	mixed := ctlFile(t, t.TempDir(), "mixed.yaml", podYAML("other")+"---\napiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: s\n")
	out, _, err := ctlRun(t, kubeconfig, "", "create", "-f", mixed)
	want := `error: resource mapping not found for name: "s" namespace: "" from "` + mixed + `" (document 2, line 10): no matches for kind "Widget" in version "example.com/v1"`
	if out != "pod/other created\n" || FormatError(err) != want {
		t.Errorf("mixed kinds: got %q, %q; want pod/other created and %q", out, FormatError(err), want)
	}

	p, err := c.Pods("default").Get(testenv.Context(t), "web")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Annotations[lastAppliedAnnotation]; ok {
		t.Errorf("create without --save-config set the last-applied annotation")
	}

	// apply takes over what create made: with --save-config it finds
	// nothing to change; without, it warns and adds the annotation.
	saved := ctlFile(t, t.TempDir(), "saved.yaml", podYAML("saved"))
	if _, errOut, err := ctlRun(t, kubeconfig, "", "create", "--save-config", "-f", saved); err != nil {
		t.Fatalf("create --save-config: %v (stderr %q)", err, errOut)
	}
	takeovers := []struct {
		path, want, warning string
	}{
		{saved, "pod/saved unchanged\n", ""},
		{path, "pod/web configured\n", "Warning: pod/web has no " + lastAppliedAnnotation + " annotation"},
	}
	for _, tc := range takeovers {
		out, errOut, err := ctlRun(t, kubeconfig, "", "apply", "-f", tc.path)
		if err != nil || out != tc.want {
			t.Errorf("apply %s: got %q, %v; want %q", tc.path, out, err, tc.want)
		}
		if tc.warning == "" && errOut != "" || !strings.HasPrefix(errOut, tc.warning) {
			t.Errorf("apply %s: stderr %q, want %q", tc.path, errOut, tc.warning)
		}
	}
}
