// Generates golden y-websocket protocol fixtures with the reference JavaScript implementation
// (yjs, y-protocols, lib0) into testdata/protocol/. Run from the repository root:
//
//	node scripts/gen-protocol-fixtures.mjs
//
// frames.json     whole frames as the y-websocket provider and reference server build them, with the
//                 fields crdt/syncproto must decode from them.
// awareness.json  awareness updates with their decoded entries, and a scenario: updates applied in
//                 order to a server-side Awareness (local state null, as @y/websocket-server does),
//                 each with the 'change' and 'update' events that applyAwarenessUpdate emitted and
//                 the states afterwards, for crdt/awareness to reproduce.
//
// The output is deterministic: client IDs are fixed and no timestamps are written.

import * as fs from 'node:fs'
import * as path from 'node:path'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import * as syncProtocol from 'y-protocols/sync'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as authProtocol from 'y-protocols/auth'

const outDir = path.join('testdata', 'protocol')
fs.mkdirSync(outDir, { recursive: true })

const messageSync = 0
const messageAwareness = 1
const messageAuth = 2
const messageQueryAwareness = 3

const b64 = (u8) => Buffer.from(u8).toString('base64')

const newDoc = (clientID) => {
  const doc = new Y.Doc()
  doc.clientID = clientID
  return doc
}

const frame = (fn) => {
  const encoder = encoding.createEncoder()
  fn(encoder)
  return encoding.toUint8Array(encoder)
}

// ---- frames ----

const frames = []
const addFrame = (name, bytes, fields) => frames.push({ name, frame: b64(bytes), ...fields })

const docA = newDoc(1)
const docB = newDoc(2)
docA.getText('text').insert(0, 'hello wörld')
docA.getMap('map').set('k', { nested: [1, 2, 'three'] })
docB.getArray('arr').insert(0, [true, null, 4.5])
// exchange so that step 2 carries a real diff
Y.applyUpdate(docB, Y.encodeStateAsUpdate(docA))
docB.getText('text').insert(5, ',')

// sync step 1 as the provider sends it on open: messageSync + writeSyncStep1
for (const [name, doc] of [['step1-empty-doc', newDoc(7)], ['step1-docA', docA], ['step1-docB', docB]]) {
  const bytes = frame((e) => { encoding.writeVarUint(e, messageSync); syncProtocol.writeSyncStep1(e, doc) })
  addFrame(name, bytes, { type: 0, syncType: 0, payload: b64(Y.encodeStateVector(doc)) })
}

// sync step 2: the reply computed by readSyncMessage to a step 1
{
  const step1 = frame((e) => { encoding.writeVarUint(e, messageSync); syncProtocol.writeSyncStep1(e, docA) })
  const dec = decoding.createDecoder(step1)
  decoding.readVarUint(dec)
  const reply = encoding.createEncoder()
  encoding.writeVarUint(reply, messageSync)
  syncProtocol.readSyncMessage(dec, reply, docB, null)
  const bytes = encoding.toUint8Array(reply)
  addFrame('step2-docB-for-docA', bytes, {
    type: 0, syncType: 1, payload: b64(Y.encodeStateAsUpdate(docB, Y.encodeStateVector(docA)))
  })
  const full = frame((e) => { encoding.writeVarUint(e, messageSync); syncProtocol.writeSyncStep2(e, newDoc(8)) })
  addFrame('step2-empty-doc', full, { type: 0, syncType: 1, payload: b64(Y.encodeStateAsUpdate(newDoc(8))) })
}

// incremental updates as the provider broadcasts them from doc.on('update')
{
  const doc = newDoc(3)
  const updates = []
  doc.on('update', (u) => updates.push(u))
  doc.getText('t').insert(0, 'abc')
  doc.getMap('m').set('x', 'y'.repeat(300)) // > 127 bytes: multi-byte length prefix
  doc.getText('t').delete(1, 1)
  updates.forEach((u, i) => {
    const bytes = frame((e) => { encoding.writeVarUint(e, messageSync); syncProtocol.writeUpdate(e, u) })
    addFrame(`update-${i}`, bytes, { type: 0, syncType: 2, payload: b64(u) })
  })
}

