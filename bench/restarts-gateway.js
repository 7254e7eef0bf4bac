'use strict'
// The gateway of the restarts benchmark (bench/restarts.js, issue 18):
// node bench/restarts-gateway.js CASE ORIGIN. One Fastify server on a free
// 127.0.0.1 port, route `GET /*` -> reply.from(), built like bench/server.js's
// cases (bare reply-from with the default pool's undici options, or the plugin
// from dist/ with an inline config). Unlike bench/server.js it logs at warn
// level, as JSON on stdout (the harness sends it to a file): the plugin's one
// warn line per failed exchange (pool, origin, code) and reply-from's
// "response errored" are the evidence of what failed. Over its IPC channel it
// reports { ready: port, settings } and answers 'stats' with the plugin's pool
// stats, the upstream connections opened and failed (undici's diagnostics
// channels, which reply-from's undici publishes too) and the statuses it sent.
const diagnostics = require('node:diagnostics_channel')
const Fastify = require('fastify')
const { exitOnStop } = require('./processes.js')
const { DEFAULT_POOL_UNDICI, poolsXml } = require('./cases.js')

let connects = 0
let connectErrors = 0
diagnostics.subscribe('undici:client:connected', () => { connects++ })
diagnostics.subscribe('undici:client:connectError', () => { connectErrors++ })

// The lifetime of the rotating case: long enough that a socket carries many
// requests, short enough that every socket changes backend several times
// between two restarts (5 s apart).
const LIFETIME_MS = 1000

const RETRY_LIFETIME = `x:retry.max-attempts="3" x:retry.methods="GET,HEAD,OPTIONS,PUT,DELETE,TRACE" x:connection.max-lifetime="${LIFETIME_MS}"`

const forward = (req, reply) => reply.from()

function plugin (extra) {
  const xml = poolsXml(extra)
  return async (app, origin) => {
    await app.register(require('../dist/index.js').default, { origin, xml })
    app.get('/*', forward)
  }
}

const CASES = {
  // Bare @fastify/reply-from, the options of the `reply-from` case of bench/cases.js:
  // undici with the default pool's options, reply-from's own retries at their default (none
  // for a reset or a closed socket; GET is retried on a 503 response only).
  'reply-from': async (app, origin) => {
    await app.register(require('@fastify/reply-from'), { base: origin, undici: DEFAULT_POOL_UNDICI })
    app.get('/*', forward)
  },
  // The plugin with every default: 3 attempts for GET, budget 20 % / min 3, no lifetime.
  'plugin-default': plugin(''),
  // Retries written out (they are the defaults: 3 attempts, GET among the methods) and a lifetime.
  'plugin-retry-lifetime': plugin(RETRY_LIFETIME),
  // The same with the retry budget opened: a crash fails every exchange in flight on
  // the crashed backend's connections at once, about half of them with two backends,
  // more than the default budget (20 % of the exchanges in progress, at least 3) lets retry.
  'plugin-retry-lifetime-budget': plugin(`${RETRY_LIFETIME} x:retry.budget="100"`)
}

async function main () {
  const [name, origin] = process.argv.slice(2)
  const setup = CASES[name]
  if (setup === undefined || !origin) throw new Error(`usage: node bench/restarts-gateway.js CASE ORIGIN (CASE: ${Object.keys(CASES).join(', ')})`)
  const app = Fastify({ logger: { level: 'warn' }, disableRequestLogging: true })
  // What the gateway sent, by status, and responses it gave up on after their headers.
  const statuses = {}
  let unfinished = 0
  app.server.prependListener('request', (req, res) => {
    res.once('close', () => {
      if (res.writableFinished) statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1
      else unfinished++
    })
  })
  await setup(app, new URL(origin).origin)
  await app.listen({ port: 0, host: '127.0.0.1' })

  exitOnStop(app)
  process.on('message', (msg) => {
    if (msg !== 'stats') return
    process.send({ stats: app.pools ? app.pools.stats() : null, connects, connectErrors, statuses, unfinished })
  })
  process.send({ ready: app.server.address().port, settings: app.pools ? app.pools.get().settings : null })
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
