// An editor of a workflow on one node waits for workflow_saved after a save on another node:
//   node e2e/cluster_saved.mjs <ws base URL> <workflow id>
// Prints {"ready": true} once synced (connected with ?events=1), then {"ok": true, "event": {...}}
// when workflow_saved arrives, or {"ok": false, ...} after 60 s.
import * as decoding from 'lib0/decoding'
import { WebsocketProvider } from 'y-websocket'
import { Y, WebSocket, waitFor } from './lib.mjs'

const [base, id] = process.argv.slice(2)
const out = (v) => process.stdout.write(JSON.stringify(v) + '\n')
const doc = new Y.Doc()
const provider = new WebsocketProvider(base, `workflow:${id}`, doc, {
  WebSocketPolyfill: WebSocket, disableBc: true, params: { events: '1' }, maxBackoffTime: 200
})
const events = []
provider.messageHandlers[5] = (_enc, dec) => {
  const msg = JSON.parse(decoding.readVarString(dec))
  if ('event' in msg) events.push(msg)
}
try {
  await waitFor(() => provider.synced && doc.getArray('jobs').length > 0, 'synced workflow document', 30000)
  out({ ready: true })
  const ev = await waitFor(() => events.find((e) => e.event === 'workflow_saved'), 'workflow_saved from the other node', 60000)
  out({ ok: true, event: ev })
  process.exit(0)
} catch (err) {
  out({ ok: false, error: String(err?.message || err) })
  process.exit(1)
}
