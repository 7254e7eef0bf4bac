// SPEC "Route options" and "Forwarding": a route's `pool` (or `config.pool`)
// picks the pool that carries its reply.from(); routes without one use the
// default pool; `origin` is reply-from's base; an unknown pool fails ready().
// Each pool sets its own static header, so the upstream can tell which pool
// carried a request.
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import plugin from '../../index.js'
import { get, listenGateway, poolsXml, upstream } from '../helpers/loopback.js'

// `main` is the default but not the first pool, so "default" is not confused with "first".
const XML = poolsXml(`
  <pool id="banana"><headers><header name="x-banana" value="yes"/></headers></pool>
  <pool id="main" default="true"><headers><header name="x-main" value="yes"/></headers></pool>
  <pool id="apple"><headers><header name="x-apple" value="yes"/></headers></pool>`)

/** Which pools' headers reached the upstream. */
function poolsOf (headers: Record<string, unknown>): string[] {
  return ['banana', 'main', 'apple'].filter((id) => headers[`x-${id}`] !== undefined)
}

async function gateway (origin?: string): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(plugin, { xml: XML, ...(origin !== undefined ? { origin } : {}) })
  return app
}

t.test('a route with `pool` forwards through that pool; a route without it through the default pool', async (t) => {
  const up = await upstream(t)
  const app = await gateway(up.origin)
  app.get('/banana', { pool: 'banana' }, (_req, reply) => reply.from('/banana'))
  app.get('/plain', (_req, reply) => reply.from('/plain'))
  const base = await listenGateway(t, app)

  const banana = await get(`${base}/banana`)
  t.equal(banana.statusCode, 200)
  t.same(poolsOf(banana.json().headers), ['banana'], 'only banana\'s header reached the upstream')

  const plain = await get(`${base}/plain`)
  t.equal(plain.statusCode, 200)
  t.same(poolsOf(plain.json().headers), ['main'], 'the default pool (main), not banana nor the first pool')

  // A client cannot pass itself off as another pool: the pool's header replaces the client's.
  const spoof = await get(`${base}/plain`, { headers: { 'x-main': 'client' } })
  t.equal(spoof.json().headers['x-main'], 'yes')
  t.same(up.seen.map((s) => s.url), ['/banana', '/plain', '/plain'])
})

