// Workflow scenarios, one per process:  node e2e/workflow.mjs <scenario> <ws base URL> <JSON arg>
// The arg carries the workflow id, the HTTP base URL and whatever the scenario compares with.
// A scenario may stop at a step: it prints {"step": name, ...} and waits for one line of JSON on
// stdin (the Go test does its part, e.g. changes the tables, then answers). Success: exit status
// 0 and a last stdout line of JSON with "ok": true.
//
// Editors are stock y-websocket providers; the application channel (message type 5) is served by
// registering a handler for type 5 on the provider and sending frames on provider.ws, as an
// editor front end would.
import * as readline from 'node:readline'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { WebsocketProvider } from 'y-websocket'
import { Y, WebSocket, waitFor, check, sleep, runScenario } from './lib.mjs'

const [scenario, base, rawArg] = process.argv.slice(2)
const arg = JSON.parse(rawArg || '{}')

const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]()

// step hands control to the Go test and returns its answer.
async function step (name, data = {}) {
  console.log(JSON.stringify({ step: name, ...data }))
  const { value, done } = await lines.next()
  check(!done, `stdin closed at step ${name}`)
  return JSON.parse(value)
}

const MSG_RPC = 5

// editor connects a Y.Doc to the workflow's document. With events it asks for server events
// from the start (?events=1); otherwise it gets them once it sent a request itself.
function editor (id, { events = false, user } = {}) {
  const doc = new Y.Doc()
  const params = {}
  if (events) params.events = '1'
  if (user) params.user = user
  const provider = new WebsocketProvider(base, arg.docName || `workflow:${id}`, doc, {
    WebSocketPolyfill: WebSocket, disableBc: true, params, maxBackoffTime: 200
  })
  const ed = { doc, provider, events: [], replies: new Map(), statuses: [] }
  provider.on('status', (e) => ed.statuses.push(e.status))
  provider.messageHandlers[MSG_RPC] = (_encoder, decoder) => {
    const msg = JSON.parse(decoding.readVarString(decoder))
    if ('event' in msg) ed.events.push(msg)
    else ed.replies.set(msg.id, msg)
  }
  let n = 0
  // send sends one raw JSON text on the application channel.
  ed.sendRaw = (text) => {
    const enc = encoding.createEncoder()
    encoding.writeVarUint(enc, MSG_RPC)
    encoding.writeVarString(enc, text)
    provider.ws.send(encoding.toUint8Array(enc))
  }
  // request sends a request now (after every update this editor made so far) and returns a
  // promise of the reply.
  ed.request = (method, params = {}) => {
    const rid = `${method}-${++n}-${Math.random().toString(36).slice(2, 6)}`
    ed.sendRaw(JSON.stringify({ id: rid, method, params }))
    return waitFor(() => ed.replies.get(rid), `reply to ${rid}`, 30000)
  }
  ed.synced = () => waitFor(() => provider.synced && doc.getArray('jobs').length > 0, 'synced workflow document')
  ed.wf = () => doc.getMap('workflow')
  ed.job = (i) => doc.getArray('jobs').get(i)
  ed.destroy = () => provider.destroy()
  return ed
}

// snapshot is the document as JSON in the shape of a workflow (Go unmarshals it into
// workflow.Workflow): the workflow map's fields plus positions, jobs, triggers, edges.
function snapshot (ed) {
  const d = ed.doc
  return {
    ...d.getMap('workflow').toJSON(),
    positions: d.getMap('positions').toJSON(),
    jobs: d.getArray('jobs').toJSON(),
    triggers: d.getArray('triggers').toJSON(),
    edges: d.getArray('edges').toJSON(),
    errors: d.getMap('errors').toJSON()
  }
}

const same = (a, b) => JSON.stringify(canon(a)) === JSON.stringify(canon(b))
// canon sorts object keys, and arrays of entities by id (their order in the document carries no
// meaning for the tables).
function canon (v) {
  if (Array.isArray(v)) {
    const out = v.map(canon)
    if (out.every((x) => x && typeof x === 'object' && typeof x.id === 'string')) out.sort((x, y) => x.id < y.id ? -1 : 1)
    return out
  }
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canon(v[k])]))
  return v
}

