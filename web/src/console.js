// The ysync console at /: documents (live list), one document (sessions with kick, content,
// versions), workflows and a health panel. It works with the admin API the server has: the
// document API (/api/docs) where present, /api/rooms otherwise; panels whose endpoints the
// server lacks say so instead of failing.
import { el } from './common.js'

const TOKEN_KEY = 'ysync-admin-token' // sessionStorage: this browser tab only
const $ = (sel) => document.querySelector(sel)
const main = $('#main')
const banner = $('#banner')

// --- HTTP ----------------------------------------------------------------------------------

class HTTPError extends Error {
  constructor (status, message, missing) { super(message); this.status = status; this.missing = missing }
}

let serverDown = false

/**
 * api fetches path with the tab's admin token. It throws HTTPError; missing is true when the
 * server has no such route (a plain-text 404 from the router, not a JSON "not found").
 */
async function api (path, opts = {}) {
  const headers = { Accept: 'application/json', ...(opts.headers || {}) }
  const token = sessionStorage.getItem(TOKEN_KEY)
  if (token) headers.Authorization = 'Bearer ' + token
  let res
  try {
    res = await fetch(path, { ...opts, headers, cache: 'no-store' })
  } catch (e) {
    setDown(true)
    throw new HTTPError(0, 'the server is unreachable', false)
  }
  setDown(false)
  const json = (res.headers.get('Content-Type') || '').includes('json')
  if (res.status === 401 || res.status === 403) {
    askToken(res.status === 401 ? 'This server needs an admin token.' : 'This token is not an admin token.')
    throw new HTTPError(res.status, res.status === 401 ? 'unauthorized' : 'forbidden', false)
  }
  if (!res.ok) {
    let msg = res.statusText
    if (json) { try { const b = await res.json(); msg = (b.error && (b.error.message || b.error.type || b.error)) || msg } catch {} }
    throw new HTTPError(res.status, typeof msg === 'string' ? msg : JSON.stringify(msg), res.status === 404 && !json)
  }
  if (res.status === 204) return null
  return json ? res.json() : res.text()
}

function setDown (down) {
  if (down === serverDown) return
  serverDown = down
  document.body.dataset.server = down ? 'down' : 'up'
  banner.hidden = !down && banner.dataset.kind === 'down'
  if (down) {
    banner.dataset.kind = 'down'
    banner.className = 'banner'
    banner.textContent = 'The server is unreachable. This page keeps retrying and refreshes by itself when it is back.'
    banner.hidden = false
  } else if (banner.dataset.kind === 'down') {
    banner.dataset.kind = 'back'
    banner.className = 'banner info'
    banner.textContent = 'The server is back.'
    setTimeout(() => { if (banner.dataset.kind === 'back') banner.hidden = true }, 4000)
    route()
  }
}

// --- token ---------------------------------------------------------------------------------

const tokenForm = $('#token-form')
function askToken (why) {
  $('#token-why').textContent = why
  tokenForm.hidden = false
  $('#token-input').focus()
}
tokenForm.addEventListener('submit', (ev) => {
  ev.preventDefault()
  const t = $('#token-input').value.trim()
  if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY)
  $('#token-input').value = ''
  tokenForm.hidden = true
  renderTokenState()
  route()
})
$('#forget-token').addEventListener('click', () => { sessionStorage.removeItem(TOKEN_KEY); renderTokenState(); route() })
function renderTokenState () { $('#forget-token').hidden = !sessionStorage.getItem(TOKEN_KEY) }
renderTokenState()

// --- formatting ----------------------------------------------------------------------------

const bytes = (n) => n === undefined || n === null ? '—' : n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`
const when = (t) => { if (!t) return '—'; const d = new Date(t); return isNaN(d) ? String(t) : d.toLocaleString() }
const ago = (t) => { if (!t) return ''; const s = Math.max(0, Math.round((Date.now() - new Date(t)) / 1000)); return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.floor(s / 60)}m ago` : `${Math.floor(s / 3600)}h ago` }
const docHref = (name) => '#/doc/' + encodeURIComponent(name)
const wfID = (name) => { const m = /^workflow:([0-9a-f-]{36})$/.exec(name); return m ? m[1] : null }
const demoHref = (name) => wfID(name) ? `/demo/workflow/${wfID(name)}` : `/demo/text?doc=${encodeURIComponent(name)}`
const unavailable = (what) => el('p', { class: 'muted', 'data-unavailable': what }, `${what}: not available on this server.`)
const failure = (e) => el('p', { class: 'errors' }, e.status === 0 ? 'The server is unreachable.' : `Error: ${e.message}`)

