package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// globalSlog are the package-level functions of log/slog that read or
// change the process-wide default logger.
var globalSlog = map[string]bool{
	"Debug": true, "DebugContext": true, "Info": true, "InfoContext": true,
	"Warn": true, "WarnContext": true, "Error": true, "ErrorContext": true,
	"Log": true, "LogAttrs": true, "Default": true, "With": true,
	"SetDefault": true, "SetLogLoggerLevel": true,
}

// TestNoGlobalLogger: library packages log through the logger their
// context carries (internal/logging), never through the process-wide
// default (slog.Info, slog.Default, ...). A line logged through the
// default lacks the component and the object its caller attached, and a
// library that reads the default cannot be given another logger by its
// caller (a test's, a second component's in the same process). Only the
// binaries (cmd/), which set the default, and internal/logging, whose
// From falls back to it, may call those functions.
func TestNoGlobalLogger(t *testing.T) {
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(p.ImportPath, module+"/")
		if strings.HasPrefix(rel, "cmd/") || rel == "internal/logging" {
			continue
		}
		for _, f := range p.GoFiles {
			fset := token.NewFileSet()
			file, err := parser.ParseFile(fset, filepath.Join(p.Dir, f), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			name := slogName(file)
			if name == "" {
				continue
			}
			if name == "." {
				t.Errorf("%s/%s imports log/slog with a dot: name it, so that calls of the global logger can be found", rel, f)
				continue
			}
			ast.Inspect(file, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				// An unresolved identifier (Obj nil) is the import, not a
				// local variable of the same name.
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == name && id.Obj == nil && globalSlog[sel.Sel.Name] {
					t.Errorf("%s/%s:%d calls slog.%s: log through logging.From(ctx) (internal/logging)", rel, f, fset.Position(sel.Pos()).Line, sel.Sel.Name)
				}
				return true
			})
		}
	}
}

// slogName is the name file gives log/slog, or "" when it does not
// import it (or imports it for its side effects only).
func slogName(file *ast.File) string {
	for _, imp := range file.Imports {
		if path, _ := strconv.Unquote(imp.Path.Value); path != "log/slog" {
			continue
		}
		if imp.Name == nil {
			return "slog"
		}
		if imp.Name.Name == "_" {
			return ""
		}
		return imp.Name.Name
	}
	return ""
}
