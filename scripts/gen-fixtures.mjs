// Generates golden CRDT fixtures with the reference yjs (13.6.33) into testdata/golden/*.json.
// Run from the repository root:
//
//	node scripts/gen-fixtures.mjs
//
// Each scenario is built twice in this process and the two results must be identical (the script
// fails otherwise); client IDs are fixed, nothing random or time-dependent is written, so running the
// script again rewrites byte-identical files.
//
// FIXTURE FORMAT (one JSON object per file; base64 is standard with padding):
//   name, description
//   roots        {rootName: "Text" | "Array" | "Map" | "XmlFragment"}
//   gc           whether the docs ran with gc (the replay doc below uses the same setting)
//   applyOrder   indices into `updates`: the order in which they were applied to a fresh doc to
//                get `state`, `json`, ... (usually 0..n-1)
//   updates      [{v1, v2}] the update of every local transaction of every doc of the scenario, in
//                creation order (v2 = Y.convertUpdateFormatV1ToV2(v1)); a scenario may omit some on
//                purpose (see its description)
//   The "replay doc" is a fresh Y.Doc({gc}) with clientID 999999999 that got Y.applyUpdate(u.v1)
//   for every update in applyOrder, one call each (applying the v2 updates in the same way gives
//   the same result; the script checks that).
//   state        {v1: Y.encodeStateAsUpdate(replay), v2: Y.encodeStateAsUpdateV2(replay)}
//   stateVector  Y.encodeStateVector(replay)
//   json         {rootName: root.toJSON()} of the replay doc (Text → string, XmlFragment →
//                toString(), nested types as their toJSON())
//   deltas       {rootName: root.toDelta()} for each Text root
//   diffs        [{sv, v1, v2}] Y.encodeStateAsUpdate(V2)(replay, sv) for the state vectors of the
//                replay doc after about 1/3 and 2/3 of the updates (fewer if they coincide), and a
//                synthetic one with every client's clock halved (cuts through structs); the
//                empty sv is left out (its diff is `state`)
//   merged       {v1: Y.mergeUpdates(all v1), v2: Y.mergeUpdatesV2(all v2)} (in `updates` order)
//   svFromUpdate Y.encodeStateVectorFromUpdate(merged.v1)
//   cleanupUpdates (only if non-empty) [{v1, v2}] local updates the replay doc itself emitted
//                while applying (Yjs' formatting cleanup after remote changes deletes redundant
//                format items); they are part of `state`
//
// SPECIAL VALUES in json/deltas (tagged; a tag is an object with exactly one key starting with "$"):
//   undefined → {"$undefined": true}       bigint → {"$bigint": "123"}
//   Uint8Array → {"$bytes": "<base64>"}    NaN/Infinity/-Infinity/-0 → {"$number": "NaN"|...|"-0"}
//   Y.Doc → {"$doc": {"guid": "...", "opts": {gc:false?, autoLoad:true?, meta?}}}
//   shared type inside a delta → {"$ytype": {"type": "Map"|..., "json": <tagged toJSON()>}}
//   plain object with any key starting with "$" → {"$object": {<entries, tagged>}}
// (the same convention as scripts/oracle.mjs, which implements it; see testdata/golden/README.md)

import * as fs from 'node:fs'
import * as path from 'node:path'
import * as Y from 'yjs'
import { b64, docJSON, getRoot, newDoc, Rand } from './oracle.mjs'

const outDir = path.join('testdata', 'golden')
const REPLAY_CLIENT = 999999999

class Ctx {
  constructor (gc) {
    this.gc = gc
    this.updates = []
    this.authors = [] // clientID of the doc that made updates[i]
    this.docs = []
  }

  doc (clientID, opts = {}) {
    const d = newDoc(clientID, { gc: this.gc, ...opts })
    d.on('update', (u, origin, doc, tr) => { if (tr.local) { this.updates.push(u); this.authors.push(doc.clientID) } })
    this.docs.push(d)
    return d
  }

  /** send everything `to` is missing from `from` */
  sync (from, to) {
    Y.applyUpdate(to, Y.encodeStateAsUpdate(from, Y.encodeStateVector(to)))
  }

