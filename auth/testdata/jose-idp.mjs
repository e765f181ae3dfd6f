// A stand-in identity provider for auth's JWKS tests, built on the npm `jose` package (another
// JOSE implementation than the one under test). It listens on 127.0.0.1 and speaks plain JSON:
//
//   GET  /jwks                       the current JWK Set (public keys only); counted
//   GET  /stats                      {"fetches": N}
//   POST /keys   {"alg", "kid"?, "modulusLength"?}   generate a key, publish it; -> {"kid"}
//   POST /remove {"kid"}             stop publishing a key (it can still sign: a revoked key)
//   POST /oct    {"kid", "secret"}   publish a symmetric JWK (which a verifier must never use)
//   POST /publish {"jwk"}            publish a JWK made elsewhere (a weak key jose will not make)
//   POST /sign   {"kid", "claims", "header"?}    -> {"token"} signed by jose's SignJWT
//
// It prints "listening http://127.0.0.1:PORT" once ready and exits when stdin closes.
import http from 'node:http'
import { generateKeyPair, exportJWK, SignJWT, base64url } from 'jose'

const keys = new Map() // kid -> { alg, privateKey, jwk, published }
const extra = [] // published symmetric JWKs
let fetches = 0
let next = 1

async function addKey ({ alg, kid, modulusLength }) {
  const opts = { extractable: true }
  if (modulusLength) opts.modulusLength = modulusLength
  if (alg === 'EdDSA') opts.crv = 'Ed25519'
  const { publicKey, privateKey } = await generateKeyPair(alg, opts)
  kid = kid || `k${next++}-${alg}`
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }
  keys.set(kid, { alg, privateKey, jwk, published: true })
  return { kid }
}

async function sign ({ kid, claims, header }) {
  const k = keys.get(kid)
  if (!k) throw new Error(`no key ${kid}`)
  const h = { alg: k.alg, typ: 'JWT', kid, ...(header || {}) }
  return { token: await new SignJWT(claims).setProtectedHeader(h).sign(k.privateKey) }
}

const routes = {
  'GET /jwks': () => {
    fetches++
    return { keys: [...[...keys.values()].filter(k => k.published).map(k => k.jwk), ...extra] }
  },
  'GET /stats': () => ({ fetches }),
  'POST /keys': addKey,
  'POST /remove': ({ kid }) => { keys.get(kid).published = false; return {} },
  'POST /oct': ({ kid, secret }) => {
    extra.push({ kty: 'oct', kid, alg: 'HS256', k: base64url.encode(secret) })
    return {}
  },
  'POST /publish': ({ jwk }) => { extra.push(jwk); return {} },
  'POST /sign': sign
}

const server = http.createServer(async (req, res) => {
  let body = ''
  for await (const chunk of req) body += chunk
  const route = routes[`${req.method} ${req.url}`]
  try {
    if (!route) throw new Error(`no route ${req.method} ${req.url}`)
    const out = await route(body ? JSON.parse(body) : {})
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
    res.end(JSON.stringify(out))
  } catch (err) {
    res.writeHead(400, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ error: String(err?.message || err) }))
  }
})
server.listen(0, '127.0.0.1', () => {
  console.log(`listening http://127.0.0.1:${server.address().port}`)
})
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
