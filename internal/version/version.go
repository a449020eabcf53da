// Package version holds the build's version, set at link time by the
// Makefile (-ldflags "-X .../internal/version.GitVersion=...").
package version

import (
	"runtime"
	"runtime/debug"
)

// GitVersion is the release or commit the binary was built from.
var GitVersion = "v0.0.0-dev"

// Info describes the running binary.
type Info struct {
	GitVersion string
	GoVersion  string
	Platform   string
}

// Get returns the running binary's version information.
func Get() Info {
	v := GitVersion
	if v == "v0.0.0-dev" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 12 {
					v = "v0.0.0-dev+" + s.Value[:12]
				}
			}
		}
	}
	return Info{GitVersion: v, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
}