  syncAll () {
    for (let round = 0; round < 5; round++) {
      const n = this.updates.length
      for (const a of this.docs) for (const b of this.docs) if (a !== b) this.sync(a, b)
      if (this.updates.length === n) return
    }
    throw new Error('docs do not converge')
  }
}

const pairOf = (v1) => ({ v1: b64(v1), v2: b64(Y.convertUpdateFormatV1ToV2(v1)) })

const replay = (gc, roots, updates, order, v2) => {
  const doc = newDoc(REPLAY_CLIENT, { gc })
  const local = []
  doc.on('update', (u, o, d, tr) => { if (tr.local) local.push(u) })
  for (const [name, kind] of Object.entries(roots)) getRoot(doc, name, kind)
  const svs = [Y.encodeStateVector(doc)]
  for (const i of order) {
    if (v2) Y.applyUpdateV2(doc, Y.convertUpdateFormatV1ToV2(updates[i]))
    else Y.applyUpdate(doc, updates[i])
    svs.push(Y.encodeStateVector(doc))
  }
  return { doc, local, svs }
}

const halvedSV = (sv) => {
  const m = Y.decodeStateVector(sv)
  // state vector encoding: count, then (client, clock) pairs — same as Y.encodeStateVector
  const pairs = [...m.entries()].sort((a, b) => b[0] - a[0])
  const bytes = []
  const varuint = (n) => { while (n > 0x7f) { bytes.push(0x80 | (n & 0x7f)); n = Math.floor(n / 128) } bytes.push(n) }
  varuint(pairs.length)
  for (const [client, clock] of pairs) { varuint(client); varuint(Math.floor(clock / 2)) }
  return new Uint8Array(bytes)
}

const build = (sc) => {
  const gc = sc.gc !== false
  const ctx = new Ctx(gc)
  const res = sc.build(ctx) || {}
  let updates = ctx.updates
  if (res.omit) updates = updates.filter((u, i) => !res.omit.includes(i))
  const order = res.applyOrder || updates.map((u, i) => i)
  const r1 = replay(gc, sc.roots, updates, order, false)
  const r2 = replay(gc, sc.roots, updates, order, true)
  const doc = r1.doc
  const { json, deltas } = docJSON(doc, sc.roots)
  const state = { v1: Y.encodeStateAsUpdate(doc), v2: Y.encodeStateAsUpdateV2(doc) }
  // consistency checks
  const j2 = docJSON(r2.doc, sc.roots)
  if (JSON.stringify(j2) !== JSON.stringify({ json, deltas })) throw new Error(`${sc.name}: V1 and V2 replay differ`)
  if (b64(Y.encodeStateAsUpdate(r2.doc)) !== b64(state.v1)) throw new Error(`${sc.name}: V1 and V2 replay states differ`)
  if (res.expectSameAs) {
    const o = docJSON(res.expectSameAs, sc.roots)
    if (JSON.stringify(o.json) !== JSON.stringify(json)) throw new Error(`${sc.name}: replay json differs from the scenario's doc:\n${JSON.stringify(o.json)}\n${JSON.stringify(json)}`)
  }
  const n = order.length
  const svIdx = [...new Set([Math.floor(n / 3), Math.floor((2 * n) / 3)])]
  const svs = svIdx.map((i) => r1.svs[i])
  svs.push(halvedSV(Y.encodeStateVector(doc)))
  const v2s = updates.map((u) => Y.convertUpdateFormatV1ToV2(u))
  const mergedV1 = Y.mergeUpdates(updates)
  const out = {
    name: sc.name,
    description: sc.description,
    roots: sc.roots,
    gc,
    applyOrder: order,
    updates: updates.map((u, i) => ({ v1: b64(u), v2: b64(v2s[i]) })),
    state: { v1: b64(state.v1), v2: b64(state.v2) },
    stateVector: b64(Y.encodeStateVector(doc)),
    json,
    deltas,
    diffs: svs.map((sv) => ({ sv: b64(sv), v1: b64(Y.encodeStateAsUpdate(doc, sv)), v2: b64(Y.encodeStateAsUpdateV2(doc, sv)) })),
    merged: { v1: b64(mergedV1), v2: b64(Y.mergeUpdatesV2(v2s)) },
    svFromUpdate: b64(Y.encodeStateVectorFromUpdate(mergedV1))
  }
  if (r1.local.length > 0) out.cleanupUpdates = r1.local.map(pairOf)
  for (const d of [...ctx.docs, r1.doc, r2.doc]) d.destroy()
  return out
}

