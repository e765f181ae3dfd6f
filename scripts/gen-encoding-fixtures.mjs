// Generates golden vectors for crdt/encoding with the reference JavaScript implementation (lib0,
// yjs) into testdata/encoding/. Run from the repository root:
//
//	node scripts/gen-encoding-fixtures.mjs
//
// JavaScript values are written in a tagged form that survives JSON and that Go can rebuild
// exactly (see "tag" below): -0, NaN and every other double by its bits, BigInts as decimal
// strings, strings as base64 of their UTF-8 encoding (so lone surrogates appear as the U+FFFD a
// TextEncoder makes of them, which is what a Go peer receives), Uint8Arrays as base64, objects as
// the list of [key, value] pairs in the order they were set plus the Object.keys order JavaScript
// gives them.
//
//	varint.json   var-uint / var-int encodings.
//	any.json      writeAny bytes of hand-picked and random values.
//	json.json     JSON.stringify outputs, JSON.parse results and failures.
//	numbers.json  Number#toString of many doubles (bits in hex).
//	utf16.json    ContentString.splice and String#slice results on strings with emoji.
//	rle.json      lib0 RLE column encoders: values and bytes; plus decode-only string columns.
//	updates.json  op sequences written with yjs UpdateEncoderV1/V2 and their bytes; real document
//	              updates (V1 and V2) for decoding and byte-exact re-encoding.
//
// The output is deterministic (seeded PRNG, fixed client IDs).

import * as fs from 'node:fs'
import * as path from 'node:path'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'

const outDir = path.join('testdata', 'encoding')
fs.mkdirSync(outDir, { recursive: true })
const write = (name, data) => fs.writeFileSync(path.join(outDir, name), JSON.stringify(data) + '\n')

const b64 = (u8) => Buffer.from(u8).toString('base64')
const te = new TextEncoder()
const utf8 = (s) => b64(te.encode(s))
const bytesOf = (fn) => {
  const e = encoding.createEncoder()
  fn(e)
  return encoding.toUint8Array(e)
}

// mulberry32: small deterministic PRNG.
let seed = 0x9e3779b9
const rand = () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
const randInt = (n) => Math.floor(rand() * n)
const pick = (arr) => arr[randInt(arr.length)]

const f64 = new DataView(new ArrayBuffer(8))
const bitsOf = (x) => {
  f64.setFloat64(0, x)
  return f64.getBigUint64(0).toString(16).padStart(16, '0')
}
const randomDouble = () => {
  f64.setUint32(0, (rand() * 4294967296) >>> 0)
  f64.setUint32(4, (rand() * 4294967296) >>> 0)
  return f64.getFloat64(0)
}

// tag converts a JavaScript value to the tagged JSON form.
const tag = (v) => {
  if (v === undefined) return { t: 'undef' }
  if (v === null) return { t: 'null' }
  switch (typeof v) {
    case 'boolean': return { t: 'bool', v }
    case 'number': return { t: 'num', bits: bitsOf(v), s: String(v) }
    case 'bigint': return { t: 'bigint', v: v.toString() }
    case 'string': return { t: 'str', utf8: utf8(v) }
  }
  if (v instanceof Uint8Array) return { t: 'bytes', v: b64(v) }
  if (Array.isArray(v)) return { t: 'arr', v: v.map(tag) }
  if (v instanceof Obj) {
    return { t: 'obj', set: v.pairs.map(([k, x]) => [utf8(k), tag(x)]), keys: Object.keys(v.toJS()).map(utf8) }
  }
  // A plain object parsed by JSON.parse: its insertion order is its key order for the string keys,
  // which is all Go needs to rebuild it.
  return { t: 'obj', set: Object.keys(v).map(k => [utf8(k), tag(v[k])]), keys: Object.keys(v).map(utf8) }
}

// Obj remembers the order its keys were set in, so Go can replay the insertions and must arrive
// at the order JavaScript chose.
class Obj {
  constructor (pairs) { this.pairs = pairs }
  toJS () {
    const o = {}
    for (const [k, v] of this.pairs) o[k] = toJS(v)
    return o
  }
}
const toJS = (v) => {
  if (v instanceof Obj) return v.toJS()
  if (Array.isArray(v)) return v.map(toJS)
  return v
}

// ---- varint.json ----

