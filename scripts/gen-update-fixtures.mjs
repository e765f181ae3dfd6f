// Generates golden fixtures for crdt's document-less update utilities (crdt/updates.go) with the
// reference yjs into testdata/updates/. Run from the repository root:
//
//	node scripts/gen-update-fixtures.mjs
//
// Every file holds {"cases": [...]}; a case is
//
//	{ "name": "...", "op": OP, "inputs": [base64...], "sv": base64?, "output": base64?,
//	  "from": {client: clock}?, "to": {client: clock}? }
//
// with OP one of merge, mergeV2, diff, diffV2, sv, svV2, v1tov2, v2tov1, meta, metaV2 (the Y.*
// function of that name applied to inputs, and sv for diffs), or pending / pendingV2: inputs are
// V1 updates applied in order to a fresh document, output is Y.encodeStateAsUpdate(V2)(doc, sv)
// (which includes the pending structs and deletions the document could not apply yet).
//
// The output is deterministic: client IDs and GUIDs are fixed.

import * as fs from 'node:fs'
import * as path from 'node:path'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'

const outDir = path.join('testdata', 'updates')
fs.mkdirSync(outDir, { recursive: true })

const b64 = (u8) => Buffer.from(u8).toString('base64')
const mapObj = (m) => Object.fromEntries([...m.entries()].map(([k, v]) => [String(k), v]))

const newDoc = (clientID, gc = true) => {
  const doc = new Y.Doc({ gc, guid: 'doc-' + clientID })
  doc.clientID = clientID
  return doc
}

// record captures every update a doc emits, in both formats.
const record = (doc) => {
  const rec = { v1: [], v2: [] }
  doc.on('update', (u) => rec.v1.push(u))
  doc.on('updateV2', (u) => rec.v2.push(u))
  return rec
}

const sync = (a, b) => {
  Y.applyUpdate(a, Y.encodeStateAsUpdate(b, Y.encodeStateVector(a)))
  Y.applyUpdate(b, Y.encodeStateAsUpdate(a, Y.encodeStateVector(b)))
}

const files = {}
const add = (file, c) => {
  (files[file] ||= []).push(c)
}

// Standard operations over a set of updates (V1 and the same updates in V2).
const addSuite = (name, v1, v2, extraSVs = []) => {
  const enc = (arr) => arr.map(b64)
  add('merge.json', { name: name + '/all', op: 'merge', inputs: enc(v1), output: b64(Y.mergeUpdates(v1)) })
  add('merge.json', { name: name + '/all', op: 'mergeV2', inputs: enc(v2), output: b64(Y.mergeUpdatesV2(v2)) })
  const r1 = [...v1].reverse()
  const r2 = [...v2].reverse()
  add('merge.json', { name: name + '/reversed', op: 'merge', inputs: enc(r1), output: b64(Y.mergeUpdates(r1)) })
  add('merge.json', { name: name + '/reversed', op: 'mergeV2', inputs: enc(r2), output: b64(Y.mergeUpdatesV2(r2)) })
  // every other update: gaps become Skips
  const o1 = v1.filter((_, i) => i % 2 === 0)
  const o2 = v2.filter((_, i) => i % 2 === 0)
  const merged1 = Y.mergeUpdates(o1)
  const merged2 = Y.mergeUpdatesV2(o2)
  add('merge.json', { name: name + '/even', op: 'merge', inputs: enc(o1), output: b64(merged1) })
  add('merge.json', { name: name + '/even', op: 'mergeV2', inputs: enc(o2), output: b64(merged2) })
  // merging an already merged update (with Skips) with the rest
  const rest1 = v1.filter((_, i) => i % 2 === 1)
  const rest2 = v2.filter((_, i) => i % 2 === 1)
  add('merge.json', { name: name + '/merged+odd', op: 'merge', inputs: enc([merged1, ...rest1]), output: b64(Y.mergeUpdates([merged1, ...rest1])) })
  add('merge.json', { name: name + '/merged+odd', op: 'mergeV2', inputs: enc([merged2, ...rest2]), output: b64(Y.mergeUpdatesV2([merged2, ...rest2])) })

  const all1 = Y.mergeUpdates(v1)
  const all2 = Y.mergeUpdatesV2(v2)
  const inputs1 = [...v1, all1, merged1]
  const inputs2 = [...v2, all2, merged2]
  inputs1.forEach((u, i) => {
    const n = `${name}/${i}`
    add('statevector.json', { name: n, op: 'sv', inputs: [b64(u)], output: b64(Y.encodeStateVectorFromUpdate(u)) })
    const m = Y.parseUpdateMeta(u)
    add('meta.json', { name: n, op: 'meta', inputs: [b64(u)], from: mapObj(m.from), to: mapObj(m.to) })
    add('convert.json', { name: n, op: 'v1tov2', inputs: [b64(u)], output: b64(Y.convertUpdateFormatV1ToV2(u)) })
  })
  inputs2.forEach((u, i) => {
    const n = `${name}/${i}`
    add('statevector.json', { name: n, op: 'svV2', inputs: [b64(u)], output: b64(Y.encodeStateVectorFromUpdateV2(u)) })
    const m = Y.parseUpdateMetaV2(u)
    add('meta.json', { name: n, op: 'metaV2', inputs: [b64(u)], from: mapObj(m.from), to: mapObj(m.to) })
    add('convert.json', { name: n, op: 'v2tov1', inputs: [b64(u)], output: b64(Y.convertUpdateFormatV2ToV1(u)) })
  })

  // diffs of the full and the gapped merge against several state vectors
  const svs = [new Uint8Array([0])]
  for (const u of v1) svs.push(Y.encodeStateVectorFromUpdate(u))
  for (const u of [all1, merged1]) {
    const { to } = Y.parseUpdateMeta(u)
    // cut every client one clock before its end, and halfway
    const cut1 = new Map()
    const cut2 = new Map()
    to.forEach((clock, client) => {
      cut1.set(client, Math.max(clock - 1, 0))
      cut2.set(client, Math.floor(clock / 2))
    })
    svs.push(encodeSV(cut1), encodeSV(cut2))
  }
  svs.push(...extraSVs)
  svs.forEach((sv, j) => {
    for (const [k, u1, u2] of [['all', all1, all2], ['even', merged1, merged2]]) {
      const n = `${name}/${k}/sv${j}`
      add('diff.json', { name: n, op: 'diff', inputs: [b64(u1)], sv: b64(sv), output: b64(Y.diffUpdate(u1, sv)) })
      add('diff.json', { name: n, op: 'diffV2', inputs: [b64(u2)], sv: b64(sv), output: b64(Y.diffUpdateV2(u2, sv)) })
    }
  })
}