// ---------------------------------------------------------------------------------------------
// scenarios

const scenarios = []
const scenario = (name, description, roots, buildFn, opts = {}) => scenarios.push({ name, description, roots, build: buildFn, ...opts })

scenario('map-any-values', 'Y.Map values of every Any kind, one transaction per key, then one transaction setting several keys, an overwrite and a delete. Top-level Uint8Array in a map is ContentBinary; a top-level bigint is a ContentAny value (Y.Map accepts it, Y.Array does not); special values also occur nested inside Any objects/arrays.', { m: 'Map' }, (ctx) => {
  const d = ctx.doc(1)
  const m = d.getMap('m')
  const values = {
    null: null,
    undefined,
    true: true,
    false: false,
    zero: 0,
    negZero: -0,
    one: 1,
    minusOne: -1,
    i127: 127,
    i128: 128,
    i8191: 8191,
    i8192: 8192,
    maxInt31: 2 ** 31 - 1,
    minInt31: -(2 ** 31 - 1),
    pow31: 2 ** 31,
    negPow31: -(2 ** 31),
    pow32: 2 ** 32,
    maxSafe: Number.MAX_SAFE_INTEGER,
    pow53: 2 ** 53,
    negBig: -(2 ** 60),
    f32exact: 0.5,
    f32exact2: -1234.75,
    f32notExact: 0.1,
    third: 1 / 3,
    big: 1e300,
    tiny: 5e-324,
    maxValue: Number.MAX_VALUE,
    bigTop: 123n,
    bigNegTop: -(2n ** 63n),
    nan: NaN,
    inf: Infinity,
    negInf: -Infinity,
    empty: '',
    ascii: 'hello',
    emoji: '😀👍🏽🇩🇪𝄞',
    cjk: '日本語 中文 한국어',
    controls: '\u0000\t\n"\\',
    bytes: new Uint8Array([0, 1, 127, 128, 255]),
    noBytes: new Uint8Array(0),
    nestedArray: [1, [2, [3, []]], {}, null, 'x', 0.5, true],
    nestedObject: { b: 1, 2: 'two', 1: 'one', '': 'empty key', '-1': 'neg', '01': 'not int-like', $tag: 'dollar key', z: { y: [] } },
    specialNested: { big: 123n, negBig: -9007199254740993n, maxI64: 2n ** 63n - 1n, u: undefined, nan: NaN, negZero: -0, inf: -Infinity, bytes: new Uint8Array([9, 8]) },
    arrayOfSpecials: [undefined, 42n, new Uint8Array([1]), -0, NaN]
  }
  for (const [k, v] of Object.entries(values)) d.transact(() => m.set(k, v))
  d.transact(() => {
    m.set('', 'empty key')
    m.set('😀', { '': '' })
    m.set('10', 10)
    m.set('2', 2)
  })
  m.set('one', 'overwritten')
  m.delete('false')
  return { expectSameAs: d }
})

scenario('array-mixed', 'Y.Array with mixed values: inserts at the start, middle and end, push/unshift, multi-value inserts (one ContentAny item), a top-level Uint8Array (ContentBinary), deletes spanning several items.', { a: 'Array' }, (ctx) => {
  const d = ctx.doc(7)
  const a = d.getArray('a')
  a.insert(0, [1, 'two', null, true, 0.25])
  a.push([{ k: 'v', n: [1, 2] }, [], 'end'])
  a.unshift(['first'])
  a.insert(3, [new Uint8Array([1, 2, 3]), -0, 1e21, 'after bytes'])
  a.insert(5, ['😀', '日本'])
  a.delete(2, 4)
  d.transact(() => {
    a.insert(a.length, [false])
    a.delete(0, 1)
    a.insert(1, [{ $weird: 1 }, 2 ** 40])
  })
  a.delete(a.length - 2, 2)
  return { expectSameAs: d }
})