const uints = [0, 1, 63, 64, 127, 128, 255, 256, 16383, 16384, 2 ** 21 - 1, 2 ** 21, 2 ** 28, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 35 + 7, 2 ** 49, 2 ** 53 - 1]
const ints = [0, -0, 1, -1, 63, -63, 64, -64, 8191, -8191, 8192, -8192, 2 ** 31 - 1, -(2 ** 31 - 1), 2 ** 31, -(2 ** 31), 2 ** 40 + 3, -(2 ** 40 + 3), 2 ** 53 - 1, -(2 ** 53 - 1)]
write('varint.json', {
  uints: uints.map(n => ({ n: String(n), bytes: b64(bytesOf(e => encoding.writeVarUint(e, n))) })),
  ints: ints.map(n => ({ n: String(n), negZero: Object.is(n, -0), bytes: b64(bytesOf(e => encoding.writeVarInt(e, n))) }))
})

// ---- any.json ----

const keyPool = ['a', 'b', 'z', '', '0', '1', '2', '10', '9', '01', '-1', '1.5', '4294967294', '4294967295', '4294967296', 'key with space', 'ü', '😀', 'length', 'constructor', '1e3', ' 1']
const strPool = ['', 'a', 'hello', 'ü', '€', '😀', 'a😀b', '\u0000', '"\\/\b\f\n\r\t', '\u001f\u007f', '\u2028\u2029', '<>&\'', '\ud800', 'x\udc00y', '\udbff\udfff', 'ﬀ', '\uFEFF', '\uFFFD']
const randString = () => {
  let s = ''
  const n = randInt(6)
  for (let i = 0; i < n; i++) s += pick(strPool)
  return s
}
const randNumber = () => {
  switch (randInt(9)) {
    case 0: return randInt(200) - 100
    case 1: return Math.floor((rand() - 0.5) * 2 ** 33)
    case 2: return Math.fround(randomDouble())
    case 3: return randomDouble()
    case 4: return pick([0, -0, NaN, Infinity, -Infinity, 2 ** 31 - 1, -(2 ** 31 - 1), 2 ** 31, -(2 ** 31), 2 ** 53, Number.MAX_VALUE, Number.MIN_VALUE, 0.1, 1e21, 1e-7])
    case 5: return rand() * 1000
    case 6: return Math.fround(rand() * 100)
    case 7: return Math.floor(rand() * 2 ** 53)
    default: return (randInt(1000) - 500) / 8
  }
}
const randValue = (depth, allowUndef = true) => {
  const r = randInt(depth > 3 ? 7 : 10)
  switch (r) {
    case 0: return allowUndef ? undefined : null
    case 1: return null
    case 2: return rand() < 0.5
    case 3: case 4: return randNumber()
    case 5: return randString()
    case 6: return pick([BigInt(randInt(1000)), -(2n ** 63n), 2n ** 63n - 1n, BigInt(Math.floor((rand() - 0.5) * 2 ** 60))])
    case 7: return new Uint8Array(Array.from({ length: randInt(5) }, () => randInt(256)))
    case 8: return Array.from({ length: randInt(4) }, () => randValue(depth + 1, allowUndef))
    default: {
      const pairs = []
      const n = randInt(6)
      for (let i = 0; i < n; i++) pairs.push([pick(keyPool), randValue(depth + 1, allowUndef)])
      return new Obj(pairs)
    }
  }
}

const anyValues = [
  undefined, null, true, false, 0, -0, 1, -1, 63, 64, -64, 127, 128, 2 ** 31 - 1, -(2 ** 31 - 1), 2 ** 31, -(2 ** 31),
  0.5, 0.1, 1.1, -2.5, 1e21, 1e-7, 2 ** 53, NaN, Infinity, -Infinity, Number.MAX_VALUE, Number.MIN_VALUE, Math.fround(0.1),
  0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n),
  '', 'hello', '😀', 'a\ud800b', '\udc00', 'ü€😀',
  new Uint8Array([]), new Uint8Array([0, 1, 255]),
  [], [1, 'a', null, undefined, [true]],
  new Obj([]),
  new Obj([['b', 1], ['a', 2], ['10', 3], ['2', 4], ['01', 5], ['4294967295', 6], ['4294967294', 7], ['-1', 8], ['b', 9]]),
  new Obj([['nested', new Obj([['x', [1, 2, new Obj([['y', undefined]])]]])], ['bytes', new Uint8Array([7])]])
]
for (let i = 0; i < 300; i++) anyValues.push(randValue(0))
write('any.json', anyValues.map(v => ({ value: tag(v), bytes: b64(bytesOf(e => encoding.writeAny(e, toJS(v)))) })))

