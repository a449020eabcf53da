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

// Write writes the file at path, creating its directory. It writes a
// temporary file next to path and renames it over path, so that a reader
// sees the old file or the new one, never a part of either, and two
// writers at once do not mix their contents.
func Write(path string, c Config) error {
	data, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	// CreateTemp makes the file private; the address is no secret.
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// EnvServer is the environment variable that names the API server.
const EnvServer = "SKIFF_SERVER"

// ResolveServer says where the API server is: flag when set, else
// $SKIFF_SERVER, else the first of paths that exists. Libraries never read
// the environment themselves; the binaries call this once.
func ResolveServer(flag string, paths ...string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if s := os.Getenv(EnvServer); s != "" {
		return s, nil
	}
	c, path, err := Load(paths...)
	if err != nil {
		return "", err
	}
	if path == "" {
		return "", fmt.Errorf("no server given: use --server, set %s, or start `skiff server`, which writes %s", EnvServer, UserPath())
	}
	return c.Server, nil
}

// DefaultPaths are the config files clients read, in order.
func DefaultPaths() []string { return []string{UserPath(), SystemPath} }
