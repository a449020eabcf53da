package clientconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestLoadOrder checks that the first file that exists wins, whatever
// the others hold.
func TestLoadOrder(t *testing.T) {
	dir := t.TempDir()
	user := filepath.Join(dir, "home", ".skiff", "config")
	system := writeFile(t, filepath.Join(dir, "etc", "skiffctl.yaml"), "server: 10.0.0.1:6443\n")
	missing := filepath.Join(dir, "nowhere", "config")

	tests := []struct {
		name       string
		userFile   string // written to user before Load when not empty
		paths      []string
		wantServer string
		wantPath   string
	}{
		{"user file wins", "server: 127.0.0.1:7443\n", []string{user, system}, "127.0.0.1:7443", user},
		{"missing files are skipped", "", []string{"", missing, system}, "10.0.0.1:6443", system},
		{"none exists", "", []string{missing}, "", ""},
		{"no paths", "", nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(user)
			if tt.userFile != "" {
				writeFile(t, user, tt.userFile)
			}
			c, path, err := Load(tt.paths...)
			if err != nil {
				t.Fatal(err)
			}
			if c.Server != tt.wantServer || path != tt.wantPath {
				t.Errorf("got server %q from %q, want %q from %q", c.Server, path, tt.wantServer, tt.wantPath)
			}
		})
	}
}

// TestLoadRejects checks that a file that exists but is wrong is an
// error naming the file, not a reason to try the next one.
func TestLoadRejects(t *testing.T) {
	dir := t.TempDir()
	fallback := writeFile(t, filepath.Join(dir, "fallback.yaml"), "server: 10.0.0.1:6443\n")
	tests := []struct {
		name, content, want string
	}{
		{"stray key", "server: 127.0.0.1:6443\nnamespace: prod\n", `unknown field "namespace"`},
		{"misspelt key", "sever: 127.0.0.1:6443\n", `unknown field "sever"`},
		{"empty server", "server: \"\"\n", "no server given"},
		{"empty file", "", "no server given"},
		{"not YAML", "server: [\n", "reading"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, filepath.Join(dir, tt.name+".yaml"), tt.content)
			_, got, err := Load(path, fallback)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("got %v, want an error naming %s and containing %q", err, path, tt.want)
			}
			if got != path {
				t.Errorf("got path %q, want %q", got, path)
			}
		})
	}
}

// TestWrite checks that Write creates the directory, that Load reads
// back what it wrote, and that a second Write replaces the file by a
// rename: a reader that opened the old file keeps the old content whole,
// and no temporary file is left behind.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "home", ".skiff", "config")
	if err := Write(path, Config{Server: "127.0.0.1:6443"}); err != nil {
		t.Fatal(err)
	}
	c, _, err := Load(path)
	if err != nil || c.Server != "127.0.0.1:6443" {
		t.Fatalf("got %+v, %v; want server 127.0.0.1:6443", c, err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("got %v, %v; want mode 0644", st, err)
	}

	old, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := Write(path, Config{Server: "10.0.0.2:6443"}); err != nil {
		t.Fatal(err)
	}
	c, _, err = Load(path)
	if err != nil || c.Server != "10.0.0.2:6443" {
		t.Fatalf("after the second write: got %+v, %v; want server 10.0.0.2:6443", c, err)
	}
	before := make([]byte, 100)
	n, _ := old.Read(before)
	if got := string(before[:n]); got != "server: 127.0.0.1:6443\n" {
		t.Errorf("the old file changed under its reader: got %q", got)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "config" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only config", names)
	}
}