const encodeSV = (m) => {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, m.size)
  ;[...m.entries()].sort((a, b) => b[0] - a[0]).forEach(([client, clock]) => {
    encoding.writeVarUint(e, client)
    encoding.writeVarUint(e, clock)
  })
  return encoding.toUint8Array(e)
}

// 1. Two clients editing one text concurrently, with deletes and formatting.
{
  const a = newDoc(1)
  const b = newDoc(2)
  const ra = record(a)
  const rb = record(b)
  a.getText('t').insert(0, 'hello')
  b.getText('t').insert(0, 'world')
  a.getText('t').insert(5, ' there')
  sync(a, b)
  a.getText('t').delete(2, 4)
  b.getText('t').format(0, 3, { bold: true })
  b.getText('t').insert(1, 'XY')
  a.getText('t').insert(0, '>>')
  sync(a, b)
  b.getText('t').delete(0, 6)
  // the updates each client produced itself, in order
  const v1 = [...ra.v1, ...rb.v1]
  const v2 = [...ra.v2, ...rb.v2]
  addSuite('text-concurrent', v1, v2)
}

// 2. One client typing: many small updates of one client (gaps when some are left out).
{
  const d = newDoc(7)
  const r = record(d)
  const t = d.getText('t')
  for (const [i, s] of ['a', 'bc', 'def', 'g', 'hi', 'jkl'].entries()) t.insert(i === 0 ? 0 : t.length, s)
  t.delete(1, 3)
  t.insert(2, 'Z')
  addSuite('typing', r.v1, r.v2)
}

// 3. Maps, arrays, nested types, XML, all kinds of Any values, binary and embeds.
{
  const a = newDoc(100)
  const b = newDoc(3000000000)
  const ra = record(a)
  const rb = record(b)
  const m = a.getMap('m')
  m.set('num', 42)
  m.set('float', 1.5)
  m.set('big', 2 ** 40)
  m.set('neg', -7)
  m.set('str', 'x')
  m.set('bool', true)
  m.set('null', null)
  m.set('obj', { k: [1, 'two', { three: 3 }], e: {} })
  m.set('bin', new Uint8Array([1, 2, 3]))
  const nested = new Y.Map()
  m.set('nested', nested)
  nested.set('inner', 'v')
  const arr = b.getArray('arr')
  arr.push([1, 2, 3, 'four', { five: 5 }])
  arr.insert(2, [new Y.Array()])
  arr.get(2).push(['deep'])
  const xml = b.getXmlFragment('xml')
  const el = new Y.XmlElement('p')
  xml.push([el])
  el.setAttribute('class', 'c')
  const xt = new Y.XmlText()
  el.push([xt])
  xt.insert(0, 'xml text', { italic: true })
  b.getText('rich').insertEmbed(0, { image: 'i.png' })
  b.getText('rich').insert(1, 'after', { link: 'http://x' })
  sync(a, b)
  m.set('num', 43)
  m.delete('str')
  arr.delete(0, 2)
  addSuite('types', [...ra.v1, ...rb.v1], [...ra.v2, ...rb.v2])
}