scenario('text-unicode', 'Y.Text inserts/deletes with emoji, surrogate pairs, CJK, combining characters and a flag; positions are UTF-16 units. Includes an insert and a delete that split a surrogate pair (Yjs replaces both halves with U+FFFD).', { t: 'Text' }, (ctx) => {
  const d = ctx.doc(3)
  const t = d.getText('t')
  t.insert(0, 'Hello world')
  t.insert(5, ' 😀')
  t.insert(t.length, ' 日本語テキスト')
  t.insert(0, 'e\u0301 🇩🇪 ')
  t.delete(2, 1)
  t.insert(t.length, '𝄞𝄞')
  t.delete(t.length - 2, 2) // deletes the last 𝄞 (2 units)
  d.transact(() => {
    t.insert(3, 'ab')
    t.delete(0, 1)
    t.insert(t.length, '👍🏽')
  })
  // split a surrogate pair: insert between the halves of 😀
  const at = t.toString().indexOf('😀')
  t.insert(at + 1, 'X')
  // and delete only the first half of the flag's second regional indicator
  const f = t.toString().indexOf('🇩🇪')
  t.delete(f + 2, 1)
  return { expectSameAs: d }
})

scenario('text-format', 'Y.Text formatting: insert with attributes, bold/italic/color, overlapping formats, removal with null, re-formatting an already formatted range (no-op), insert inside a formatted range (inherits), and concurrent overlapping formats from two clients (the replay doc runs Yjs formatting cleanup; see cleanupUpdates).', { t: 'Text' }, (ctx) => {
  const d1 = ctx.doc(1)
  const d2 = ctx.doc(2)
  const t1 = d1.getText('t')
  const t2 = d2.getText('t')
  t1.insert(0, 'The quick brown fox jumps over the lazy dog')
  t1.format(4, 5, { bold: true })
  t1.format(6, 10, { italic: true })
  t1.format(4, 5, { bold: true }) // redundant
  t1.insert(7, 'XX') // inherits bold+italic
  t1.insert(0, '>> ', { color: '#00f' })
  t1.format(10, 3, { bold: null })
  t1.insert(t1.length, '!', { bold: true, italic: null })
  t1.format(0, 3, { color: null })
  ctx.sync(d1, d2)
  // concurrent overlapping formats
  t1.format(20, 10, { bold: true })
  t2.format(25, 10, { bold: true })
  t2.format(22, 4, { italic: true, color: 'red' })
  t1.format(15, 20, { bold: null })
  t2.insert(28, 'new', { underline: true })
  ctx.syncAll()
  t1.format(0, t1.length, { bold: null, italic: null })
  t2.format(0, 3, { bold: true })
  ctx.syncAll()
  return { expectSameAs: d1 }
})

scenario('text-embeds', 'Y.Text with object embeds (insertEmbed), embeds with attributes, formatting across an embed, an embedded Y.Map (ContentType inside text, tagged $ytype in deltas) edited afterwards, and deleting an embed.', { t: 'Text' }, (ctx) => {
  const d = ctx.doc(5)
  const t = d.getText('t')
  t.insert(0, 'before  after')
  t.insertEmbed(7, { image: 'https://example.com/a.png', alt: 'A' })
  t.insertEmbed(0, { formula: 'e=mc^2' }, { bold: true })
  t.insertEmbed(t.length, { list: [1, 'two', null], nested: { x: true } })
  t.format(0, 5, { italic: true })
  const m = new Y.Map()
  t.insertEmbed(3, m)
  m.set('kind', 'widget')
  m.set('size', 3)
  t.delete(t.length - 1, 1)
  return { expectSameAs: d }
})

