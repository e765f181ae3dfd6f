package main

import (
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// versionString describes the binary from the build information Go records in it: the module
// version (a tag for `go install ...@v1.2.3`, "(devel)" for a local build), the VCS revision,
// its time and whether the tree had local changes (when built with VCS stamping), and the Go
// version.
func versionString(info *debug.BuildInfo, ok bool) string {
	if !ok || info == nil {
		return "ysync (no build information)"
	}
	version := info.Main.Version
	if version == "" {
		version = "(devel)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "ysync %s", version)
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		fmt.Fprintf(&b, " %s", rev)
		if t := settings["vcs.time"]; t != "" {
			fmt.Fprintf(&b, " (%s)", t)
		}
		if settings["vcs.modified"] == "true" {
			b.WriteString(" modified")
		}
	}
	fmt.Fprintf(&b, " %s", info.GoVersion)
	if os, arch := settings["GOOS"], settings["GOARCH"]; os != "" && arch != "" {
		fmt.Fprintf(&b, " %s/%s", os, arch)
	}
	return b.String()
}

func runVersion(args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("%w: version takes no arguments", errUsage)
	}
	fmt.Fprintln(stdout, versionString(debug.ReadBuildInfo()))
	return nil
}
