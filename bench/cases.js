'use strict'
const path = require('node:path')
// The benchmark's cases. Each one but `direct` is a Fastify server (logger
// off) in its own process, started by bench/server.js, forwarding to the nginx
// upstream. To add a case, add an entry:
//   name      shown in the table, passed to bench/server.js
//   what      one line for the table header and results.json
//   setup     async (app, upstream) => registers what the case measures on a
//             fresh Fastify instance; no setup: wrk hits the upstream itself
//   baseline  the case whose req/s and p99 this one is divided by, per round
//   pool      the plugin pool expected to carry the requests; checked after
//             warm-up through the server's `app.pools.stats()`, so a routing
//             mistake cannot pass for a result
//   cached    the route coalesces/caches: after warm-up the pool must show
//             cache hits or coalesced requests
//   lifetime  x:connection.max-lifetime of the case's pool (ms): every counted
//             run must open upstream connections (at least one per two
//             lifetimes), so an ignored attribute cannot pass for a result
//   https     the case forwards to nginx's TLS port (a certificate for
//             127.0.0.1 issued by the test CA at bench start) instead of its
//             plain one; `setup` then gets the https origin
//   connectionPerRequest  every request must open a new upstream connection
//             (checked on each counted run), so keep-alive left on cannot pass
//             for a result
//   maxConnections  caps wrk -c for the case: a case whose every request
//             costs a TLS handshake serves far fewer req/s, and at -c64 its
//             latency would reach wrk's 2 s timeout, turning the run into a
//             count of abandoned requests
//   path      what wrk asks for: one of nginx's sized bodies ('/16k',
//             '/1m', see bench/nginx.js); default '/', the 11-byte body
//   target    an acceptance target, checked on the medians and printed as
//             PASS/FAIL: { issue, minRpsRatio (req/s over the baseline's),
//             maxP99Ratio (p99 latency over the baseline's),
//             maxUpstreamRatio (upstream exchanges over client requests),
//             minConnections (wrk -c the target is stated for) }
//
// Order matters: the rounds walk this list as a ring (see bench/run.js), so a
// case with a target sits right after its baseline and the two run back to
// back.

// The undici options the plugin derives for a pool with every default
// (lib/pool/options.ts; max-per-route 200, socket and connect timeouts 30 s,
// keepalive.timeout 0): the reply-from baseline runs with the same ones.
const DEFAULT_POOL_UNDICI = {
  connections: 200,
  pipelining: 1,
  headersTimeout: 30000,
  bodyTimeout: 30000,
  keepAliveTimeout: 2147483647,
  keepAliveMaxTimeout: 2147483647,
  keepAliveTimeoutThreshold: 1000,
  connect: { timeout: 30000, rejectUnauthorized: true }
}

// A default pool and `banana` with the same limits and no headers, so the
// named case differs from the default one only by the route's pool. `extra`:
// attributes of the `x:` extension namespace added to the default pool only,
// so two cases differ by exactly those attributes.
function poolsXml (extra = '') {
  const ns = extra === '' ? '' : ' xmlns:x="urn:fastify-http-pools:1"'
  return `<?xml version="1.0" encoding="UTF-8"?>
<http-connection-pools xmlns="http://docs.openrepose.org/repose/http-connection-pool/v1.0"${ns}>
  <pool id="default" default="true" http.conn-manager.max-per-route="200"${extra === '' ? '' : ' ' + extra}/>
  <pool id="banana" http.conn-manager.max-per-route="200"/>
</http-connection-pools>`
}

const POOLS_XML = poolsXml()

const forward = (req, reply) => reply.from()

/**
 * The plugin from dist/ (npm run bench builds first) with `xml`, one route
 * `/*` with `routeOptions` (`{ pool }`, `{ cacheKey }`; none: the default pool);
 * keystore and truststore names resolve in `configRoot`. `metrics`: the
 * plugin's option (default: on, the client's default registry).
 */
function pluginCase ({ xml = POOLS_XML, routeOptions = {}, configRoot, metrics } = {}) {
  return async (app, upstream) => {
    const plugin = require('../dist/index.js').default
    await app.register(plugin, { origin: upstream, xml, ...(configRoot === undefined ? {} : { configRoot }), ...(metrics === undefined ? {} : { metrics }) })
    app.get('/*', routeOptions, forward)
  }
}

// How often the plugin-metrics case reads its registry, as a Prometheus server would scrape it (a busy one).
const SCRAPE_MS = 1000

