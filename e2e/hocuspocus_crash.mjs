// Continuous Hocuspocus editors for the durable-ack crash test:
//   node e2e/hocuspocus_crash.mjs <ws URL of /ws> <doc> <clients> [token]
// Each client (a v3 HocuspocusProvider on its own socket) pushes labelled items ("<client>:<n>")
// into the array "items" every few ms. The server answers every SyncStep2 and update with one
// SyncStatus, in order, per (socket, document); the spy below pairs them with the frames the
// socket really sent, and for every update frame answered SyncStatus(1) prints
// {"acked": "<label>"}. On "stop" on stdin the clients stop editing, wait until all are connected,
// synced and hold the same items, and print {"ok": true, "items": [...]}.
import { Y, WebSocket, waitFor, sleep } from './lib.mjs'
import { HocuspocusProvider, HocuspocusProviderWebsocket } from '@hocuspocus/provider'
import * as decoding from 'lib0/decoding'

const [url, doc, nClients, token] = process.argv.slice(2)
const key = (u) => Buffer.from(u).toString('base64')
const out = (v) => process.stdout.write(JSON.stringify(v) + '\n')

function editor (id) {
  const ydoc = new Y.Doc()
  const labels = new Map() // base64(update) -> label
  class Spy extends WebSocket {
    constructor (...args) {
      super(...args)
      this.fifo = [] // labels (or null) of the SyncStep2 / update frames sent on this socket
      this.addEventListener('message', (ev) => {
        try {
          const d = decoding.createDecoder(new Uint8Array(ev.data))
          if (decoding.readVarString(d) !== doc || decoding.readVarUint(d) !== 8) return
          const ok = decoding.readVarUint(d) === 1
          const label = this.fifo.shift()
          if (ok && label) out({ acked: label })
        } catch {}
      })
    }

    send (data, ...rest) {
      try {
        const d = decoding.createDecoder(new Uint8Array(data))
        if (decoding.readVarString(d) === doc && decoding.readVarUint(d) === 0) {
          const st = decoding.readVarUint(d)
          if (st === 1 || st === 2) this.fifo.push(labels.get(key(decoding.readVarUint8Array(d))) ?? null)
        }
      } catch {}
      return super.send(data, ...rest)
    }
  }
  const ws = new HocuspocusProviderWebsocket({ url, WebSocketPolyfill: Spy, delay: 50, minDelay: 50, maxDelay: 200, maxAttempts: 0 })
  const provider = new HocuspocusProvider({ websocketProvider: ws, name: doc, document: ydoc, token: token || '' })
  provider.attach()
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
    ws,
    items,
    stop: async () => { running = false; await loop },
    json: () => JSON.stringify(items.toArray())
  }
}

const eds = Array.from({ length: Number(nClients) }, (_, i) => editor(i))
let stopping = false
process.stdin.on('data', async (b) => {
  if (stopping || !b.toString().includes('stop')) return
  stopping = true
  try {
    await Promise.all(eds.map((e) => e.stop()))
    await waitFor(() => eds.every((e) => e.ws.status === 'connected' && e.provider.synced), 'all connected and synced', 30000)
    await waitFor(() => eds.every((e) => e.json() === eds[0].json()), 'clients converge', 30000)
    await waitFor(() => eds.every((e) => e.provider.unsyncedChanges === 0), 'all stored', 30000)
    out({ ok: true, items: eds[0].items.toArray() })
    process.exit(0)
  } catch (err) {
    out({ ok: false, error: String(err?.message || err), lengths: eds.map((e) => e.items.length) })
    process.exit(1)
  }
})
