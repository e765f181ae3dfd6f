// End-to-end scenarios of the Hocuspocus protocol on GET /ws: real @hocuspocus/provider clients
// (v3 by default; the aliases hocuspocus-provider-v2 and hocuspocus-provider-v4) under Node
// against a ysync server. Usage:
//
//	node e2e/hocuspocus.mjs <scenario> <ws-url> [json-arg]
//
// The last line printed is {"ok": true, ...} or {"ok": false, "error": "..."}.
import * as Y from 'yjs'
import WebSocket from 'ws'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as v3 from '@hocuspocus/provider'
import { WebsocketProvider } from 'y-websocket'
import { waitFor, rawSocket, check, sleep } from './lib.mjs'

const [,, scenario, url, argJSON] = process.argv
const arg = argJSON ? JSON.parse(argJSON) : {}

async function providerModule (version) {
  switch (version) {
    case 'v2': return import('hocuspocus-provider-v2')
    case 'v4': return import('hocuspocus-provider-v4')
    default: return v3
  }
}

// A WebSocket that records the SyncStatus and auth messages it receives, per document.
function spySocket (log) {
  return class SpyWebSocket extends WebSocket {
    constructor (...args) {
      super(...args)
      log.sockets.push(this)
      this.addEventListener('message', (ev) => {
        const buf = new Uint8Array(ev.data)
        if (buf.length === 1) { log.pings++; return }
        const d = decoding.createDecoder(buf)
        const name = decoding.readVarString(d)
        const type = decoding.readVarUint(d)
        if (type === 8) {
          const ok = decoding.readVarUint(d) === 1
          log.status.push({ name, ok })
        } else if (type === 2) {
          const sub = decoding.readVarUint(d)
          log.auth.push({ name, sub, text: decoding.hasContent(d) ? decoding.readVarString(d) : '' })
        } else if (type === 7) {
          log.closes.push({ name, reason: decoding.readVarString(d) })
        } else if (type === 5) {
          log.stateless.push({ name, payload: decoding.readVarString(d) })
        }
      })
    }
  }
}

function newLog () { return { sockets: [], status: [], auth: [], closes: [], stateless: [], pings: 0 } }

// socket opens one shared HocuspocusProviderWebsocket.
async function socket (version = 'v3', opts = {}) {
  const m = await providerModule(version)
  const log = newLog()
  const ws = new m.HocuspocusProviderWebsocket({ url, WebSocketPolyfill: spySocket(log), delay: 50, minDelay: 50, maxDelay: 300, ...opts })
  return { ws, log, m }
}

// open attaches a provider for name to a shared socket (or its own when sock is null).
async function open (name, { sock = null, version = 'v3', token = '', awareness = undefined, doc = new Y.Doc(), socketOpts = {} } = {}) {
  const s = sock || await socket(version, socketOpts)
  const events = { authenticated: [], denied: [], stateless: [] }
  const provider = new s.m.HocuspocusProvider({
    websocketProvider: s.ws,
    name,
    document: doc,
    token,
    ...(awareness === null ? { awareness: null } : {}),
    onAuthenticated: (e) => events.authenticated.push(e?.scope ?? 'ok'),
    onAuthenticationFailed: (e) => events.denied.push(e?.reason ?? ''),
    onStateless: (e) => events.stateless.push(e.payload)
  })
  if (provider.attach) provider.attach() // v2 attaches itself
  return { name, doc, provider, sock: s, events, text: () => doc.getText('t').toString() }
}

const synced = (p) => waitFor(() => p.provider.synced, `${p.name} synced`)
const stored = (p) => waitFor(() => p.provider.synced && p.provider.unsyncedChanges === 0, `${p.name} unsyncedChanges 0`)

function done (extra = {}) {
  console.log(JSON.stringify({ ok: true, ...extra }))
  process.exit(0)
}