/** The plugin-default setup with metrics on in a registry of its own, scraped every SCRAPE_MS while it runs. */
async function scrapedMetrics (app, upstream) {
  const { Registry } = require('@prometheus-io/client')
  const registry = new Registry()
  await pluginCase({ metrics: { registry } })(app, upstream)
  const scraper = setInterval(() => { registry.metrics().catch(() => {}) }, SCRAPE_MS)
  scraper.unref()
  app.addHook('onClose', async () => { clearInterval(scraper) })
}

/** Bare @fastify/reply-from with the undici options of a default pool: the baseline of the plugin cases. */
async function bareReplyFrom (app, upstream) {
  await app.register(require('@fastify/reply-from'), { base: upstream, undici: DEFAULT_POOL_UNDICI })
  app.get('/*', forward)
}

/**
 * The ceiling of forwarding in Fastify: undici's `dispatch` on a Pool with
 * the default pool's options, the response written straight into the hijacked
 * `reply.raw` (no hooks, no error mapping, no hop-by-hop handling).
 */
async function rawDispatch (app, upstream) {
  const { Pool } = require('undici')
  const pool = new Pool(upstream, DEFAULT_POOL_UNDICI)
  app.addHook('onClose', async () => { await pool.close() })
  app.get('/*', (request, reply) => {
    reply.hijack()
    const out = reply.raw
    pool.dispatch({ path: request.url, method: request.method, headers: request.headers }, {
      onRequestStart () {},
      onResponseStart (_controller, statusCode, headers) { out.writeHead(statusCode, headers) },
      onResponseData (controller, chunk) {
        if (out.write(chunk)) return
        controller.pause()
        out.once('drain', () => controller.resume())
      },
      onResponseEnd () { out.end() },
      onResponseError (_controller, err) { out.destroy(err) }
    })
  })
}

/**
 * The ceiling of forwarding through `reply.send` (Fastify's hooks run): the
 * same dispatch, the body gathered and sent as one buffer, the upstream's
 * headers set on the reply less its connection ones; the handler returns
 * nothing, so Fastify does not wait on the reply.
 */
async function sendDispatch (app, upstream) {
  const { Pool } = require('undici')
  const pool = new Pool(upstream, DEFAULT_POOL_UNDICI)
  app.addHook('onClose', async () => { await pool.close() })
  app.get('/*', (request, reply) => {
    const chunks = []
    let statusCode = 0
    let headers = {}
    pool.dispatch({ path: request.url, method: request.method, headers: request.headers }, {
      onRequestStart () {},
      onResponseStart (_controller, status, upstreamHeaders) {
        statusCode = status
        headers = upstreamHeaders
      },
      onResponseData (_controller, chunk) { chunks.push(chunk) },
      onResponseEnd () {
        for (const name in headers) if (name !== 'connection' && name !== 'keep-alive') reply.header(name, headers[name])
        reply.code(statusCode).send(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks))
      },
      onResponseError (_controller, err) { reply.send(err) }
    })
  })
}

// wrk -c of the https cases (see maxConnections).
const TLS_CONNECTIONS = 16

// The test CA (test/fixtures/tls) signs nginx's certificate at bench start;
// its stores give the https cases their trust.
const TLS_FIXTURES = path.join(__dirname, '..', 'test', 'fixtures', 'tls')

/**
 * One default pool forwarding to https with `keepalive.timeout="1"` (Repose's
 * `connection: close` on every request): each request a new TLS connection.
 * `stores`: its keystore/truststore attributes.
 */
function tlsPoolXml (stores) {
  return `<?xml version="1.0" encoding="UTF-8"?>
<http-connection-pools xmlns="http://docs.openrepose.org/repose/http-connection-pool/v1.0">
  <pool id="default" default="true" http.conn-manager.max-per-route="200" keepalive.timeout="1" ${stores}/>
</http-connection-pools>`
}

/**
 * Bare reply-from over https with the trust of the plugin-tls pool (the test
 * CA only, as undici's connect.ca), every request sent with `reset: true`
 * (`connection: close`, the socket closed after the response) as the pool does
 * with keepalive.timeout 1: reply-from drops a `connection` header, so a
 * one-line interceptor sets it. undici hands connect.ca to tls.connect, which
 * builds a context from it per connection, as the plugin did before issue 12.
 *
 * An undici Pool for the base origin, not reply-from's default Agent: the
 * Agent drops an origin's Pool, and with it the connector's TLS session cache,
 * whenever the origin's last connection closes, which with `connection: close`
 * is after nearly every request; every handshake is then a full one, a cost
 * the plugin's per-origin pools do not have and that has nothing to do with
 * the context (measured: see BENCHMARKS.md, issue 12).
 */
