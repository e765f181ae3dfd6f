// Generates expectations for crdt's Y.Text and XML tests with the reference Yjs into
// testdata/text/expectations.json. Run from the repository root:
//
//	node scripts/text-expectations.mjs
//
// text: scenarios of Y.Text operations on one or more documents (client IDs 1, 2, ...), replayed by
//       crdt/ytext_test.go. After every scenario each document's string, delta and
//       encodeStateAsUpdate bytes (hex) are recorded; Go must produce identical bytes.
// xml:  hand-written XML scenarios mirrored in crdt/xml_test.go, with toString/toJSON and update
//       bytes.
//
// Attribute objects are written with sorted keys because the Go API takes unordered maps and
// creates format items in sorted key order.

import * as fs from 'node:fs'
import * as path from 'node:path'
import * as Y from 'yjs'

const outDir = path.join('testdata', 'text')
fs.mkdirSync(outDir, { recursive: true })

const hex = u8 => Buffer.from(u8).toString('hex')

// Every operation gets fresh attribute objects, as values decoded from the wire are: Yjs compares
// some attribute values by identity, and JSON-decoded Go values are never identical either.
const sortKeys = o => {
  if (o !== undefined) o = JSON.parse(JSON.stringify(o))
  if (o === undefined || o === null || typeof o !== 'object' || Array.isArray(o)) return o
  const r = {}
  for (const k of Object.keys(o).sort()) r[k] = o[k]
  return r
}

const newDoc = id => {
  const d = new Y.Doc()
  d.clientID = id
  return d
}

const applyOp = (docs, op) => {
  const doc = docs[op.doc || 0]
  const text = doc.getText('t')
  switch (op.op) {
    case 'insert':
      text.insert(op.index, op.text, op.attrs === undefined ? undefined : sortKeys(op.attrs))
      break
    case 'insertEmbed':
      text.insertEmbed(op.index, JSON.parse(JSON.stringify(op.embed)), op.attrs === undefined ? undefined : sortKeys(op.attrs))
      break
    case 'delete':
      text.delete(op.index, op.len)
      break
    case 'format':
      text.format(op.index, op.len, sortKeys(op.attrs))
      break
    case 'applyDelta':
      text.applyDelta(op.delta.map(d => d.attributes ? { ...d, attributes: sortKeys(d.attributes) } : d))
      break
    case 'sync': {
      // Exchange full states: each document receives every other document's state, in order.
      const states = docs.map(d => Y.encodeStateAsUpdate(d))
      docs.forEach((d, i) => states.forEach((s, j) => { if (i !== j) Y.applyUpdate(d, s) }))
      break
    }
    default:
      throw new Error('unknown op ' + op.op)
  }
}

const runScenario = ({ name, docs: n = 1, ops }) => {
  const docs = []
  for (let i = 0; i < n; i++) docs.push(newDoc(i + 1))
  for (const op of ops) applyOp(docs, op)
  return {
    name,
    docs: n,
    ops,
    results: docs.map(d => ({
      string: d.getText('t').toString(),
      delta: d.getText('t').toDelta(),
      update: hex(Y.encodeStateAsUpdate(d))
    }))
  }
}

// Deterministic pseudo-random generator (LCG) so the output is stable.
const rng = seed => {
  let s = seed >>> 0
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s / 4294967296
  }
}

const attrChoices = [
  undefined, {}, { bold: true }, { bold: null }, { italic: true }, { color: 'red' }, { color: 'blue' },
  { bold: true, color: 'red' }, { color: null, italic: null }, { link: { href: 'x' } }
]
const chars = ['a', 'b', 'c', ' ', 'é', '中', '\n', 'xyz', 'hello']

const randomOps = (seed, count, ndocs, syncEvery) => {
  const r = rng(seed)
  const lens = new Array(ndocs).fill(0)
  const ops = []
  const pick = a => a[Math.floor(r() * a.length)]
  for (let i = 0; i < count; i++) {
    if (ndocs > 1 && i % syncEvery === syncEvery - 1) {
      ops.push({ op: 'sync' })
      // lengths are recomputed by replaying below
    }
    const doc = Math.floor(r() * ndocs)
    const len = lens[doc]
    const k = r()
    let op
    if (k < 0.45 || len === 0) {
      const attrs = pick(attrChoices)
      op = { op: 'insert', index: Math.floor(r() * (len + 1)), text: pick(chars) }
      if (attrs !== undefined) op.attrs = attrs
    } else if (k < 0.7) {
      const index = Math.floor(r() * len)
      op = { op: 'delete', index, len: 1 + Math.floor(r() * Math.min(4, len - index)) }
    } else if (k < 0.95) {
      const index = Math.floor(r() * len)
      const a = pick(attrChoices.slice(2))
      op = { op: 'format', index, len: 1 + Math.floor(r() * Math.min(6, len - index)), attrs: a }
    } else {
      op = { op: 'insertEmbed', index: Math.floor(r() * (len + 1)), embed: { img: i }, attrs: pick([{}, { bold: true }]) }
    }
    if (ndocs > 1) op.doc = doc
    ops.push(op)
    // track lengths by replaying on scratch docs
    lens.fill(0)
    const scratch = []
    for (let j = 0; j < ndocs; j++) scratch.push(newDoc(j + 1))
    for (const o of ops) applyOp(scratch, o)
    scratch.forEach((d, j) => { lens[j] = d.getText('t').length })
  }
  if (ndocs > 1) ops.push({ op: 'sync' })
  return ops
}

