// reconnect.mjs BASE DOC MODE WINDOW_MS: one stock y-websocket provider (npm) connects to
// BASE/DOC and is left to do what it does after the server closes it. MODE:
//   wait   do nothing (the server closes on its own, or the test closes the session)
//   flood  push 300 small edits at once (to run into the rate limit)
//   big    push one edit larger than the server's read limit (a close the provider retries)
// It prints {"synced": true} once synced, then, WINDOW_MS after the first close,
// {"ok": true, "closes": [codes...], "closedForGood": bool} and exits.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

const [base, docName, mode, windowArg] = process.argv.slice(2)
const windowMs = Number(windowArg)
const doc = new Y.Doc()
const provider = new WebsocketProvider(base, docName, doc, {
  WebSocketPolyfill: WebSocket,
  disableBc: true,
  maxBackoffTime: 200 // a provider that reconnects would try many times within the window
})
const closes = []
let closedForGood = false
let firstClose = null
provider.on('connection-close', (event) => {
  closes.push(event?.code ?? null)
  if (!firstClose) firstClose = Date.now()
})
provider.on('connection-closed', () => { closedForGood = true }) // some versions name it so
provider.on('closed', () => { closedForGood = true })
provider.on('sync', (synced) => {
  if (!synced) return
  console.log(JSON.stringify({ synced: true }))
  if (mode === 'flood') {
    const a = doc.getArray('a')
    for (let i = 0; i < 300; i++) a.push([i])
  } else if (mode === 'big') {
    doc.getText('t').insert(0, 'x'.repeat(64 << 10))
  }
})

const deadline = Date.now() + 60000
const timer = setInterval(() => {
  if (firstClose && Date.now() - firstClose >= windowMs) {
    clearInterval(timer)
    console.log(JSON.stringify({ ok: true, closes, closedForGood }))
    provider.destroy()
    process.exit(0)
  }
  if (Date.now() > deadline) {
    console.log(JSON.stringify({ ok: false, error: 'no close within 60 s', closes }))
    process.exit(1)
  }
}, 20)
