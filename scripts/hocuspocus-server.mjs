// The reference Hocuspocus server for scripts/bench-server.sh: @hocuspocus/server 3.4.4 with no
// extensions (documents in memory, nothing stored), on HOST:PORT (default 127.0.0.1:1234).
import { Server } from '@hocuspocus/server'

const server = new Server({
  address: process.env.HOST || '127.0.0.1',
  port: Number(process.env.PORT || 1234),
  quiet: true,
  stopOnSignals: true
})
await server.listen()
console.log(`hocuspocus listening on ${server.configuration.address}:${server.configuration.port}`)
