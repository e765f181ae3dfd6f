// Differential-test oracle: drives the reference yjs (13.6.33, pinned in package.json) for the Go
// CRDT tests. Run from the repository root (so `yjs` resolves from ./node_modules):
//
//	node scripts/oracle.mjs
//
// PROTOCOL — JSON lines. Every request is one JSON object on one line of stdin; for every request
// exactly one response object is written as one line to stdout, in request order. Nothing else is
// ever written to stdout (console.log is redirected to stderr). A failed request answers
// {"error": "<message>"} and the oracle keeps running. If a request carries an "id" field (any JSON
// value), the response echoes it as "id". EOF on stdin ends the process.
//
// Encodings used in requests and responses:
//   - byte strings (updates, state vectors) are standard base64 with padding ("b64" below);
//   - "roots" maps a root name to its kind: "Text" | "Array" | "Map" | "XmlFragment";
//   - "json" is {rootName: root.toJSON()} (Text → string, XmlFragment → its toString(), Map →
//     object, Array → array; nested shared types appear as their toJSON()); values JSON cannot
//     hold are tagged, see SPECIAL VALUES;
//   - "deltas" is {rootName: root.toDelta()} for every Text root (same tagging);
//   - "state" is {"v1": b64 Y.encodeStateAsUpdate(doc), "v2": b64 Y.encodeStateAsUpdateV2(doc)};
//   - "stateVector" is b64 Y.encodeStateVector(doc);
//   - an update pair is {"v1": b64, "v2": b64} where v2 = Y.convertUpdateFormatV1ToV2(v1).
//     NOTE: this v2 is not always byte-identical to the doc's own 'updateV2' event: Yjs sets the
//     parentSub bit (0x20) in the info byte of every map-entry Item, also when the item has an
//     origin and so no parent info is written; decoding cannot recover that bit, so converted /
//     merged / diffed updates (convertUpdateFormat, mergeUpdates, diffUpdate) have it clear while
//     updates and states encoded from a doc (update events, encodeStateAsUpdate(V2)) have it set.
//
// SPECIAL VALUES (tagged form; a tag is an object with exactly one key starting with "$"):
//   undefined            → {"$undefined": true}
//   bigint               → {"$bigint": "123"}            (decimal string)
//   Uint8Array           → {"$bytes": "<b64>"}
//   NaN, ±Infinity, -0   → {"$number": "NaN" | "Infinity" | "-Infinity" | "-0"}
//   Y.Doc (subdocument)  → {"$doc": {"guid": "...", "opts": {...}}} (opts as ContentDoc writes
//                          them: gc:false / autoLoad:true / meta, only when set)
//   shared type inside a delta (text embed of a Y type)
//                        → {"$ytype": {"type": "Map"|"Array"|"Text"|"XmlElement"|"XmlText"|
//                                       "XmlFragment"|"XmlHook", "json": <its toJSON(), tagged>}}
//   a plain object that has any key starting with "$" → {"$object": {<its entries, tagged>}}
// Everything else (null, booleans, finite numbers, strings, arrays, objects) is plain JSON. Object
// keys are written in JavaScript property order (integer-like keys first, ascending).
//
// FORMATTING CLEANUP: after a transaction that applied remote changes to a Y.Text with formatting,
// Yjs runs a local cleanup transaction that deletes format items it finds redundant at that moment
// (cleanupYTextAfterTransaction). Its result depends on the order and grouping of the applied
// updates, so a fresh doc that applies the gen `updates` one by one can end with different text
// attributes than the converged JS doc (about 1 seed in 300 at steps=40). The "updates" field of
// apply/load reports such cleanup updates; when it is non-empty compare the Go doc with a "load" of
// the same updates in the same order, not with gen's json. Loading `merged` (one update) matches.
//
// COMMANDS
//   {"cmd":"gen","session":S,"seed":N,"docs":3,"steps":40}
//       Seeded random scenario (mulberry32 PRNG; the same seed/docs/steps always gives the same
//       bytes). `docs` Y.Docs (default 3) with clientIDs 1..docs edit concurrently for `steps`
//       steps (default 40) and sync partially at random moments (full diffs, or a random subset
//       of one doc's own updates, possibly out of order so that updates wait as pending). Roots are
//       always {"text":"Text","arr":"Array","map":"Map","xml":"XmlFragment"}. Operations: text
//       insert (emoji, surrogate pairs, CJK, with/without attributes), delete, format (bold,
//       italic, color, null to remove), insertEmbed of objects; array insert of Any values and of
//       nested Y.Map/Y.Array/Y.Text, delete; map set/delete (keys include ""), nested types; XML
//       elements (attributes, children) and XmlText; nested types up to depth 3 edited later on.
//       At the end all docs are synced until they converge (formatting cleanup after remote
//       changes can emit further updates; those are included). Doc 1 (clientID 1) is kept as
//       session S ("the JS doc"); an existing session S is replaced.
//     → {"roots": {...},
//        "clientIDs": [1,2,3],
//        "updates": [{"v1","v2"}...],   every update emitted by a *local* transaction of any doc,
//                                       in creation order (updates a doc re-emits while applying
//                                       remote updates are not included)
//        "json", "deltas", "stateVector", "state": of the converged JS doc,
//        "diffs": [{"sv","v1","v2"}...],  for sv = state vector of each doc before the final sync
//                                       (in doc order): Y.encodeStateAsUpdate(V2)(jsDoc, sv)
//        "merged": {"v1": Y.mergeUpdates(all v1), "v2": Y.mergeUpdatesV2(all v2)},
//        "svFromUpdate": b64 Y.encodeStateVectorFromUpdate(merged.v1),
//        "diffUpdates": [{"sv","v1","v2"}...]  same svs: Y.diffUpdate(merged.v1, sv),
//                                       Y.diffUpdateV2(merged.v2, sv)}
//   {"cmd":"edit","session":S,"seed":N,"steps":K}
//       K more random operations (grouped into transactions of 1–3 ops) on the JS doc, with the
//       PRNG seeded by N. The JS doc keeps clientID 1, so the Go side must use another clientID.
//     → {"updates": [{"v1","v2"}...]}
//   {"cmd":"apply","session":S,"updates":[b64...],"v2":false}
//       Applies the updates (V2 when "v2" is true), one Y.applyUpdate call each, in order.
//     → {"json","deltas","stateVector","state",
//        "updates": [{"v1","v2"}...]}   local updates the JS doc emitted meanwhile (only formatting
//                                       cleanup can cause them; usually [])
//   {"cmd":"load","updates":[b64...],"v2":false,"roots":{...}}
//       Applies the updates to a fresh Y.Doc (gc on unless "gc": false; clientID 999999999) — no
//       session involved; "roots" defaults to the gen roots.
//     → {"json","deltas","stateVector","state","updates"}   (as for apply)
//   {"cmd":"merge","updates":[b64...],"v2":bool}       → {"update": b64}  Y.mergeUpdates(V2)
//   {"cmd":"diff","update":b64,"sv":b64,"v2":bool}     → {"update": b64}  Y.diffUpdate(V2)
//   {"cmd":"convert","update":b64,"to":"v1"|"v2"}      → {"update": b64}  convertUpdateFormat…
//       ("to":"v2" means the input is V1 and is converted to V2, and vice versa)
//   {"cmd":"svFromUpdate","update":b64,"v2":bool}      → {"stateVector": b64}
//   {"cmd":"close","session":S}                        → {"ok": true}  (frees the session)
//   {"cmd":"ping"}                                     → {"ok": true}
//
// EXAMPLE EXCHANGE (">" is a line the Go side writes, "<" the answer; long values elided)
//   > {"id":1,"cmd":"gen","session":"s1","seed":7,"docs":3,"steps":40}
//   < {"id":1,"roots":{"text":"Text","arr":"Array","map":"Map","xml":"XmlFragment"},"clientIDs":[1,2,3],"updates":[{"v1":"AQEB…","v2":"AAAB…"},…],"json":{"text":"ab😀","arr":[1,{"$bytes":"AQI="}],"map":{"":null},"xml":"<p></p>"},"deltas":{"text":[{"insert":"ab","attributes":{"bold":true}},{"insert":"😀"}]},"stateVector":"AwEF…","state":{"v1":"…","v2":"…"},"diffs":[…],"merged":{"v1":"…","v2":"…"},"svFromUpdate":"…","diffUpdates":[…]}
//   > {"id":2,"cmd":"apply","session":"s1","updates":["AQGQTgAE…"],"v2":false}
//   < {"id":2,"json":{…},"deltas":{…},"stateVector":"…","state":{"v1":"…","v2":"…"},"updates":[]}
//   > {"id":3,"cmd":"edit","session":"s1","seed":8,"steps":5}
//   < {"id":3,"updates":[{"v1":"…","v2":"…"},…]}
//   > {"id":4,"cmd":"merge","updates":["…","…"],"v2":false}
//   < {"id":4,"update":"…"}
//   > {"id":5,"cmd":"nope"}
//   < {"id":5,"error":"unknown cmd: nope"}
//   > {"id":6,"cmd":"close","session":"s1"}
//   < {"id":6,"ok":true}
//
// This module also exports its helpers (PRNG, tagging, doc snapshots, random operations) for
// scripts/gen-fixtures.mjs; the request loop only runs when the file is executed directly.

