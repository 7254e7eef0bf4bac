'use strict'
// The gateway of the soak run (bench/soak.js): the plugin from dist/ with one
// forwarding route per pool, an upload route, and an IPC channel to the
// driver: 'reload' swaps the config (A/B, so the pools are replaced),
// 'measure' answers { heapUsed (after a full GC), fds, handles, stats }.
const { readdirSync } = require('node:fs')
const { setFlagsFromString } = require('node:v8')
const { runInNewContext } = require('node:vm')
const Fastify = require('fastify')
const pools = require('../dist/index.js').default

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc')

const xml = (variant) => `<?xml version="1.0"?>
<http-connection-pools xmlns="http://docs.openrepose.org/repose/http-connection-pool/v1.0" xmlns:x="urn:fastify-http-pools:1">
  <pool id="main" default="true" http.conn-manager.max-per-route="20" http.socket.timeout="${1000 + variant}"
        x:retry.base-delay="20" x:queue.timeout="2000"/>
  <pool id="faulty" http.conn-manager.max-per-route="10" http.socket.timeout="300" http.connection.timeout="300"
        x:retry.base-delay="10" x:circuit-breaker.threshold="20" x:circuit-breaker.reset="1000"/>
</http-connection-pools>`

async function main () {
  const app = Fastify({ logger: false })
  let variant = 0
  await app.register(pools, { xml: xml(variant) })
  app.addContentTypeParser('*', (_req, payload, done) => { done(null, payload) })
  for (const id of ['main', 'faulty']) {
    app.all(`/${id}/*`, { pool: id }, (req, reply) => reply.from(req.query.to))
  }
  await app.listen({ port: 0, host: '127.0.0.1' })
  process.on('message', (msg) => {
    if (msg === 'reload') {
      variant = 1 - variant
      app.pools.reload({ xml: xml(variant) }).then(() => process.send({ reloaded: true }), (err) => process.send({ reloaded: false, error: err.message }))
    } else if (msg === 'measure') {
      gc()
      process.send({
        heapUsed: process.memoryUsage().heapUsed,
        fds: readdirSync('/proc/self/fd').length,
        handles: process.getActiveResourcesInfo().length,
        stats: app.pools.stats()
      })
    }
  })
  process.once('disconnect', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
  process.send({ ready: app.server.address().port })
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