const textScenarios = [
  {
    name: 'plain insert and delete',
    ops: [
      { op: 'insert', index: 0, text: 'hello world' },
      { op: 'delete', index: 5, len: 1 },
      { op: 'insert', index: 5, text: '_' },
      { op: 'delete', index: 0, len: 2 },
      { op: 'insert', index: 9, text: '!' }
    ]
  },
  {
    name: 'insert with attributes and inheritance',
    ops: [
      { op: 'insert', index: 0, text: 'hello', attrs: { bold: true } },
      { op: 'insert', index: 5, text: ' world' },
      { op: 'insert', index: 11, text: '!', attrs: {} },
      { op: 'insert', index: 0, text: '>', attrs: { bold: true, italic: true } },
      { op: 'insert', index: 1, text: '<' }
    ]
  },
  {
    name: 'format ranges',
    ops: [
      { op: 'insert', index: 0, text: 'hello world' },
      { op: 'format', index: 0, len: 5, attrs: { bold: true } },
      { op: 'format', index: 3, len: 5, attrs: { italic: true } },
      { op: 'format', index: 2, len: 2, attrs: { bold: null } },
      { op: 'format', index: 0, len: 11, attrs: { bold: true } }
    ]
  },
  {
    name: 'overlapping values and removal',
    ops: [
      { op: 'insert', index: 0, text: 'abcdefghij' },
      { op: 'format', index: 0, len: 6, attrs: { color: 'red' } },
      { op: 'format', index: 3, len: 6, attrs: { color: 'blue' } },
      { op: 'format', index: 4, len: 1, attrs: { color: null } },
      { op: 'format', index: 1, len: 8, attrs: { color: 'red', size: 2 } },
      { op: 'format', index: 0, len: 10, attrs: { color: null, size: null } }
    ]
  },
  {
    name: 'deleting around formats',
    ops: [
      { op: 'insert', index: 0, text: 'abcdef' },
      { op: 'format', index: 2, len: 2, attrs: { bold: true } },
      { op: 'delete', index: 1, len: 4 },
      { op: 'insert', index: 1, text: 'X' },
      { op: 'format', index: 0, len: 2, attrs: { italic: true } },
      { op: 'delete', index: 0, len: 1 },
      { op: 'insert', index: 0, text: 'Y' },
      { op: 'delete', index: 0, len: 3 },
      { op: 'insert', index: 0, text: 'Z' }
    ]
  },
  {
    name: 'embeds',
    ops: [
      { op: 'insert', index: 0, text: 'ab' },
      { op: 'insertEmbed', index: 1, embed: { image: 'x.png' }, attrs: { link: 'u' } },
      { op: 'insertEmbed', index: 0, embed: { a: 1 } },
      { op: 'format', index: 0, len: 4, attrs: { bold: true } },
      { op: 'delete', index: 2, len: 1 },
      { op: 'insert', index: 3, text: 'c' }
    ]
  },
  {
    name: 'unicode and emoji positions',
    ops: [
      { op: 'insert', index: 0, text: 'héllo 😀 wörld 👍🏽' },
      { op: 'format', index: 6, len: 2, attrs: { bold: true } },
      { op: 'insert', index: 8, text: '中文' },
      { op: 'delete', index: 1, len: 1 },
      { op: 'format', index: 14, len: 4, attrs: { italic: true } },
      { op: 'insert', index: 5, text: '🎉', attrs: { color: 'red' } },
      { op: 'delete', index: 14, len: 2 }
    ]
  },
  {
    name: 'apply delta',
    ops: [
      { op: 'applyDelta', delta: [{ insert: 'Hello ' }, { insert: 'World', attributes: { bold: true } }, { insert: { image: 'a' } }, { insert: '\n', attributes: { header: 1 } }] },
      { op: 'applyDelta', delta: [{ retain: 2 }, { delete: 2 }, { retain: 3, attributes: { italic: true } }, { insert: 'X', attributes: { bold: true } }, { retain: 2, attributes: { bold: null } }] },
      { op: 'applyDelta', delta: [{ retain: 1, attributes: { bold: true } }, { insert: 'Q' }, { delete: 1 }] }
    ]
  },
  {
    name: 'format past the end adds newlines',
    ops: [
      { op: 'insert', index: 0, text: 'abc' },
      { op: 'format', index: 1, len: 5, attrs: { header: 1 } }
    ]
  },
  {
    name: 'inherit at boundaries',
    ops: [
      { op: 'insert', index: 0, text: 'ab', attrs: { bold: true } },
      { op: 'insert', index: 2, text: 'cd', attrs: {} },
      { op: 'insert', index: 2, text: 'X' },
      { op: 'insert', index: 0, text: 'Y' },
      { op: 'insert', index: 6, text: 'Z' }
    ]
  },
  {
    name: 'object attribute values',
    ops: [
      { op: 'insert', index: 0, text: 'abcdef' },
      { op: 'format', index: 0, len: 3, attrs: { link: { href: 'x' } } },
      { op: 'format', index: 1, len: 1, attrs: { link: { href: 'x' } } },
      { op: 'format', index: 2, len: 3, attrs: { link: { href: 'y', title: 't' } } },
      { op: 'insert', index: 3, text: 'Q', attrs: { link: { href: 'y', title: 't' } } }
    ]
  },
  {
    name: 'several keys and integer-like keys',
    ops: [
      { op: 'insert', index: 0, text: 'abcdef', attrs: { c: 3, a: 1, b: 2 } },
      { op: 'format', index: 1, len: 3, attrs: { 10: 'x', 2: 'y', z: true, a: null } },
      { op: 'insert', index: 2, text: 'Q' }
    ]
  },
  { name: 'random single document', ops: randomOps(42, 250, 1, 0) },
  {
    name: 'concurrent formatting with cleanup',
    docs: 2,
    ops: [
      { op: 'insert', doc: 0, index: 0, text: 'hello world' },
      { op: 'sync' },
      { op: 'format', doc: 0, index: 0, len: 5, attrs: { bold: true } },
      { op: 'format', doc: 1, index: 2, len: 5, attrs: { bold: true } },
      { op: 'sync' },
      { op: 'format', doc: 1, index: 0, len: 11, attrs: { italic: true } },
      { op: 'delete', doc: 0, index: 3, len: 4 },
      { op: 'format', doc: 0, index: 0, len: 2, attrs: { italic: true } },
      { op: 'sync' },
      { op: 'sync' }
    ]
  },
  { name: 'random two documents', docs: 2, ops: randomOps(7, 200, 2, 9) },
  { name: 'random three documents', docs: 3, ops: randomOps(1234, 200, 3, 13) }
]