import * as Y from 'yjs'
import * as readline from 'node:readline'
import { pathToFileURL } from 'node:url'

// ---------------------------------------------------------------------------------------------
// basics

export const b64 = (u8) => Buffer.from(u8).toString('base64')
export const unb64 = (s) => new Uint8Array(Buffer.from(s, 'base64'))

/** mulberry32: tiny deterministic 32-bit PRNG returning floats in [0, 1). */
export const mulberry32 = (seed) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export class Rand {
  constructor (seed) {
    // mix the seed so that neighbouring seeds start far apart
    this.next = mulberry32(Math.imul((Number(seed) >>> 0) ^ 0x9E3779B9, 0x85EBCA6B) >>> 0)
  }

  int (n) { return Math.floor(this.next() * n) }
  chance (p) { return this.next() < p }
  pick (arr) { return arr[this.int(arr.length)] }
}

// ---------------------------------------------------------------------------------------------
// special-value tagging (see the header)

export const typeKind = (t) => {
  if (t instanceof Y.XmlText) return 'XmlText'
  if (t instanceof Y.Text) return 'Text'
  if (t instanceof Y.XmlElement) return 'XmlElement'
  if (t instanceof Y.XmlHook) return 'XmlHook'
  if (t instanceof Y.XmlFragment) return 'XmlFragment'
  if (t instanceof Y.Array) return 'Array'
  if (t instanceof Y.Map) return 'Map'
  return 'AbstractType'
}

