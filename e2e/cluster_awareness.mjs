// Presence across nodes: node e2e/cluster_awareness.mjs <base A> <base B> <doc>
// A client on A sets its awareness state; a client on B must see it ({"seen": true}). Then the
// test kills node A; the client on B must see the state removed ({"removed": true, "ms": ...},
// the time since "seen"), and {"ok": true} ends. Any failure prints {"ok": false, ...}.
import { client, waitFor } from './lib.mjs'

const [baseA, baseB, doc] = process.argv.slice(2)
const out = (v) => process.stdout.write(JSON.stringify(v) + '\n')
try {
  const a = client(baseA, doc)
  const b = client(baseB, doc)
  await a.synced()
  await b.synced()
  a.provider.awareness.setLocalStateField('user', { name: 'alice-on-a' })
  const hasAlice = () => [...b.provider.awareness.getStates().values()].some((s) => s?.user?.name === 'alice-on-a')
  await waitFor(hasAlice, 'the client on B sees the state set on A', 30000)
  out({ seen: true })
  const t0 = Date.now()
  await waitFor(() => !hasAlice(), 'the state is removed after node A died', 60000)
  out({ removed: true, ms: Date.now() - t0 })
  out({ ok: true })
  process.exit(0)
} catch (err) {
  out({ ok: false, error: String(err?.message || err) })
  process.exit(1)
}
