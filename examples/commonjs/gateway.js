'use strict'
// A gateway in front of an origin service: /fruit/* through pool "banana",
// everything else through the default pool. ORIGIN, PORT and HOST come from
// the environment.
const { join } = require('node:path')
const Fastify = require('fastify')
const { fastifyHttpPools } = require('fastify-http-pools')

const origin = process.env.ORIGIN ?? 'http://127.0.0.1:8080'
const app = Fastify({ logger: true })

// A gateway forwards request bodies as they came: hand reply.from() the raw
// stream for every content type, instead of Fastify's JSON and text parsers
// (which would answer 415 to other types and re-serialize JSON).
app.removeAllContentTypeParsers()
app.addContentTypeParser('*', (_request, payload, done) => { done(null, payload) })

async function main () {
  await app.register(fastifyHttpPools, { config: join(__dirname, 'http-connection-pool.cfg.xml'), origin })

  // Routes come after the plugin: it reads their `pool` option as they are declared.
  app.all('/fruit/*', { pool: 'banana' }, (_request, reply) => reply.from())
  app.all('/*', (_request, reply) => reply.from())

  // The HTTP-client side, for code that calls a service itself.
  app.get('/gateway/pools', async () => ({ pools: app.pools.ids, stats: app.pools.stats() }))

  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => { app.close().catch((err) => app.log.error(err)) })
  await app.listen({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST ?? '127.0.0.1' })
}

main().catch((err) => {
  app.log.error(err)
  process.exitCode = 1
})
