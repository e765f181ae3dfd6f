// The reference Hocuspocus server for scripts/bench-server.sh: @hocuspocus/server 3.4.4 with no
// extensions (documents in memory, nothing stored), on HOST:PORT (default 127.0.0.1:1234).
//
// Server.listen() passes `address` to http.Server.listen, which Node ignores (the option is
// `host`), so it would listen on every interface; the HTTP server (whose upgrade handler the
// Server constructor installed) is started here on HOST only.
import { Server } from '@hocuspocus/server'

const host = process.env.HOST || '127.0.0.1'
const port = Number(process.env.PORT || 1234)
const server = new Server({ quiet: true, stopOnSignals: false })
const stop = async () => { await server.destroy(); process.exit(0) }
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
server.httpServer.on('error', (err) => { console.error(String(err)); process.exit(1) })
server.httpServer.listen({ port, host }, () => console.log(`hocuspocus listening on ${host}:${port}`))
