import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify'

/** Where a route keeps its pool id: route config survives into `request.routeOptions`, the `pool` option does not. */
export const kPool = Symbol('fastify-http-pools.pool')

interface Declared { method: string, url: string, pool: string }

/** Records each route's `pool` (or `config.pool`); `ready()` rejects when one names no configured pool. */
export function trackRoutePools (fastify: FastifyInstance, has: (id: string) => boolean, ids: () => string[]): void {
  const declared: Declared[] = []
  fastify.addHook('onRoute', (route: RouteOptions & { pool?: unknown }) => {
    const config = route.config as Record<string | symbol, unknown> | undefined
    const pool = route.pool ?? config?.pool
    if (pool === undefined) return
    const method = Array.isArray(route.method) ? route.method.join(',') : route.method
    declared.push({ method, url: route.url, pool: String(pool) })
    route.config = { ...config, [kPool]: String(pool) } as never
  })
  fastify.addHook('onReady', async () => {
    // Fastify declares a HEAD route beside each GET; report each path once.
    const bad = [...new Map(declared.filter((r) => !has(r.pool)).map((r) => [`${r.url} ${r.pool}`, r])).values()]
    if (bad.length === 0) return
    const known = ids().map((id) => `"${id}"`).join(', ')
    throw new Error(bad.map((r) => `route ${r.method} ${r.url} uses pool "${r.pool}", which is not configured (known pools: ${known})`).join('; '))
  })
}

/** The pool id of the request's route; undefined for the default pool. */
export function routePool (request: FastifyRequest): string | undefined {
  return (request.routeOptions.config as unknown as Record<symbol, string | undefined>)[kPool]
}