// --- documents -----------------------------------------------------------------------------

/** listDocs returns [{name, bytes, sessions, last_change, loaded}] from /api/docs or /api/rooms. */
async function listDocs () {
  try {
    const r = await api('/api/docs?limit=200')
    const items = Array.isArray(r) ? r : (r.docs || r.items || r.documents || [])
    return { source: '/api/docs', more: !!(r && r.next_cursor), docs: items.map((d) => ({ name: d.name, bytes: d.size ?? d.bytes, sessions: typeof d.sessions === 'number' ? d.sessions : (d.sessions || []).length, last_change: d.last_change ?? d.updated_at, loaded: d.loaded })) }
  } catch (e) {
    if (!e.missing) throw e
  }
  const rooms = await api('/api/rooms')
  return { source: '/api/rooms', docs: rooms.map((r) => ({ name: r.name, bytes: r.bytes, sessions: (r.sessions || []).length, loaded: true })) }
}

async function docsPage (gen) {
  const body = el('tbody', {})
  const note = el('p', { class: 'muted' })
  const filter = el('input', { placeholder: 'filter by name', 'aria-label': 'Filter documents' })
  const wfBody = el('tbody', {})
  const health = el('div', { class: 'kv', id: 'health' })
  main.replaceChildren(
    el('div', { class: 'grid2' },
      el('section', { class: 'card' }, el('h2', {}, 'Health'), health),
      el('section', { class: 'card' }, el('h2', {}, 'Open a document'),
        el('form', { class: 'row', onsubmit: (ev) => { ev.preventDefault(); const v = ev.target.elements.doc.value.trim(); if (v) location.hash = docHref(v) } },
          el('input', { name: 'doc', placeholder: 'document name' }), el('button', {}, 'Open')),
        el('p', { class: 'hint' }, 'Or try the ', el('a', { href: '/demo/text?doc=demo' }, 'text demo'), '.'))),
    el('section', { class: 'card' }, el('div', { class: 'row' }, el('h2', {}, 'Documents'), filter, note),
      el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'name'), el('th', {}, 'sessions'), el('th', {}, 'size'), el('th', {}, 'last change'), el('th', {}, 'loaded'), el('th', {}, ''))), body)),
    el('section', { class: 'card' }, el('h2', {}, 'Workflows'),
      el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'workflow'), el('th', {}, 'name'), el('th', {}, 'lock_version'), el('th', {}, 'last save'), el('th', {}, 'snapshots'), el('th', {}, ''))), wfBody)))
  filter.addEventListener('input', () => refresh())
  let last = []
  const refresh = async () => {
    try {
      const { source, docs, more } = await listDocs()
      last = docs
      note.textContent = `${docs.length}${more ? '+' : ''} document${docs.length === 1 ? '' : 's'} (${source === '/api/rooms' ? 'loaded documents only' : more ? 'the first ' + docs.length + ' stored documents' : 'all stored documents'}), refreshed ${new Date().toLocaleTimeString()}`
    } catch (e) {
      note.textContent = e.status === 0 ? 'server unreachable' : `error: ${e.message}`
    }
    const f = filter.value.trim()
    const rows = last.filter((d) => !f || d.name.includes(f)).map((d) => el('tr', { 'data-testid': 'doc-row', 'data-doc': d.name },
      el('td', {}, el('a', { href: docHref(d.name) }, d.name)), el('td', {}, d.sessions ?? '—'), el('td', {}, bytes(d.bytes)),
      el('td', {}, d.last_change ? `${when(d.last_change)} (${ago(d.last_change)})` : '—'), el('td', {}, d.loaded === undefined ? '—' : d.loaded ? 'yes' : 'no'),
      el('td', {}, el('a', { href: demoHref(d.name), target: '_blank' }, 'open in editor'))))
    body.replaceChildren(...(rows.length ? rows : [el('tr', {}, el('td', { colspan: 6, class: 'muted' }, 'No documents.'))]))
    await renderWorkflows(wfBody, last.map((d) => d.name).filter(wfID))
    await renderHealth(health)
  }
  await refresh()
  return setInterval(() => { if (gen === generation) refresh() }, 2000)
}