scenario('nested-deep', 'Nested shared types at depth: Map > Array > Map > Text/Array/Map, text in map, an XmlHook as a map value, edits of nested types in later transactions, overwriting a nested type and deleting an array element that holds a nested type (its children become GC).', { root: 'Map' }, (ctx) => {
  const d = ctx.doc(11)
  const root = d.getMap('root')
  const list = new Y.Array()
  root.set('list', list)
  const inner = new Y.Map()
  list.insert(0, ['plain', inner])
  const text = new Y.Text()
  inner.set('text', text)
  text.insert(0, 'deep text', { bold: true })
  const arr = new Y.Array()
  inner.set('arr', arr)
  arr.insert(0, [1, 2, 3])
  const deeper = new Y.Map()
  arr.insert(1, [deeper])
  deeper.set('level', 4)
  const t2 = new Y.Text('prelim')
  root.set('note', t2)
  d.transact(() => {
    t2.insert(0, '>> ')
    deeper.set('level', 'four')
    text.insert(4, 'er')
  })
  const hook = new Y.XmlHook('custom-hook')
  root.set('hook', hook)
  hook.set('a', 1)
  const gone = new Y.Map()
  list.push([gone])
  gone.set('x', new Y.Text('will be deleted'))
  list.delete(2, 1)
  root.set('note', 'overwritten with a string')
  return { expectSameAs: d }
})

scenario('xml', 'XmlFragment with XmlElements (attributes incl. removal), nested elements, XmlText with formats, deleting a child, inserting text into existing XmlText.', { xml: 'XmlFragment' }, (ctx) => {
  const d = ctx.doc(21)
  const xml = d.getXmlFragment('xml')
  const p = new Y.XmlElement('p')
  xml.insert(0, [p])
  p.setAttribute('class', 'lead')
  p.setAttribute('data-x', '1')
  const t = new Y.XmlText()
  p.insert(0, [t])
  t.insert(0, 'Hello bold world')
  t.format(6, 4, { bold: true })
  t.format(0, 5, { italic: { style: 'x' } })
  const ul = new Y.XmlElement('ul')
  xml.insert(1, [ul])
  for (const s of ['one', 'two', 'three']) {
    const li = new Y.XmlElement('li')
    ul.push([li])
    li.insert(0, [new Y.XmlText(s)])
  }
  ul.delete(1, 1)
  p.removeAttribute('data-x')
  const div = new Y.XmlElement('div')
  xml.insert(0, [div])
  div.insert(0, [new Y.XmlElement('span'), new Y.XmlText('tail 😀')])
  div.setAttribute('id', '日本')
  t.insert(t.length, '!')
  return { expectSameAs: d }
})

scenario('subdocs', 'Subdocuments: Y.Docs inside a map and an array, with guid and options (gc false, autoLoad, meta), then one removed.', { docs: 'Map', list: 'Array' }, (ctx) => {
  const d = ctx.doc(31)
  const docs = d.getMap('docs')
  docs.set('a', new Y.Doc({ guid: 'sub-a' }))
  docs.set('b', new Y.Doc({ guid: 'sub-b', autoLoad: true, meta: { title: 'B', n: 2 } }))
  docs.set('c', new Y.Doc({ guid: 'sub-c', gc: false }))
  d.getArray('list').insert(0, ['x', new Y.Doc({ guid: 'sub-in-array', meta: 'm' }), 'y'])
  docs.delete('a')
  return { expectSameAs: d }
})

const deletions = (ctx) => {
  const d = ctx.doc(41)
  const t = d.getText('t')
  const a = d.getArray('a')
  const m = d.getMap('m')
  t.insert(0, 'abcdefghij')
  t.insert(10, 'klmnop')
  a.insert(0, [1, 2, 3, 4, 5])
  const nested = new Y.Map()
  a.insert(2, [nested])
  nested.set('t', new Y.Text('nested text'))
  m.set('k', 'v1')
  m.set('k', 'v2') // overwrite deletes v1
  m.set('gone', { a: 1 })
  t.delete(2, 5)
  t.delete(8, 3)
  a.delete(1, 3) // deletes 2, the nested map and 3
  m.delete('gone')
  d.transact(() => {
    t.insert(2, 'XY')
    t.delete(0, 1)
  })
  return { expectSameAs: d }
}
scenario('deletions-gc', 'Deletions with gc on: deleted text ranges, array items (incl. a nested type with children) and overwritten/deleted map values; in the state deleted items carry ContentDeleted and the children of the deleted nested type became GC structs.', { t: 'Text', a: 'Array', m: 'Map' }, deletions)
scenario('deletions-nogc', 'The same edits as deletions-gc with gc off: deleted items keep their original content (ContentString/ContentAny/ContentType) and deleted types keep their children; only the delete set marks them.', { t: 'Text', a: 'Array', m: 'Map' }, deletions, { gc: false })