// ---- json.json ----

// Strings are normalised through UTF-8 first: a Go value cannot hold a lone surrogate, it holds
// the U+FFFD that the UTF-8 round trip made of it.
const td = new TextDecoder()
const normStrings = (v) => {
  if (typeof v === 'string') return td.decode(te.encode(v))
  if (v instanceof Obj) return new Obj(v.pairs.map(([k, x]) => [normStrings(k), normStrings(x)]))
  if (Array.isArray(v)) return v.map(normStrings)
  return v
}
const stringifyCases = []
const addStringify = (v) => {
  v = normStrings(v)
  let out = null
  let error = null
  try {
    out = JSON.stringify(toJS(v))
    if (out === undefined) { out = null; error = 'undefined' }
  } catch (e) {
    error = e instanceof TypeError && /BigInt/.test(e.message) ? 'bigint' : String(e)
  }
  stringifyCases.push({ value: tag(v), out, error })
}
for (const v of anyValues) addStringify(v)
for (let i = 0; i < 300; i++) addStringify(randValue(0))

const parseTexts = [
  'null', 'true', 'false', '0', '-0', '1', '-1', '0.5', '1e3', '1E+3', '1e-3', '-1.5e-7', '123456789012345678901234567890', '1e400', '-1e400', '1e-400',
  '"a"', '"\\u00e9"', '"\\ud83d\\ude00"', '"\\ud83d"', '"\\ude00\\ud83d"', '"\\ud83dx"', '"\\ud83d\\u0041"', '"\\/\\b\\f\\n\\r\\t\\"\\\\"', '"😀"',
  ' [1, 2 ,3 ] ', '{"b":1,"a":2,"1":3,"0":4}', '{"a":1,"a":2,"b":3}', '{"__proto__":1}', '{"x":{"y":[{}]}}', '[]', '{}', '\t\n\r [ ]',
  '{"10":1,"9":2,"01":3,"4294967295":4,"4294967294":5}',
  // Invalid:
  '', ' ', 'nul', 'True', '01', '-', '1.', '.5', '+1', '1e', '1e+', '0x10', 'NaN', 'Infinity', '"abc', '"\\x"', '"\\u12"', '"\\u12G4"', '"a\nb"', '"\t"',
  '[1,]', '[,1]', '{"a":1,}', '{a:1}', "{'a':1}", '{"a" 1}', '[1 2]', '1 2', '"a"x', '\u00a0 1', '\ufeff1', '[', '{', '{"a":', '//1', '[1]]'
]
const parseCases = parseTexts.map(text => {
  try {
    return { text: utf8(text), value: tag(JSON.parse(text)) }
  } catch (e) {
    return { text: utf8(text), error: true }
  }
})
// Round trip of random values: stringify then parse.
for (let i = 0; i < 200; i++) {
  const v = normStrings(randValue(0))
  let text
  try { text = JSON.stringify(toJS(v)) } catch { continue }
  if (text === undefined) continue
  parseCases.push({ text: utf8(text), value: tag(JSON.parse(text)) })
}
write('json.json', { stringify: stringifyCases, parse: parseCases })

// ---- numbers.json ----

const numbers = [0, -0, 1, -1, 0.1, 0.2, 0.3, 1 / 3, 2 / 3, 1e21, 1e20, 123456789012345680000, 1e-6, 1e-7, 1.5e-7, 0.000001, 0.0000015, 123456789012, 5e-324, Number.MAX_VALUE, Number.MIN_VALUE, 2 ** 53, 2 ** 53 + 2, 100, 1e100, 1.7976931348623157e308, 4.35, 0.000123, 999999999999999900000, 1e22, 9.999999999999999e20]
for (let i = 0; i < 10000; i++) {
  switch (i % 5) {
    case 0: numbers.push(randomDouble()); break
    case 1: numbers.push((rand() - 0.5) * 10 ** (randInt(60) - 30)); break
    case 2: numbers.push(Math.round((rand() - 0.5) * 10 ** randInt(25))); break
    case 3: numbers.push(Math.fround((rand() - 0.5) * 10 ** (randInt(20) - 10))); break
    default: numbers.push(randInt(100000) / 10 ** randInt(12))
  }
}
write('numbers.json', numbers.filter(x => !Number.isNaN(x)).map(x => [bitsOf(x), String(x)]))

// ---- utf16.json ----