const wfCache = new Map() // id → {workflow, snapshots}
const wfSeen = new Set()
let wfEvents = null

let wfEventsToken = null
function watchWorkflowEvents () {
  const token = sessionStorage.getItem(TOKEN_KEY)
  if (wfEvents && wfEventsToken === token) return
  if (wfEvents) wfEvents.close()
  wfEventsToken = token
  wfEvents = new EventSource('/api/events?topic=workflows' + (token ? '&token=' + encodeURIComponent(token) : ''))
  const on = (ev) => { try { const d = JSON.parse(ev.data); if (d.id) { wfSeen.add(d.id); wfCache.delete(d.id); const c = { ...(wfLast.get(d.id) || {}), [ev.type]: new Date().toISOString() }; wfLast.set(d.id, c) } } catch {} }
  for (const t of ['saved', 'reset', 'updated', 'deleted']) wfEvents.addEventListener(t, on)
}
const wfLast = new Map()

async function renderWorkflows (tbody, fromDocs) {
  watchWorkflowEvents()
  for (const n of fromDocs) wfSeen.add(wfID(n))
  const rows = []
  for (const id of wfSeen) {
    let c = wfCache.get(id)
    if (!c) {
      c = {}
      try { c.workflow = await api(`/api/workflows/${id}`); c.workflow = c.workflow.result || c.workflow } catch (e) { c.error = e }
      try { const s = await api(`/api/workflows/${id}/snapshots`); c.snapshots = (s && (s.result || s)) } catch (e) { c.snapshots = e.missing ? 'n/a' : null }
      wfCache.set(id, c)
    }
    const w = c.workflow || {}
    const ev = wfLast.get(id) || {}
    const snaps = c.snapshots === 'n/a' ? el('span', { class: 'muted', title: 'not available on this server' }, 'n/a') : Array.isArray(c.snapshots) ? c.snapshots.length : '—'
    rows.push(el('tr', { 'data-workflow': id },
      el('td', {}, el('a', { href: docHref('workflow:' + id) }, id.slice(0, 8) + '…')),
      el('td', {}, c.error ? el('span', { class: 'errors' }, c.error.message) : w.name || ''),
      el('td', { 'data-field': 'lock_version' }, w.lock_version ?? '—'),
      el('td', {}, ev.saved ? `${when(ev.saved)} (live)` : when(w.updated_at)),
      el('td', {}, snaps),
      el('td', {}, el('a', { href: `/demo/workflow/${id}`, target: '_blank' }, 'edit'))))
  }
  tbody.replaceChildren(...(rows.length ? rows : [el('tr', {}, el('td', { colspan: 6, class: 'muted' }, 'No workflow documents open. Workflows appear here when opened or saved.'))]))
}

// --- health --------------------------------------------------------------------------------

const mainMetrics = [
  ['ysync_connections', 'connections'], ['ysync_documents_loaded', 'documents loaded'],
  ['ysync_messages_received_total', 'messages in'], ['ysync_messages_sent_total', 'messages out'],
  ['ysync_store_appends_total', 'updates stored'], ['ysync_store_errors_total', 'store errors'],
  ['ysync_slow_consumer_closes_total', 'slow-consumer closes']
]