export const tag = (v) => {
  switch (typeof v) {
    case 'undefined': return { $undefined: true }
    case 'bigint': return { $bigint: v.toString() }
    case 'number':
      if (Number.isNaN(v)) return { $number: 'NaN' }
      if (v === Infinity) return { $number: 'Infinity' }
      if (v === -Infinity) return { $number: '-Infinity' }
      if (Object.is(v, -0)) return { $number: '-0' }
      return v
    case 'string':
    case 'boolean':
      return v
    case 'object': {
      if (v === null) return null
      if (v instanceof Uint8Array) return { $bytes: b64(v) }
      if (Array.isArray(v)) return v.map(tag)
      if (v instanceof Y.Doc) {
        const opts = {}
        if (!v.gc) opts.gc = false
        if (v.autoLoad) opts.autoLoad = true
        if (v.meta !== null && v.meta !== undefined) opts.meta = tag(v.meta)
        return { $doc: { guid: v.guid, opts } }
      }
      if (v instanceof Y.AbstractType) return { $ytype: { type: typeKind(v), json: tag(v.toJSON()) } }
      const out = {}
      let dollar = false
      for (const k of Object.keys(v)) {
        if (k.startsWith('$')) dollar = true
        out[k] = tag(v[k])
      }
      return dollar ? { $object: out } : out
    }
    default:
      throw new Error('cannot tag value of type ' + typeof v)
  }
}

