import type { FastifyRequest } from 'fastify'
// reply.from() and its options: consumers get them with the plugin's types, without a reply-from import of their own.
import '@fastify/reply-from'
import type { PoolRegistry } from '../lib/registry/registry.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The connection pools of the config (fastify-http-pools). */
    pools: PoolRegistry
  }
  interface RouteShorthandOptions {
    /** Id of the pool that carries this route's `reply.from()`; the default pool when absent. */
    pool?: string
    /** Opt-in coalescing and caching of forwarded GET/HEAD responses with the pool's `cache.ttl`. */
    cacheKey?: (request: FastifyRequest) => string | undefined
  }
  interface FastifyContextConfig {
    /** Same as the route option `pool`. */
    pool?: string
  }
}