t.test('`config: { pool }` selects the pool as well', async (t) => {
  const up = await upstream(t)
  const app = await gateway(up.origin)
  app.get('/c', { config: { pool: 'banana' } }, (_req, reply) => reply.from('/c'))
  app.post('/c', { config: { pool: 'apple' } }, (_req, reply) => reply.from('/c'))
  const base = await listenGateway(t, app)

  t.same(poolsOf((await get(`${base}/c`)).json().headers), ['banana'])
  const posted = await get(`${base}/c`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' })
  t.equal(posted.statusCode, 200)
  t.same(poolsOf(posted.json().headers), ['apple'])
  t.equal(posted.json().body, '{"a":1}', 'the body is forwarded')
})

t.test('routes of a plugin registered after the pools, and under a prefix, keep their pool', async (t) => {
  const up = await upstream(t)
  const app = await gateway(up.origin)
  await app.register(async (child) => {
    child.get('/x', { pool: 'apple' }, (_req, reply) => reply.from('/x'))
    child.get('/y', (_req, reply) => reply.from('/y'))
  }, { prefix: '/child' })
  const base = await listenGateway(t, app)

  t.same(poolsOf((await get(`${base}/child/x`)).json().headers), ['apple'])
  t.same(poolsOf((await get(`${base}/child/y`)).json().headers), ['main'])
})

t.test('reply.from() after an await in an async handler still uses the route\'s pool', async (t) => {
  const up = await upstream(t)
  const app = await gateway(up.origin)
  app.get('/late', { pool: 'banana' }, async (_req, reply) => {
    await new Promise((resolve) => setImmediate(resolve))
    await new Promise((resolve) => setTimeout(resolve, 1))
    return reply.from('/late')
  })
  const base = await listenGateway(t, app)

  const res = await get(`${base}/late`)
  t.equal(res.statusCode, 200)
  t.same(poolsOf(res.json().headers), ['banana'])
})

t.test('concurrent requests on routes of different pools do not mix', async (t) => {
  // Gateway side: each handler waits until the other request is inside its
  // handler too, so both reply.from() calls interleave with the other request.
  // Upstream side: no response is sent before both requests have arrived.
  const held: Array<() => void> = []
  const up = await upstream(t, (_req, res, seen) => {
    held.push(() => res.end(JSON.stringify({ headers: seen.headers })))
    if (held.length === 2) for (const send of held) send()
  })
  const app = await gateway(up.origin)
  let inside = 0
  let release: () => void = () => {}
  let both = new Promise<void>((resolve) => { release = resolve })
  const handler = (path: string) => async (_req: unknown, reply: { from: (s: string) => unknown }) => {
    if (++inside === 2) release()
    await both
    return reply.from(path)
  }
  app.get('/b', { pool: 'banana' }, handler('/b'))
  app.get('/a', { pool: 'apple' }, handler('/a'))
  app.get('/d', handler('/d'))
  const base = await listenGateway(t, app)

  const [b, a] = await Promise.all([get(`${base}/b`), get(`${base}/a`)])
  t.same(poolsOf(b.json().headers), ['banana'])
  t.same(poolsOf(a.json().headers), ['apple'])

  // And a default-pool route beside a pooled one.
  held.length = 0
  inside = 0
  both = new Promise<void>((resolve) => { release = resolve })
  const [d, b2] = await Promise.all([get(`${base}/d`), get(`${base}/b`)])
  t.same(poolsOf(d.json().headers), ['main'])
  t.same(poolsOf(b2.json().headers), ['banana'])
})

// Fastify runs onRoute hooks when a route is declared and keeps no unknown
// option, so a top-level `pool` needs `await app.register(plugin)` first (as
// README says); `config.pool` is read from the route's config at request time.
t.test('a route declared before the plugin has loaded keeps its config.pool', async (t) => {
  const up = await upstream(t)
  const app = Fastify()
  app.register(plugin, { xml: XML, origin: up.origin })
  app.get('/y', { config: { pool: 'apple' } }, (_req, reply) => reply.from('/y'))
  const base = await listenGateway(t, app)
  t.same(poolsOf((await get(`${base}/y`)).json().headers), ['apple'])
})

t.test('`origin` is reply-from\'s base', async (t) => {
  const up = await upstream(t)
  const other = await upstream(t)
  const app = await gateway(up.origin)
  app.get('/same/*', { pool: 'banana' }, (_req, reply) => reply.from())
  app.get('/relative', { pool: 'banana' }, (_req, reply) => reply.from('/elsewhere/path?q=2'))
  app.get('/full', (_req, reply) => reply.from(`${up.origin}/full-on-origin`))
  app.get('/foreign', (_req, reply) => reply.from(`${other.origin}/foreign`))
  const base = await listenGateway(t, app)

  const same = await get(`${base}/same/a/b?x=1`)
  t.equal(same.statusCode, 200)
  t.equal(same.json().url, '/same/a/b?x=1', 'reply.from() with no source: the request\'s URL on the origin')
  t.same(poolsOf(same.json().headers), ['banana'])

  const relative = await get(`${base}/relative`)
  t.equal(relative.json().url, '/elsewhere/path?q=2', 'a relative source goes to the origin')
  t.same(poolsOf(relative.json().headers), ['banana'])

  const full = await get(`${base}/full`)
  t.equal(full.json().url, '/full-on-origin', 'a full URL on the origin is fine')
  t.same(poolsOf(full.json().headers), ['main'])

  // reply-from's rule: with a base, a full URL must be on it.
  const foreign = await get(`${base}/foreign`)
  t.ok(foreign.statusCode >= 500, `a URL off the origin is refused (${foreign.statusCode})`)
  t.equal(other.seen.length, 0, 'and never reaches the other host')
  t.equal(up.seen.length, 3)
})

t.test('without `origin`, reply.from(url) reaches any host through the route\'s pool', async (t) => {
  const one = await upstream(t)
  const two = await upstream(t)
  const app = await gateway()
  app.get('/one', { pool: 'banana' }, (_req, reply) => reply.from(`${one.origin}/path/one?k=v`))
  app.get('/two', { pool: 'banana' }, (_req, reply) => reply.from(`${two.origin}/path/two`))
  app.get('/plain', (_req, reply) => reply.from(`${two.origin}/plain`))
  const base = await listenGateway(t, app)

  const r1 = await get(`${base}/one`)
  t.equal(r1.statusCode, 200)
  t.equal(r1.json().url, '/path/one?k=v')
  t.same(poolsOf(r1.json().headers), ['banana'])
  t.equal(r1.json().headers.host, `127.0.0.1:${one.port}`)

  const r2 = await get(`${base}/two`)
  t.equal(r2.json().url, '/path/two')
  t.same(poolsOf(r2.json().headers), ['banana'])
  t.equal(r2.json().headers.host, `127.0.0.1:${two.port}`)

  const r3 = await get(`${base}/plain`)
  t.same(poolsOf(r3.json().headers), ['main'])
  t.same([one.seen.length, two.seen.length], [1, 2])
})

t.test('a route naming an unknown pool: declaring it is fine, ready() rejects naming the route and the known pools', async (t) => {
  const app = await gateway()
  t.teardown(async () => { await app.close() })
  t.doesNotThrow(() => {
    app.get('/ok', { pool: 'banana' }, (_req, reply) => reply.from('http://127.0.0.1:1/'))
    app.get('/x', { pool: 'nope' }, (_req, reply) => reply.from('http://127.0.0.1:1/'))
  })
  const err = await app.ready().then(() => undefined, (e: Error) => e)
  t.ok(err instanceof Error, 'ready() rejects')
  t.match(err?.message, /route (GET|HEAD) \/x\b/, 'names the route: method and url')
  t.match(err?.message, /nope/, 'names the unknown id')
  for (const id of ['banana', 'main', 'apple']) t.match(err?.message, new RegExp(`\\b${id}\\b`), `lists the known pool ${id}`)
  t.notMatch(err?.message, /\/ok\b/, 'does not blame a valid route')
})

t.test('the unknown-pool error names the method the route was declared with', async (t) => {
  const app = await gateway()
  t.teardown(async () => { await app.close() })
  app.get('/x', { pool: 'nope' }, (_req, reply) => reply.from('http://127.0.0.1:1/'))
  await t.rejects(async () => { await app.ready() }, /route GET \/x\b/)
})

t.test('an unknown `config.pool` fails ready() too, naming method and url', async (t) => {
  const app = await gateway()
  t.teardown(async () => { await app.close() })
  app.post('/orders/:id', { config: { pool: 'kiwi' } }, (_req, reply) => reply.from('http://127.0.0.1:1/'))
  await t.rejects(async () => { await app.ready() }, /POST \/orders\/:id.*kiwi.*banana.*main.*apple/)
})
