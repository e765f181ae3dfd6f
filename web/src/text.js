// Collaborative text demo: /demo/text?doc=NAME. A CodeMirror editor bound to the Y.Text
// "text" with remote cursors (y-codemirror.next), who is here, and a status that says "Saved"
// only once the server acknowledged the last local edit.
import * as Y from 'yjs'
import { EditorState } from '@codemirror/state'
import { EditorView, keymap } from '@codemirror/view'
import { defaultKeymap } from '@codemirror/commands'
import { yCollab, yUndoManagerKeymap } from 'y-codemirror.next'
import { params, identity, connect, trackConnection, presence } from './common.js'

const docName = params.get('doc') || 'demo'
document.title = `${docName} — ysync text demo`
document.getElementById('doc-name').textContent = docName

const me = identity()
const ydoc = new Y.Doc()
const ytext = ydoc.getText('text')
const provider = connect(docName, ydoc, { user: me.name })
provider.awareness.setLocalStateField('user', me)

const view = new EditorView({
  parent: document.getElementById('editor-host'),
  state: EditorState.create({
    doc: ytext.toString(),
    extensions: [
      keymap.of([...yUndoManagerKeymap, ...defaultKeymap]),
      EditorView.lineWrapping,
      EditorView.contentAttributes.of({ 'data-testid': 'editor', 'aria-label': 'Document text' }),
      yCollab(ytext, provider.awareness)
    ]
  })
})

trackConnection(provider, ydoc, document.querySelector('[data-testid="status"]'))
presence(provider.awareness, document.getElementById('presence'))

const me2 = document.getElementById('me')
me2.textContent = me.name
me2.style.color = me.color

window.ysync = { ydoc, provider, view }
