// Continuous editors for the crash, outage and hostile tests:
//   node e2e/crash.mjs <ws base URL> <doc> <clients> [token]
// Each client pushes labelled items ("<client>:<n>") into the array "items" every few ms, online
// or not (y-websocket sends offline edits when it reconnects). For every item whose update the
// server echoed (= stored) it prints {"acked": "<label>"}. On "stop" on stdin the clients stop
// editing, wait until every one is connected and synced and all hold the same items, and print
// {"ok": true, "items": [...]} (the converged array).
import { Y, WebSocket, waitFor, sleep } from './lib.mjs'
import { WebsocketProvider } from 'y-websocket'
import * as decoding from 'lib0/decoding'

const [base, doc, nClients, token] = process.argv.slice(2)
const key = (u) => Buffer.from(u).toString('base64')
const out = (v) => process.stdout.write(JSON.stringify(v) + '\n')

function editor (id) {
  const ydoc = new Y.Doc()
  const labels = new Map() // base64(update) -> label, until echoed
  const onFrame = (buf) => {
    try {
      const d = decoding.createDecoder(buf)
      if (decoding.readVarUint(d) !== 0 || decoding.readVarUint(d) !== 2) return
      const k = key(decoding.readVarUint8Array(d))
      const label = labels.get(k)
      if (label !== undefined) {
        labels.delete(k)
        out({ acked: label })
      }
    } catch {}
  }
  class Spy extends WebSocket {
    constructor (...args) {
      super(...args)
      this.addEventListener('message', (ev) => onFrame(new Uint8Array(ev.data)))
    }
  }
  const provider = new WebsocketProvider(base, doc, ydoc, {
    WebSocketPolyfill: Spy,
    disableBc: true,
    params: token ? { token } : {},
    maxBackoffTime: 200
  })
  provider.on('closed', ({ code }) => { console.error(`client ${id}: closed permanently with ${code}`) })
  // Diagnostics on stderr (the Go side prints it when a test fails): every connection that
  // closes, with its code, the first 20 times and every 100th after that.
  let closes = 0
  provider.on('connection-close', (ev) => {
    closes++
    if (closes <= 20 || closes % 100 === 0) {
      console.error(`${new Date().toISOString()} client ${id}: connection closed (${closes} so far), code ${ev ? ev.code : 'local'} ${ev?.reason || ''}`)
    }
  })
  const items = ydoc.getArray('items')
  let n = 0
  let pending = null
  ydoc.on('update', (update, origin) => {
    if (origin !== provider && pending !== null) labels.set(key(update), pending)
  })
  let running = true
  const loop = (async () => {
    while (running) {
      pending = `${id}:${n++}`
      items.push([pending])
      pending = null
      await sleep(4 + Math.random() * 8)
    }
  })()
  return {
    provider,
    items,
    stop: async () => { running = false; await loop },
    json: () => JSON.stringify(items.toArray()),
    state: () => `client ${id}: connected=${provider.wsconnected} connecting=${provider.wsconnecting} synced=${provider.synced} items=${items.length} unacked=${labels.size} closes=${closes}`
  }
}

const eds = Array.from({ length: Number(nClients) }, (_, i) => editor(i))
let stopping = false
process.stdin.on('data', async (b) => {
  if (stopping || !b.toString().includes('stop')) return
  stopping = true
  // While stopping, say every 5 s where each editor is, so a stop that never ends explains itself.
  const progress = setInterval(() => {
    console.error(`${new Date().toISOString()} stopping: ${eds.map((e) => e.state()).join('; ')}`)
  }, 5000)
  progress.unref()
  try {
    await Promise.all(eds.map((e) => e.stop()))
    await waitFor(() => eds.every((e) => e.provider.wsconnected && e.provider.synced), 'all connected and synced', 90000)
    await waitFor(() => eds.every((e) => e.json() === eds[0].json()), 'clients converge', 90000)
    out({ ok: true, items: eds[0].items.toArray() })
    process.exit(0)
  } catch (err) {
    out({ ok: false, error: String(err?.message || err), lengths: eds.map((e) => e.items.length) })
    process.exit(1)
  }
})
