// End-to-end scenarios, one per process:  node e2e/scenarios.mjs <scenario> <ws base URL> [arg]
// The base URL is what a browser app passes to WebsocketProvider, e.g. ws://127.0.0.1:1234/ws.
// Success: exit status 0 and a last stdout line of JSON with "ok": true.
import { Y, client, json, waitFor, rawSocket, check, sleep, runScenario } from './lib.mjs'

const [scenario, base, arg] = process.argv.slice(2)
const uniq = (p) => `${p}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`

const converged = (clients, what) => waitFor(() => {
  const first = json(clients[0])
  return clients.every((c) => json(c) === first)
}, what)

const scenarios = {
  // Two clients edit in both directions.
  async twoWay () {
    const name = arg || uniq('two:way/doc')
    const a = client(base, name)
    const b = client(base, name)
    await a.synced(); await b.synced()
    a.doc.getText('t').insert(0, 'hello from a')
    await waitFor(() => b.doc.getText('t').toString() === 'hello from a', 'b sees a')
    b.doc.getMap('m').set('k', 'from b')
    await waitFor(() => a.doc.getMap('m').get('k') === 'from b', 'a sees b')
    await waitFor(() => a.allAcked() && b.allAcked(), 'echoes')
    return { text: a.doc.getText('t').toString() }
  },

  // A late joiner gets the full state, both from a live document and after it was unloaded.
  async lateJoiner () {
    const name = uniq('late')
    const a = client(base, name)
    await a.synced()
    a.doc.getText('t').insert(0, 'abc')
    a.doc.getArray('a').push([1, 2, 3])
    a.doc.getMap('m').set('x', { nested: true })
    await waitFor(() => a.allAcked(), 'a acked')
    const want = json(a)
    const b = client(base, name)
    await b.synced()
    await waitFor(() => json(b) === want, 'b has full state')
    a.destroy(); b.destroy()
    await sleep(200) // let the server see the leave (the idle timeout is 0 in these tests)
    const c = client(base, name)
    await c.synced()
    await waitFor(() => json(c) === want, 'c has full state after reload')
    return { state: want }
  },

  // Five clients edit Text, Array and Map concurrently and converge.
  async converge5 () {
    const name = uniq('five')
    const cs = Array.from({ length: 5 }, () => client(base, name))
    await Promise.all(cs.map((c) => c.synced()))
    for (let round = 0; round < 40; round++) {
      cs.forEach((c, i) => {
        const t = c.doc.getText('t')
        t.insert(Math.floor(Math.random() * (t.length + 1)), `${i}`)
        if (round % 7 === 3 && t.length > 2) t.delete(0, 1)
        c.doc.getArray('a').insert(0, [`${i}:${round}`])
        c.doc.getMap('m').set(`k${round % 5}`, i)
        c.doc.getMap('m').set(`c${i}`, round)
      })
      await sleep(2)
    }
    await converged(cs, 'five clients converge')
    await waitFor(() => cs.every((c) => c.allAcked()), 'all echoed')
    check(cs[0].doc.getArray('a').length === 200, 'array has every insert')
    return { text: cs[0].doc.getText('t').length }
  },

  // Awareness states appear at the others and disappear when a client drops without saying so.
  async awareness () {
    const name = uniq('aw')
    const a = client(base, name)
    const b = client(base, name)
    await a.synced(); await b.synced()
    a.provider.awareness.setLocalStateField('user', { name: 'A' })
    b.provider.awareness.setLocalStateField('user', { name: 'B' })
    const bid = b.doc.clientID
    await waitFor(() => a.provider.awareness.getStates().get(bid)?.user?.name === 'B', 'a sees b')
    await waitFor(() => b.provider.awareness.getStates().get(a.doc.clientID)?.user?.name === 'A', 'b sees a')
    // A third client joining later gets both states with its first sync.
    const c = client(base, name)
    await c.synced()
    await waitFor(() => c.provider.awareness.getStates().size >= 2, 'c sees both')
    // b vanishes: no awareness goodbye, the socket is just cut.
    b.provider.shouldConnect = false
    b.provider.ws.terminate()
    await waitFor(() => !a.provider.awareness.getStates().has(bid), 'server removed b at a', 5000)
    await waitFor(() => !c.provider.awareness.getStates().has(bid), 'server removed b at c', 5000)
    return { states: a.provider.awareness.getStates().size }
  },

  // An offline client edits, reconnects, and both sides converge.
  async offline () {
    const name = uniq('offline')
    const a = client(base, name)
    const b = client(base, name)
    await a.synced(); await b.synced()
    a.doc.getText('t').insert(0, 'base ')
    await converged([a, b], 'base')
    a.provider.disconnect()
    a.doc.getText('t').insert(5, 'offline-a ')
    a.doc.getArray('arr').push(['a1'])
    b.doc.getText('t').insert(0, 'online-b ')
    b.doc.getArray('arr').push(['b1'])
    await sleep(100)
    check(!json(a).includes('online-b'), 'a is really offline')
    a.provider.connect()
    await a.synced()
    await converged([a, b], 'after reconnect')
    check(json(b).includes('offline-a'), 'b got the offline edit')
    return { text: b.doc.getText('t').toString() }
  },

  // A 2 MB text reaches a connected peer and a late joiner.
  async big () {
    const name = uniq('big')
    const a = client(base, name)
    const b = client(base, name)
    await a.synced(); await b.synced()
    const chunk = 'x'.repeat(1024)
    a.doc.getText('t').insert(0, chunk.repeat(2048))
    await waitFor(() => b.doc.getText('t').length === 2 * 1024 * 1024, 'b has 2 MB', 30000)
    await waitFor(() => a.allAcked(), 'a acked', 30000)
    const c = client(base, name)
    await c.synced()
    await waitFor(() => c.doc.getText('t').length === 2 * 1024 * 1024, 'late joiner has 2 MB', 30000)
    return { length: c.doc.getText('t').length }
  },

  // Fifty documents stay independent.
  async manyDocs () {
    const n = 50
    const names = Array.from({ length: n }, (_, i) => uniq(`many/${i}`))
    const pairs = names.map((nm) => [client(base, nm), client(base, nm)])
    await Promise.all(pairs.flat().map((c) => c.synced()))
    pairs.forEach(([a], i) => a.doc.getText('t').insert(0, `doc-${i}`))
    await Promise.all(pairs.map(([, b], i) => waitFor(() => b.doc.getText('t').toString() === `doc-${i}`, `doc ${i}`)))
    return { docs: n }
  },

  // Bad frames close only the connection that sent them; the others keep syncing.
  async garbage () {
    const name = uniq('garbage')
    const a = client(base, name)
    const b = client(base, name)
    await a.synced(); await b.synced()
    const url = `${base}/${name}`
    const cases = [
      { what: 'random bytes', frame: Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2]), codes: [1003, 1007] },
      { what: 'truncated sync', frame: Buffer.from([0, 1, 10, 1, 2]), codes: [1007] },
      { what: 'truncated header', frame: Buffer.from([0x80]), codes: [1007] },
      { what: 'unknown type', frame: Buffer.from([9, 0]), codes: [1003] },
      { what: 'unknown sync type', frame: Buffer.from([0, 7, 0]), codes: [1007] },
      { what: 'empty frame', frame: Buffer.alloc(0), codes: [1007] },
      { what: 'text frame', frame: 'hello', codes: [1003] },
      { what: 'garbage update', frame: Buffer.from([0, 2, 6, 5, 200, 1, 9, 9, 9]), codes: [1007] },
      { what: 'garbage awareness', frame: Buffer.from([1, 4, 1, 7, 1, 200]), codes: [1007] }
    ]
    const results = []
    let round = 0
    for (const c of cases) {
      const ws = await rawSocket(url)
      ws.send(c.frame)
      const { code } = await ws.closed
      check(c.codes.includes(code), `${c.what}: close code ${code}, want ${c.codes}`)
      results.push({ what: c.what, code })
      // the good clients keep syncing
      round++
      a.doc.getArray('log').push([`a${round}`])
      b.doc.getArray('log').push([`b${round}`])
      await converged([a, b], `sync after ${c.what}`)
    }
    check(a.provider.wsconnected && b.provider.wsconnected, 'good clients still connected')
    check(a.doc.getArray('log').length === 2 * cases.length, 'all good edits arrived')
    return { results }
  },

  // Writes N array items one by one, printing {"acked": i} once the server echoed item i, then
  // {"ok": true, ...} when all are acked. Used by the restart tests.
  async writer () {
    const [name, count] = arg.split('|')
    const c = client(base, name)
    await c.synced()
    const items = c.doc.getArray('items')
    for (let i = 0; i < Number(count); i++) {
      items.push([i])
      await waitFor(() => c.allAcked(), `ack ${i}`, 60000)
      console.log(JSON.stringify({ acked: i }))
    }
    return { count: Number(count) }
  },

  // Prints the items array of a document.
  async reader () {
    const c = client(base, arg)
    await c.synced()
    await sleep(100)
    return { items: c.doc.getArray('items').toArray() }
  }
}

await runScenario(scenarios, scenario)
