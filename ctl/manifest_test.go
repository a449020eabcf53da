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
	t.Run("a bad document keeps the ones before it", func(t *testing.T) {
		docs, err := ReadManifests([]string{bad}, false, nil)
		if err == nil || len(docs) != 1 {
			t.Fatalf("got %d documents and %v; want 1 and an error", len(docs), err)
		}
		for _, want := range []string{"bad.yaml", "document 2", "line 6", `no matches for kind "Widget"`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
	})
	t.Run("directory, recursive or not", func(t *testing.T) {
		flat, err := ReadManifests([]string{filepath.Join(dir, "nested", "..")}, false, nil)
		if err == nil {
			t.Fatalf("the flat directory holds bad.yaml; got %d documents and no error", len(flat))
		}
		deep, _ := ReadManifests([]string{filepath.Join(dir, "nested")}, true, nil)
		if len(deep) != 1 || deep[0].Object.GetName() != "deep" {
			t.Fatalf("recursive read of nested/: %+v", deep)
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
