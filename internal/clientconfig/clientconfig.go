// Package clientconfig reads and writes skiffctl's configuration file,
// which tells a client where the API server is. `skiff server` writes it
// when it starts; skiffctl reads it when neither --server nor
// SKIFF_SERVER says otherwise.
//
// The file is YAML:
//
//	server: 127.0.0.1:6443
package clientconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// Config is the content of the file.
type Config struct {
	// Server is the API server's address, host:port.
	Server string `json:"server"`
}

// SystemPath is the machine-wide file, read after the user's own.
const SystemPath = "/etc/skiff/skiffctl.yaml"

// UserPath is the user's own file, ~/.skiff/config, or "" when there is
// no home directory.
func UserPath() string {
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return ""
	}
	return filepath.Join(home, ".skiff", "config")
}

// Load reads the first of paths that exists. It returns the path it read,
// or "" (and no error) when none exists.
func Load(paths ...string) (Config, string, error) {
	for _, p := range paths {
		if p == "" {
			continue
		}
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return Config{}, p, err
		}
		var c Config
		if err := yaml.UnmarshalStrict(data, &c); err != nil {
			return Config{}, p, fmt.Errorf("reading %s: %w", p, err)
		}
		if c.Server == "" {
			return Config{}, p, fmt.Errorf("reading %s: no server given", p)
		}
		return c, p, nil
	}
	return Config{}, "", nil
}

// Write writes the file at path, creating its directory.
func Write(path string, c Config) error {
	data, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