// ---------------------------------------------------------------------------------------------
// documents

export const GEN_ROOTS = { text: 'Text', arr: 'Array', map: 'Map', xml: 'XmlFragment' }

export const getRoot = (doc, name, kind) => {
  switch (kind) {
    case 'Text': return doc.getText(name)
    case 'Array': return doc.getArray(name)
    case 'Map': return doc.getMap(name)
    case 'XmlFragment': return doc.getXmlFragment(name)
    default: throw new Error('unknown root kind: ' + kind)
  }
}

export const newDoc = (clientID, opts = {}) => {
  const doc = new Y.Doc(opts)
  doc.clientID = clientID
  return doc
}

/** json and deltas of all roots */
export const docJSON = (doc, roots) => {
  const json = {}
  const deltas = {}
  for (const [name, kind] of Object.entries(roots)) {
    const t = getRoot(doc, name, kind)
    json[name] = tag(t.toJSON())
    if (kind === 'Text') deltas[name] = tag(t.toDelta())
  }
  return { json, deltas }
}

export const pair = (v1) => ({ v1: b64(v1), v2: b64(Y.convertUpdateFormatV1ToV2(v1)) })

export const docSnapshot = (doc, roots) => {
  const { json, deltas } = docJSON(doc, roots)
  return {
    json,
    deltas,
    stateVector: b64(Y.encodeStateVector(doc)),
    state: { v1: b64(Y.encodeStateAsUpdate(doc)), v2: b64(Y.encodeStateAsUpdateV2(doc)) }
  }
}

/** Records the updates of local transactions of doc into list (as Uint8Array V1). */
export const recordLocal = (doc, list) => {
  doc.on('update', (update, origin, d, tr) => {
    if (tr.local) list.push(update)
  })
}

// ---------------------------------------------------------------------------------------------
// random values and operations

const STRINGS = ['a', 'b', 'hello', ' ', 'wörld', 'x\ny', '😀', '👍🏽', '𝄞', '日本語', '한글', 'ab😀cd', '\u00e9', 'Z', '🇩🇪', '\t', 'q']
const KEYS = ['a', 'b', 'c', '', 'key with space', '1', '10', '😀', 'z']
const ATTRS = [
  { bold: true }, { italic: true }, { bold: null }, { italic: null }, { color: '#ff0000' },
  { color: null }, { bold: true, italic: true }, { color: 'blue', bold: null }, { link: { href: 'https://x.y', n: 1 } }
]
const EMBEDS = [{ image: 'a.png' }, { formula: 'e=mc^2' }, { video: { src: 'v.mp4', w: 640 } }, { list: [1, 'two', null] }]
// Yjs adds `key: null` entries to attribute objects passed to insert/format, so every use gets a copy
const randAttrs = (r) => structuredClone(r.pick(ATTRS))
const randEmbed = (r) => structuredClone(r.pick(EMBEDS))
const TAGS = ['p', 'div', 'span', 'h1', 'li']
const ATTR_KEYS = ['class', 'id', 'data-x', 'href']

export const randString = (r) => {
  let s = ''
  const n = 1 + r.int(3)
  for (let i = 0; i < n; i++) s += r.pick(STRINGS)
  return s
}

