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
// named case differs from the default one only by the route's pool.
const POOLS_XML = `<?xml version="1.0" encoding="UTF-8"?>
<http-connection-pools xmlns="http://docs.openrepose.org/repose/http-connection-pool/v1.0">
  <pool id="default" default="true" http.conn-manager.max-per-route="200"/>
  <pool id="banana" http.conn-manager.max-per-route="200"/>
</http-connection-pools>`

const forward = (req, reply) => reply.from()

/** The plugin from dist/ (npm run bench builds first), one route `/*` on `pool`, or on the default pool. */
function pluginCase (pool) {
  return async (app, upstream) => {
    const plugin = require('../dist/index.js').default
    await app.register(plugin, { origin: upstream, xml: POOLS_XML })
    app.get('/*', pool === undefined ? {} : { pool }, forward)
  }
}

const cases = [
  {
    name: 'direct',
    what: 'wrk straight at nginx: the ceiling of this machine'
  },
  {
    name: 'reply-from',
    what: 'bare @fastify/reply-from, base = upstream, the undici options of a default pool',
    baseline: 'direct',
    setup: async (app, upstream) => {
      await app.register(require('@fastify/reply-from'), { base: upstream, undici: DEFAULT_POOL_UNDICI })
      app.get('/*', forward)
    }
  },
  {
    name: 'plugin-default',
    what: 'the plugin, origin = upstream, route on the default pool',
    baseline: 'reply-from',
    pool: 'default',
    setup: pluginCase(undefined)
  },
  {
    name: 'plugin-named',
    what: 'the plugin, same config, route { pool: \'banana\' }',
    baseline: 'reply-from',
    pool: 'banana',
    setup: pluginCase('banana')
  }
]

module.exports = { cases, DEFAULT_POOL_UNDICI, POOLS_XML }
