// Package buildinfo reports the drydock build: its version, the VCS commit it
// was built from and the Go toolchain, as recorded by the linker and by the
// go command's embedded build information.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is set at link time with -ldflags "-X .../internal/buildinfo.Version=v1.2.3".
// It stays "dev" for plain `go build` and `go run`.
var Version = "dev"

// Info describes one build of drydock.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Modified  bool   `json:"modified"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get returns the build information of the running binary.
func Get() Info {
	info := Info{
		Version:   Version,
		Commit:    "unknown",
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Commit = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
		if info.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
	}
	return info
}

// String renders the build as one line, e.g. "drydock dev (commit abc123, go1.26.8, linux/amd64)".
func (i Info) String() string {
	commit := i.Commit
	if i.Modified {
		commit += "-dirty"
	}
	return fmt.Sprintf("drydock %s (commit %s, %s, %s)", i.Version, commit, i.GoVersion, i.Platform)
}

// UserAgent is the HTTP User-Agent drydock sends to registries and mirrors.
func (i Info) UserAgent() string {
	return "drydock/" + i.Version
}