const concurrent = (order) => (ctx) => {
  const ds = [ctx.doc(1), ctx.doc(2), ctx.doc(3)]
  const [d1, d2, d3] = ds
  d1.getText('t').insert(0, 'shared base')
  d1.getArray('a').insert(0, ['base'])
  ctx.sync(d1, d2)
  ctx.sync(d1, d3)
  // concurrent edits
  d1.getText('t').insert(6, 'ONE ')
  d2.getText('t').insert(6, 'TWO ')
  d3.getText('t').insert(6, 'THREE ')
  d2.getText('t').delete(0, 3)
  d3.getText('t').insert(d3.getText('t').length, ' end3')
  d1.getArray('a').push([1])
  d2.getArray('a').unshift([2])
  d3.getArray('a').insert(1, [3, 33])
  d1.getMap('m').set('k', 'from 1')
  d2.getMap('m').set('k', 'from 2')
  d3.getMap('m').set('k', 'from 3')
  d3.getMap('m').set('only3', true)
  ctx.sync(d2, d3)
  d3.getText('t').insert(0, '3 saw 2: ')
  d1.getMap('m').delete('k')
  ctx.syncAll()
  // the applyOrder: all updates of the clients in `order`, each client's in creation order
  const idx = ctx.authors.map((c, i) => ({ i, c }))
  return { applyOrder: order.flatMap((c) => idx.filter((x) => x.c === c).map((x) => x.i)), expectSameAs: d1 }
}
for (const order of [[1, 2, 3], [3, 2, 1], [2, 3, 1]]) {
  scenario(`concurrent-3-clients-${order.join('')}`, `Three clients (1, 2, 3) edit text, array and map concurrently, with a partial sync (2→3) in between; the replay doc applies all updates of client ${order[0]}, then ${order[1]}, then ${order[2]} (applyOrder). Same updates in every concurrent-3-clients-* fixture.`, { t: 'Text', a: 'Array', m: 'Map' }, concurrent(order))
}

scenario('merge-gaps', 'Client 1 made four transactions and client 2 one; the second update of client 1 (clock 5..) is deliberately missing from `updates`, so mergeUpdates yields a Skip struct, the replay doc keeps the later structs pending (state includes them, merged like Yjs does) and svFromUpdate/stateVector stop at the gap.', { t: 'Text' }, (ctx) => {
  const d1 = ctx.doc(1)
  const d2 = ctx.doc(2)
  const t = d1.getText('t')
  t.insert(0, 'hello')
  t.insert(5, ' big')
  t.insert(9, ' world')
  t.delete(0, 1)
  d2.getText('t').insert(0, 'other client')
  return { omit: [1] }
})

scenario('delete-before-insert', 'Client 1 inserts text and array items; client 2 receives them and deletes some. The replay doc applies client 2\'s delete first (applyOrder [1, 0]): the delete set waits as pending until the insert arrives.', { t: 'Text', a: 'Array' }, (ctx) => {
  const d1 = ctx.doc(1)
  const d2 = ctx.doc(2)
  d1.transact(() => {
    d1.getText('t').insert(0, 'abcdef')
    d1.getArray('a').insert(0, [1, 2, 3])
  })
  ctx.sync(d1, d2)
  d2.transact(() => {
    d2.getText('t').delete(1, 2)
    d2.getArray('a').delete(0, 2)
  })
  return { applyOrder: [1, 0], expectSameAs: d2 }
})