/** Random Any value (no bigint; no special numbers except -0 which round-trips). */
export const randAny = (r, depth = 0) => {
  switch (r.int(depth >= 2 ? 10 : 12)) {
    case 0: return null
    case 1: return r.chance(0.5)
    case 2: return r.pick([0, 1, -1, 42, 127, 128, -129, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 2 ** 53, -(2 ** 40), -0])
    case 3: return r.int(100000) - 50000
    case 4: return r.pick([0.5, -2.25, 0.1, 1e300, -1.5e-7, 3.14159, 1 / 3, 2 ** 70, 6.5])
    case 5: case 6: return randString(r)
    case 7: return r.chance(0.5) ? '' : r.pick(KEYS)
    case 8: return new Uint8Array(Array.from({ length: r.int(5) }, () => r.int(256)))
    case 9: return r.pick(['plain', 'text', 'ok'])
    case 10: return Array.from({ length: r.int(4) }, () => randAny(r, depth + 1))
    default: {
      const o = {}
      const n = r.int(4)
      for (let i = 0; i < n; i++) o[r.pick(KEYS)] = randAny(r, depth + 1)
      return o
    }
  }
}

const MAX_DEPTH = 3

/** All live shared types reachable from the roots (root depth 0), nested up to MAX_DEPTH. */
export const collectTypes = (doc, roots) => {
  const out = []
  const visit = (t, depth) => {
    out.push({ t, depth })
    if (depth >= MAX_DEPTH) return
    let children = []
    if (t instanceof Y.Map) {
      t.forEach((v) => children.push(v))
    } else if (t instanceof Y.Array || t instanceof Y.XmlFragment) {
      children = t.toArray()
    }
    for (const c of children) {
      if (c instanceof Y.AbstractType) visit(c, depth + 1)
    }
  }
  for (const [name, kind] of Object.entries(roots)) visit(getRoot(doc, name, kind), 0)
  return out
}

const newNested = (r) => {
  switch (r.int(3)) {
    case 0: return new Y.Map()
    case 1: return new Y.Array()
    default: return new Y.Text()
  }
}

/** Fill a freshly integrated nested type with a little content. */
const seedNested = (r, t) => {
  if (t instanceof Y.Text) t.insert(0, randString(r), r.chance(0.3) ? randAttrs(r) : undefined)
  else if (t instanceof Y.Array) t.insert(0, [randAny(r, 1), randAny(r, 1)])
  else if (t instanceof Y.Map) t.set(r.pick(KEYS), randAny(r, 1))
}

/**
 * Text positions (UTF-16 units) that do not fall inside a surrogate pair. Yjs replaces the halves
 * of a pair it has to split with U+FFFD only in the doc that splits, so the random ops stay on
 * code-point boundaries to keep all docs convergent (the fixtures cover the split case).
 */
const textBoundaries = (t) => {
  const out = []
  let pos = 0
  for (let n = t._start; n !== null; n = n.right) {
    if (n.deleted || !n.countable) continue
    if (n.content instanceof Y.ContentString) {
      const str = n.content.str
      for (let i = 0; i < str.length; i++) {
        const c = str.charCodeAt(i)
        if (!(c >= 0xDC00 && c <= 0xDFFF && i > 0 && (str.charCodeAt(i - 1) & 0xFC00) === 0xD800)) out.push(pos + i)
      }
      pos += str.length
    } else {
      out.push(pos)
      pos += n.length
    }
  }
  out.push(pos)
  return out
}

const textOp = (r, t, xml) => {
  const bounds = textBoundaries(t)
  const k = r.int(10)
  const last = bounds.length - 1
  const range = (max) => {
    const i = r.int(last)
    const j = Math.min(last, i + 1 + r.int(max))
    return [bounds[i], bounds[j] - bounds[i]]
  }
  if (last === 0 || k < 4) {
    const pos = r.pick(bounds)
    if (r.chance(0.3)) t.insert(pos, randString(r), randAttrs(r))
    else t.insert(pos, randString(r))
  } else if (k < 6) {
    const [pos, n] = range(6)
    t.delete(pos, n)
  } else if (k < 9 || xml) {
    const [pos, n] = range(8)
    t.format(pos, n, randAttrs(r))
  } else {
    t.insertEmbed(r.pick(bounds), randEmbed(r), r.chance(0.3) ? randAttrs(r) : undefined)
  }
}

