// Type tests (SPEC "Route options", "Decorations"): compiled, never run, by
// `npx tsc -p tsconfig.test.json`. A line that stops compiling, or an
// `@ts-expect-error` that stops erroring, fails the type check.
import { Registry } from '@prometheus-io/client'
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import type { Dispatcher } from 'undici'
import plugin, { ConfigError, fastifyHttpPools, parseConfig, type HttpClient, type PoolSettings } from '../index.js'

/** true only when A and B are the same type. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function expectTrue<T extends true> (_ok: T): void {}
/** Marks values as used. */
function use (..._values: unknown[]): void {}

async function typeTests (): Promise<void> {
  const app = Fastify()
  await app.register(plugin, { xml: '<http-connection-pools/>', origin: 'http://127.0.0.1:3000', replyFrom: {} })
  await app.register(fastifyHttpPools, { config: './pools.cfg.xml', configRoot: '.' })

  // fastify.pools and its clients.
  const client = app.pools.get('x')
  expectTrue<Equal<typeof client, HttpClient>>(true)
  expectTrue<Equal<ReturnType<typeof app.pools.get>, HttpClient>>(true)
  app.pools.get()
  app.pools.get(null)
  const res = await client.request('http://127.0.0.1:3000/x', { method: 'POST', headers: { a: 'b' }, body: 'x', cacheKey: 'k', useCache: true, refreshCache: false })
  expectTrue<Equal<typeof res.statusCode, number>>(true)
  const json: unknown = await res.body.json()
  const text: string = await res.body.text()
  const buf: ArrayBuffer = await res.body.arrayBuffer()
  for await (const chunk of res.body) use(chunk)
  await client.request(new URL('http://127.0.0.1:3000/x'))
  // @ts-expect-error cacheKey is a string
  await client.request('http://127.0.0.1:3000/x', { cacheKey: 1 })
  const dispatcher: Dispatcher = client.dispatcher
  const id: string = client.id
  const has: boolean = app.pools.has('x')
  const ids: string[] = app.pools.ids
  const defaultId: string = app.pools.defaultId
  const stats = app.pools.stats()
  const connected: number | undefined = stats.x?.connected
  const requests: number | undefined = stats.x?.requests
  use(json, text, buf, dispatcher, id, has, ids, defaultId, connected, requests)

  // Settings are typed per attribute.
  const settings = client.settings
  expectTrue<Equal<typeof settings['http.conn-manager.max-total'], number>>(true)
  expectTrue<Equal<typeof settings['retry.max-attempts'], number>>(true)
  expectTrue<Equal<typeof settings.default, boolean>>(true)
  expectTrue<Equal<typeof settings['http.tcp.nodelay'], boolean>>(true)
  const headerName: string | undefined = settings.headers[0]?.name
  const pooled: PoolSettings = settings
  use(headerName, pooled)
  // @ts-expect-error max-total is a number, not a string
  const wrong: string = settings['http.conn-manager.max-total']
  use(wrong)

  // @ts-expect-error fastify.pools has no such member
  use(app.pools.nope)
  // @ts-expect-error get() takes an id, not a number
  app.pools.get(1)

  // Route options.
  const handler = async (_req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => await reply.from('/x')
  app.get('/x', { pool: 'banana' }, handler)
  app.get('/y', { config: { pool: 'x' } }, handler)
  app.post('/z', { pool: 'banana', cacheKey: (req) => req.headers.authorization }, handler)
  app.route({ method: 'GET', url: '/r', pool: 'banana', handler })
  app.get('/n', {
    // @ts-expect-error pool is a string
    pool: 123
  }, handler)
  app.get('/m', {
    config: {
      // @ts-expect-error config.pool is a string
      pool: 123
    }
  }, handler)
  app.get('/k', {
    // @ts-expect-error cacheKey returns a string or undefined
    cacheKey: () => 1
  }, handler)

  // Plugin options.
  // @ts-expect-error origin is a string
  await app.register(plugin, { origin: 1 })
  await app.register(plugin, { metrics: false })
  await app.register(plugin, { metrics: { registry: new Registry() } })
  await app.register(plugin, { metrics: {} })
  // @ts-expect-error metrics is false or { registry }
  await app.register(plugin, { metrics: true })
  // @ts-expect-error the registry is a @prometheus-io/client Registry
  await app.register(plugin, { metrics: { registry: {} } })

  // Named exports.
  const parsed = parseConfig('<http-connection-pools/>', { configRoot: '.' })
  const poolIds: string[] = parsed.pools.map((p) => p.id)
  const parsedDefault: string = parsed.defaultId
  const err = new ConfigError([{ message: 'm', line: 1, pool: 'p', attribute: 'a' }])
  const problems: ReadonlyArray<{ message: string, line?: number, pool?: string, attribute?: string }> = err.errors
  use(poolIds, parsedDefault, problems)
}

export { typeTests }