// awareness frames
{
  const doc = newDoc(42)
  const aw = new awarenessProtocol.Awareness(doc)
  aw.setLocalState({ user: { name: 'Zoë', color: '#ff0000' }, cursor: null })
  const u = awarenessProtocol.encodeAwarenessUpdate(aw, [42])
  const bytes = frame((e) => { encoding.writeVarUint(e, messageAwareness); encoding.writeVarUint8Array(e, u) })
  addFrame('awareness-one', bytes, { type: 1, payload: b64(u) })
  aw.setLocalState(null)
  const u2 = awarenessProtocol.encodeAwarenessUpdate(aw, [42])
  const bytes2 = frame((e) => { encoding.writeVarUint(e, messageAwareness); encoding.writeVarUint8Array(e, u2) })
  addFrame('awareness-removed', bytes2, { type: 1, payload: b64(u2) })
  aw.destroy()
}

// query awareness, as the provider sends it over BroadcastChannel
addFrame('query-awareness', frame((e) => encoding.writeVarUint(e, messageQueryAwareness)), { type: 3 })

// auth permission denied
for (const [name, reason] of [['auth-denied', 'permission denied'], ['auth-denied-empty', ''], ['auth-denied-unicode', 'kein Zugriff – 🔒']]) {
  const bytes = frame((e) => { encoding.writeVarUint(e, messageAuth); authProtocol.writePermissionDenied(e, reason) })
  addFrame(name, bytes, { type: 2, authType: 0, reason })
}

fs.writeFileSync(path.join(outDir, 'frames.json'), JSON.stringify({ frames }, null, 2) + '\n')

// ---- awareness ----

const decodeAwarenessUpdate = (u) => {
  const d = decoding.createDecoder(u)
  const n = decoding.readVarUint(d)
  const entries = []
  for (let i = 0; i < n; i++) {
    const client = decoding.readVarUint(d)
    const clock = decoding.readVarUint(d)
    const state = decoding.readVarString(d)
    entries.push({ client, clock, state })
  }
  return entries
}

const updates = []
const addUpdate = (name, u) => updates.push({ name, update: b64(u), entries: decodeAwarenessUpdate(u) })

const mkClient = (id, state) => {
  const aw = new awarenessProtocol.Awareness(newDoc(id))
  if (state !== undefined) aw.setLocalState(state)
  return aw
}

const clients = []
const A = mkClient(1001, { user: { name: 'A' } }); clients.push(A)
const B = mkClient(1002, { user: { name: 'B' }, n: 1.5 }); clients.push(B)
const C = mkClient(4294967295, { user: { name: 'C' }, list: [1, 'two', false] }); clients.push(C)

// a multi-client update as the reference server sends to a new connection
{
  const merged = new awarenessProtocol.Awareness(newDoc(1))
  merged.setLocalState(null)
  clients.forEach((c) => awarenessProtocol.applyAwarenessUpdate(merged, awarenessProtocol.encodeAwarenessUpdate(c, [c.clientID]), 'x'))
  addUpdate('three-clients', awarenessProtocol.encodeAwarenessUpdate(merged, [1001, 1002, 4294967295]))
  merged.destroy()
}
addUpdate('empty', awarenessProtocol.encodeAwarenessUpdate(A, []))

// scenario against a server-side awareness
const server = new awarenessProtocol.Awareness(newDoc(999999))
server.setLocalState(null)
const scenario = []
const events = {}
server.on('change', (ev) => { events.change = ev })
server.on('update', (ev) => { events.update = ev })
const empty = { added: [], updated: [], removed: [] }
const snapshot = () => {
  const states = {}
  server.getStates().forEach((s, id) => { states[id] = JSON.stringify(s) })
  const clocks = {}
  server.meta.forEach((m, id) => { if (id !== server.clientID) clocks[id] = m.clock })
  return { states, clocks }
}
const step = (name, u) => {
  delete events.change
  delete events.update
  awarenessProtocol.applyAwarenessUpdate(server, u, 'conn')
  scenario.push({ name, op: 'apply', update: b64(u), change: events.change || empty, updateEvent: events.update || empty, ...snapshot() })
}
const own = (c) => awarenessProtocol.encodeAwarenessUpdate(c, [c.clientID])