// 4. Garbage collection: deleted nested types become GC structs, deleted text ContentDeleted.
{
  const d = newDoc(55)
  const r = record(d)
  const m = d.getMap('m')
  const inner = new Y.Array()
  m.set('a', inner)
  inner.push(['x', 'y', 'z'])
  d.getText('t').insert(0, 'abcdefgh')
  m.delete('a')
  d.getText('t').delete(2, 3)
  m.set('b', 1)
  const full = Y.encodeStateAsUpdate(d)
  const fullV2 = Y.encodeStateAsUpdateV2(d)
  addSuite('gc', [...r.v1, full], [...r.v2, fullV2])
}

// 5. Surrogate pairs: diffs and merges that cut a pair in half.
{
  const d = newDoc(3)
  const t = d.getText('t')
  t.insert(0, 'a😀b😀c')
  const full = Y.encodeStateAsUpdate(d)
  const fullV2 = Y.encodeStateAsUpdateV2(d)
  // a hand-written update with client 3's first two units ("a" and half the emoji)
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, 1) // clients
  encoding.writeVarUint(e, 1) // structs
  encoding.writeVarUint(e, 3) // client
  encoding.writeVarUint(e, 0) // clock
  encoding.writeUint8(e, 4) // string content, parent written
  encoding.writeVarUint(e, 1) // parent is a root key
  encoding.writeVarString(e, 't')
  encoding.writeVarString(e, 'a\uFFFD')
  encoding.writeVarUint(e, 0) // delete set
  const half = encoding.toUint8Array(e)
  const halfV2 = Y.convertUpdateFormatV1ToV2(half)
  add('merge.json', { name: 'surrogate/half+full', op: 'merge', inputs: [b64(half), b64(full)], output: b64(Y.mergeUpdates([half, full])) })
  add('merge.json', { name: 'surrogate/half+full', op: 'mergeV2', inputs: [b64(halfV2), b64(fullV2)], output: b64(Y.mergeUpdatesV2([halfV2, fullV2])) })
  for (let clock = 0; clock <= 7; clock++) {
    const sv = encodeSV(new Map([[3, clock]]))
    add('diff.json', { name: 'surrogate/' + clock, op: 'diff', inputs: [b64(full)], sv: b64(sv), output: b64(Y.diffUpdate(full, sv)) })
    add('diff.json', { name: 'surrogate/' + clock, op: 'diffV2', inputs: [b64(fullV2)], sv: b64(sv), output: b64(Y.diffUpdateV2(fullV2, sv)) })
  }
}

