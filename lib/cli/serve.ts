import { Registry } from '@prometheus-io/client'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { Server } from 'node:http'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import plugin from '../../index.js'
import { ConfigError, formatProblem } from '../config/errors.js'
import { listenMetrics } from '../metrics/endpoint.js'
import { startDemoOrigin } from './demo-origin.js'
import { PACKAGE_ROOT, StartError, UsageError } from './usage.js'

export const EXAMPLE_CONFIG = join(PACKAGE_ROOT, 'config', 'http-connection-pool.cfg.xml')

export interface Route { prefix: string, pool: string, upstream: string | undefined }

export interface ServeOptions {
  config: string
  origin: string | undefined
  port: number
  host: string
  /** Port of the Prometheus /metrics endpoint; default: port + 1 (any free port when port is 0 or the last one). */
  metricsPort: number | undefined
  routes: Route[]
}

const bad = (message: string): UsageError => new UsageError(message, 'serve')

/** An upstream is an origin: http(s), a host, no path, query or credentials. */
function originOf (option: string, value: string): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw bad(`${option} "${value}" is not a URL (expected http://host[:port] or https://host[:port])`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw bad(`${option} "${value}": the scheme must be http or https, not ${url.protocol.slice(0, -1)}`)
  if (url.username !== '' || url.password !== '') throw bad(`${option}: the URL must not carry credentials`)
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '') throw bad(`${option} "${value}": only scheme://host[:port] is forwarded to; remove the path, query or fragment`)
  return url.origin
}

function portOf (option: string, value: string): number {
  const port = /^\d{1,5}$/.test(value) ? Number(value) : NaN
  if (!(port >= 0 && port <= 65535)) throw bad(`${option} "${value}" is not a port number (0 to 65535)`)
  return port
}

/** `PREFIX=POOL[@UPSTREAM]`. */
export function parseRoute (spec: string): Route {
  const m = /^(\/[^=]*)=([^@]+)(?:@(.+))?$/.exec(spec)
  if (!m) throw bad(`--route "${spec}" is not PREFIX=POOL[@UPSTREAM] (PREFIX starts with /)`)
  return { prefix: m[1]!.replace(/\/+$/, ''), pool: m[2]!, upstream: m[3] === undefined ? undefined : originOf('--route', m[3]) }
}

export function parseServeArgs (args: string[]): ServeOptions {
  let values
  try {
    ({ values } = parseArgs({
      args,
      options: {
        config: { type: 'string' },
        origin: { type: 'string' },
        port: { type: 'string', default: '3000' },
        host: { type: 'string', default: '127.0.0.1' },
        'metrics-port': { type: 'string' },
        route: { type: 'string', multiple: true, default: [] }
      },
      strict: true
    }))
  } catch (err) {
    // node:util's messages name the option; their advice about positionals does not apply.
    throw bad((err as Error).message.split('. ')[0]!.replace(/^Unknown option '(.+)'$/, 'unknown option $1').replace(/^Option '(\S+)(?: <value>)?' argument missing$/, '$1 needs a value'))
  }
  const port = portOf('--port', values.port)
  const metricsPort = values['metrics-port'] === undefined ? undefined : portOf('--metrics-port', values['metrics-port'])
  if (metricsPort === port && port !== 0) throw bad(`--metrics-port ${metricsPort} is --port too; give it a port of its own`)
  if (values.host === '') throw bad('--host is empty')
  const routes = values.route.map(parseRoute)
  const prefixes = new Set<string>()
  for (const r of routes) {
    if (prefixes.has(r.prefix)) throw bad(`--route prefix "${r.prefix || '/'}" is given twice`)
    prefixes.add(r.prefix)
  }
  return {
    config: values.config ?? EXAMPLE_CONFIG,
    origin: values.origin === undefined ? undefined : originOf('--origin', values.origin),
    port,
    host: values.host,
    metricsPort,
    routes
  }
}

/**
 * A request target that is not a path (absolute-form `abc://x/`, `*`) or holds
 * a backslash (`/\host`, which URL parsers read as `//host`) names no
 * resource of the upstream: the client's error, answered before forwarding.
 */
const forwardable = (target: string): boolean => target.startsWith('/') && !target.includes('\\')

function badTarget (reply: FastifyReply): FastifyReply {
  return reply.code(400).send(Object.assign(new Error('the request target must be a path (origin-form)'), { statusCode: 400, code: 'FST_HTTP_POOLS_BAD_TARGET' }))
}

/** Why the gateway could not start, in a sentence and the lines that detail it. */
function startError (err: unknown, options: ServeOptions): StartError {
  if (err instanceof ConfigError) return new StartError(`invalid config ${options.config}`, err.errors.map((p) => formatProblem(p, err.file)))
  const e = err as NodeJS.ErrnoException
  if (e.code === 'EADDRINUSE') return new StartError(`port ${options.port} on ${options.host} is in use`)
  if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') return new StartError(`cannot listen on --host ${options.host}: ${e.code}`)
  if (e.code === 'EACCES') return new StartError(`not allowed to listen on port ${options.port}`)
  return new StartError(e.message)
}

