// Reference benchmark: the pinned yjs (13.6.33) over editing traces, for comparison with the Go
// CRDT's benchmarks. Run from the repository root:
//
//	node --expose-gc scripts/bench-yjs.mjs [--iterations N] [--json] [--trace NAME]...
//
// (without --expose-gc the script re-runs itself with it). Traces: every *.json.gz in
// $YSYNC_TRACES_DIR, default ../shared/traces relative to the repository root; a trace's name is
// its file name without .json.gz. Sequential traces have the shape
//   {startContent, endContent, txns: [{patches: [[pos, delCount, insertText], ...]}, ...]}
// with positions and counts in Unicode code points; they are converted to UTF-16 units (Y.Text
// indexes) before timing when a trace contains astral characters. Traces whose txns carry
// `parents` (concurrent traces such as clownschool) are skipped with a note.
//
// Steps per trace (each timed over several iterations, the median is reported; a step whose
// first run takes over 2 s runs at most 3 times):
//   apply-local     fresh Y.Doc (gc on), one doc.transact per txn applying its patches to a
//                   Y.Text; doc.on('update') keeps every update in an array; the text must equal
//                   endContent
//   encode          Y.encodeStateAsUpdate (V1) and Y.encodeStateAsUpdateV2 of that doc; reports
//                   v1_bytes and v2_bytes (the timing covers both encodings)
//   decode          Y.applyUpdate of the full V1 state to a fresh doc
//   remote-updates  every kept update, in order, Y.applyUpdate'd to a fresh doc
// ns_per_op is the time of one whole step (one pass over the trace). heap_bytes is what the step's
// result retains: process.memoryUsage().heapUsed after the step (result alive, after gc()) minus
// the baseline taken just before it (the step's inputs and an empty Y.Doc alive, after gc()), so
// it is the growth over an empty doc: apply-local = doc + kept updates, encode = the two encoded
// updates, decode / remote-updates = the new doc. external_bytes is the same for arrayBuffers
// (Uint8Array storage such as encoded updates, which heapUsed does not count).
//
// Output: a table; with --json one JSON object
//   {trace: {step: {ns_per_op, heap_bytes, external_bytes, v1_bytes?, v2_bytes?}}}
// (skipped traces: {trace: {skipped: "<why>"}}).

import * as fs from 'node:fs'
import * as path from 'node:path'
import * as zlib from 'node:zlib'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import * as Y from 'yjs'

if (typeof globalThis.gc !== 'function') {
  const r = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' })
  process.exit(r.status ?? 1)
}

