// Workflow editor: /demo/workflow/{id}. Edits the document workflow:<id> (layout in README
// "Workflows") with the stock y-websocket provider, and saves / resets it with the type-5 JSON
// RPC. Job bodies are CodeMirror editors bound to each job's Y.Text.
import * as Y from 'yjs'
import { EditorState } from '@codemirror/state'
import { EditorView, keymap } from '@codemirror/view'
import { defaultKeymap } from '@codemirror/commands'
import { yCollab } from 'y-codemirror.next'
import { el, identity, connect, trackConnection, presence, rpc } from './common.js'

const id = decodeURIComponent(location.pathname.split('/').filter(Boolean).pop() || '')
const docName = `workflow:${id}`
document.title = `Workflow ${id} — ysync`

const me = identity()
const ydoc = new Y.Doc()
const wf = ydoc.getMap('workflow')
const jobs = ydoc.getArray('jobs')
const triggers = ydoc.getArray('triggers')
const edges = ydoc.getArray('edges')
const positions = ydoc.getMap('positions')
const errorsMap = ydoc.getMap('errors')

const provider = connect(docName, ydoc, { user: me.name, events: true })
provider.awareness.setLocalStateField('user', me)
const $ = (sel) => document.querySelector(sel)
const notice = $('#notice')
const say = (text, kind = '') => { notice.textContent = text; notice.className = 'notice ' + kind }

trackConnection(provider, ydoc, $('[data-testid="status"]'))
presence(provider.awareness, $('#presence'))
const call = rpc(provider, (msg) => {
  if (msg.event === 'workflow_saved') {
    const v = msg.payload && msg.payload.lock_version
    replyErrors = {}
    renderErrors()
    say(`Someone else saved this workflow${v !== undefined ? ` (version ${v})` : ''}.`, 'info')
  }
})

const newId = () => crypto.randomUUID()
const str = (v) => (v === undefined || v === null ? '' : String(v))

// --- fields bound to Y.Map keys --------------------------------------------------------------

/** bindInput keeps input and map[key] in step both ways. */
function bindInput (input, map, key, { nullIfEmpty = false } = {}) {
  const pull = () => {
    const v = str(map.get(key))
    if (input.value === v) return
    if (document.activeElement === input) {
      const { selectionStart: a, selectionEnd: b } = input
      input.value = v
      input.setSelectionRange(Math.min(a, v.length), Math.min(b, v.length))
    } else input.value = v
  }
  input.addEventListener('input', () => map.set(key, nullIfEmpty && input.value === '' ? null : input.value))
  map.observe((ev) => { if (ev.keysChanged.has(key)) pull() })
  pull()
}

function bindCheckbox (input, map, key) {
  const pull = () => { input.checked = map.get(key) === true }
  input.addEventListener('change', () => map.set(key, input.checked))
  map.observe((ev) => { if (ev.keysChanged.has(key)) pull() })
  pull()
}

const errorSlot = (key) => el('div', { class: 'field-error', 'data-error-key': key })
const field = (label, input, key) => el('div', { class: 'field' }, el('label', {}, label), input, errorSlot(key))

// --- workflow header ---------------------------------------------------------------------------

const nameInput = $('[data-testid="workflow-name"]')
bindInput(nameInput, wf, 'name')
$('#name-field').append(errorSlot('name'))
const lockEl = $('[data-testid="lock-version"]')
const deletedEl = $('#deleted')
const renderHeader = () => {
  lockEl.textContent = wf.has('lock_version') ? String(wf.get('lock_version')) : '—'
  const del = wf.get('deleted_at')
  deletedEl.hidden = !del
  deletedEl.textContent = del ? `This workflow was deleted at ${del}. It can no longer be saved.` : ''
}
wf.observe(renderHeader)
renderHeader()

// --- jobs --------------------------------------------------------------------------------------

const jobCards = new Map() // Y.Map → { card, view }

