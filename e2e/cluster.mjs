// Continuous editors spread over several nodes, for the cluster tests:
//   node e2e/cluster.mjs <ws base URLs, comma-separated> <doc> <clients>
// Client i starts on base i mod n. When its connection closes it moves to the next base, as a
// load balancer would send it to another node (a killed node's clients end up on the others).
// Each client pushes labelled items ("<client>:<n>") into the array "items" every few ms, online
// or not. For every item whose update the server echoed (= stored) it prints {"acked": "<label>"}.
// On "stop" on stdin the clients stop editing, wait until every one is connected and synced and all
// hold the same items, and print {"ok": true, "items": [...], "bases": [...]} (the converged array
// and the base each client ended on). See editors.mjs.
import { Y } from './lib.mjs'
import { echoSpy, pushItems, onStop } from './editors.mjs'
import { WebsocketProvider } from 'y-websocket'

const [baseList, doc, nClients] = process.argv.slice(2)
const bases = baseList.split(',')

function editor (id) {
  const ydoc = new Y.Doc()
  const labels = new Map() // base64(update) -> label, until echoed
  let at = id % bases.length
  const provider = new WebsocketProvider(bases[at], doc, ydoc, {
    WebSocketPolyfill: echoSpy(labels),
    disableBc: true,
    maxBackoffTime: 200
  })
  provider.on('connection-close', () => {
    at = (at + 1) % bases.length
    provider.serverUrl = bases[at]
  })
  provider.on('closed', ({ code }) => { console.error(`client ${id}: closed permanently with ${code}`) })
  return { provider, base: () => bases[at], ...pushItems(ydoc, provider, id, labels, 5, 10) }
}

const eds = Array.from({ length: Number(nClients) }, (_, i) => editor(i))
onStop(eds, {
  settled: (e) => e.provider.wsconnected && e.provider.synced,
  timeoutMs: 60000,
  result: (eds) => ({ bases: eds.map((e) => e.base()) })
})