async function renderHealth (box) {
  const rows = []
  const pill = (ok, text) => el('span', { class: 'pill ' + (ok ? 'ok' : 'bad') }, text)
  let ready = null
  let readyNote = ''
  try {
    const body = String(await api('/readyz', { headers: { Accept: 'text/plain' } }))
    ready = true
    readyNote = body.split('\n').slice(1).join(' ').trim() // e.g. a cluster warning after "ready"
  } catch (e) { ready = e.status === 0 ? null : false }
  rows.push(el('span', {}, 'server'), ready === null ? pill(false, 'unreachable') : pill(true, 'up'))
  rows.push(el('span', {}, 'storage'), ready === null ? el('span', { class: 'muted' }, '—') : ready ? pill(true, 'ready') : pill(false, 'unavailable (edits kept in memory, retried)'))
  let vals = new Map()
  try { vals = parseMetrics(String(await api('/metrics', { headers: { Accept: 'text/plain' } }))) } catch {}
  // Nodes: from cluster information where the server has it (/api/cluster), else from the
  // sessions' node field (cluster mode lists sessions of every node).
  let cluster = null
  try { cluster = await api('/api/cluster') } catch (e) { cluster = e.missing ? 'n/a' : null }
  // Every build exports the ysync_cluster_* counters; several nodes show up as the sessions'
  // node field instead (cluster mode lists the sessions of every node).
  let nodes = []
  if (!(cluster && cluster !== 'n/a')) {
    try { nodes = [...new Set((await api('/api/sessions')).map((x) => x.node).filter(Boolean))] } catch {}
  }
  const clustered = nodes.length > 1
  if (cluster && cluster !== 'n/a') {
    const list = cluster.nodes || []
    rows.push(el('span', {}, 'nodes'), el('span', { 'data-health': 'nodes' }, list.length ? list.map((n) => typeof n === 'string' ? n : n.id || n.name || JSON.stringify(n)).join(', ') : '—'))
  } else if (clustered) {
    rows.push(el('span', {}, 'nodes'), el('span', { 'data-health': 'nodes' }, `${nodes.join(', ')} (nodes with sessions)`))
  } else {
    rows.push(el('span', {}, 'nodes'), el('span', { class: 'muted', 'data-health': 'nodes' }, 'single node' + (nodes.length ? ` (${nodes[0]})` : '')))
  }
  const redis = cluster && cluster !== 'n/a' && cluster.redis !== undefined ? cluster.redis : undefined
  if (redis !== undefined) rows.push(el('span', {}, 'redis'), pill(redis === 'ok' || redis === true || !!(redis && redis.ok), typeof redis === 'string' ? redis : JSON.stringify(redis)))
  else if (clustered) rows.push(el('span', {}, 'redis'), readyNote ? pill(false, readyNote) : pill(true, 'ok'))
  if (readyNote && !clustered) rows.push(el('span', {}, 'note'), el('span', {}, readyNote))
  for (const [m, label] of mainMetrics) if (vals.has(m)) rows.push(el('span', {}, label), el('span', { 'data-metric': m }, vals.get(m)))
  box.replaceChildren(...rows)
}

function parseMetrics (text) {
  const out = new Map()
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line)
    if (m && !m[2]) out.set(m[1], m[3])
  }
  return out
}

// --- one document --------------------------------------------------------------------------