const splice = (str, offset) => {
  // ContentString.splice
  let left = str.slice(0, offset)
  let right = str.slice(offset)
  const c = left.charCodeAt(offset - 1)
  if (c >= 0xD800 && c <= 0xDBFF) {
    left = left.slice(0, offset - 1) + '\uFFFD'
    right = '\uFFFD' + right.slice(1)
  }
  return [left, right]
}
const utf16Strings = ['', 'abc', '😀', 'a😀b', '😀😀', 'ü€😀x', 'héllo wörld 😀👍🏽 ok', '\uFFFD😀\uFFFD', '𝄞𝄞a', '日本語テキスト']
write('utf16.json', utf16Strings.map(s => {
  const n = s.length
  const splits = []
  for (let i = 0; i <= n; i++) {
    const [l, r] = splice(s, i)
    splits.push({ n: i, left: utf8(l), right: utf8(r) })
  }
  const slices = []
  for (let from = -2; from <= n + 1; from++) {
    for (let to = -2; to <= n + 1; to++) {
      slices.push({ from, to, out: utf8(s.slice(from, to)) })
    }
  }
  return { s: utf8(s), len: n, splits, slices }
}))

// ---- rle.json ----

const rleCases = []
const addRle = (coder, values) => {
  let enc
  switch (coder) {
    case 'rle': enc = new encoding.RleEncoder(encoding.writeUint8); break
    case 'uintOptRle': enc = new encoding.UintOptRleEncoder(); break
    case 'intDiffOptRle': enc = new encoding.IntDiffOptRleEncoder(); break
    case 'string': enc = new encoding.StringEncoder(); break
  }
  for (const v of values) enc.write(v)
  const bytes = coder === 'rle' ? encoding.toUint8Array(enc) : enc.toUint8Array()
  rleCases.push({ coder, values: coder === 'string' ? values.map(utf8) : values, bytes: b64(bytes) })
}
const rleSeqs = [[], [0], [1], [0, 0, 0], [1, 1, 1], [1, 2, 3, 3, 3], [5, 5, 0, 0, 7], [0, 1, 0, 1], [255, 255, 254]]
for (const seq of rleSeqs) addRle('rle', seq)
for (let i = 0; i < 40; i++) addRle('rle', Array.from({ length: randInt(30) }, () => pick([0, 1, 2, 7, 255, randInt(256)])))
const uintSeqs = [[], [0], [0, 0], [0, 0, 0, 5], [1, 2, 3, 3, 3], [7, 8, 9, 10], [2 ** 31, 2 ** 31, 2 ** 40], [2 ** 53 - 1], [63, 64, 64, 8191, 8192]]
for (const seq of uintSeqs) addRle('uintOptRle', seq)
for (let i = 0; i < 40; i++) addRle('uintOptRle', Array.from({ length: randInt(30) }, () => pick([0, 1, 2, 63, 64, randInt(100000), randInt(3)])))
const diffSeqs = [[], [0], [0, 0], [1, 1, 1, 2, 3, 4, 5, 6], [1, 2, 3, 2], [10, 9, 8, 7], [0, 100, 50, 50, 50, 2 ** 31 - 1, 0], [5, 5, 5]]
for (const seq of diffSeqs) addRle('intDiffOptRle', seq)
for (let i = 0; i < 40; i++) {
  let c = randInt(1000)
  addRle('intDiffOptRle', Array.from({ length: randInt(30) }, () => { c = Math.max(0, c + pick([0, 1, 1, 1, -1, 5, randInt(200) - 100])); return c }))
}
// Strings for the encoder comparison are whole code points (Go strings cannot carry half pairs).
const strSeqs = [[], [''], ['a'], ['', '', ''], ['hello', 'world'], ['😀', 'a😀b', ''], ['ü€', '日本語', '😀😀😀'], [Array(30).fill('x').join(''), 'y', 'z😀']]
for (const seq of strSeqs) addRle('string', seq)
for (let i = 0; i < 30; i++) addRle('string', Array.from({ length: randInt(12) }, () => pick(['', 'a', 'key', 'bold', '😀', 'ü', 'abc😀def', 'x'.repeat(randInt(25))])))
// Decode-only: lengths that cut surrogate pairs.
const stringDecodeCases = []
const addStringDecode = (str, lens) => {
  const e = encoding.createEncoder()
  encoding.writeVarString(e, str)
  const le = new encoding.UintOptRleEncoder()
  for (const l of lens) le.write(l)
  encoding.writeUint8Array(e, le.toUint8Array())
  const bytes = encoding.toUint8Array(e)
  const d = new decoding.StringDecoder(bytes)
  stringDecodeCases.push({ bytes: b64(bytes), expect: lens.map(() => utf8(d.read())) })
}
addStringDecode('😀', [1, 1])
addStringDecode('a😀b', [2, 2])
addStringDecode('😀😀', [1, 2, 1])
addStringDecode('😀😀', [3, 1])
addStringDecode('x😀', [0, 2, 0, 1])
write('rle.json', { cases: rleCases, stringDecode: stringDecodeCases })