const arrayOp = (r, a, depth) => {
  const len = a.length
  const k = r.int(10)
  if (len === 0 || k < 5) {
    const pos = r.int(len + 1)
    a.insert(pos, Array.from({ length: 1 + r.int(3) }, () => randAny(r)))
  } else if (k < 8) {
    const pos = r.int(len)
    a.delete(pos, 1 + r.int(Math.min(len - pos, 3)))
  } else if (depth < MAX_DEPTH) {
    const n = newNested(r)
    a.insert(r.int(len + 1), [n])
    if (r.chance(0.6)) seedNested(r, n)
  } else {
    a.push([randAny(r)])
  }
}

const mapOp = (r, m, depth) => {
  const k = r.int(10)
  const keys = Array.from(m.keys())
  if (keys.length > 0 && k < 2) {
    m.delete(r.pick(keys))
  } else if (k < 8 || depth >= MAX_DEPTH) {
    m.set(r.pick(KEYS), randAny(r))
  } else {
    const n = newNested(r)
    m.set(r.pick(KEYS), n)
    if (r.chance(0.6)) seedNested(r, n)
  }
}

const xmlOp = (r, x, depth) => {
  const len = x.length
  const k = r.int(10)
  const isElem = x instanceof Y.XmlElement
  if (isElem && k < 3) {
    if (r.chance(0.75)) x.setAttribute(r.pick(ATTR_KEYS), r.pick(['a', 'b c', '1', '日本', '']))
    else x.removeAttribute(r.pick(ATTR_KEYS))
  } else if (len > 0 && k < 5) {
    const pos = r.int(len)
    x.delete(pos, 1 + r.int(Math.min(len - pos, 2)))
  } else if (depth < MAX_DEPTH) {
    const pos = r.int(len + 1)
    if (r.chance(0.5)) {
      const e = new Y.XmlElement(r.pick(TAGS))
      x.insert(pos, [e])
      if (r.chance(0.5)) e.setAttribute(r.pick(ATTR_KEYS), 'v' + r.int(10))
    } else {
      const t = new Y.XmlText()
      x.insert(pos, [t])
      t.insert(0, randString(r), r.chance(0.3) ? randAttrs(r) : undefined)
    }
  }
}

/** One random operation on a random live type of doc. */
export const randomOp = (r, doc, roots) => {
  // favour roots a little so that top-level structure keeps growing
  let t
  let depth = 0
  if (r.chance(0.4)) {
    const [name, kind] = r.pick(Object.entries(roots))
    t = getRoot(doc, name, kind)
  } else {
    ({ t, depth } = r.pick(collectTypes(doc, roots)))
  }
  if (t instanceof Y.Text) textOp(r, t, t instanceof Y.XmlText)
  else if (t instanceof Y.Array) arrayOp(r, t, depth)
  else if (t instanceof Y.Map) mapOp(r, t, depth)
  else if (t instanceof Y.XmlFragment) xmlOp(r, t, depth)
}

/** A transaction of 1 op (70%) or 2–3 ops; returns the number of ops done. */
export const randomTxn = (r, doc, roots, maxOps = 3) => {
  const n = r.chance(0.7) ? 1 : Math.min(maxOps, 2 + r.int(2))
  doc.transact(() => {
    for (let i = 0; i < n; i++) randomOp(r, doc, roots)
  })
  return n
}

// ---------------------------------------------------------------------------------------------
// commands

const sessions = new Map()

const decodeUpdates = (list) => {
  if (!Array.isArray(list)) throw new Error('"updates" must be an array of base64 strings')
  return list.map(unb64)
}

const applyAll = (doc, updates, v2) => {
  for (const u of updates) {
    if (v2) Y.applyUpdateV2(doc, u)
    else Y.applyUpdate(doc, u)
  }
}

/** JSON text with object keys sorted (Y.Map toJSON key order depends on each doc's history). */
export const canonical = (v) => JSON.stringify(v, (k, x) => {
  if (x === null || typeof x !== 'object' || Array.isArray(x)) return x
  const o = {}
  for (const key of Object.keys(x).sort()) o[key] = x[key]
  return o
})
const jsonEq = (a, b) => canonical(a) === canonical(b)

