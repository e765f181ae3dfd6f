// The HTTP document API against the reference yjs:  node e2e/docsapi.mjs <scenario> <http base> <ws base> [arg]
// Success: exit status 0 and a last stdout line of JSON with "ok": true.
import { Y, client, waitFor, check, runScenario } from './lib.mjs'
import { gen, getRoot, GEN_ROOTS, unb64 } from '../scripts/oracle.mjs'

const [scenario, httpBase, wsBase, arg] = process.argv.slice(2)
const docURL = (name, suffix = '') => `${httpBase}/api/docs/${encodeURIComponent(name)}${suffix}`

// What a JSON client of the API sees of a yjs document: JSON.stringify of every root's toJSON,
// keys sorted; empty roots left out (the server only knows roots that have content).
const view = (obj) => {
  const out = {}
  for (const [k, v] of Object.entries(obj)) {
    if (v === '' || (Array.isArray(v) && v.length === 0) || (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0)) continue
    out[k] = v
  }
  return canonical(JSON.parse(JSON.stringify(out, (k, x) => typeof x === 'bigint' ? Number(x) : x)))
}
const canonical = (v) => JSON.stringify(v, (k, x) => {
  if (x === null || typeof x !== 'object' || Array.isArray(x)) return x
  const o = {}
  for (const key of Object.keys(x).sort()) o[key] = x[key]
  return o
})
const typedJSON = (doc) => {
  for (const [name, kind] of Object.entries(GEN_ROOTS)) getRoot(doc, name, kind)
  return doc.toJSON()
}

async function req (method, url, body) {
  const res = await fetch(url, { method, body, headers: body ? { 'content-type': 'application/octet-stream' } : {} })
  const buf = new Uint8Array(await res.arrayBuffer())
  return { status: res.status, buf, text: () => new TextDecoder().decode(buf) }
}