function bareReplyFromTls ({ sharedContext = false } = {}) {
  return async (app, upstream) => {
    const { Pool } = require('undici')
    const ca = require('node:fs').readFileSync(path.join(TLS_FIXTURES, 'ca.pem'), 'latin1')
    const trust = sharedContext ? { secureContext: require('node:tls').createSecureContext({ ca }) } : { ca }
    const pool = new Pool(upstream, { ...DEFAULT_POOL_UNDICI, connect: { ...DEFAULT_POOL_UNDICI.connect, ...trust } })
      .compose((dispatch) => (opts, handler) => dispatch({ ...opts, reset: true }, handler))
    app.addHook('onClose', async () => { await pool.close() })
    await app.register(require('@fastify/reply-from'), { base: upstream, undici: pool })
    app.get('/*', forward)
  }
}

const ROTATION_MS = 1000
// Issue 19 raised issue 3's target (0.95x req/s, 1.1x p99) for the plugin's forwarding.
const ISSUE_19 = { issue: 19, minRpsRatio: 1.3, maxP99Ratio: 1 }

const cases = [
  {
    name: 'direct',
    what: 'wrk straight at nginx: the ceiling of this machine'
  },
  {
    name: 'reply-from',
    what: 'bare @fastify/reply-from, base = upstream, the undici options of a default pool',
    baseline: 'direct',
    setup: bareReplyFrom
  },
  {
    // Issue 5: one hot URL, every request with the same cache key.
    name: 'plugin-cached',
    what: 'the plugin, route { cacheKey: () => \'hot\' } on the default pool (cache.ttl 500)',
    baseline: 'reply-from',
    pool: 'default',
    cached: true,
    target: { issue: 5, minRpsRatio: 3, maxUpstreamRatio: 1 / 50, minConnections: 64 },
    setup: pluginCase({ routeOptions: { cacheKey: () => 'hot' } })
  },
  {
    // Issue 19: the ceiling the plugin's forwarding is read against.
    name: 'raw-dispatch',
    what: 'Fastify + undici Pool.dispatch written straight into the hijacked reply.raw (the default pool\'s undici options)',
    baseline: 'reply-from',
    setup: rawDispatch
  },
  {
    // Issue 19: the ceiling for a path that keeps Fastify's reply handling.
    name: 'send-dispatch',
    what: 'Fastify + undici Pool.dispatch, the body sent as one buffer through reply.send (the default pool\'s undici options)',
    baseline: 'reply-from',
    setup: sendDispatch
  },
  {
    // Issues 3 and 19: a named pool against bare reply-from with the same undici settings.
    name: 'plugin-named',
    what: 'the plugin, same config as plugin-default, route { pool: \'banana\' }',
    baseline: 'reply-from',
    pool: 'banana',
    target: ISSUE_19,
    setup: pluginCase({ routeOptions: { pool: 'banana' } })
  },
  {
    // Issues 3 and 19: the default pool against bare reply-from with the same undici settings.
    name: 'plugin-default',
    what: 'the plugin, origin = upstream, route on the default pool',
    baseline: 'reply-from',
    pool: 'default',
    target: ISSUE_19,
    setup: pluginCase()
  },
  {
    name: 'reply-from-16k',
    what: 'bare reply-from as in reply-from, forwarding nginx\'s 16 KiB JSON body',
    path: '/16k',
    setup: bareReplyFrom
  },
  {
    // Issue 19: a body of one socket read.
    name: 'plugin-16k',
    what: 'plugin-default forwarding nginx\'s 16 KiB JSON body',
    baseline: 'reply-from-16k',
    path: '/16k',
    pool: 'default',
    target: ISSUE_19,
    setup: pluginCase()
  },
  {
    // Issue 19: the ceiling of plugin-16k.
    name: 'raw-dispatch-16k',
    what: 'raw-dispatch forwarding nginx\'s 16 KiB JSON body',
    baseline: 'reply-from-16k',
    path: '/16k',
    setup: rawDispatch
  },
  {
    name: 'reply-from-1m',
    what: 'bare reply-from as in reply-from, forwarding nginx\'s 1 MiB JSON body',
    path: '/1m',
    setup: bareReplyFrom
  },
  {
    // Issue 19: a body of many reads, streamed.
    name: 'plugin-1m',
    what: 'plugin-default forwarding nginx\'s 1 MiB JSON body (streamed)',
    baseline: 'reply-from-1m',
    path: '/1m',
    pool: 'default',
    target: ISSUE_19,
    setup: pluginCase()
  },
  {
    // Issue 19: the ceiling of plugin-1m.
    name: 'raw-dispatch-1m',
    what: 'raw-dispatch forwarding nginx\'s 1 MiB JSON body',
    baseline: 'reply-from-1m',
    path: '/1m',
    setup: rawDispatch
  },
  {
    // Issue 17: the plugin-default config with metrics off: the baseline of plugin-metrics.
    name: 'plugin-metrics-off',
    what: 'plugin-default with the plugin option metrics: false',
    baseline: 'reply-from',
    pool: 'default',
    setup: pluginCase({ metrics: false })
  },
  {
    // Issue 17: metrics on (per-origin hook on every response), scraped every second.
    name: 'plugin-metrics',
    what: `plugin-default with metrics on in a registry of its own, scraped every ${SCRAPE_MS} ms`,
    baseline: 'plugin-metrics-off',
    pool: 'default',
    target: { issue: 17, minRpsRatio: 0.98 },
    setup: scrapedMetrics
  },
  {
    // Issue 7: the plugin-default config plus a lifetime, nothing else.
    name: 'plugin-rotation',
    what: `plugin-default plus x:connection.max-lifetime="${ROTATION_MS}" on the default pool`,
    baseline: 'plugin-default',
    pool: 'default',
    lifetime: ROTATION_MS,
    target: { issue: 7, minRpsRatio: 0.97 },
    setup: pluginCase({ xml: poolsXml(`x:connection.max-lifetime="${ROTATION_MS}"`) })
  },
  {
    // No retries, no breaker, no deadlines: the resilience layer hands each request straight to the pool.
    name: 'plugin-plain',
    what: 'the plugin, default pool with x:retry.max-attempts="1": resilience layer passed through',
    baseline: 'reply-from',
    pool: 'default',
    setup: pluginCase({ xml: poolsXml('x:retry.max-attempts="1"') })
  },
  {
    // Issue 6: retries (default 3), breaker, queue and request deadlines all active.
    name: 'plugin-resilient',
    what: 'the plugin, default pool with retries, x:circuit-breaker.threshold="5", x:queue.timeout and x:request.timeout="30000"',
    baseline: 'plugin-plain',
    pool: 'default',
    target: { issue: 6, minRpsRatio: 0.97 },
    setup: pluginCase({ xml: poolsXml('x:circuit-breaker.threshold="5" x:queue.timeout="30000" x:request.timeout="30000"') })
  },
  {
    // The same server as reply-from in a process of its own: its ratio to
    // reply-from is the noise floor of the run, for reading the targets above.
    name: 'reply-from-again',
    what: 'reply-from again (A/A): the ratio any two identical cases show in this run',
    baseline: 'reply-from',
    setup: bareReplyFrom
  },
  {
    name: 'reply-from-tls',
    what: 'bare reply-from to nginx over https, an undici Pool with the options of reply-from, connect.ca = the test CA, reset (connection: close) on every request',
    https: true,
    connectionPerRequest: true,
    maxConnections: TLS_CONNECTIONS,
    setup: bareReplyFromTls()
  },
  {
    // Issue 12: a truststore; one TLS context per pool instead of one per connection.
    name: 'plugin-tls',
    what: 'the plugin, https, default pool with truststore-filename="truststore.pem" (the test CA) and keepalive.timeout="1"',
    baseline: 'reply-from-tls',
    pool: 'default',
    https: true,
    connectionPerRequest: true,
    maxConnections: TLS_CONNECTIONS,
    target: { issue: 12, minRpsRatio: 1.0 },
    setup: pluginCase({ xml: tlsPoolXml('truststore-filename="truststore.pem" truststore-password="password"'), configRoot: TLS_FIXTURES })
  },
  {
    // Issue 12: a keystore with a trusted entry and no truststore, so Node's
    // ~140 roots are trusted next to it: the set that was parsed per connection.
    name: 'plugin-tls-keystore',
    what: 'the plugin, https, default pool with keystore-filename="client.jks" (trusted entry: the test CA; no truststore) and keepalive.timeout="1"',
    baseline: 'reply-from-tls',
    pool: 'default',
    https: true,
    connectionPerRequest: true,
    maxConnections: TLS_CONNECTIONS,
    target: { issue: 12, minRpsRatio: 1.0 },
    setup: pluginCase({ xml: tlsPoolXml('keystore-filename="client.jks" keystore-password="password" key-password="keypass"'), configRoot: TLS_FIXTURES })
  },
  {
    // No target: how much of the plugin's lead over reply-from-tls is the
    // shared context alone; its CPU per request next to plugin-tls's is the
    // plugin's own cost per new connection.
    name: 'reply-from-tls-context',
    what: 'reply-from-tls given one secureContext (the test CA) for all connections instead of connect.ca',
    baseline: 'reply-from-tls',
    https: true,
    connectionPerRequest: true,
    maxConnections: TLS_CONNECTIONS,
    setup: bareReplyFromTls({ sharedContext: true })
  }
]

module.exports = { cases, DEFAULT_POOL_UNDICI, POOLS_XML, poolsXml, TLS_FIXTURES }