export const gen = ({ seed = 0, docs: nDocs = 3, steps = 40 }) => {
  const r = new Rand(seed)
  const roots = GEN_ROOTS
  const all = [] // local updates of all docs, creation order
  const own = [] // per doc: its own local updates
  const docs = []
  for (let i = 0; i < nDocs; i++) {
    const doc = newDoc(i + 1)
    const mine = []
    own.push(mine)
    doc.on('update', (update, origin, d, tr) => {
      if (tr.local) { all.push(update); mine.push(update) }
    })
    for (const [name, kind] of Object.entries(roots)) getRoot(doc, name, kind)
    docs.push(doc)
  }
  for (let s = 0; s < steps; s++) {
    randomTxn(r, r.pick(docs), roots)
    if (nDocs > 1 && r.chance(0.3)) {
      const src = r.int(nDocs)
      const dst = (src + 1 + r.int(nDocs - 1)) % nDocs
      if (r.chance(0.6)) {
        if (r.chance(0.5)) Y.applyUpdate(docs[dst], Y.encodeStateAsUpdate(docs[src], Y.encodeStateVector(docs[dst])))
        else Y.applyUpdateV2(docs[dst], Y.encodeStateAsUpdateV2(docs[src], Y.encodeStateVector(docs[dst])))
      } else {
        // a random subset of src's own updates, in random order
        const list = own[src].filter(() => r.chance(0.5))
        for (let i = list.length - 1; i > 0; i--) {
          const j = r.int(i + 1);
          [list[i], list[j]] = [list[j], list[i]]
        }
        for (const u of list) Y.applyUpdate(docs[dst], u)
      }
    }
  }
  const svs = docs.map((d) => Y.encodeStateVector(d))
  // final sync until nothing new happens (formatting cleanup may emit more updates)
  for (let round = 0; ; round++) {
    if (round > 10) throw new Error('docs do not converge')
    const before = all.length
    const merged = Y.mergeUpdates(all)
    for (const d of docs) Y.applyUpdate(d, merged)
    if (all.length === before) break
  }
  const js = docs[0]
  const snap = docSnapshot(js, roots)
  for (let i = 1; i < nDocs; i++) {
    const o = docJSON(docs[i], roots)
    if (!jsonEq(o.json, snap.json) || !jsonEq(o.deltas, snap.deltas)) {
      if (process.env.ORACLE_DEBUG) console.error(JSON.stringify(o), "\n", JSON.stringify({ json: snap.json, deltas: snap.deltas }))
      throw new Error(`seed ${seed}: doc ${i + 1} did not converge`)
    }
  }
  for (const d of docs) {
    if (d.store.pendingStructs !== null || d.store.pendingDs !== null) throw new Error(`seed ${seed}: pending structs remain`)
  }
  for (let i = 1; i < nDocs; i++) docs[i].destroy()
  const v2s = all.map((u) => Y.convertUpdateFormatV1ToV2(u))
  const mergedV1 = Y.mergeUpdates(all)
  const mergedV2 = Y.mergeUpdatesV2(v2s)
  return {
    doc: js,
    out: {
      roots,
      clientIDs: docs.map((d) => d.clientID),
      updates: all.map((u, i) => ({ v1: b64(u), v2: b64(v2s[i]) })),
      ...snap,
      diffs: svs.map((sv) => ({ sv: b64(sv), v1: b64(Y.encodeStateAsUpdate(js, sv)), v2: b64(Y.encodeStateAsUpdateV2(js, sv)) })),
      merged: { v1: b64(mergedV1), v2: b64(mergedV2) },
      svFromUpdate: b64(Y.encodeStateVectorFromUpdate(mergedV1)),
      diffUpdates: svs.map((sv) => ({ sv: b64(sv), v1: b64(Y.diffUpdate(mergedV1, sv)), v2: b64(Y.diffUpdateV2(mergedV2, sv)) }))
    }
  }
}

const getSession = (s) => {
  const sess = sessions.get(s)
  if (!sess) throw new Error('unknown session: ' + JSON.stringify(s))
  return sess
}