// 6. Hand-written V1 updates: a client listed twice (out of order), GCs, a delete set
// with a client listed twice and overlapping ranges.
{
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, 3) // three client runs
  // client 9 from clock 5: GC(2), item "xy" with origin (9,6)
  encoding.writeVarUint(e, 2)
  encoding.writeVarUint(e, 9)
  encoding.writeVarUint(e, 5)
  encoding.writeUint8(e, 0) // GC
  encoding.writeVarUint(e, 2)
  encoding.writeUint8(e, 4 | 0x80) // string with origin
  encoding.writeVarUint(e, 9)
  encoding.writeVarUint(e, 6)
  encoding.writeVarString(e, 'xy')
  // client 4 from clock 0: item under key with parent sub, deleted content
  encoding.writeVarUint(e, 2)
  encoding.writeVarUint(e, 4)
  encoding.writeVarUint(e, 0)
  encoding.writeUint8(e, 8 | 0x20) // any content, parent sub
  encoding.writeVarUint(e, 1)
  encoding.writeVarString(e, 'm')
  encoding.writeVarString(e, 'key')
  encoding.writeVarUint(e, 1)
  encoding.writeUint8(e, 119) // any: string
  encoding.writeVarString(e, 'v')
  encoding.writeUint8(e, 1) // deleted content, parent written as id
  encoding.writeVarUint(e, 0) // parent is an id
  encoding.writeVarUint(e, 9)
  encoding.writeVarUint(e, 5)
  encoding.writeVarUint(e, 3)
  // client 9 again, from clock 0: GC(5)
  encoding.writeVarUint(e, 1)
  encoding.writeVarUint(e, 9)
  encoding.writeVarUint(e, 0)
  encoding.writeUint8(e, 0)
  encoding.writeVarUint(e, 5)
  // delete set: client 4 listed twice, adjacent ranges not merged (each client's ranges in order:
  // the V2 format cannot hold unordered ranges, Yjs writes garbage for them)
  encoding.writeVarUint(e, 3)
  encoding.writeVarUint(e, 4)
  encoding.writeVarUint(e, 2)
  encoding.writeVarUint(e, 0) // clock
  encoding.writeVarUint(e, 2) // len
  encoding.writeVarUint(e, 2)
  encoding.writeVarUint(e, 1)
  encoding.writeVarUint(e, 9)
  encoding.writeVarUint(e, 1)
  encoding.writeVarUint(e, 1)
  encoding.writeVarUint(e, 4)
  encoding.writeVarUint(e, 4)
  encoding.writeVarUint(e, 1)
  encoding.writeVarUint(e, 5)
  encoding.writeVarUint(e, 1)
  const odd = encoding.toUint8Array(e)
  const oddV2 = Y.convertUpdateFormatV1ToV2(odd)
  const other = Y.mergeUpdates([odd, odd])
  addSuite('handwritten', [odd, other], [oddV2, Y.convertUpdateFormatV1ToV2(other)])
}

// 7. Overlapping states of one document taken at different times, and an empty merge.
{
  const d = newDoc(11)
  const t = d.getText('t')
  t.insert(0, 'first')
  const s1 = Y.encodeStateAsUpdate(d)
  const s1v2 = Y.encodeStateAsUpdateV2(d)
  t.insert(5, ' second')
  t.delete(0, 2)
  const s2 = Y.encodeStateAsUpdate(d)
  const s2v2 = Y.encodeStateAsUpdateV2(d)
  const sv1 = Y.encodeStateVector(d)
  t.insert(0, 'third ')
  const s3 = Y.encodeStateAsUpdate(d, sv1)
  const s3v2 = Y.encodeStateAsUpdateV2(d, sv1)
  addSuite('overlap', [s1, s2, s3], [s1v2, s2v2, s3v2])
  add('merge.json', { name: 'empty', op: 'merge', inputs: [], output: b64(Y.mergeUpdates([])) })
  add('merge.json', { name: 'empty', op: 'mergeV2', inputs: [], output: b64(Y.mergeUpdatesV2([])) })
}

// 8. encodeStateAsUpdate of documents with pending structs and deletions.
{
  const src = newDoc(21)
  const r = record(src)
  const t = src.getText('t')
  t.insert(0, 'abc')
  t.insert(3, 'def')
  t.insert(6, 'ghi')
  t.delete(1, 4)
  src.getMap('m').set('k', 'v')
  const other = newDoc(22)
  Y.applyUpdate(other, Y.encodeStateAsUpdate(src))
  const ro = record(other)
  other.getText('t').insert(2, 'OTHER')
  other.getText('t').delete(0, 1)
  const scenarios = {
    'missing-first': [r.v1[1], r.v1[2]],
    'missing-middle': [r.v1[0], r.v1[2], r.v1[4]],
    'pending-delete': [r.v1[0], r.v1[3]],
    'foreign-missing': [r.v1[0], ro.v1[0], ro.v1[1]],
    'all-out-of-order': [r.v1[4], r.v1[3], r.v1[2], ro.v1[1], ro.v1[0]]
  }
  for (const [name, inputs] of Object.entries(scenarios)) {
    const d = newDoc(99)
    for (const u of inputs) Y.applyUpdate(d, u)
    const svs = [undefined, Y.encodeStateVector(d), encodeSV(new Map([[21, 4]])), encodeSV(new Map([[21, 7], [22, 2]]))]
    svs.forEach((sv, j) => {
      const c = { name: `${name}/sv${j}`, inputs: inputs.map(b64) }
      if (sv) c.sv = b64(sv)
      add('pending.json', { ...c, op: 'pending', output: b64(Y.encodeStateAsUpdate(d, sv)) })
      add('pending.json', { ...c, op: 'pendingV2', output: b64(Y.encodeStateAsUpdateV2(d, sv)) })
    })
  }
}

for (const [file, cases] of Object.entries(files)) {
  fs.writeFileSync(path.join(outDir, file), JSON.stringify({ cases }, null, 1) + '\n')
  console.log(`${file}: ${cases.length} cases`)
}