const a0 = own(A)
step('add A', a0)
step('add B', own(B))
step('replay A (same clock) is ignored', a0)
A.setLocalState({ user: { name: 'A' } })
step('renew A (clock+1, equal state): update event only', own(A))
A.setLocalState({ user: { name: 'A' }, cursor: { anchor: 3 } })
step('change A', own(A))
step('stale A (older clock) is ignored', a0)
A.setLocalState({ cursor: { anchor: 3 }, user: { name: 'A' } })
step('A with reordered keys: deep-equal, update event only', own(A))
step('add C', own(C))
step('equal clock, non-null state for C is ignored', awarenessProtocol.encodeAwarenessUpdate(C, [C.clientID], new Map([[C.clientID, { other: 1 }]])))
step('equal clock, null state removes C', awarenessProtocol.encodeAwarenessUpdate(C, [C.clientID], new Map()))
step('equal clock, null state again: no state, ignored', awarenessProtocol.encodeAwarenessUpdate(C, [C.clientID], new Map()))
C.setLocalState({ user: { name: 'C' }, back: true })
step('C returns with higher clock: reported as updated', own(C))
B.setLocalState(null)
step('B leaves (clock+1, null)', own(B))
{
  const D = mkClient(1004); clients.push(D)
  D.setLocalState(null) // clock 1, no state: unknown client announcing null
  const E = mkClient(1005, { e: 'x' }); clients.push(E)
  const F = mkClient(1006, 'a string state'); clients.push(F)
  // falsy but non-null states (encodeAwarenessUpdate would write them as null, so write by hand)
  const parts = [D, E, F].map((c) => decodeAwarenessUpdate(own(c))[0])
  parts.push({ client: 1007, clock: 1, state: '0' }, { client: 1008, clock: 3, state: ' false ' })
  const u = frame((e) => {
    encoding.writeVarUint(e, parts.length)
    for (const p of parts) { encoding.writeVarUint(e, p.client); encoding.writeVarUint(e, p.clock); encoding.writeVarString(e, p.state) }
  })
  addUpdate('mixed-states', u)
  step('multi: unknown null D (meta only), add E, F, 1007 (0), 1008 (false)', u)
}
{
  // duplicate client in one update: applied in order
  const u = frame((e) => {
    encoding.writeVarUint(e, 3)
    encoding.writeVarUint(e, 2000); encoding.writeVarUint(e, 5); encoding.writeVarString(e, '{"v":1}')
    encoding.writeVarUint(e, 2000); encoding.writeVarUint(e, 6); encoding.writeVarString(e, '{"v":2}')
    encoding.writeVarUint(e, 2000); encoding.writeVarUint(e, 6); encoding.writeVarString(e, '{"v":3}')
  })
  addUpdate('duplicate-client', u)
  step('duplicate client in one update', u)
}
{
  // removal by the server (connection closed): removeAwarenessStates on remote clients keeps their
  // clocks; the reference server broadcasts encodeAwarenessUpdate of the removed clients
  delete events.change
  delete events.update
  awarenessProtocol.removeAwarenessStates(server, [1001, 1005, 1007, 123456, 1005], null)
  const changed = events.update ? events.update.added.concat(events.update.updated, events.update.removed) : []
  const broadcast = awarenessProtocol.encodeAwarenessUpdate(server, changed)
  scenario.push({ name: 'server removes A, E, 1007, unknown 123456 and E again', op: 'remove', remove: [1001, 1005, 1007, 123456, 1005], broadcast: b64(broadcast), change: events.change || empty, updateEvent: events.update || empty, ...snapshot() })
  step('A renews after removal (clock+1): added again', (() => { A.setLocalState(A.getLocalState()); return own(A) })())
}
{
  // what the reference server sends a new connection: all current states
  const ids = Array.from(server.getStates().keys())
  addUpdate('server-all', awarenessProtocol.encodeAwarenessUpdate(server, ids))
}

fs.writeFileSync(path.join(outDir, 'awareness.json'), JSON.stringify({ updates, scenario }, null, 2) + '\n')

clients.forEach((c) => c.destroy())
server.destroy()
console.log(`wrote ${frames.length} frames, ${updates.length} awareness updates, ${scenario.length} scenario steps to ${outDir}`)