// ---- updates.json ----

// Op sequences: every encoder method with assorted arguments, in both formats.
const randOp = () => {
  switch (randInt(13)) {
    case 0: return ['leftID', randInt(5), randInt(50)]
    case 1: return ['rightID', randInt(5), randInt(50)]
    case 2: return ['client', pick([0, 1, 2, 2 ** 32 - 1, randInt(2 ** 31)])]
    case 3: return ['info', pick([0, 4, 8, 0x84, 0xc4, 0x24, 1, randInt(256)])]
    case 4: return ['string', pick(['', 'text', 'a😀b', 'ü', 'hello world'])]
    case 5: return ['parentInfo', rand() < 0.5]
    case 6: return ['typeRef', randInt(7)]
    case 7: return ['len', pick([1, 1, 2, 5, randInt(1000)])]
    case 8: return ['any', randValue(2)]
    case 9: return ['buf', new Uint8Array(Array.from({ length: randInt(6) }, () => randInt(256)))]
    case 10: return ['json', normStrings(randValue(2, false))]
    case 11: return ['key', pick(['bold', 'italic', 'href', 'ü', ''])]
    default: return pick([['dsReset'], ['dsClock', randInt(10)], ['dsLen', 1 + randInt(10)]])
  }
}
const noBigInt = (v) => {
  if (typeof v === 'bigint') return false
  if (v instanceof Obj) return v.pairs.every(([, x]) => noBigInt(x))
  if (Array.isArray(v)) return v.every(noBigInt)
  return true
}
const applyOp = (enc, op) => {
  const [name, a, b] = op
  switch (name) {
    case 'leftID': enc.writeLeftID(Y.createID(a, b)); break
    case 'rightID': enc.writeRightID(Y.createID(a, b)); break
    case 'client': enc.writeClient(a); break
    case 'info': enc.writeInfo(a); break
    case 'string': enc.writeString(a); break
    case 'parentInfo': enc.writeParentInfo(a); break
    case 'typeRef': enc.writeTypeRef(a); break
    case 'len': enc.writeLen(a); break
    case 'any': enc.writeAny(toJS(a)); break
    case 'buf': enc.writeBuf(a); break
    case 'json': enc.writeJSON(toJS(a)); break
    case 'key': enc.writeKey(a); break
    case 'dsReset': enc.resetDsCurVal(); break
    case 'dsClock': enc.writeDsClock(a); break
    case 'dsLen': enc.writeDsLen(a); break
  }
}
const tagOp = ([name, a, b]) => {
  switch (name) {
    case 'any': case 'json': return [name, tag(a)]
    case 'buf': return [name, b64(a)]
    case 'string': case 'key': return [name, utf8(a)]
    default: return b === undefined ? (a === undefined ? [name] : [name, a]) : [name, a, b]
  }
}
const opSequences = []
for (let i = 0; i < 60; i++) {
  const ops = []
  const n = 1 + randInt(40)
  let dsCur = 0
  for (let j = 0; j < n; j++) {
    let op = randOp()
    // JSON (V1) cannot hold BigInts; delete-set clocks must not go backwards (V2 writes diffs).
    if (op[0] === 'json' && !noBigInt(op[1])) continue
    if (op[0] === 'dsReset') dsCur = 0
    if (op[0] === 'dsClock') { op = ['dsClock', dsCur + op[1]]; dsCur = op[1] }
    if (op[0] === 'dsLen') dsCur += op[1]
    ops.push(op)
  }
  const e1 = new Y.UpdateEncoderV1()
  const e2 = new Y.UpdateEncoderV2()
  for (const op of ops) { applyOp(e1, op); applyOp(e2, op) }
  opSequences.push({ ops: ops.map(tagOp), v1: b64(e1.toUint8Array()), v2: b64(e2.toUint8Array()) })
}

