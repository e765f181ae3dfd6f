// Continuous Hocuspocus editors for the durable-ack crash test:
//   node e2e/hocuspocus_crash.mjs <ws URL of /ws> <doc> <clients> [token]
// Each client (a v3 HocuspocusProvider on its own socket) pushes labelled items ("<client>:<n>")
// into the array "items" every few ms. The server answers every SyncStep2 and update with one
// SyncStatus, in order, per (socket, document); the spy below pairs them with the frames the
// socket really sent, and for every update frame answered SyncStatus(1) prints
// {"acked": "<label>"}. On "stop" on stdin the clients stop editing, wait until all are connected,
// synced and hold the same items, and print {"ok": true, "items": [...]}.
import { Y, WebSocket, waitFor } from './lib.mjs'
import { updateKey as key, out, pushItems, onStop } from './editors.mjs'
import { HocuspocusProvider, HocuspocusProviderWebsocket } from '@hocuspocus/provider'
import * as decoding from 'lib0/decoding'

const [url, doc, nClients, token] = process.argv.slice(2)

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
  return { provider, ws, ...pushItems(ydoc, provider, id, labels, 4, 8) }
}

const eds = Array.from({ length: Number(nClients) }, (_, i) => editor(i))
onStop(eds, {
  settled: (e) => e.ws.status === 'connected' && e.provider.synced,
  timeoutMs: 30000,
  more: (eds) => waitFor(() => eds.every((e) => e.provider.unsyncedChanges === 0), 'all stored', 30000)
})