/** A gateway: each --route prefix forwards through its pool, everything else through the default pool to the origin. */
export async function serve (options: ServeOptions): Promise<{ app: FastifyInstance, url: string, metricsUrl: string, demo: Server | undefined }> {
  const app = Fastify({ logger: { level: 'info' } })
  let demo: Awaited<ReturnType<typeof startDemoOrigin>> | undefined
  // The gateway's own registry: its /metrics shows this gateway's pools only.
  const registry = new Registry()
  try {
    // No reply-from base: each route names its upstream per request (getUpstream), and reply-from keeps the URL on it.
    await app.register(plugin, { config: options.config, metrics: { registry } })
    const unknown = options.routes.filter((r) => !app.pools.has(r.pool))
    if (unknown.length > 0) {
      throw new StartError(`--route names a pool that ${options.config} does not define`,
        [...unknown.map((r) => `--route ${r.prefix || '/'}=${r.pool}: no pool "${r.pool}"`), `pools: ${app.pools.ids.map((id) => `"${id}"`).join(', ')}`])
    }
    demo = options.origin === undefined ? await startDemoOrigin() : undefined
    const origin = options.origin ?? demo!.url
    // Bodies go upstream as the raw stream, whatever their type: no parsing, no 415, no re-serialization.
    app.removeAllContentTypeParsers()
    app.addContentTypeParser('*', (_request, payload, done) => { done(null, payload) })
    // An async hook that answers returns the reply, so the route's handler does not run.
    app.addHook('onRequest', async (request, reply) => { if (!forwardable(request.raw.url ?? '')) return badTarget(reply) })
    const to = (upstream: string) => (_request: FastifyRequest, reply: FastifyReply) => reply.from(undefined, { getUpstream: () => upstream })
    for (const route of options.routes) {
      const handler = to(route.upstream ?? origin)
      app.all(`${route.prefix}/*`, { pool: route.pool }, handler)
      if (route.prefix !== '') app.all(route.prefix, { pool: route.pool }, handler)
    }
    if (!options.routes.some((r) => r.prefix === '')) app.all('/*', to(origin))
    if (demo !== undefined) {
      const server = demo.server
      app.addHook('onClose', (_app, done) => { server.close(() => done()) })
    }
    // Before the gateway listens: hooks cannot be added after, and a failed start closes it with the app.
    const metricsPort = options.metricsPort ?? (options.port === 0 || options.port === 65535 ? 0 : options.port + 1)
    const metrics = await listenMetrics(registry, metricsPort, options.host).catch((err: NodeJS.ErrnoException) => {
      throw err.code === 'EADDRINUSE' ? new StartError(`--metrics-port ${metricsPort} on ${options.host} is in use`) : err
    })
    app.addHook('onClose', (_app, done) => { metrics.server.close(() => done()) })
    const url = await app.listen({ port: options.port, host: options.host })
    for (const id of app.pools.ids) {
      const s = app.pools.get(id).settings
      app.log.info({ pool: id, default: s.default }, `pool "${id}"${s.default ? ' (default)' : ''}: max-total ${s['http.conn-manager.max-total']}, max-per-route ${s['http.conn-manager.max-per-route']}, ` +
        `connect timeout ${s['http.connection.timeout']} ms, socket timeout ${s['http.socket.timeout']} ms, ${s['retry.max-attempts']} attempts, ${s.headers.length} static header(s)`)
    }
    for (const route of options.routes) {
      const upstream = route.upstream ?? origin
      app.log.info({ route: `${route.prefix}/*`, pool: route.pool, upstream }, `route ${route.prefix || ''}/* -> pool "${route.pool}" -> ${upstream}`)
    }
    if (!options.routes.some((r) => r.prefix === '')) {
      app.log.info({ route: '/*', pool: app.pools.defaultId, upstream: origin }, `route /* -> pool "${app.pools.defaultId}" (default) -> ${origin}${demo ? ' (bundled demo origin)' : ''}`)
    }
    app.log.info({ url: metrics.url }, `Prometheus metrics at ${metrics.url}`)
    app.log.info({ config: options.config, url }, `gateway ready at ${url}`)
    return { app, url, metricsUrl: metrics.url, demo: demo?.server }
  } catch (err) {
    // Nothing may keep the process alive: a gateway that cannot start exits.
    await app.close().catch(() => {})
    if (demo !== undefined && demo.server.listening) await new Promise((resolve) => demo!.server.close(resolve))
    throw err instanceof StartError ? err : startError(err, options)
  }
}
