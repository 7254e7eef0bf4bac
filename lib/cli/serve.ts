import Fastify, { type FastifyInstance } from 'fastify'
import type { Server } from 'node:http'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import plugin from '../../index.js'
import { startDemoOrigin } from './demo-origin.js'

export const EXAMPLE_CONFIG = join(__dirname, '..', '..', '..', 'config', 'http-connection-pool.cfg.xml')

export interface Route { prefix: string, pool: string, upstream: string | undefined }

/** `PREFIX=POOL[@UPSTREAM]`. */
export function parseRoute (spec: string): Route {
  const m = /^(\/[^=]*)=([^@]+)(?:@(.+))?$/.exec(spec)
  if (!m) throw new Error(`--route "${spec}" is not PREFIX=POOL[@UPSTREAM] (PREFIX starts with /)`)
  const upstream = m[3] === undefined ? undefined : new URL(m[3]).origin
  return { prefix: m[1]!.replace(/\/+$/, ''), pool: m[2]!, upstream }
}

export interface ServeOptions { config: string, origin: string | undefined, port: number, host: string, routes: Route[] }

export function parseServeArgs (args: string[]): ServeOptions {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string' },
      origin: { type: 'string' },
      port: { type: 'string', default: '3000' },
      host: { type: 'string', default: '127.0.0.1' },
      route: { type: 'string', multiple: true, default: [] }
    },
    strict: true
  })
  const port = Number(values.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port "${values.port}" is not a port number`)
  return {
    config: values.config ?? EXAMPLE_CONFIG,
    origin: values.origin === undefined ? undefined : new URL(values.origin).origin,
    port,
    host: values.host,
    routes: values.route.map(parseRoute)
  }
}

/** A gateway: each --route prefix forwards through its pool, everything else through the default pool to the origin. */
export async function serve (options: ServeOptions): Promise<{ app: FastifyInstance, url: string, demo: Server | undefined }> {
  const demo = options.origin === undefined ? await startDemoOrigin() : undefined
  const origin = options.origin ?? demo!.url
  const app = Fastify({ logger: { level: 'info' } })
  // Full URLs are forwarded (no reply-from base), so a route may name its own upstream.
  await app.register(plugin, { config: options.config })
  for (const route of options.routes) {
    const target = route.upstream ?? origin
    app.all(`${route.prefix}/*`, { pool: route.pool }, (req, reply) => reply.from(target + req.url))
    if (route.prefix !== '') app.all(route.prefix, { pool: route.pool }, (req, reply) => reply.from(target + req.url))
  }
  app.all('/*', (req, reply) => reply.from(origin + req.url))
  if (demo) app.addHook('onClose', (_app, done) => { demo.server.close(() => done()) })
  const url = await app.listen({ port: options.port, host: options.host })
  app.log.info({ config: options.config, origin, pools: app.pools.ids, routes: options.routes }, `gateway ready at ${url}, forwarding to ${origin}${demo ? ' (bundled demo origin)' : ''}`)
  return { app, url, demo: demo?.server }
}
