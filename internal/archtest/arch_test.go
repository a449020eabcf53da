package archtest

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/skiffdev/skiff"

type pkg struct {
	ImportPath   string
	Dir          string
	Imports      []string
	GoFiles      []string
	TestGoFiles  []string
	XTestGoFiles []string
}

// listPackages returns every package of the module with its direct imports
// (test files excluded: tests may start whole clusters).
func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// component returns the top-level component a package belongs to, or "".
func component(path string) string {
	rest := strings.TrimPrefix(path, module+"/")
	first, _, _ := strings.Cut(rest, "/")
	switch first {
	case "apiserver", "scheduler", "controllers", "kubelet", "proxy", "ctl", "simnodes":
		return first
	}
	return ""
}

// TestImportRules enforces the architecture's boundaries:
//   - only the API server talks to etcd, so only apiserver/... imports the
//     etcd client or server;
//   - components never import each other; they meet only through the API.
//
// cmd/ (which wires components into binaries) and internal/testenv (which
// starts them for tests) are exempt from the second rule.
func TestImportRules(t *testing.T) {
	for _, p := range listPackages(t) {
		from := component(p.ImportPath)
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, "go.etcd.io/etcd/") && from != "apiserver" {
				t.Errorf("%s imports %s: only apiserver/... may talk to etcd", p.ImportPath, imp)
			}
			if !strings.HasPrefix(imp, module+"/") || from == "" {
				continue
			}
			if to := component(imp); to != "" && to != from {
				t.Errorf("%s imports %s: components talk to each other only through the API", p.ImportPath, imp)
			}
		}
	}
}

// TestEveryPackageHasDoc requires exactly one package doc comment per
// package, so that a reader always knows where to start.
func TestEveryPackageHasDoc(t *testing.T) {
	for _, p := range listPackages(t) {
		docs := 0
		for _, f := range p.GoFiles {
			file, err := parser.ParseFile(token.NewFileSet(), filepath.Join(p.Dir, f), nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			if file.Doc != nil {
				docs++
			}
		}
		if docs != 1 {
			t.Errorf("%s has %d package doc comments, want exactly 1", p.ImportPath, docs)
		}
	}
}

// waitPkg is the one place tests wait from.
const waitPkg = module + "/internal/wait"

// TestWaitImportsOnlyTheStandardLibrary keeps internal/wait importable by
// the tests of every package: it imports nothing of the module (the API
// server and the client among them, whose own tests wait too) and no
// other module either.
func TestWaitImportsOnlyTheStandardLibrary(t *testing.T) {
	for _, p := range listPackages(t) {
		if p.ImportPath != waitPkg {
			continue
		}
		for _, imp := range p.Imports {
			if first, _, _ := strings.Cut(imp, "/"); strings.Contains(first, ".") {
				t.Errorf("%s imports %s: it may import only the standard library", p.ImportPath, imp)
			}
		}
		return
	}
	t.Fatalf("package %s not found", waitPkg)
}

// TestNoOtherEventually keeps waiting in one place: no file, tests
// included, outside internal/wait declares a function called Eventually
// (in any case). A second hand-written copy drifts from the first: its
// own poll interval, its own failure message, no last error.
func TestNoOtherEventually(t *testing.T) {
	for _, p := range listPackages(t) {
		if p.ImportPath == waitPkg {
			continue
		}
		for _, files := range [][]string{p.GoFiles, p.TestGoFiles, p.XTestGoFiles} {
			for _, f := range files {
				path := filepath.Join(p.Dir, f)
				file, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range file.Decls {
					if fn, ok := d.(*ast.FuncDecl); ok && strings.EqualFold(fn.Name.Name, "eventually") {
						t.Errorf("%s declares %s: wait with internal/wait (wait.For, wait.Until)", path, fn.Name.Name)
					}
				}
			}
		}
	}
}
