#!/usr/bin/env node
// Compares the Go CRDT core with the reference yjs on the editing traces.
//
//   node scripts/bench-compare.mjs [--count N] [--benchtime T] [--traces DIR] [--json]
//
// Runs, in one go:
//   go test -run '^$' -bench BenchmarkTrace -count N [-benchtime T] ./crdt/
//   node --expose-gc scripts/bench-yjs.mjs --json          (N times)
// and prints, per trace and step, the medians over the runs: Go ns/op, JS ns/op, Go/JS time ratio,
// encoded sizes (Go vs JS, % difference) and heap (Go vs JS). --json prints the table as JSON.
// The traces directory is $YSYNC_TRACES_DIR (default ../shared/traces from the repository root);
// --traces sets it for both sides.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import path from 'node:path'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const args = process.argv.slice(2)
const opt = (name, def) => {
  const i = args.indexOf(name)
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def
}
const count = Math.max(1, parseInt(opt('--count', '3'), 10))
const benchtime = opt('--benchtime', '')
const asJSON = args.includes('--json')
const env = { ...process.env }
const traces = opt('--traces', '')
if (traces) env.YSYNC_TRACES_DIR = path.resolve(traces)
if (!env.YSYNC_TRACES_DIR) env.YSYNC_TRACES_DIR = path.resolve(root, '..', 'shared', 'traces')

const log = (s) => process.stderr.write(`== ${s}\n`)

// --- Go ------------------------------------------------------------------------------------------
const goArgs = ['test', '-run', '^$', '-bench', 'BenchmarkTrace', '-count', String(count), '-timeout', '60m']
if (benchtime) goArgs.push('-benchtime', benchtime)
goArgs.push('./crdt/')
log(`go ${goArgs.join(' ')}`)
const goRun = spawnSync('go', goArgs, { cwd: root, env, encoding: 'utf8', maxBuffer: 64 << 20 })
if (goRun.status !== 0) {
  process.stderr.write(goRun.stdout + goRun.stderr)
  process.exit(1)
}
// go[trace][step] = { ns: [..], metric: { name: [..] } }
const go = {}
for (const line of goRun.stdout.split('\n')) {
  const m = line.match(/^BenchmarkTrace\/([^/\s]+)\/([^\s]+?)(?:-\d+)?\s+\d+\s+(.*)$/)
  if (!m) continue
  const [, trace, step, rest] = m
  const s = ((go[trace] ??= {})[step] ??= { metrics: {} })
  const fields = rest.trim().split(/\s+/)
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const v = parseFloat(fields[i])
    const unit = fields[i + 1]
    ;(s.metrics[unit] ??= []).push(v)
  }
}

// --- yjs -----------------------------------------------------------------------------------------
const js = {}
for (let r = 0; r < count; r++) {
  log(`node --expose-gc scripts/bench-yjs.mjs --json (run ${r + 1}/${count})`)
  const jsRun = spawnSync('node', ['--expose-gc', '--max-old-space-size=8192', path.join('scripts', 'bench-yjs.mjs'), '--json'],
    { cwd: root, env, encoding: 'utf8', maxBuffer: 64 << 20 })
  if (jsRun.status !== 0) {
    process.stderr.write(jsRun.stdout + jsRun.stderr)
    process.exit(1)
  }
  const out = JSON.parse(jsRun.stdout.slice(jsRun.stdout.indexOf('{')))
  for (const [trace, steps] of Object.entries(out)) {
    if (steps === null || typeof steps !== 'object') continue
    for (const [step, vals] of Object.entries(steps)) {
      if (vals === null || typeof vals !== 'object') continue // {skipped: "why"}
      const s = ((js[trace] ??= {})[step] ??= {})
      for (const [k, v] of Object.entries(vals)) if (typeof v === 'number') (s[k] ??= []).push(v)
    }
  }
}

// --- table ---------------------------------------------------------------------------------------
const median = (xs) => {
  if (!xs || xs.length === 0) return undefined
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}
const fmtNs = (ns) => ns === undefined ? '-' : ns >= 1e9 ? `${(ns / 1e9).toFixed(2)} s` : ns >= 1e6 ? `${(ns / 1e6).toFixed(1)} ms` : ns >= 1e3 ? `${(ns / 1e3).toFixed(1)} µs` : `${ns.toFixed(0)} ns`
const fmtBytes = (b) => b === undefined ? '-' : b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(1)} MiB` : b >= 1 << 10 ? `${(b / 1024).toFixed(1)} KiB` : `${Math.round(b)} B`
const fmtInt = (n) => n === undefined ? '-' : Math.round(n).toLocaleString('en-US')
const pct = (a, b) => (a === undefined || b === undefined || b === 0) ? '' : ` (${a >= b ? '+' : ''}${((a / b - 1) * 100).toFixed(2)}%)`

const rows = []
const steps = ['apply-local', 'encode', 'decode', 'remote-updates']
const traceNames = [...new Set([...Object.keys(go), ...Object.keys(js)])].sort()
for (const trace of traceNames) {
  const stepNames = [...new Set([...steps, ...Object.keys(go[trace] ?? {}), ...Object.keys(js[trace] ?? {})])]
  for (const step of stepNames) {
    const g = go[trace]?.[step]?.metrics ?? {}
    const j = js[trace]?.[step] ?? {}
    if (!go[trace]?.[step] && !js[trace]?.[step]) continue
    const row = {
      trace, step,
      go_ns: median(g['ns/op']), js_ns: median(j.ns_per_op),
      go_heap: median(g['heap-bytes']), js_heap: median(j.heap_bytes),
      go_v1: median(g['v1-bytes']), js_v1: median(j.v1_bytes),
      go_v2: median(g['v2-bytes']), js_v2: median(j.v2_bytes),
    }
    row.ratio = row.go_ns !== undefined && row.js_ns ? row.go_ns / row.js_ns : undefined
    rows.push(row)
  }
}

if (asJSON) {
  console.log(JSON.stringify({ count, rows }, null, 2))
} else {
  const out = []
  out.push(`medians over ${count} run(s); Go/JS < 1 means Go is faster\n`)
  for (const trace of traceNames) {
    out.push(`### ${trace}\n`)
    out.push('| step | Go | JS | Go/JS | Go heap | JS heap | sizes Go vs JS |')
    out.push('|---|---:|---:|---:|---:|---:|---|')
    for (const r of rows.filter((r) => r.trace === trace)) {
      let sizes = ''
      if (r.go_v1 !== undefined || r.js_v1 !== undefined) {
        sizes = `V1 ${fmtInt(r.go_v1)} vs ${fmtInt(r.js_v1)}${pct(r.go_v1, r.js_v1)}; V2 ${fmtInt(r.go_v2)} vs ${fmtInt(r.js_v2)}${pct(r.go_v2, r.js_v2)}`
      }
      out.push(`| ${r.step} | ${fmtNs(r.go_ns)} | ${fmtNs(r.js_ns)} | ${r.ratio === undefined ? '-' : r.ratio.toFixed(2)} | ${fmtBytes(r.go_heap)} | ${fmtBytes(r.js_heap)} | ${sizes} |`)
    }
    out.push('')
  }
  console.log(out.join('\n'))
}