function newEdge (fields) {
  const m = new Y.Map()
  const all = { id: crypto.randomUUID(), source_job_id: null, source_trigger_id: null, condition_type: 'always', condition_expression: null, condition_label: null, enabled: true, ...fields }
  for (const [k, v] of Object.entries(all)) m.set(k, v)
  return m
}

async function http (method, path, body) {
  const res = await fetch(arg.http + path, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined
  })
  return { status: res.status, body: await res.json() }
}

const scenarios = {
  // Two editors change a job body and add an edge; one saves. The other gets workflow_saved,
  // the saver does not; both documents show the new lock_version. Saving again without edits
  // keeps the version.
  async saveTwoEditors () {
    const a = editor(arg.id)
    const b = editor(arg.id, { events: true })
    await a.synced(); await b.synced()
    const jobs = a.doc.getArray('jobs').toJSON()
    const edgeCount = a.doc.getArray('edges').length
    b.doc.getArray('edges').push([newEdge({ source_job_id: jobs[0].id, target_job_id: jobs[2].id, condition_type: 'on_job_success' })])
    await waitFor(() => a.doc.getArray('edges').length === edgeCount + 1, 'a sees the new edge')
    // Edit and save in the same tick: the save must see the edit.
    a.job(0).get('body').insert(0, '// edited by a\n')
    const reply = await a.request('save_workflow')
    check(reply.ok, 'save failed: ' + JSON.stringify(reply))
    check(reply.result.lock_version === arg.version + 1, `lock_version ${reply.result.lock_version}`)
    check(reply.result.workflow.jobs.find((j) => j.id === jobs[0].id).body.startsWith('// edited by a\n'), 'saved body has the edit')
    await waitFor(() => b.events.some((e) => e.event === 'workflow_saved'), 'b gets workflow_saved')
    const ev = b.events.find((e) => e.event === 'workflow_saved')
    check(ev.payload.lock_version === arg.version + 1 && ev.payload.workflow.id === arg.id, 'event payload ' + JSON.stringify(ev.payload))
    await waitFor(() => a.wf().get('lock_version') === arg.version + 1 && b.wf().get('lock_version') === arg.version + 1, 'both documents at the new version')
    // Save again without edits: it succeeds and reports the same version.
    const again = await a.request('save_workflow')
    check(again.ok && again.result.lock_version === arg.version + 1, 'second save ' + JSON.stringify(again))
    await sleep(100)
    check(!a.events.some((e) => e.event === 'workflow_saved'), 'the saver got its own event')
    check(same(snapshot(a), snapshot(b)), 'editors differ')
    return { doc: snapshot(a) }
  },

  // A blank name: validation_error in the reply and in the document's errors (both editors).
  async validation () {
    const a = editor(arg.id)
    const b = editor(arg.id)
    await a.synced(); await b.synced()
    a.wf().set('name', '   ')
    const reply = await a.request('save_workflow')
    check(!reply.ok && reply.error.type === 'validation_error', 'reply ' + JSON.stringify(reply))
    check(Array.isArray(reply.error.errors.name) && reply.error.errors.name.length > 0, 'errors.name in the reply')
    await waitFor(() => Array.isArray(b.doc.getMap('errors').get('name')), "b sees errors.name in the document")
    check(Array.isArray(a.doc.getMap('errors').get('name')), 'a sees errors.name')
    // Fixed: saved, errors cleared.
    a.wf().set('name', 'fixed name')
    const ok = await a.request('save_workflow')
    check(ok.ok, 'save after fix ' + JSON.stringify(ok))
    await waitFor(() => b.doc.getMap('errors').size === 0, 'errors cleared at b')
    return { error: reply.error, doc: snapshot(a) }
  },

  // The tables change behind the open document's back (the Go test writes them directly): the
  // save is refused with optimistic_lock_error; a reset brings the tables' content; then the
  // save works.
  async conflict () {
    const a = editor(arg.id)
    await a.synced()
    await step('changeTables')
    a.job(1).set('name', 'edited after the change')
    const reply = await a.request('save_workflow')
    check(!reply.ok && reply.error.type === 'optimistic_lock_error', 'reply ' + JSON.stringify(reply))
    const reset = await a.request('reset_workflow')
    check(reset.ok && reset.result.lock_version === arg.version + 1, 'reset ' + JSON.stringify(reset))
    check(a.wf().get('name') === arg.changedName, 'document has the tables\' name after reset')
    a.job(1).set('name', 'edited after reset')
    const saved = await a.request('save_workflow')
    check(saved.ok && saved.result.lock_version === arg.version + 2, 'save after reset ' + JSON.stringify(saved))
    return { doc: snapshot(a) }
  },

  // DELETE over HTTP while the document is open: the document shows deleted_at, a save gives
  // workflow_deleted, and so does a reset.
  async deleted () {
    const a = editor(arg.id)
    await a.synced()
    const del = await http('DELETE', `/api/workflows/${arg.id}`)
    check(del.status === 200 && del.body.ok && del.body.result.deleted_at, 'DELETE ' + JSON.stringify(del))
    await waitFor(() => a.wf().get('deleted_at'), 'document shows deleted_at')
    a.wf().set('name', 'too late')
    const reply = await a.request('save_workflow')
    check(!reply.ok && reply.error.type === 'workflow_deleted', 'save ' + JSON.stringify(reply))
    const reset = await a.request('reset_workflow')
    check(!reset.ok && reset.error.type === 'workflow_deleted', 'reset ' + JSON.stringify(reset))
    return {}
  },

  // Both editors make unsaved edits; one resets; both show the tables' content again.
  async reset () {
    const a = editor(arg.id)
    const b = editor(arg.id)
    await a.synced(); await b.synced()
    const before = snapshot(a)
    a.job(0).set('name', 'renamed by a')
    b.job(1).get('body').insert(0, 'b was here ')
    b.doc.getArray('edges').delete(0, 1)
    await waitFor(() => same(snapshot(a), snapshot(b)), 'editors converge on the edits')
    check(!same(snapshot(a), before), 'edits made')
    const reply = await a.request('reset_workflow')
    check(reply.ok && reply.result.lock_version === arg.version && reply.result.workflow_id === arg.id, 'reset ' + JSON.stringify(reply))
    await waitFor(() => same(snapshot(a), before) && same(snapshot(b), before), 'both back to the tables\' content')
    return { doc: snapshot(b) }
  },

  // Two editors edit and save at the same moment: both replies are consistent and the document
  // ends at the tables' version.
  async concurrentSaves () {
    const a = editor(arg.id)
    const b = editor(arg.id)
    await a.synced(); await b.synced()
    a.job(0).get('body').insert(0, 'A')
    b.job(1).get('body').insert(0, 'B')
    const [ra, rb] = await Promise.all([a.request('save_workflow'), b.request('save_workflow')])
    for (const r of [ra, rb]) {
      check(r.ok || r.error.type === 'optimistic_lock_error', 'reply ' + JSON.stringify(r))
    }
    check(ra.ok || rb.ok, 'one save won')
    const top = Math.max(...[ra, rb].filter((r) => r.ok).map((r) => r.result.lock_version))
    await waitFor(() => same(snapshot(a), snapshot(b)) && a.wf().get('lock_version') === top, 'editors converge')
    // Whatever is not saved yet gets saved by one more save.
    const last = await a.request('save_workflow')
    check(last.ok, 'final save ' + JSON.stringify(last))
    await waitFor(() => b.wf().get('lock_version') === last.result.lock_version, 'b at the final version')
    return { doc: snapshot(a), replies: [ra, rb, last] }
  },

  // A document of the wrong shape: deserialization_error, the session stays open and keeps
  // syncing; once fixed, the save works.
  async wrongShape () {
    const a = editor(arg.id)
    const b = editor(arg.id)
    await a.synced(); await b.synced()
    const n = a.doc.getArray('edges').length
    a.doc.getArray('edges').push(['not a map'])
    const reply = await a.request('save_workflow')
    check(!reply.ok && reply.error.type === 'deserialization_error', 'reply ' + JSON.stringify(reply))
    check(a.provider.wsconnected && !a.statuses.includes('disconnected'), 'session closed')
    a.doc.getArray('edges').delete(n, 1)
    a.job(2).set('name', 'after the fix')
    await waitFor(() => b.job(2).get('name') === 'after the fix', 'b still syncs with a')
    const ok = await a.request('save_workflow')
    check(ok.ok, 'save after fix ' + JSON.stringify(ok))
    check(!a.statuses.includes('disconnected'), 'a reconnected meanwhile')
    return { error: reply.error }
  },

  // Malformed and misdirected requests get error replies and the session stays open.
  async rpcErrors () {
    const a = editor(arg.id)
    await a.synced()
    a.sendRaw('{not json')
    await waitFor(() => a.replies.get(null), 'reply to malformed JSON')
    check(a.replies.get(null).error.type === 'bad_request', 'bad JSON ' + JSON.stringify(a.replies.get(null)))
    const unknown = await a.request('launch_rockets')
    check(!unknown.ok && unknown.error.type === 'unsupported', 'unknown method ' + JSON.stringify(unknown))
    // A plain document (not workflow:<uuid>).
    const docName = `notes-${process.pid}`
    const p = new WebsocketProvider(base, docName, new Y.Doc(), { WebSocketPolyfill: WebSocket, disableBc: true })
    const replies = new Map()
    p.messageHandlers[MSG_RPC] = (_e, d) => { const m = JSON.parse(decoding.readVarString(d)); replies.set(m.id, m) }
    await waitFor(() => p.synced, 'plain doc synced')
    const enc = encoding.createEncoder()
    encoding.writeVarUint(enc, MSG_RPC)
    encoding.writeVarString(enc, JSON.stringify({ id: 7, method: 'save_workflow', params: {} }))
    p.ws.send(encoding.toUint8Array(enc))
    await waitFor(() => replies.get(7), 'reply on a plain document')
    check(replies.get(7).error.type === 'not_found', 'plain doc ' + JSON.stringify(replies.get(7)))
    check(a.provider.wsconnected && p.wsconnected && !a.statuses.includes('disconnected'), 'sessions stayed open')
    p.destroy()
    return {}
  },

  // Edit, then save over HTTP naming the editor's state vector ("after"): the save includes the
  // edit even though it raced the WebSocket. The editor (events=1) gets workflow_saved.
  async httpSaveAfter () {
    const a = editor(arg.id, { events: true })
    await a.synced()
    a.job(0).get('body').insert(0, '// via http\n')
    const after = Buffer.from(Y.encodeStateVector(a.doc)).toString('base64')
    const res = await http('POST', `/api/workflows/${arg.id}/save`, { after })
    check(res.status === 200 && res.body.ok && res.body.result.lock_version === arg.version + 1, 'save ' + JSON.stringify(res))
    check(res.body.result.workflow.jobs.some((j) => j.body.startsWith('// via http\n')), 'saved without the edit')
    await waitFor(() => a.events.some((e) => e.event === 'workflow_saved'), 'workflow_saved')
    // HTTP reset brings the document back to the tables (no unsaved edits now: same content).
    a.job(1).set('name', 'unsaved')
    const reset = await http('POST', `/api/workflows/${arg.id}/reset`, { after: Buffer.from(Y.encodeStateVector(a.doc)).toString('base64') })
    check(reset.status === 200 && reset.body.ok, 'reset ' + JSON.stringify(reset))
    await waitFor(() => a.job(1).get('name') !== 'unsaved', 'reset reached the editor')
    return { doc: snapshot(a) }
  },

  // Opens the document, waits until it is synced and reports it (used around restarts).
  async read () {
    const a = editor(arg.id)
    await a.synced()
    if (arg.lockVersion !== undefined) {
      await waitFor(() => a.wf().get('lock_version') === arg.lockVersion, `lock_version ${arg.lockVersion}`)
    }
    return { doc: snapshot(a) }
  },

  // Opens the document, makes an unsaved edit, saves (over the given channel) and reports.
  async editAndSave () {
    const a = editor(arg.id)
    await a.synced()
    a.job(0).get('body').insert(0, arg.prefix || '// saved\n')
    const reply = await a.request('save_workflow')
    check(reply.ok, 'save ' + JSON.stringify(reply))
    return { reply, doc: snapshot(a) }
  }
}

await runScenario(scenarios, scenario)
