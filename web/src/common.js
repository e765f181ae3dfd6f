// Shared by the console and the demo pages: DOM helpers, the admin/page token, the y-websocket
// connection with a clear status line, the "saved" tracker and the type-5 JSON RPC.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'

export const params = new URLSearchParams(location.search)

/** el('div', {class: 'x', 'data-testid': 'y', onclick: f}, child, 'text') */
export function el (tag, attrs = {}, ...children) {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue
    if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v)
    else if (k === 'value') e.value = v
    else e.setAttribute(k, v === true ? '' : String(v))
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue
    e.append(c instanceof Node ? c : document.createTextNode(String(c)))
  }
  return e
}

export const wsBase = () => `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`

const palette = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#008080', '#9a6324', '#800000', '#000075', '#f032e6']

/** The person at this tab: ?name= or a stable guest name for the tab, and a colour. */
export function identity () {
  let name = params.get('name') || sessionStorage.getItem('ysync-name')
  if (!name) name = 'Guest ' + Math.floor(1000 + Math.random() * 9000)
  sessionStorage.setItem('ysync-name', name)
  let h = 0
  for (const ch of name) h = (h * 31 + ch.codePointAt(0)) >>> 0
  const color = palette[h % palette.length]
  return { name, color, colorLight: color + '33' }
}

/**
 * connect opens the stock WebsocketProvider on /ws/{doc}. ?token= of the page is passed on
 * (y-websocket sends params as the query string); user labels the session in the admin API.
 */
export function connect (doc, ydoc, { user, events = false } = {}) {
  const p = {}
  const token = params.get('token')
  if (token) p.token = token
  if (user) p.user = user
  if (events) p.events = '1'
  return new WebsocketProvider(wsBase(), doc, ydoc, { params: p, maxBackoffTime: 2500 })
}

const closeReasons = {
  4401: 'Your token expired. Reload the page with a fresh ?token=.',
  4403: 'The server refused access to this document.',
  4404: 'This document does not exist on the server.',
  4408: 'The connection timed out during the handshake. Reload to try again.',
  4409: 'An administrator ended your session. Reload the page to join again.',
  4429: 'Too many messages: the server closed the connection. Reload to join again.'
}

/**
 * trackConnection keeps a status element up to date and calls onChange(state) with one of
 * connecting | saving | saved | offline | closed. "saved" means connected, synced, and the
 * server has acknowledged every local change. The server echoes an update to its sender only
 * once stored, and its SyncStep1 carries its state vector, so the page knows per client the
 * clock the server has (acked): reset to the server's state vector on each connection (a
 * restarted server may have lost data) and raised by every update it sends. Deletions add no
 * clock, so a shadow Y.Doc of everything the server sent must also cover the local delete set.
 */
