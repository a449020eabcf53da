package ctl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadManifests(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	multi := write("multi.yaml", `# leading comment
apiVersion: v1
kind: Namespace
metadata:
  name: a
---
---
apiVersion: v1
kind: Pod
metadata:
  name: p
spec:
  containers: [{name: c, image: busybox}]
`)
	list := write("list.json", `{"apiVersion":"v1","kind":"List","items":[
 {"apiVersion":"v1","kind":"Service","metadata":{"name":"s"}},
 {"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"}}]}`)
	bad := write("bad.yaml", `apiVersion: v1
kind: Namespace
metadata:
  name: ok
---
apiVersion: v1
kind: Widget
metadata:
  name: w
`)
	write("nested/deep.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: deep\n")
	write("notes.txt", "not a manifest")

	t.Run("multi-document YAML", func(t *testing.T) {
		docs, err := ReadManifests([]string{multi}, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(docs) != 2 || docs[0].Resource.Resource != "namespaces" || docs[1].Resource.Resource != "pods" {
			t.Fatalf("got %d documents: %+v", len(docs), docs)
		}
		if docs[0].Line != 2 || docs[1].Index != 1 || docs[1].Line != 8 {
			t.Fatalf("positions: doc0 line %d, doc1 index %d line %d; want 2, 1, 8", docs[0].Line, docs[1].Index, docs[1].Line)
		}
	})
	t.Run("kind List", func(t *testing.T) {
		docs, err := ReadManifests([]string{list}, false, nil)
		if err != nil || len(docs) != 2 || docs[1].Resource.Kind != "Deployment" {
			t.Fatalf("got %v, %+v", err, docs)
		}
	})
	t.Run("an unknown kind is recorded and reading goes on", func(t *testing.T) {
		docs, err := ReadManifests([]string{bad}, false, nil)
		if err != nil || len(docs) != 2 {
			t.Fatalf("got %d documents and %v; want 2 and no error", len(docs), err)
		}
		if docs[0].Err != nil || docs[0].Resource == nil {
			t.Errorf("document 1: got %v, %v; want the namespace resource", docs[0].Resource, docs[0].Err)
		}
		w := docs[1]
		if w.Resource != nil || w.Err == nil || w.Index != 1 || w.Line != 6 || w.Object.GetName() != "w" {
			t.Fatalf("document 2: got index %d, line %d, resource %v, error %v", w.Index, w.Line, w.Resource, w.Err)
		}
		if want := `no matches for kind "Widget" in version "v1"`; w.Err.Error() != want {
			t.Errorf("got %q, want %q", w.Err, want)
		}
	})
	t.Run("a syntax error stops the reading", func(t *testing.T) {
		dir := t.TempDir()
		cases := []struct {
			name, content string
			docs          int
			want          string // with PATH for the file
		}{
			{
				// The parser's own line numbers count from the start
				// of the document; the error gives the file's line.
				name: "yaml",
				content: "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\n# a comment\n\n" +
					"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: [b\n---\n" +
					"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: c\n",
				docs: 1,
				want: `error reading "PATH" (document 2, line 8): yaml: line 11: did not find expected ',' or ']'`,
			},
			{
				name:    "yaml, tab indentation",
				content: "apiVersion: v1\nkind: Namespace\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n\tname: b\n",
				docs:    1,
				want:    `error reading "PATH" (document 2, line 4): yaml: line 7: found character that cannot start any token`,
			},
			{
				name:    "json",
				content: "{\"apiVersion\": \"v1\",\n \"kind\": \"Namespace\",\n \"metadata\": {\"name\": \"a\"}\n",
				want:    `error reading "PATH" (document 1, line 1): yaml: line 3: did not find expected ',' or '}'`,
			},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
				if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
					t.Fatal(err)
				}
				docs, err := ReadManifests([]string{path}, false, nil)
				want := strings.ReplaceAll(tc.want, "PATH", path)
				if len(docs) != tc.docs || err == nil || err.Error() != want {
					t.Errorf("got %d documents and %v; want %d and %q", len(docs), err, tc.docs, want)
				}
			})
		}
	})
	t.Run("directory, recursive or not", func(t *testing.T) {
		names := func(docs []Document) []string {
			var out []string
			for _, d := range docs {
				out = append(out, d.Object.GetName())
			}
			return out
		}
		flat, err := ReadManifests([]string{dir}, false, nil)
		if err != nil {
			t.Fatalf("flat read: %v", err)
		}
		// bad.yaml, list.json and multi.yaml, in that order; not
		// nested/deep.yaml, nor notes.txt.
		if got, want := strings.Join(names(flat), ","), "ok,w,s,d,a,p"; got != want {
			t.Errorf("flat read: got %s, want %s", got, want)
		}
		deep, err := ReadManifests([]string{dir}, true, nil)
		if err != nil {
			t.Fatalf("recursive read: %v", err)
		}
		if got, want := strings.Join(names(deep), ","), "ok,w,s,d,a,p,deep"; got != want {
			t.Errorf("recursive read: got %s, want %s", got, want)
		}
	})
	t.Run("standard input", func(t *testing.T) {
		docs, err := ReadManifests([]string{"-"}, false, strings.NewReader("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n"))
		if err != nil || len(docs) != 1 || !strings.HasPrefix(docs[0].Where(), "STDIN") {
			t.Fatalf("got %v, %+v", err, docs)
		}
	})
	t.Run("apply order puts namespaces first", func(t *testing.T) {
		docs, err := ReadManifests([]string{filepath.Join("..", "examples", "namespace.yaml")}, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := applyOrder(docs); got[0].Resource.Resource != "namespaces" {
			t.Fatalf("first applied: %s", got[0].Resource.Resource)
		}
	})
}

func TestResolveResource(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"pods", "pods"}, {"po", "pods"}, {"Pod", "pods"}, {"pod", "pods"},
		{"deploy", "deployments.apps"}, {"deployments.apps", "deployments.apps"}, {"rs", "replicasets.apps"},
		{"svc", "services"}, {"no", "nodes"}, {"ns", "namespaces"}, {"ev", "events"},
		{"lease", "leases.coordination.k8s.io"}, {"endpointslice", "endpointslices.discovery.k8s.io"},
	} {
		r, err := ResolveResource(tc.name)
		if err != nil || r.GroupResource().String() != tc.want {
			t.Errorf("ResolveResource(%q) = %v, %v; want %s", tc.name, r, err, tc.want)
		}
	}
	if _, err := ResolveResource("widgets"); err == nil || !strings.Contains(err.Error(), `doesn't have a resource type "widgets"`) {
		t.Errorf("unknown resource: %v", err)
	}
}