// Real documents.
const docs = []
const addDoc = (name, doc, extra = {}) => {
  docs.push({ name, v1: b64(Y.encodeStateAsUpdate(doc)), v2: b64(Y.encodeStateAsUpdateV2(doc)), ...extra })
}
const newDoc = (id, opts) => {
  const d = new Y.Doc(opts)
  d.clientID = id
  return d
}
{
  const d = newDoc(1)
  addDoc('empty', d)
  d.getText('t').insert(0, 'hello 😀 world')
  addDoc('text', d)
  d.getText('t').format(0, 5, { bold: true, color: '#f00' })
  d.getText('t').insertEmbed(3, { image: 'x.png', size: [1, 2.5] })
  d.getText('t').delete(8, 3)
  addDoc('text-formatted', d)
  const m = d.getMap('m')
  m.set('num', 1); m.set('neg', -0); m.set('f', 0.1); m.set('big', 12345678901234n); m.set('bytes', new Uint8Array([1, 2, 3]))
  m.set('obj', { b: 1, a: [1, 'x', null], 2: 'two', 1: 'one' }); m.set('undef', undefined); m.set('num', 2)
  const sub = new Y.Map(); m.set('sub', sub); sub.set('k', 'v')
  const arr = d.getArray('a'); arr.insert(0, [1, 2, 3, 'four', { five: 5 }]); arr.delete(1, 2)
  const bin = d.getArray('bin'); bin.insert(0, [new Uint8Array([9, 9])])
  addDoc('mixed', d)
  const x = d.getXmlFragment('x')
  const el = new Y.XmlElement('p'); x.insert(0, [el]); el.setAttribute('class', 'c')
  const xt = new Y.XmlText('xml text'); el.insert(0, [xt]); xt.format(0, 3, { b: {} })
  const sd = new Y.Doc({ guid: 'sub-guid', meta: { m: 1 } }); m.set('subdoc', sd)
  addDoc('xml-subdoc', d)
  m.delete('sub') // sub's content becomes GC
  addDoc('gc', d)
}
{
  // Several clients with interleaved edits and deletions.
  const a = newDoc(10)
  const b = newDoc(20)
  a.getText('t').insert(0, 'abc')
  Y.applyUpdate(b, Y.encodeStateAsUpdate(a))
  b.getText('t').insert(1, 'XY')
  a.getText('t').insert(3, '😀😀')
  Y.applyUpdate(a, Y.encodeStateAsUpdate(b))
  Y.applyUpdate(b, Y.encodeStateAsUpdate(a))
  a.getText('t').delete(0, 4)
  addDoc('two-clients', a)
  for (let i = 0; i < 30; i++) {
    const d = rand() < 0.5 ? a : b
    const t = d.getText('t')
    if (rand() < 0.6 || t.length === 0) t.insert(randInt(t.length + 1), pick(['x', 'yz', '😀', 'ü', 'long run of text']))
    else t.delete(randInt(t.length), 1)
    if (rand() < 0.3) { Y.applyUpdate(a, Y.encodeStateAsUpdate(b)); Y.applyUpdate(b, Y.encodeStateAsUpdate(a)) }
  }
  addDoc('random-edits', a)
}
{
  // A merged update with a gap produces a Skip struct.
  const d = newDoc(7)
  const t = d.getText('t')
  const updates = []
  d.on('update', u => updates.push(u))
  t.insert(0, 'one'); t.insert(3, 'two'); t.insert(6, 'three')
  const merged = Y.mergeUpdates([updates[0], updates[2]])
  docs.push({ name: 'skip', v1: b64(merged), v2: b64(Y.convertUpdateFormatV1ToV2(merged)) })
  const gcd = newDoc(8)
  gcd.getArray('arr').insert(0, [1, 2, 3])
  gcd.getArray('arr').delete(0, 3)
  addDoc('deleted-array', gcd)
}
{
  // A document without gc keeps deleted content as ContentDeleted and a deleted type.
  const d = newDoc(9, { gc: false })
  const m = d.getMap('m')
  const inner = new Y.Array(); m.set('inner', inner); inner.insert(0, ['a', 'b'])
  m.delete('inner')
  d.getText('t').insert(0, 'abcdef'); d.getText('t').delete(1, 3)
  addDoc('nogc', d)
}
write('updates.json', { ops: opSequences, docs })
console.log('wrote', fs.readdirSync(outDir).join(', '))
