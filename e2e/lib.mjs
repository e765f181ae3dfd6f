// Helpers for the end-to-end scenarios: real yjs + y-websocket clients under Node, talking to a
// ysync server. Everything resolves or throws within a deadline; nothing sleeps blindly.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import * as decoding from 'lib0/decoding'

export { Y, WebSocket }

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// Writes to stdout and stderr block when they are pipes. Node otherwise queues what a full pipe
// (a reader busy for a moment) cannot take, and process.exit() drops the queue: that lost
// crash.mjs's final result line under load, and the test waited for it in vain.
for (const stream of [process.stdout, process.stderr]) stream._handle?.setBlocking?.(true)

// waitFor polls pred every 10 ms until it is truthy, or throws after timeoutMs.
export async function waitFor (pred, what, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await pred()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(10)
  }
}

// A WebSocket that records every frame it receives, so a client can see the server's echo of
// its own updates (the sign that they are stored).
function spySocket (onFrame) {
  return class SpyWebSocket extends WebSocket {
    constructor (...args) {
      super(...args)
      this.addEventListener('message', (ev) => onFrame(new Uint8Array(ev.data)))
    }
  }
}

const key = (u) => Buffer.from(u).toString('base64')

// client connects a Y.Doc to baseURL/docName. It tracks the updates it produced locally and
// which of them the server has echoed (= durably stored).
export function client (baseURL, docName, { connect = true, user } = {}) {
  const doc = new Y.Doc()
  const sent = new Map() // base64(update) -> acked?
  let acked = 0
  const onFrame = (buf) => {
    const d = decoding.createDecoder(buf)
    if (decoding.readVarUint(d) !== 0) return
    if (decoding.readVarUint(d) !== 2) return
    const k = key(decoding.readVarUint8Array(d))
    if (sent.get(k) === false) {
      sent.set(k, true)
      acked++
    }
  }
  const provider = new WebsocketProvider(baseURL, docName, doc, {
    WebSocketPolyfill: spySocket(onFrame),
    disableBc: true,
    connect,
    params: user ? { user } : {},
    maxBackoffTime: 200
  })
  doc.on('update', (update, origin) => {
    if (origin !== provider) sent.set(key(update), false)
  })
  return {
    doc,
    provider,
    get acked () { return acked },
    get sent () { return sent.size },
    allAcked: () => [...sent.values()].every(Boolean),
    synced: () => waitFor(() => provider.synced, `${docName} synced`),
    destroy: () => provider.destroy()
  }
}

// json is the content of the root types the scenarios use. (Y.Doc.toJSON shows only roots the
// local code has defined, so they are all defined first.)
export function json (c) {
  const d = c.doc
  return canonical({
    t: d.getText('t').toString(),
    a: d.getArray('a').toJSON(),
    m: d.getMap('m').toJSON(),
    arr: d.getArray('arr').toJSON(),
    log: d.getArray('log').toJSON(),
    items: d.getArray('items').toJSON()
  })
}

// canonical is JSON.stringify with object keys sorted (Y.Map iteration order is local insertion
// order, which differs between replicas).
function canonical (v) {
  if (Array.isArray(v)) return '[' + v.map(canonical).join(',') + ']'
  if (v && typeof v === 'object' && !(v instanceof Uint8Array)) {
    return '{' + Object.keys(v).sort().map((k) => JSON.stringify(k) + ':' + canonical(v[k])).join(',') + '}'
  }
  return JSON.stringify(v)
}

// rawSocket opens a plain WebSocket and resolves once it is open.
export function rawSocket (url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    ws.binaryType = 'arraybuffer'
    ws.closed = new Promise((resolveClose) => ws.on('close', (code, reason) => resolveClose({ code, reason: reason.toString() })))
    ws.on('open', () => resolve(ws))
    ws.on('error', reject)
  })
}

export function check (cond, msg) {
  if (!cond) throw new Error('check failed: ' + msg)
}

// runScenario runs scenarios[name] and ends the process: a last stdout line {"ok": true, ...its
// result} and status 0, or {"ok": false, "error": ...} (the stack on stderr) and status 1; 2 for
// a name it does not know.
export async function runScenario (scenarios, name) {
  const fn = scenarios[name]
  if (!fn) {
    console.error(`unknown scenario ${name}`)
    process.exit(2)
  }
  try {
    const res = await fn()
    console.log(JSON.stringify({ ok: true, ...res }))
    process.exit(0)
  } catch (err) {
    console.error(err?.stack || String(err))
    console.log(JSON.stringify({ ok: false, error: String(err?.message || err) }))
    process.exit(1)
  }
}
