// Holds one y-websocket client per base open on a document:
//   node e2e/hold.mjs <ws base URLs, comma-separated> <doc>
// Prints {"synced": true} once all are synced, {"closed": <index>, "code": <code>} when the server
// closes one, and exits on "stop" on stdin.
import { client, waitFor } from './lib.mjs'

const [baseList, doc] = process.argv.slice(2)
const out = (v) => process.stdout.write(JSON.stringify(v) + '\n')
const cs = baseList.split(',').map((b, i) => {
  const c = client(b, doc, { user: `holder-${i}` })
  c.provider.on('connection-close', (ev) => { if (ev) out({ closed: i, code: ev.code }) })
  return c
})
try {
  await waitFor(() => cs.every((c) => c.provider.synced), 'all synced', 30000)
  out({ synced: true })
} catch (err) {
  out({ ok: false, error: String(err?.message || err) })
  process.exit(1)
}
process.stdin.on('data', (b) => { if (b.toString().includes('stop')) process.exit(0) })