const scenarios = {
  // For fuzzed documents made by yjs: POST the update, GET JSON equals yjs's toJSON, GET /update
  // decodes in yjs to the same content; one document has a y-websocket client connected that
  // must receive the POSTed content. arg: "<prefix>|<seeds>".
  async fuzz () {
    const [prefix, seedsArg] = arg.split('|')
    const seeds = Number(seedsArg)
    const watched = `${prefix}-1`
    const c = client(wsBase, watched)
    await c.synced()
    const expected = {}
    for (let seed = 1; seed <= seeds; seed++) {
      const { out } = gen({ seed, docs: 3, steps: 20 + seed % 41 })
      const update = unb64(out.merged.v1)
      const ref = new Y.Doc()
      Y.applyUpdate(ref, update)
      const want = view(typedJSON(ref))
      const name = `${prefix}-${seed}`
      const post = await req('POST', docURL(name, '/update'), update)
      check(post.status === 200 && JSON.parse(post.text()).seq >= 1, `seed ${seed}: POST ${post.status} ${post.text()}`)
      const got = await req('GET', docURL(name))
      check(got.status === 200, `seed ${seed}: GET ${got.status}`)
      const gotView = canonical(JSON.parse(got.text()))
      check(gotView === want, `seed ${seed}: GET JSON\n got  ${gotView}\n want ${want}`)
      for (const v of ['', '?v=2']) {
        const bin = await req('GET', docURL(name, '/update' + v))
        check(bin.status === 200, `seed ${seed}: GET update${v} ${bin.status}`)
        const back = new Y.Doc()
        if (v) Y.applyUpdateV2(back, bin.buf); else Y.applyUpdate(back, bin.buf)
        const backView = view(typedJSON(back))
        check(backView === want, `seed ${seed}: GET update${v} decodes to\n ${backView}\n want ${want}`)
      }
      expected[name] = want
    }
    await waitFor(() => view(typedJSON(c.doc)) === expected[watched], 'the connected client to receive the POSTed content')
    c.destroy()
    return { expected }
  },

  // Two y-websocket editors: edit, version, edit more, restore while both keep typing; everyone
  // converges on the version's content plus the concurrent edits, and restoring the "before
  // restore" version brings the later edits back. arg: document name.
  async restore () {
    const name = arg
    const a = client(wsBase, name, { user: 'ann' })
    const b = client(wsBase, name, { user: 'bob' })
    await a.synced(); await b.synced()
    a.doc.getText('t').insert(0, 'version one')
    a.doc.getMap('m').set('state', 'v1')
    await waitFor(() => a.allAcked() && b.doc.getText('t').toString() === 'version one', 'first edits')
    const vres = await fetch(docURL(name, '/versions?user=ann'), { method: 'POST', body: JSON.stringify({ label: 'draft' }) })
    check(vres.status === 201, `create version: ${vres.status}`)
    const version = await vres.json()
    b.doc.getText('t').insert(0, 'later: ')
    b.doc.getMap('m').set('state', 'v2')
    await waitFor(() => b.allAcked() && a.doc.getText('t').toString() === 'later: version one', 'later edits')
    const restored = (d) => d.getText('t').toString().startsWith('version one') && d.getMap('m').get('state') === 'v1'
    const after = new Set() // entries typed by an editor that had seen the restore
    let typing = true
    const typer = (c, tag) => (async () => {
      let seen = 0
      for (let i = 0; typing || seen < 5; i++) {
        const entry = `${tag}${i}`
        const was = restored(c.doc)
        c.doc.getArray('log').push([entry])
        if (was) { after.add(entry); seen++ }
        await new Promise((resolve) => setTimeout(resolve, 3))
        if (i > 5000) throw new Error('restore never reached ' + tag)
      }
    })()
    const typers = [typer(a, 'a'), typer(b, 'b')]
    const rres = await fetch(docURL(name, `/versions/${version.id}/restore`), { method: 'POST' })
    typing = false
    check(rres.status === 200, `restore: ${rres.status}`)
    const r = await rres.json()
    await Promise.all(typers)
    const both = () => JSON.stringify([a.doc.getText('t').toString(), a.doc.getMap('m').toJSON(), a.doc.getArray('log').toArray()]) ===
      JSON.stringify([b.doc.getText('t').toString(), b.doc.getMap('m').toJSON(), b.doc.getArray('log').toArray()])
    await waitFor(() => both() && a.allAcked() && b.allAcked(), 'editors converge after the restore')
    check(a.doc.getText('t').toString() === 'version one' && a.doc.getMap('m').get('state') === 'v1', `after restore: ${a.doc.getText('t').toString()}`)
    const log = new Set(a.doc.getArray('log').toArray())
    for (const e of after) check(log.has(e), `entry ${e} typed after the restore was lost`)
    const srv = JSON.parse((await req('GET', docURL(name))).text())
    check(srv.t === 'version one' && srv.m.state === 'v1' && srv.log.length === log.size, `server after restore: ${JSON.stringify(srv)}`)
    // Undo.
    const ures = await fetch(docURL(name, `/versions/${r.before_restore.id}/restore`), { method: 'POST' })
    check(ures.status === 200, `undo: ${ures.status}`)
    await waitFor(() => both() && a.doc.getText('t').toString() === 'later: version one' && b.doc.getMap('m').get('state') === 'v2', 'undo reaches both editors')
    a.destroy(); b.destroy()
    return { after: after.size, log: log.size }
  },

  // A y-websocket client opens each document and must see the given content. arg: JSON
  // {name: view}.
  async read () {
    const want = JSON.parse(arg)
    for (const [name, v] of Object.entries(want)) {
      const c = client(wsBase, name)
      await c.synced()
      await waitFor(() => view(typedJSON(c.doc)) === v, `${name} after restart`)
      const got = await req('GET', docURL(name))
      check(canonical(JSON.parse(got.text())) === v, `${name}: GET after restart ${got.text()}`)
      c.destroy()
    }
    return {}
  }
}

await runScenario(scenarios, scenario)