function jobCard (m) {
  const jid = str(m.get('id'))
  const name = el('input', { 'data-field': 'name', 'aria-label': 'Job name' })
  const adaptor = el('input', { 'data-field': 'adaptor', 'aria-label': 'Adaptor', size: 36 })
  bindInput(name, m, 'name')
  bindInput(adaptor, m, 'adaptor')
  let body = m.get('body')
  if (!(body instanceof Y.Text)) {
    body = new Y.Text(str(body))
    m.set('body', body)
  }
  const host = el('div', { class: 'editor job-body' })
  const view = new EditorView({
    parent: host,
    state: EditorState.create({
      doc: body.toString(),
      extensions: [
        keymap.of(defaultKeymap),
        EditorView.lineWrapping,
        EditorView.contentAttributes.of({ 'data-testid': 'job-body', 'data-job-id': jid, 'aria-label': 'Job body' }),
        yCollab(body, provider.awareness)
      ]
    })
  })
  const card = el('div', { class: 'card job', 'data-job': jid },
    el('div', { class: 'row' }, field('Name', name, `jobs/${jid}/name`), field('Adaptor', adaptor, `jobs/${jid}/adaptor`),
      el('button', { class: 'danger', 'data-action': 'remove-job', onclick: () => removeJob(jid) }, 'Remove job')),
    el('div', { class: 'field' }, el('label', {}, 'Body'), host, errorSlot(`jobs/${jid}/body`)),
    errorSlot(`jobs/${jid}/base`))
  return { card, view }
}

function removeJob (jid) {
  ydoc.transact(() => {
    for (let i = edges.length - 1; i >= 0; i--) {
      const e = edges.get(i)
      if (e.get('source_job_id') === jid || e.get('target_job_id') === jid) edges.delete(i, 1)
    }
    for (const t of triggers) if (t.get('cron_cursor_job_id') === jid) t.set('cron_cursor_job_id', null)
    for (let i = jobs.length - 1; i >= 0; i--) if (jobs.get(i).get('id') === jid) jobs.delete(i, 1)
    positions.delete(jid)
  })
}

function addJob () {
  const m = new Y.Map()
  m.set('id', newId())
  m.set('name', `job ${jobs.length + 1}`)
  m.set('adaptor', '@openfn/language-common@latest')
  m.set('project_credential_id', null)
  m.set('keychain_credential_id', null)
  m.set('body', new Y.Text('fn(state => state)\n'))
  jobs.push([m])
}

function renderJobs () {
  const seen = new Set()
  const cards = []
  for (const m of jobs) {
    if (!(m instanceof Y.Map)) continue
    seen.add(m)
    let c = jobCards.get(m)
    if (!c) { c = jobCard(m); jobCards.set(m, c) }
    cards.push(c.card)
  }
  for (const [m, c] of jobCards) if (!seen.has(m)) { c.view.destroy(); jobCards.delete(m) }
  $('#jobs').replaceChildren(...cards)
  if (!cards.length) $('#jobs').append(el('p', { class: 'muted' }, 'No jobs yet.'))
}

// --- triggers ----------------------------------------------------------------------------------

const triggerRows = new Map()

function triggerRow (m) {
  const tid = str(m.get('id'))
  const type = el('select', { 'aria-label': 'Trigger type' }, el('option', { value: 'webhook' }, 'webhook'), el('option', { value: 'cron' }, 'cron'))
  const pullType = () => { type.value = str(m.get('type')) || 'webhook'; cron.hidden = type.value !== 'cron' }
  const cron = el('input', { placeholder: 'cron expression, e.g. 0 * * * *', 'aria-label': 'Cron expression' })
  bindInput(cron, m, 'cron_expression', { nullIfEmpty: true })
  type.addEventListener('change', () => ydoc.transact(() => {
    m.set('type', type.value)
    if (type.value === 'cron') m.set('webhook_reply', null)
    else { m.set('cron_expression', null); if (!m.get('webhook_reply')) m.set('webhook_reply', 'before_start') }
  }))
  m.observe(pullType)
  const enabled = el('input', { type: 'checkbox', 'aria-label': 'Enabled' })
  bindCheckbox(enabled, m, 'enabled')
  const row = el('div', { class: 'card trigger', 'data-trigger': tid },
    el('div', { class: 'row' }, type, cron, el('label', {}, enabled, ' enabled'),
      el('button', { class: 'danger', onclick: () => removeTrigger(tid) }, 'Remove trigger')),
    errorSlot(`triggers/${tid}/type`), errorSlot(`triggers/${tid}/cron_expression`), errorSlot(`triggers/${tid}/base`))
  pullType()
  return row
}

function removeTrigger (tid) {
  ydoc.transact(() => {
    for (let i = edges.length - 1; i >= 0; i--) if (edges.get(i).get('source_trigger_id') === tid) edges.delete(i, 1)
    for (let i = triggers.length - 1; i >= 0; i--) if (triggers.get(i).get('id') === tid) triggers.delete(i, 1)
    positions.delete(tid)
  })
}

