// Continuous editors for the crash, outage and hostile tests:
//   node e2e/crash.mjs <ws base URL> <doc> <clients> [token]
// Each client pushes labelled items ("<client>:<n>") into the array "items" every few ms, online
// or not (y-websocket sends offline edits when it reconnects). For every item whose update the
// server echoed (= stored) it prints {"acked": "<label>"}. On "stop" on stdin the clients stop
// editing, wait until every one is connected and synced and all hold the same items, and print
// {"ok": true, "items": [...]} (the converged array). See editors.mjs.
import { Y } from './lib.mjs'
import { echoSpy, pushItems, onStop } from './editors.mjs'
import { WebsocketProvider } from 'y-websocket'

const [base, doc, nClients, token] = process.argv.slice(2)

function editor (id) {
  const ydoc = new Y.Doc()
  const labels = new Map() // base64(update) -> label, until echoed
  const provider = new WebsocketProvider(base, doc, ydoc, {
    WebSocketPolyfill: echoSpy(labels),
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
  const ed = pushItems(ydoc, provider, id, labels, 4, 8)
  return {
    provider,
    ...ed,
    state: () => `client ${id}: connected=${provider.wsconnected} connecting=${provider.wsconnecting} synced=${provider.synced} items=${ed.items.length} unacked=${labels.size} closes=${closes}`
  }
}

const eds = Array.from({ length: Number(nClients) }, (_, i) => editor(i))
onStop(eds, {
  settled: (e) => e.provider.wsconnected && e.provider.synced,
  timeoutMs: 90000,
  progress: (e) => e.state()
})
