'use strict'
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
 * `/*` with `routeOptions` (`{ pool }`, `{ cacheKey }`; none: the default pool).
 */
function pluginCase ({ xml = POOLS_XML, routeOptions = {} } = {}) {
  return async (app, upstream) => {
    const plugin = require('../dist/index.js').default
    await app.register(plugin, { origin: upstream, xml })
    app.get('/*', routeOptions, forward)
  }
}

/** Bare @fastify/reply-from with the undici options of a default pool: the baseline of the plugin cases. */
async function bareReplyFrom (app, upstream) {
  await app.register(require('@fastify/reply-from'), { base: upstream, undici: DEFAULT_POOL_UNDICI })
  app.get('/*', forward)
}

const ROTATION_MS = 1000
const ISSUE_3 = { issue: 3, minRpsRatio: 0.95, maxP99Ratio: 1.1 }

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
    // Issue 3: a named pool against bare reply-from with the same undici settings.
    name: 'plugin-named',
    what: 'the plugin, same config as plugin-default, route { pool: \'banana\' }',
    baseline: 'reply-from',
    pool: 'banana',
    target: ISSUE_3,
    setup: pluginCase({ routeOptions: { pool: 'banana' } })
  },
  {
    // Issue 3: the default pool against bare reply-from with the same undici settings.
    name: 'plugin-default',
    what: 'the plugin, origin = upstream, route on the default pool',
    baseline: 'reply-from',
    pool: 'default',
    target: ISSUE_3,
    setup: pluginCase()
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
  }
]

module.exports = { cases, DEFAULT_POOL_UNDICI, POOLS_XML, poolsXml }
