// Builds the console and demo pages into web/dist (committed, embedded by embed.go).
// The output must be a pure function of the sources and the pinned packages: no timestamps,
// no absolute paths, no metafile. scripts/test.sh rebuilds and fails if dist/ differs.
//
//   node web/build.mjs          write web/dist
//   node web/build.mjs --check  build into a temporary directory and compare with web/dist
import * as esbuild from 'esbuild'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const src = path.join(here, 'src')
const check = process.argv.includes('--check')
const out = check ? fs.mkdtempSync(path.join(os.tmpdir(), 'ysync-web-')) : path.join(here, 'dist')

const pages = ['console', 'text', 'workflow']
const statics = ['console.html', 'text.html', 'workflow.html', 'style.css']

fs.rmSync(out, { recursive: true, force: true })
fs.mkdirSync(out, { recursive: true })

await esbuild.build({
  absWorkingDir: path.resolve(here, '..'),
  entryPoints: pages.map((p) => path.join(src, p + '.js')),
  outdir: out,
  bundle: true,
  format: 'esm',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  minify: true,
  sourcemap: false,
  legalComments: 'eof',
  charset: 'utf8',
  logLevel: 'warning'
})
for (const f of statics) fs.copyFileSync(path.join(src, f), path.join(out, f))

if (check) {
  const dist = path.join(here, 'dist')
  const list = (d) => fs.readdirSync(d).filter((f) => f !== '.gitattributes').sort()
  const a = list(dist)
  const b = list(out)
  const diffs = []
  for (const f of new Set([...a, ...b])) {
    const pa = path.join(dist, f)
    const pb = path.join(out, f)
    if (!fs.existsSync(pa)) diffs.push(`missing from web/dist: ${f}`)
    else if (!fs.existsSync(pb)) diffs.push(`not produced by the build: ${f}`)
    else if (!fs.readFileSync(pa).equals(fs.readFileSync(pb))) diffs.push(`differs: ${f}`)
  }
  fs.rmSync(out, { recursive: true, force: true })
  if (diffs.length) {
    console.error('web/dist is not the build of web/src (run: node web/build.mjs, then commit):\n  ' + diffs.join('\n  '))
    process.exit(1)
  }
  console.error('web/dist matches the build of web/src')
}