function addTrigger () {
  const m = new Y.Map()
  m.set('id', newId())
  m.set('type', 'webhook')
  m.set('enabled', true)
  m.set('cron_expression', null)
  m.set('cron_cursor_job_id', null)
  m.set('webhook_reply', 'before_start')
  triggers.push([m])
}

function renderTriggers () {
  const seen = new Set()
  const rows = []
  for (const m of triggers) {
    if (!(m instanceof Y.Map)) continue
    seen.add(m)
    let r = triggerRows.get(m)
    if (!r) { r = triggerRow(m); triggerRows.set(m, r) }
    rows.push(r)
  }
  for (const m of triggerRows.keys()) if (!seen.has(m)) triggerRows.delete(m)
  $('#triggers').replaceChildren(...rows)
  if (!rows.length) $('#triggers').append(el('p', { class: 'muted' }, 'No triggers yet.'))
}

// --- edges -------------------------------------------------------------------------------------

const conditions = ['always', 'on_job_success', 'on_job_failure', 'js_expression']

function nodeLabel (nid) {
  for (const j of jobs) if (j.get('id') === nid) return `job “${str(j.get('name')) || nid.slice(0, 8)}”`
  for (const t of triggers) if (t.get('id') === nid) return `${str(t.get('type'))} trigger`
  return nid ? `missing ${nid.slice(0, 8)}` : '—'
}

function renderEdges () {
  const rows = []
  for (const e of edges) {
    if (!(e instanceof Y.Map)) continue
    const eid = str(e.get('id'))
    const src = e.get('source_trigger_id') || e.get('source_job_id')
    rows.push(el('tr', { 'data-edge': eid },
      el('td', {}, nodeLabel(src)), el('td', {}, '→'), el('td', {}, nodeLabel(e.get('target_job_id'))),
      el('td', {}, str(e.get('condition_type'))),
      el('td', {}, errorSlot(`edges/${eid}/base`), errorSlot(`edges/${eid}/target_job_id`), errorSlot(`edges/${eid}/condition_type`)),
      el('td', {}, el('button', { class: 'danger', onclick: () => removeEdge(eid) }, 'Remove'))))
  }
  $('#edges').replaceChildren(...(rows.length ? rows : [el('tr', {}, el('td', { class: 'muted', colspan: 6 }, 'No edges yet.'))]))
  // the "connect" form lists the current nodes
  const src = $('#edge-source')
  const dst = $('#edge-target')
  const keep = [src.value, dst.value]
  const opts = (list, prefix) => list.filter((m) => m instanceof Y.Map).map((m) => el('option', { value: prefix + str(m.get('id')) }, nodeLabel(str(m.get('id')))))
  src.replaceChildren(...opts(triggers.toArray(), 't:'), ...opts(jobs.toArray(), 'j:'))
  dst.replaceChildren(...opts(jobs.toArray(), 'j:'))
  if ([...src.options].some((o) => o.value === keep[0])) src.value = keep[0]
  if ([...dst.options].some((o) => o.value === keep[1])) dst.value = keep[1]
  renderErrors()
}

function removeEdge (eid) {
  ydoc.transact(() => { for (let i = edges.length - 1; i >= 0; i--) if (edges.get(i).get('id') === eid) edges.delete(i, 1) })
}

function connectEdge () {
  const s = $('#edge-source').value
  const t = $('#edge-target').value
  if (!s || !t) { say('Pick a source and a target job first.', 'conflict'); return }
  const m = new Y.Map()
  m.set('id', newId())
  m.set('source_job_id', s.startsWith('j:') ? s.slice(2) : null)
  m.set('source_trigger_id', s.startsWith('t:') ? s.slice(2) : null)
  m.set('target_job_id', t.slice(2))
  m.set('condition_type', $('#edge-condition').value)
  m.set('condition_expression', null)
  m.set('condition_label', null)
  m.set('enabled', true)
  edges.push([m])
}
$('#edge-condition').replaceChildren(...conditions.map((c) => el('option', { value: c }, c)))

// --- errors: from the last reply and from the document's "errors" map -------------------------

let replyErrors = {}

/** flatten turns {"name": [..], "jobs": {"<id>": {"name": [..]}}} into [[key, message]]. */
function flatten (errs, prefix = '') {
  const out = []
  for (const [k, v] of Object.entries(errs || {})) {
    const key = prefix ? `${prefix}/${k}` : k
    if (Array.isArray(v)) for (const msg of v) out.push([key, String(msg)])
    else if (v && typeof v === 'object') out.push(...flatten(v, key))
    else if (v !== null && v !== undefined) out.push([key, String(v)])
  }
  return out
}

