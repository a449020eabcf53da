package archtest

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/skiffdev/skiff"

type pkg struct {
	ImportPath string
	Dir        string
	Imports    []string
	GoFiles    []string
	// TestGoFiles and XTestGoFiles are the package's test files, in the
	// package and in its _test package.
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

// TestOneEventRecorder requires that the interface through which events
// are recorded is declared once, as events.EventRecorder: no other package
// (tests included) declares a type called EventRecorder or an interface
// with an Eventf method. Copies drift apart, and a reader who finds five
// of them cannot tell which contract holds.
func TestOneEventRecorder(t *testing.T) {
	const home = module + "/internal/events"
	for _, p := range listPackages(t) {
		if p.ImportPath == home {
			continue
		}
		for _, name := range slices.Concat(p.GoFiles, p.TestGoFiles, p.XTestGoFiles) {
			file, err := parser.ParseFile(token.NewFileSet(), filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(file, func(n ast.Node) bool {
				ts, ok := n.(*ast.TypeSpec)
				if !ok {
					return true
				}
				if ts.Name.Name == "EventRecorder" {
					t.Errorf("%s/%s declares EventRecorder: use events.EventRecorder", p.ImportPath, name)
				} else if it, ok := ts.Type.(*ast.InterfaceType); ok && hasMethod(it, "Eventf") {
					t.Errorf("%s/%s declares interface %s with Eventf: use events.EventRecorder", p.ImportPath, name, ts.Name.Name)
				}
				return true
			})
		}
	}
}

// hasMethod reports whether the interface declares a method called name.
func hasMethod(it *ast.InterfaceType, name string) bool {
	for _, f := range it.Methods.List {
		for _, n := range f.Names {
			if n.Name == name {
				return true
			}
		}
	}
	return false
}