async function docPage (gen, name) {
  const sessions = el('tbody', {})
  const content = el('div', {})
  const versions = el('div', {})
  const sessNote = el('p', { class: 'muted' })
  main.replaceChildren(
    el('p', {}, el('a', { href: '#/' }, '← all documents')),
    el('section', { class: 'card' }, el('div', { class: 'row' }, el('h2', {}, name), el('a', { href: demoHref(name), target: '_blank', 'data-action': 'open-demo' }, 'open in the demo editor'))),
    el('section', { class: 'card' }, el('h2', {}, 'Sessions'), sessNote,
      el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'user'), el('th', {}, 'protocol'), el('th', {}, 'node'), el('th', {}, 'remote'), el('th', {}, 'connected since'), el('th', {}, ''))), sessions)),
    el('div', { class: 'grid2' },
      el('section', { class: 'card' }, el('h2', {}, 'Content'), content),
      el('section', { class: 'card' }, el('h2', {}, 'Versions'), versions)))
  const refreshSessions = async () => {
    let list = []
    try {
      const r = await api('/api/rooms/' + encodeURIComponent(name).replace(/%2F/g, '/'))
      list = r.sessions || []
      sessNote.textContent = `${list.length} session${list.length === 1 ? '' : 's'}; ${bytes(r.bytes)} in memory`
    } catch (e) {
      sessNote.textContent = e.status === 404 ? 'Not loaded: nobody is connected.' : e.status === 0 ? 'Server unreachable.' : `Error: ${e.message}`
    }
    sessions.replaceChildren(...list.map((s) => el('tr', { 'data-session': s.id },
      el('td', {}, s.user || '—'), el('td', {}, s.protocol || 'y-websocket'), el('td', {}, s.node || '—'), el('td', {}, s.remote || '—'),
      el('td', {}, `${when(s.connected_at)} (${ago(s.connected_at)})`),
      el('td', {}, el('button', { class: 'danger', 'data-testid': 'kick', 'data-session': s.id, onclick: (ev) => kick(ev.target, s.id) }, 'Kick')))))
  }
  const kick = async (btn, id) => {
    btn.disabled = true
    try { await api('/api/sessions/' + encodeURIComponent(id), { method: 'DELETE' }) } catch (e) { if (e.status !== 404) alert(`Kick failed: ${e.message}`) }
    refreshSessions()
  }
  const refreshContent = async () => {
    try {
      const d = await api('/api/docs/' + encodeURIComponent(name).replace(/%2F/g, '/'))
      content.replaceChildren(el('pre', { 'data-content': '' }, JSON.stringify(d, null, 2)))
    } catch (e) {
      content.replaceChildren(e.missing ? unavailable('Content as JSON') : failure(e))
    }
  }
  const versionsPath = '/api/docs/' + encodeURIComponent(name).replace(/%2F/g, '/') + '/versions'
  const refreshVersions = async () => {
    let list
    try {
      const r = await api(versionsPath)
      list = Array.isArray(r) ? r : (r.versions || r.items || [])
    } catch (e) {
      versions.replaceChildren(e.missing ? unavailable('Versions') : failure(e))
      return
    }
    const label = el('input', { placeholder: 'label (optional)', 'aria-label': 'Version label', id: 'version-label' })
    const view = el('div', {})
    versions.replaceChildren(
      el('form', { class: 'row', id: 'version-form', onsubmit: async (ev) => { ev.preventDefault(); try { await api(versionsPath, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ label: label.value }) }) } catch (e) { alert(`Could not create a version: ${e.message}`) } refreshVersions() } },
        label, el('button', { class: 'primary' }, 'Create version')),
      el('table', {}, el('tbody', {}, list.map((v) => el('tr', { 'data-version': v.id },
        el('td', {}, v.label || (v.auto ? 'automatic' : `#${v.id}`)), el('td', {}, when(v.created_at), v.created_by ? ` by ${v.created_by}` : ''), el('td', {}, v.seq !== undefined ? `seq ${v.seq}` : ''),
        el('td', {}, el('button', { onclick: async () => { try { const d = await api(`${versionsPath}/${encodeURIComponent(v.id)}`); view.replaceChildren(el('pre', { 'data-version-content': v.id }, JSON.stringify(d, null, 2))) } catch (e) { view.replaceChildren(failure(e)) } } }, 'View'),
          ' ', el('button', { class: 'danger', onclick: async () => { if (!confirm('Restore this version? Live editors will see the change.')) return; try { await api(`${versionsPath}/${encodeURIComponent(v.id)}/restore`, { method: 'POST' }) } catch (e) { alert(`Restore failed: ${e.message}`) } refreshContent(); refreshVersions() } }, 'Restore')))))),
      view)
  }
  await Promise.all([refreshSessions(), refreshContent(), refreshVersions()])
  return setInterval(() => { if (gen === generation) { refreshSessions(); refreshContent() } }, 2000)
}

// --- routing -------------------------------------------------------------------------------

let generation = 0
let timer = null
async function route () {
  const gen = ++generation
  clearInterval(timer)
  const h = location.hash.replace(/^#\/?/, '')
  let t
  if (h.startsWith('doc/')) t = await docPage(gen, decodeURIComponent(h.slice(4)))
  else t = await docsPage(gen)
  if (gen === generation) timer = t; else clearInterval(t)
}
window.addEventListener('hashchange', route)
// while the server is away, keep probing so that the page notices it is back
setInterval(() => { if (serverDown) fetch('/healthz', { cache: 'no-store' }).then(() => setDown(false), () => {}) }, 1000)
route()