const scenarios = {
  // Two providers (own sockets) edit both ways; every edit is acked; a late joiner gets all.
  async twoWay () {
    const version = arg.version || 'v3'
    const a = await open(arg.doc || 'hp-two', { version })
    const b = await open(arg.doc || 'hp-two', { version })
    await synced(a); await synced(b)
    a.doc.getText('t').insert(0, 'hello ')
    await waitFor(() => b.text() === 'hello ', 'b sees a')
    b.doc.getText('t').insert(6, 'world')
    await waitFor(() => a.text() === 'hello world', 'a sees b')
    await stored(a); await stored(b)
    const okA = a.sock.log.status.filter((s) => s.ok).length
    check(a.sock.log.status.every((s) => s.ok), 'no refusals')
    check(a.events.authenticated.length >= 1, 'authenticated')
    const late = await open(arg.doc || 'hp-two', { version })
    await waitFor(() => late.text() === 'hello world', 'late joiner')
    done({ version, acksA: okA })
  },

  // 50 documents over one socket per side stay isolated.
  async manyDocs () {
    const n = arg.n || 50
    const sa = await socket(); const sb = await socket()
    const as = []; const bs = []
    for (let i = 0; i < n; i++) {
      as.push(await open(`many-${i}`, { sock: sa }))
      bs.push(await open(`many-${i}`, { sock: sb }))
    }
    await Promise.all(as.concat(bs).map(synced))
    as.forEach((p, i) => p.doc.getText('t').insert(0, `a${i};`))
    bs.forEach((p, i) => p.doc.getText('t').insert(0, `b${i};`))
    for (let i = 0; i < n; i++) {
      await waitFor(() => as[i].text().length === `a${i};b${i};`.length && as[i].text() === bs[i].text(), `doc ${i} converged`)
      const t = as[i].text()
      check(t.includes(`a${i};`) && t.includes(`b${i};`), `doc ${i} has both edits: ${t}`)
    }
    await Promise.all(as.concat(bs).map(stored))
    check(sa.log.sockets.length === 1 && sb.log.sockets.length === 1, 'one socket each')
    // Closing one document leaves the others open.
    as[0].provider.detach()
    bs[1].doc.getText('t').insert(0, 'after;')
    await waitFor(() => as[1].text().startsWith('after;'), 'doc 1 still live after doc 0 closed')
    done({ docs: n })
  },

  // Awareness appears, and disappears on a clean destroy and on an abrupt close.
  async awareness () {
    const a = await open('hp-aw'); const b = await open('hp-aw'); const c = await open('hp-aw')
    await synced(a); await synced(b); await synced(c)
    a.provider.setAwarenessField('user', { name: 'alice' })
    c.provider.setAwarenessField('user', { name: 'carol' })
    const seen = (p, id) => p.provider.awareness.getStates().has(id)
    await waitFor(() => seen(b, a.doc.clientID) && seen(b, c.doc.clientID), 'b sees a and c')
    a.provider.destroy()
    await waitFor(() => !seen(b, a.doc.clientID), 'a gone after destroy')
    // Abrupt: the socket's TCP connection is destroyed without a close frame.
    c.sock.log.sockets.at(-1)._socket.destroy()
    c.sock.ws.disconnect()
    await waitFor(() => !seen(b, c.doc.clientID), 'c gone after abrupt close', 30000)
    done()
  },

  // Offline edits on both sides converge after the reconnect, and are acked.
  async offline () {
    const a = await open('hp-off'); const b = await open('hp-off')
    await synced(a); await synced(b)
    a.doc.getText('t').insert(0, 'base;')
    await waitFor(() => b.text() === 'base;', 'base')
    a.sock.ws.disconnect()
    await waitFor(() => a.sock.ws.status === 'disconnected', 'a offline')
    a.doc.getText('t').insert(0, 'offline-a;')
    b.doc.getText('t').insert(0, 'online-b;')
    await sleep(50)
    check(!b.text().includes('offline-a'), 'a is really offline')
    a.sock.ws.connect()
    await waitFor(() => a.text() === b.text() && a.text().includes('offline-a;') && a.text().includes('online-b;'), 'converged')
    await stored(a); await stored(b)
    done({ text: a.text() })
  },

  // A 2 MB document syncs to a late joiner.
  async big () {
    const a = await open('hp-big')
    await synced(a)
    const chunk = 'x'.repeat(64 * 1024)
    for (let i = 0; i < 32; i++) a.doc.getText('t').insert(a.text().length, chunk)
    await stored(a)
    const late = await open('hp-big')
    await waitFor(() => late.text().length === 32 * chunk.length, 'late joiner has 2 MB', 60000)
    done({ bytes: late.text().length })
  },

  // A read-only token: Authenticated says "readonly", edits are refused with SyncStatus(0) and
  // never reach the document; a writer's edits still arrive.
  async readOnly () {
    const w = await open('hp-ro', { token: arg.write })
    const r = await open('hp-ro', { token: arg.read })
    await synced(w); await synced(r)
    await waitFor(() => r.events.authenticated.length > 0, 'reader authenticated')
    check(r.events.authenticated[0] === 'readonly', 'scope readonly: ' + r.events.authenticated[0])
    check(w.events.authenticated[0] === 'read-write', 'scope read-write: ' + w.events.authenticated[0])
    r.doc.getText('t').insert(0, 'forbidden;')
    await waitFor(() => r.sock.log.status.some((s) => !s.ok), 'SyncStatus(0) for the read-only edit')
    w.doc.getText('t').insert(0, 'allowed;')
    await waitFor(() => r.text().includes('allowed;'), 'reader receives the writer')
    await stored(w)
    await sleep(200)
    check(!w.text().includes('forbidden'), 'the read-only edit never reached the writer: ' + w.text())
    const late = await open('hp-ro', { token: arg.write })
    await waitFor(() => late.text().includes('allowed;'), 'late writer synced')
    check(!late.text().includes('forbidden'), 'the read-only edit is not in the document')
    done()
  },

  // Tokens: none / a bad one / a forbidden document are refused per document with
  // PermissionDenied; the same socket's good document works.
  async refused () {
    const s = await socket()
    const good = await open('hp-auth-ok', { sock: s, token: arg.write })
    const none = await open('hp-auth-none', { sock: s, token: '' })
    const bad = await open('hp-auth-bad', { sock: s, token: 'not-a-jwt' })
    const forb = await open('hp-secret', { sock: s, token: arg.write })
    await synced(good)
    await waitFor(() => none.events.denied.length && bad.events.denied.length && forb.events.denied.length, 'three refusals')
    good.doc.getText('t').insert(0, 'still fine')
    await stored(good)
    done({ none: none.events.denied[0], bad: bad.events.denied[0], forbidden: forb.events.denied[0] })
  },

  // A short-lived token: the server asks for a fresh one before it expires; the provider's
  // token function is called again and the document stays open past the first expiry.
  async refresh () {
    let calls = 0
    const tokens = arg.tokens
    const s = await socket()
    const doc = new Y.Doc()
    const provider = new s.m.HocuspocusProvider({
      websocketProvider: s.ws,
      name: 'hp-refresh',
      document: doc,
      token: () => tokens[Math.min(calls++, tokens.length - 1)]
    })
    if (provider.attach) provider.attach()
    await waitFor(() => provider.synced, 'synced')
    await waitFor(() => calls >= 2, 'token asked again', 30000)
    await sleep(arg.outlive || 0)
    doc.getText('t').insert(0, 'after refresh')
    await waitFor(() => provider.unsyncedChanges === 0, 'edit stored after refresh')
    check(s.log.closes.length === 0, 'not closed: ' + JSON.stringify(s.log.closes))
    done({ calls })
  },

  // A token that expires with no fresh one: the document is closed alone (Close message).
  async expire () {
    const s = await socket()
    const doc = new Y.Doc()
    let calls = 0
    const provider = new s.m.HocuspocusProvider({
      websocketProvider: s.ws, name: 'hp-expire', document: doc,
      token: () => { calls++; return calls === 1 ? arg.token : new Promise(() => {}) } // never answers again
    })
    provider.attach()
    const other = await open('hp-expire-other', { sock: s, token: arg.long })
    await waitFor(() => provider.synced, 'synced')
    await waitFor(() => s.log.closes.some((c) => c.name === 'hp-expire'), 'document closed', 30000)
    other.doc.getText('t').insert(0, 'other still open')
    await stored(other)
    done({ closes: s.log.closes })
  },

  // A y-websocket client and a Hocuspocus provider edit one document together.
  async mixed () {
    const base = url.replace(/\/ws$/, '/ws')
    const h = await open('hp-mixed')
    const ydoc = new Y.Doc()
    const y = new WebsocketProvider(base, 'hp-mixed', ydoc, { WebSocketPolyfill: WebSocket, disableBc: true })
    await synced(h)
    await waitFor(() => y.synced, 'y-websocket synced')
    h.doc.getText('t').insert(0, 'from-hp;')
    await waitFor(() => ydoc.getText('t').toString() === 'from-hp;', 'y-websocket sees hp')
    ydoc.getText('t').insert(0, 'from-y;')
    await waitFor(() => h.text() === 'from-y;from-hp;', 'hp sees y-websocket')
    await stored(h)
    y.destroy()
    done()
  },

  // Bad frames close only their own socket: a garbage sender is closed with 1007 / 1003 and the
  // provider on another socket keeps editing.
  async badFrames () {
    const a = await open('hp-bad'); const b = await open('hp-bad')
    await synced(a); await synced(b)
    const results = []
    for (const frame of [[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], [1, 0x61, 42], [1, 0x61, 0, 9]]) {
      const ws = await rawSocket(url)
      ws.send(new Uint8Array(frame))
      results.push((await ws.closed).code)
    }
    // An update that does not apply, after a proper auth.
    const ws = await rawSocket(url)
    const enc = encoding.createEncoder()
    encoding.writeVarString(enc, 'hp-bad'); encoding.writeVarUint(enc, 2); encoding.writeVarUint(enc, 0); encoding.writeVarString(enc, '')
    ws.send(encoding.toUint8Array(enc))
    const upd = encoding.createEncoder()
    encoding.writeVarString(upd, 'hp-bad'); encoding.writeVarUint(upd, 0); encoding.writeVarUint(upd, 2)
    encoding.writeVarUint8Array(upd, new Uint8Array([1, 1, 5, 0, 0xff, 0xff, 0xff]))
    ws.send(encoding.toUint8Array(upd))
    results.push((await ws.closed).code)
    a.doc.getText('t').insert(0, 'still here')
    await waitFor(() => b.text() === 'still here', 'good providers unaffected')
    await stored(a)
    done({ codes: results })
  },

  // Stateless: an application handler echoes; the request/reply channel answers too.
  async stateless () {
    const a = await open('hp-sl'); const b = await open('hp-sl')
    await synced(a); await synced(b)
    a.provider.sendStateless('ping-from-a')
    await waitFor(() => b.events.stateless.includes('echo:ping-from-a'), 'b gets the broadcast')
    a.provider.sendStateless(JSON.stringify({ id: 7, method: 'no_such_method', params: {} }))
    await waitFor(() => a.events.stateless.some((p) => p.includes('"id":7')), 'a gets the reply')
    const reply = JSON.parse(a.events.stateless.find((p) => p.includes('"id":7')))
    check(reply.ok === false && reply.error.type, 'an error reply: ' + JSON.stringify(reply))
    done({ reply })
  },

  // save_workflow over Stateless: the same JSON request/reply as message type 5; the other
  // editor gets the workflow_saved event as a stateless message.
  async workflowSave () {
    const name = `workflow:${arg.id}`
    const a = await open(name); const b = await open(name)
    await synced(a); await synced(b)
    await waitFor(() => a.doc.getMap('workflow').get('id') === arg.id, 'workflow loaded')
    a.doc.getMap('workflow').set('name', arg.name)
    a.provider.sendStateless(JSON.stringify({ id: 'save-1', method: 'save_workflow', params: {} }))
    const reply = await waitFor(() => a.events.stateless.map((p) => JSON.parse(p)).find((m) => m.id === 'save-1'), 'save reply')
    check(reply.ok === true, 'save ok: ' + JSON.stringify(reply))
    const ev = await waitFor(() => b.events.stateless.map((p) => JSON.parse(p)).find((m) => m.event === 'workflow_saved'), 'workflow_saved at b')
    await stored(a)
    done({ lock_version: reply.result.lock_version, event_version: ev.payload.lock_version })
  },

  // Keep-alive: a socket with awareness disabled and nothing to say still gets a message
  // within the provider's 30 s window (here: within the server's configured keepalive).
  async keepalive () {
    const version = arg.version || 'v3'
    const a = await open('hp-ka', { version, awareness: null, socketOpts: { messageReconnectTimeout: arg.reconnectMs } })
    await synced(a)
    const t0 = Date.now()
    const before = a.sock.log.sockets[0]
    await sleep(arg.wait)
    check(a.sock.log.sockets.length === 1 && a.sock.log.sockets[0] === before, 'never reconnected')
    a.doc.getText('t').insert(0, 'alive')
    await stored(a)
    done({ pings: a.sock.log.pings, ms: Date.now() - t0 })
  }
}

const fn = scenarios[scenario]
if (!fn) {
  console.log(JSON.stringify({ ok: false, error: `unknown scenario ${scenario}` }))
  process.exit(2)
}
const timer = setTimeout(() => {
  console.log(JSON.stringify({ ok: false, error: 'scenario timed out' }))
  process.exit(1)
}, arg.timeoutMs || 110000)
timer.unref()
fn().catch((err) => {
  console.log(JSON.stringify({ ok: false, error: String(err?.stack || err) }))
  process.exit(1)
})
