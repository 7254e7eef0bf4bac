import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify'

/** What the plugin keeps of a route. Route config survives into `request.routeOptions`; the `pool` option does not. */
export interface RouteMeta {
  url: string
  /** Tells apart declarations of one path (host or version constraints): their cache entries never mix. */
  declaration: number
  pool?: string
  cacheKey?: (request: FastifyRequest) => string | undefined
}

const kRoute = Symbol('fastify-http-pools.route')

/**
 * Records each route's `pool` (or `config.pool`) and `cacheKey`; `ready()`
 * rejects when a pool is not configured. Returns the pools routes use.
 */
export function trackRoutes (fastify: FastifyInstance, has: (id: string) => boolean, ids: () => string[]): () => string[] {
  const declared: Array<RouteMeta & { method: string, pool: string }> = []
  let declarations = 0
  fastify.addHook('onRoute', (route: RouteOptions & { pool?: unknown, cacheKey?: unknown }) => {
    const config = route.config as Record<string | symbol, unknown> | undefined
    const pool = route.pool ?? config?.pool
    const cacheKey = route.cacheKey
    if (pool === undefined && cacheKey === undefined) return
    if (cacheKey !== undefined && typeof cacheKey !== 'function') throw new TypeError(`route ${route.url}: cacheKey must be a function (request) => string | undefined`)
    const meta: RouteMeta = { url: route.url, declaration: ++declarations }
    if (pool !== undefined) meta.pool = String(pool)
    if (cacheKey !== undefined) meta.cacheKey = cacheKey as RouteMeta['cacheKey']
    if (meta.pool !== undefined) declared.push({ ...meta, pool: meta.pool, method: Array.isArray(route.method) ? route.method.join(',') : route.method })
    route.config = { ...config, [kRoute]: meta } as never
  })
  fastify.addHook('onReady', async () => {
    // Fastify declares a HEAD route beside each GET, after it: report each path once, as declared.
    const bad = [...new Map(declared.filter((r) => !has(r.pool)).reverse().map((r) => [`${r.url} ${r.pool}`, r])).values()].reverse()
    if (bad.length === 0) return
    const known = ids().map((id) => `"${id}"`).join(', ')
    throw new Error(bad.map((r) => `route ${r.method} ${r.url} uses pool "${r.pool}", which is not configured (known pools: ${known})`).join('; '))
  })
  return () => declared.map((r) => r.pool)
}

/**
 * The plugin's view of the request's route; undefined for a route with neither
 * pool nor cacheKey. A route declared before the plugin finished loading was
 * not seen by onRoute: its `config.pool` still counts.
 */
export function routeMeta (request: FastifyRequest): RouteMeta | undefined {
  const config = request.routeOptions.config as unknown as Record<string | symbol, unknown>
  const meta = config[kRoute] as RouteMeta | undefined
  if (meta !== undefined || typeof config.pool !== 'string') return meta
  return { url: String(config.url), declaration: 0, pool: config.pool }
}
