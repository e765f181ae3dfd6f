// What the continuous editors of the crash, outage, hostile and cluster tests share (crash.mjs,
// cluster.mjs, hocuspocus_crash.mjs): labelled items pushed every few ms, online or not, a
// {"acked": "<label>"} line on stdout for every item the server has stored, and the "stop" on
// stdin after which the editors stop, wait until all are connected, synced and agree, and print
// {"ok": true, "items": [...]} (or {"ok": false, ...} and exit 1).
import { WebSocket, waitFor, sleep } from './lib.mjs'
import * as decoding from 'lib0/decoding'

export const updateKey = (u) => Buffer.from(u).toString('base64')
export const out = (v) => process.stdout.write(JSON.stringify(v) + '\n')

// echoSpy is a WebSocket class for y-websocket that prints {"acked": label} when the server
// echoes (= has stored) an update whose label labels holds (base64(update) -> label), and
// forgets it.
export function echoSpy (labels) {
  const onFrame = (buf) => {
    try {
      const d = decoding.createDecoder(buf)
      if (decoding.readVarUint(d) !== 0 || decoding.readVarUint(d) !== 2) return
      const k = updateKey(decoding.readVarUint8Array(d))
      const label = labels.get(k)
      if (label !== undefined) {
        labels.delete(k)
        out({ acked: label })
      }
    } catch {}
  }
  return class EchoSpy extends WebSocket {
    constructor (...args) {
      super(...args)
      this.addEventListener('message', (ev) => onFrame(new Uint8Array(ev.data)))
    }
  }
}

// pushItems has ydoc push the items "<id>:0", "<id>:1", ... into its array "items", one every
// minMs to minMs+spreadMs, until stop() is awaited, and records in labels the label of each
// local update (one that did not come from provider).
export function pushItems (ydoc, provider, id, labels, minMs, spreadMs) {
  const items = ydoc.getArray('items')
  let n = 0
  let pending = null
  ydoc.on('update', (update, origin) => {
    if (origin !== provider && pending !== null) labels.set(updateKey(update), pending)
  })
  let running = true
  const loop = (async () => {
    while (running) {
      pending = `${id}:${n++}`
      items.push([pending])
      pending = null
      await sleep(minMs + Math.random() * spreadMs)
    }
  })()
  return { items, stop: async () => { running = false; await loop } }
}

// onStop serves the "stop" on stdin for the editors eds (each with stop(), items and a provider):
// settled(e) says that e is connected and synced, timeoutMs bounds each wait, more(eds) waits
// for anything else before the result, result(eds) adds fields to it, and progress(e), when
// given, describes e on stderr every 5 s while stopping (so a stop that never ends explains
// itself).
export function onStop (eds, { settled, timeoutMs, more = async () => {}, result = () => ({}), progress }) {
  const json = (e) => JSON.stringify(e.items.toArray())
  let stopping = false
  process.stdin.on('data', async (b) => {
    if (stopping || !b.toString().includes('stop')) return
    stopping = true
    if (progress) {
      setInterval(() => {
        console.error(`${new Date().toISOString()} stopping: ${eds.map(progress).join('; ')}`)
      }, 5000).unref()
    }
    try {
      await Promise.all(eds.map((e) => e.stop()))
      await waitFor(() => eds.every(settled), 'all connected and synced', timeoutMs)
      await waitFor(() => eds.every((e) => json(e) === json(eds[0])), 'clients converge', timeoutMs)
      await more(eds)
      out({ ok: true, items: eds[0].items.toArray(), ...result(eds) })
      process.exit(0)
    } catch (err) {
      out({ ok: false, error: String(err?.message || err), lengths: eds.map((e) => e.items.length) })
      process.exit(1)
    }
  })
}