const newSession = (doc, roots) => {
  const sess = { doc, roots, local: [] }
  recordLocal(doc, sess.local)
  return sess
}

const takeLocal = (sess) => {
  const out = sess.local.map(pair)
  sess.local.length = 0
  return out
}

export const handle = (req) => {
  if (req === null || typeof req !== 'object' || Array.isArray(req)) throw new Error('request must be a JSON object')
  switch (req.cmd) {
    case 'gen': {
      if (req.session === undefined) throw new Error('gen needs "session"')
      const old = sessions.get(req.session)
      if (old) { old.doc.destroy(); sessions.delete(req.session) }
      const { doc, out } = gen(req)
      sessions.set(req.session, newSession(doc, out.roots))
      return out
    }
    case 'edit': {
      const sess = getSession(req.session)
      const r = new Rand(req.seed ?? 0)
      sess.local.length = 0
      let left = req.steps ?? 10
      while (left > 0) left -= randomTxn(r, sess.doc, sess.roots, left)
      return { updates: takeLocal(sess) }
    }
    case 'apply': {
      const sess = getSession(req.session)
      sess.local.length = 0
      applyAll(sess.doc, decodeUpdates(req.updates), !!req.v2)
      return { ...docSnapshot(sess.doc, sess.roots), updates: takeLocal(sess) }
    }
    case 'load': {
      const roots = req.roots ?? GEN_ROOTS
      const doc = newDoc(999999999, { gc: req.gc !== false })
      const sess = newSession(doc, roots)
      for (const [name, kind] of Object.entries(roots)) getRoot(doc, name, kind)
      try {
        applyAll(doc, decodeUpdates(req.updates), !!req.v2)
        return { ...docSnapshot(doc, roots), updates: takeLocal(sess) }
      } finally {
        doc.destroy()
      }
    }
    case 'merge': {
      const us = decodeUpdates(req.updates)
      return { update: b64(req.v2 ? Y.mergeUpdatesV2(us) : Y.mergeUpdates(us)) }
    }
    case 'diff': {
      const u = unb64(req.update)
      const sv = unb64(req.sv ?? '')
      return { update: b64(req.v2 ? Y.diffUpdateV2(u, sv) : Y.diffUpdate(u, sv)) }
    }
    case 'convert': {
      const u = unb64(req.update)
      if (req.to === 'v2') return { update: b64(Y.convertUpdateFormatV1ToV2(u)) }
      if (req.to === 'v1') return { update: b64(Y.convertUpdateFormatV2ToV1(u)) }
      throw new Error('convert needs "to": "v1" or "v2"')
    }
    case 'svFromUpdate': {
      const u = unb64(req.update)
      return { stateVector: b64(req.v2 ? Y.encodeStateVectorFromUpdateV2(u) : Y.encodeStateVectorFromUpdate(u)) }
    }
    case 'close': {
      const sess = sessions.get(req.session)
      if (sess) { sess.doc.destroy(); sessions.delete(req.session) }
      return { ok: true }
    }
    case 'ping':
      return { ok: true }
    default:
      throw new Error('unknown cmd: ' + req.cmd)
  }
}

const main = () => {
  // keep stdout for responses only
  const write = process.stdout.write.bind(process.stdout)
  console.log = console.info = console.debug = (...args) => console.error(...args)
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
  rl.on('line', (line) => {
    if (line.trim() === '') return
    let req
    let res
    try {
      req = JSON.parse(line)
      res = handle(req)
    } catch (e) {
      res = { error: String(e && e.message ? e.message : e) }
    }
    if (req && typeof req === 'object' && 'id' in req) res = { id: req.id, ...res }
    let text
    try {
      text = JSON.stringify(res)
    } catch (e) {
      text = JSON.stringify({ ...(req && 'id' in req ? { id: req.id } : {}), error: 'cannot encode response: ' + e.message })
    }
    write(text + '\n')
  })
  rl.on('close', () => {})
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main()
