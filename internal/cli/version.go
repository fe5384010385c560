package cli

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// VersionText is what --version prints: the module version, the commit it was built from,
// and the versions of Go and of the two libraries the guarantee leans on, all from the
// build information the Go toolchain embeds.
func VersionText() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "ledgerstream (no build information: built without module support)"
	}
	commit, modified, when := "", false, ""
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		case "vcs.time":
			when = s.Value
		}
	}
	switch {
	case commit == "":
		commit = "unknown (built without VCS stamping, e.g. -buildvcs=false or go run)"
	case modified:
		commit += " (with uncommitted changes)"
	}
	if when != "" {
		commit += ", " + when
	}
	dep := func(path string) string {
		for _, d := range bi.Deps {
			if d.Path == path {
				if d.Replace != nil {
					return d.Version + " => " + d.Replace.Path + " " + d.Replace.Version
				}
				return d.Version
			}
		}
		return "(not linked)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "ledgerstream %s\n", bi.Main.Version)
	fmt.Fprintf(&b, "  commit      %s\n", commit)
	fmt.Fprintf(&b, "  go          %s\n", bi.GoVersion)
	fmt.Fprintf(&b, "  franz-go    %s\n", dep("github.com/twmb/franz-go"))
	fmt.Fprintf(&b, "  iceberg-go  %s\n", dep("github.com/apache/iceberg-go"))
	return b.String()
}