export function trackConnection (provider, ydoc, statusEl, onChange = () => {}) {
  const shadow = new Y.Doc({ gc: ydoc.gc })
  let acked = new Map() // client → clock the server has
  const orig = provider.messageHandlers[0]
  provider.messageHandlers[0] = (encoder, decoder, prov, emitSynced, type) => {
    try {
      const peek = decoding.createDecoder(decoder.arr.subarray(decoder.pos))
      const t = decoding.readVarUint(peek)
      if (t === 0) {
        acked = Y.decodeStateVector(decoding.readVarUint8Array(peek))
      } else if (t === 1 || t === 2) {
        const u = decoding.readVarUint8Array(peek)
        Y.applyUpdate(shadow, u)
        for (const st of Y.decodeUpdate(u).structs) {
          if (st instanceof Y.Skip) continue
          const end = st.id.clock + st.length
          if ((acked.get(st.id.client) || 0) < end) acked.set(st.id.client, end)
        }
      }
    } catch (e) {
      console.warn('ysync: could not read a sync message for the saved status', e)
    }
    orig(encoder, decoder, prov, emitSynced, type)
    schedule()
  }
  let state = ''
  let terminal = null
  let everConnected = false
  let failures = 0
  let timer = null
  const schedule = () => {
    if (timer === null) timer = setTimeout(() => { timer = null; update() }, 50)
  }
  const pending = () => {
    const local = Y.snapshot(ydoc)
    for (const [client, clock] of local.sv) if (clock > (acked.get(client) || 0)) return true
    return !covers(Y.snapshot(shadow).ds, local.ds)
  }
  const update = () => {
    let next, text
    if (terminal) {
      next = 'closed'
      text = terminal
    } else if (provider.wsconnected && provider.synced) {
      if (pending()) { next = 'saving'; text = 'Saving…' } else { next = 'saved'; text = 'Saved' }
    } else if (provider.wsconnected || (!everConnected && failures < 2)) {
      next = 'connecting'
      text = 'Connecting…'
    } else {
      next = 'offline'
      text = (everConnected ? 'Server unreachable' : 'Cannot reach the server') +
        ' — retrying. ' + (pending() ? 'Your changes are kept here and will be sent when it is back.' : 'Nothing is lost.')
      if (!everConnected && failures >= 3) text += ' (If the server is up, check the ?token= of this page.)'
    }
    statusEl.textContent = text
    statusEl.dataset.state = next
    document.body.dataset.connection = next
    if (next !== state) {
      state = next
      onChange(next)
    }
  }
  provider.on('status', ({ status }) => {
    if (status === 'connected') { everConnected = true; failures = 0 }
    schedule()
  })
  provider.on('sync', schedule)
  provider.on('connection-close', (ev) => { failures++; if (ev && closeReasons[ev.code]) terminal = closeReasons[ev.code]; schedule() })
  provider.on('connection-error', () => { schedule() })
  provider.on('closed', ({ code, reason }) => {
    terminal = closeReasons[code] || `The server closed the connection (${code}${reason ? ': ' + reason : ''}).`
    schedule()
  })
  ydoc.on('update', schedule)
  update()
  return { update, get state () { return state } }
}

/**
 * rpc sends type-5 JSON requests over the provider's socket and dispatches replies by id and
 * server events to onEvent. Requests made while disconnected fail at once.
 */
export function rpc (provider, onEvent) {
  let next = 1
  const waiting = new Map()
  provider.messageHandlers[5] = (_enc, dec) => {
    let msg
    try { msg = JSON.parse(decoding.readVarString(dec)) } catch { return }
    if (msg && msg.event) { onEvent(msg); return }
    const w = waiting.get(msg && msg.id)
    if (w) { waiting.delete(msg.id); w(msg) }
  }
  provider.on('connection-close', () => {
    for (const [id, w] of waiting) { waiting.delete(id); w({ ok: false, error: { type: 'disconnected', errors: { base: ['the connection closed before the server answered'] } } }) }
  })
  return (method, params = {}) => new Promise((resolve) => {
    const ws = provider.ws
    if (!ws || !provider.wsconnected) {
      resolve({ ok: false, error: { type: 'disconnected', errors: { base: ['not connected to the server'] } } })
      return
    }
    const id = next++
    waiting.set(id, resolve)
    const enc = encoding.createEncoder()
    encoding.writeVarUint(enc, 5)
    encoding.writeVarString(enc, JSON.stringify({ id, method, params }))
    ws.send(encoding.toUint8Array(enc))
  })
}

/** presence renders the awareness states (name and colour) into ul. */
export function presence (awareness, ul) {
  const render = () => {
    const items = []
    for (const [client, st] of awareness.getStates()) {
      const u = st && st.user
      if (!u) continue
      const me = client === awareness.clientID
      items.push(el('li', { 'data-client': client, class: me ? 'me' : '' },
        el('span', { class: 'dot', style: `background:${safeColor(u.color)}` }), String(u.name || 'anonymous'), me ? ' (you)' : ''))
    }
    ul.replaceChildren(...items)
  }
  awareness.on('change', render)
  render()
}

const safeColor = (c) => /^#[0-9a-fA-F]{3,8}$/.test(String(c)) ? c : '#888'

/** covers reports whether delete set a contains every deleted range of b (both sorted, merged). */
function covers (a, b) {
  for (const [client, items] of b.clients) {
    const have = a.clients.get(client) || []
    let j = 0
    for (const it of items) {
      while (j < have.length && have[j].clock + have[j].len <= it.clock) j++
      if (j === have.length || have[j].clock > it.clock || have[j].clock + have[j].len < it.clock + it.len) return false
    }
  }
  return true
}