const args = process.argv.slice(2)
let iterations = 5
let asJSON = false
const only = []
for (let i = 0; i < args.length; i++) {
  const a = args[i]
  if (a === '--json') asJSON = true
  else if (a === '--iterations') iterations = Math.max(1, Number(args[++i]))
  else if (a.startsWith('--iterations=')) iterations = Math.max(1, Number(a.slice(13)))
  else if (a === '--trace') only.push(args[++i])
  else throw new Error('unknown argument: ' + a)
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const tracesDir = process.env.YSYNC_TRACES_DIR || path.resolve(repoRoot, '..', 'shared', 'traces')
const log = (...m) => { if (!asJSON) console.log(...m); else console.error(...m) }

const hasAstral = (s) => /[\uD800-\uDBFF]/.test(s)

/**
 * Patches in UTF-16 units. Without astral characters code points and UTF-16 units coincide;
 * otherwise replay the trace on a plain string to convert (done once, not timed).
 */
const utf16Txns = (trace) => {
  const astral = hasAstral(trace.startContent || '') || trace.txns.some((t) => t.patches.some((p) => hasAstral(p[2] || '')))
  if (!astral) return trace.txns.map((t) => t.patches)
  let s = trace.startContent || ''
  const cpToUnit = (cp, from = 0, fromCp = 0) => {
    let u = from
    for (let c = fromCp; c < cp; c++) u += s.codePointAt(u) > 0xFFFF ? 2 : 1
    return u
  }
  return trace.txns.map((t) => t.patches.map(([pos, del, ins]) => {
    const u = cpToUnit(pos)
    const end = cpToUnit(pos + del, u, pos)
    s = s.slice(0, u) + (ins || '') + s.slice(end)
    return [u, end - u, ins || '']
  }))
}

const median = (xs) => {
  const s = xs.slice().sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

const mem = () => {
  globalThis.gc()
  globalThis.gc()
  const m = process.memoryUsage()
  return { heap: m.heapUsed, ext: m.arrayBuffers }
}

/**
 * Runs fn `iterations` times (at most 3 if the first run takes over 2 s); returns the median
 * time in ns and the heap/external growth measured with the last run's result alive.
 */
const measure = (fn) => {
  // baseline: the step's inputs and an empty Y.Doc alive
  const empty = new Y.Doc()
  empty.getText('text')
  const base = mem()
  const times = []
  let n = iterations
  let kept = null
  for (let i = 0; i < n; i++) {
    kept = null
    globalThis.gc()
    const t0 = process.hrtime.bigint()
    kept = fn()
    times.push(Number(process.hrtime.bigint() - t0))
    if (i === 0 && times[0] > 2e9) n = Math.min(n, 3)
  }
  const m = mem()
  empty.destroy()
  const res = { ns_per_op: Math.round(median(times)), heap_bytes: m.heap - base.heap, external_bytes: m.ext - base.ext }
  return { res, kept }
}

const applyLocal = (start, txns) => {
  const doc = new Y.Doc()
  const text = doc.getText('text')
  const updates = []
  doc.on('update', (u) => updates.push(u))
  if (start) text.insert(0, start)
  for (const patches of txns) {
    doc.transact(() => {
      for (const [pos, del, ins] of patches) {
        if (del > 0) text.delete(pos, del)
        if (ins) text.insert(pos, ins)
      }
    })
  }
  return { doc, text, updates }
}

const out = {}
const files = fs.readdirSync(tracesDir).filter((f) => f.endsWith('.json.gz')).sort()
if (files.length === 0) throw new Error('no *.json.gz traces in ' + tracesDir)
log(`yjs ${JSON.parse(fs.readFileSync(path.join(repoRoot, 'node_modules', 'yjs', 'package.json'))).version}, node ${process.version}, traces from ${tracesDir}, iterations ${iterations}`)

for (const f of files) {
  const name = f.slice(0, -'.json.gz'.length)
  if (only.length && !only.includes(name)) continue
  const trace = JSON.parse(zlib.gunzipSync(fs.readFileSync(path.join(tracesDir, f))).toString('utf8'))
  if (!Array.isArray(trace.txns) || trace.txns.some((t) => 'parents' in t)) {
    out[name] = { skipped: 'not a sequential trace (txns have parents/agent: concurrent editing history)' }
    log(`${name}: skipped (not sequential: txns have "parents")`)
    continue
  }
  const txns = utf16Txns(trace)
  const start = trace.startContent || ''
  const steps = {}
  // apply-local
  let local = measure(() => applyLocal(start, txns))
  if (local.kept.text.toString() !== trace.endContent) throw new Error(`${name}: apply-local result differs from endContent`)
  steps['apply-local'] = local.res
  let doc = local.kept.doc
  const updates = local.kept.updates
  local = null
  // V8 keeps small typed arrays on the JS heap and moves them to an external ArrayBuffer once
  // their .buffer is used (lib0 decoding does): do that now, so later baselines stay put
  for (const u of updates) void u.buffer

  // encode
  let v1 = null
  let v2 = null
  let enc = measure(() => {
    v1 = Y.encodeStateAsUpdate(doc)
    v2 = Y.encodeStateAsUpdateV2(doc)
    return [v1, v2]
  })
  steps.encode = { ...enc.res, v1_bytes: v1.length, v2_bytes: v2.length }
  enc = null
  v2 = null
  // from here on only the kept updates and the V1 state stay alive
  doc.destroy()
  doc = null

  // decode
  let dec = measure(() => {
    const d = new Y.Doc()
    Y.applyUpdate(d, v1)
    return d
  })
  if (dec.kept.getText('text').toString() !== trace.endContent) throw new Error(`${name}: decode result differs from endContent`)
  steps.decode = dec.res
  dec.kept.destroy()
  dec = null

  // remote-updates
  let rem = measure(() => {
    const d = new Y.Doc()
    for (const u of updates) Y.applyUpdate(d, u)
    return d
  })
  if (rem.kept.getText('text').toString() !== trace.endContent) throw new Error(`${name}: remote-updates result differs from endContent`)
  steps['remote-updates'] = rem.res
  rem.kept.destroy()
  rem = null

  out[name] = steps
  log(`${name}: ${trace.txns.length} txns, ${updates.length} updates, ${trace.endContent.length} chars`)
}

if (asJSON) {
  console.log(JSON.stringify(out))
} else {
  const rows = [['trace', 'step', 'ms/op', 'heap MB', 'ext MB', 'v1 bytes', 'v2 bytes']]
  for (const [trace, steps] of Object.entries(out)) {
    if (steps.skipped) { rows.push([trace, 'skipped', '', '', '', '', '']); continue }
    for (const [step, r] of Object.entries(steps)) {
      rows.push([trace, step, (r.ns_per_op / 1e6).toFixed(1), (r.heap_bytes / 2 ** 20).toFixed(1), (r.external_bytes / 2 ** 20).toFixed(1),
        r.v1_bytes !== undefined ? r.v1_bytes.toLocaleString('en-US') : '', r.v2_bytes !== undefined ? r.v2_bytes.toLocaleString('en-US') : ''])
    }
  }
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)))
  for (const r of rows) console.log(r.map((c, i) => (i < 2 ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join('  '))
}
