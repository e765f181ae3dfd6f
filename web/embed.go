// Package web holds the console and demo pages. Sources are in src/ and are bundled by
// build.mjs (esbuild, pinned in package.json) into dist/, which is committed and embedded here,
// so the binary serves the pages without Node. scripts/test.sh rebuilds dist/ and fails when
// the committed files are not the build of the sources.
package web

import (
	"embed"
	"io/fs"
)

//go:embed dist
var dist embed.FS

// Files returns the built pages and assets (console.html, text.html, workflow.html, *.js,
// style.css) at the root of the file system.
func Files() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // dist is embedded at build time; a missing directory fails the build first
	}
	return sub
}