function describe (key) {
  const [kind, cid, f] = key.split('/')
  if (!cid) return kind === 'base' ? '' : kind.replace(/_/g, ' ')
  const label = kind === 'jobs' ? nodeLabel(cid) : kind === 'triggers' ? nodeLabel(cid) : `edge ${cid.slice(0, 8)}`
  return `${label}${f && f !== 'base' ? ' ' + f.replace(/_/g, ' ') : ''}`
}

function renderErrors () {
  const all = new Map()
  for (const [k, m] of [...flatten(errorsMap.toJSON()), ...flatten(replyErrors)]) {
    if (!all.has(k)) all.set(k, new Set())
    all.get(k).add(m)
  }
  for (const slot of document.querySelectorAll('[data-error-key]')) {
    const msgs = all.get(slot.dataset.errorKey)
    slot.textContent = msgs ? [...msgs].join('; ') : ''
    const input = slot.parentElement && slot.parentElement.querySelector('input, .cm-editor')
    if (input && slot.classList.contains('field-error')) input.classList.toggle('invalid', !!msgs)
  }
  const summary = $('[data-testid="errors"]')
  const items = [...all].map(([k, msgs]) => el('li', { 'data-error-key': k }, `${describe(k) ? describe(k) + ': ' : ''}${[...msgs].join('; ')}`))
  summary.replaceChildren(...(items.length ? [el('strong', {}, 'This workflow cannot be saved yet:'), el('ul', {}, items)] : []))
}
errorsMap.observeDeep(renderErrors)

// --- save / reset --------------------------------------------------------------------------

const saveBtn = $('[data-testid="save"]')
const resetBtn = $('[data-testid="reset"]')

function describeFailure (err, what) {
  const type = err && err.type
  switch (type) {
    case 'optimistic_lock_error':
      return ['Someone else saved this workflow since your copy was last reset, so saving now would overwrite their changes. Press Reset to load the saved version, then make your change again.', 'conflict']
    case 'workflow_deleted': return ['This workflow was deleted; it can no longer be saved.', 'conflict']
    case 'validation_error': return ['Not saved: fix the fields marked below.', 'conflict']
    case 'unauthorized': return [`Not ${what}: your token does not allow writing this workflow.`, 'conflict']
    case 'unavailable': return [`Not ${what}: the server has no database for workflows.`, 'conflict']
    default: {
      const base = flatten(err && err.errors).map(([, m]) => m).join('; ')
      return [`Not ${what}: ${type || 'error'}${base ? ' — ' + base : ''}.`, 'conflict']
    }
  }
}

saveBtn.addEventListener('click', async () => {
  saveBtn.disabled = true
  say('Saving…')
  const r = await call('save_workflow')
  saveBtn.disabled = false
  if (r.ok) {
    replyErrors = {}
    const v = r.result && r.result.lock_version
    say(`Saved — version ${v}${r.result && r.result.saved_at ? ' at ' + new Date(r.result.saved_at).toLocaleTimeString() : ''}.`, 'info')
  } else {
    replyErrors = (r.error && r.error.type === 'validation_error' && r.error.errors) || {}
    say(...describeFailure(r.error, 'saved'))
  }
  renderErrors()
})

resetBtn.addEventListener('click', async () => {
  resetBtn.disabled = true
  say('Resetting…')
  const r = await call('reset_workflow')
  resetBtn.disabled = false
  if (r.ok) {
    replyErrors = {}
    say(`Reset to the saved version ${r.result && r.result.lock_version}.`, 'info')
  } else say(...describeFailure(r.error, 'reset'))
  renderErrors()
})

$('#add-job').addEventListener('click', addJob)
$('#add-trigger').addEventListener('click', addTrigger)
$('#connect-edge').addEventListener('click', connectEdge)

const renderAll = () => { renderJobs(); renderTriggers(); renderEdges() }
jobs.observe(renderAll)
triggers.observe(renderAll)
edges.observe(renderEdges)
// names shown in edges and the connect form follow job renames and trigger type changes
jobs.observeDeep((evs) => { if (evs.some((e) => e.target !== jobs && e.target instanceof Y.Map)) renderEdges() })
triggers.observeDeep((evs) => { if (evs.some((e) => e.target !== triggers && e.target instanceof Y.Map)) renderEdges() })
renderAll()

window.ysync = { ydoc, provider, call }