const text = textScenarios.map(runScenario)

// --- XML -------------------------------------------------------------------------------------

const xml = {}
{
  const doc = newDoc(1)
  const frag = doc.getXmlFragment('xml')
  const p = new Y.XmlElement('P')
  p.setAttribute('id', 'x')
  p.setAttribute('class', 'a')
  p.setAttribute('class', 'b')
  const t = new Y.XmlText('hello world')
  p.insert(0, [t])
  const b = new Y.XmlElement('b')
  b.insert(0, [new Y.XmlText('bold')])
  p.push([b])
  const q = new Y.XmlElement('q')
  const tmp = new Y.XmlText('gone')
  q.insert(0, [tmp, new Y.XmlText('kept')])
  q.delete(0, 1)
  frag.insert(0, [p, q])
  t.format(0, 5, { strong: true })
  t.format(3, 5, { a: { href: 'https://x', title: 'T' } })
  const hook = new Y.XmlHook('mention')
  hook.set('user', 'u1')
  frag.push([hook])
  frag.insert(1, [new Y.XmlText('tail')])
  p.removeAttribute('id')
  p.setAttribute('data-n', '1')
  const elt = frag.get(0)
  xml.document = {
    string: frag.toString(),
    json: frag.toJSON(),
    element: elt.toString(),
    text: t.toString(),
    textDelta: t.toDelta(),
    hook: hook.toJSON(),
    update: hex(Y.encodeStateAsUpdate(doc))
  }
}

fs.writeFileSync(path.join(outDir, 'expectations.json'), JSON.stringify({ text, xml }, null, 1) + '\n')
console.log(`wrote ${text.length} text scenarios and ${Object.keys(xml).length} xml scenarios`)