scenario('content-json', 'Legacy ContentJSON items (content ref 2), crafted with Yjs internals (new Y.Item(..., new Y.ContentJSON([...]))): an array with JSON values incl. undefined (written as the string "undefined"), normal inserts around them, a map key holding ContentJSON, a partial delete.', { a: 'Array', m: 'Map' }, (ctx) => {
  const d = ctx.doc(51)
  const a = d.getArray('a')
  const m = d.getMap('m')
  d.transact((tr) => {
    const item = new Y.Item(Y.createID(d.clientID, Y.getState(d.store, d.clientID)), null, null, null, null, a, null,
      new Y.ContentJSON([1, 'two', { three: [3] }, null, undefined, true, 0.5]))
    item.integrate(tr, 0)
  })
  a.insert(0, ['any before'])
  a.insert(a.length, ['any after'])
  a.delete(3, 2)
  d.transact((tr) => {
    const left = m._map.get('k') || null
    const item = new Y.Item(Y.createID(d.clientID, Y.getState(d.store, d.clientID)), left, left && left.lastId, null, null, m, 'k',
      new Y.ContentJSON([{ legacy: true }]))
    item.integrate(tr, 0)
  })
  m.set('other', 'any')
  return { expectSameAs: d }
})

scenario('content-binary', 'ContentBinary items: top-level Uint8Arrays inserted into an array and set as map values (empty, small, 300 bytes), one overwritten, one deleted.', { a: 'Array', m: 'Map' }, (ctx) => {
  const d = ctx.doc(61)
  const a = d.getArray('a')
  const m = d.getMap('m')
  a.insert(0, [new Uint8Array([1, 2, 3]), new Uint8Array(0), 'not binary', new Uint8Array(Array.from({ length: 300 }, (_, i) => i & 255))])
  m.set('bin', new Uint8Array([255, 0, 255]))
  m.set('empty', new Uint8Array(0))
  m.set('bin', new Uint8Array([7]))
  a.delete(1, 1)
  return { expectSameAs: d }
})

scenario('large-text', 'A ~50k-character typing trace on one Y.Text (seeded PRNG): mostly sequential typing of words with occasional cursor jumps, backspaces, range deletes and a few emoji; several patches per transaction.', { t: 'Text' }, (ctx) => {
  const d = ctx.doc(71)
  const t = d.getText('t')
  const r = new Rand(2024)
  const words = ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog', 'CRDT', 'yjs', 'sync', 'Go', 'text', 'edit', 'trace', 'and', 'a', 'of', '日本', 'é', '😀']
  let cursor = 0
  let inserted = 0
  while (inserted < 50000) {
    d.transact(() => {
      const patches = 4 + r.int(12)
      for (let p = 0; p < patches; p++) {
        const k = r.int(100)
        if (k < 4 && t.length > 0) {
          cursor = r.int(t.length + 1) // jump
          const s = t.toString()
          if (cursor > 0 && cursor < s.length && (s.charCodeAt(cursor) & 0xFC00) === 0xDC00) cursor-- // keep pairs whole
        } else if (k < 12 && cursor > 0) {
          const s = t.toString()
          let n = Math.min(cursor, 1 + r.int(k < 9 ? 2 : 20))
          if ((s.charCodeAt(cursor - n) & 0xFC00) === 0xDC00) n = Math.min(cursor, n + 1)
          t.delete(cursor - n, n)
          cursor -= n
        } else {
          const w = (r.chance(0.1) ? '\n' : ' ') + r.pick(words)
          t.insert(cursor, w)
          cursor += w.length
          inserted += w.length
        }
      }
    })
  }
  return { expectSameAs: d }
})

// ---------------------------------------------------------------------------------------------

const runAll = () => scenarios.map((sc) => [sc.name, JSON.stringify(build(sc), null, 1) + '\n'])

const first = runAll()
const second = runAll()
let total = 0
fs.mkdirSync(outDir, { recursive: true })
for (let i = 0; i < first.length; i++) {
  const [name, text] = first[i]
  if (text !== second[i][1]) throw new Error(`${name}: not deterministic (two builds differ)`)
  fs.writeFileSync(path.join(outDir, name + '.json'), text)
  total += text.length
  console.log(`${name.padEnd(28)} ${String(text.length).padStart(8)} bytes`)
}
console.log(`${first.length} fixtures, ${total} bytes in ${outDir}`)
