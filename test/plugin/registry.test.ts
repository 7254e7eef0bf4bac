// SPEC "Decorations": fastify.pools (get, has, ids, defaultId, stats) and the
// HttpClient it hands out (id, settings, dispatcher, request), against a real
// loopback upstream.
import Fastify, { type FastifyInstance } from 'fastify'
import { inspect } from 'node:util'
import t from 'tap'
import { request } from 'undici'
import plugin from '../../index.js'
import { BOUND_MS, WARN, closedPort, listenGateway, get, logCapture, poolsXml, upstream, type LogLine, type Tap } from '../helpers/loopback.js'

// File order is neither alphabetical nor default-first.
const XML = poolsXml(`
  <pool id="banana" http.socket.timeout="1234" http.conn-manager.max-per-route="7" x:retry.max-attempts="1">
    <headers><header name="x-pool" value="banana-secret-value"/><header name="x-second" value="two"/></headers>
  </pool>
  <pool id="main" default="true" x:retry.max-attempts="1"><headers><header name="x-pool" value="main"/></headers></pool>
  <pool id="apple" x:retry.max-attempts="1"/>`)

const STAT_KEYS = ['connected', 'errors', 'free', 'pending', 'queued', 'requests', 'running', 'size']

async function build (t: Tap): Promise<{ app: FastifyInstance, logs: LogLine[] }> {
  const logs = logCapture()
  const app = Fastify({ logger: { level: 'warn', stream: logs.stream } })
  t.teardown(async () => { await app.close() })
  await app.register(plugin, { xml: XML })
  await app.ready()
  return { app, logs: logs.lines }
}

t.test('get() with no id, undefined or null gives the default pool\'s client', async (t) => {
  const { app, logs } = await build(t)
  t.equal(app.pools.get().id, 'main')
  t.equal(app.pools.get(undefined).id, 'main')
  t.equal(app.pools.get(null).id, 'main')
  t.equal(app.pools.get('banana').id, 'banana')
  t.equal(app.pools.get('apple').id, 'apple')
  t.equal(logs.filter((l) => l.level >= WARN).length, 0, 'no warning for those')
})

t.test('get(unknown) logs a warning and gives the default pool\'s client', async (t) => {
  const { app, logs } = await build(t)
  const client = app.pools.get('kiwi')
  t.equal(client.id, 'main')
  t.equal(client.settings.default, true)
  const warnings = logs.filter((l) => l.level === WARN)
  t.equal(warnings.length, 1, 'one warning')
  t.match(JSON.stringify(warnings[0]), /kiwi/, 'naming the unknown id')
})

t.test('has(), ids in file order, defaultId', async (t) => {
  const { app } = await build(t)
  t.equal(app.pools.has('banana'), true)
  t.equal(app.pools.has('main'), true)
  t.equal(app.pools.has('apple'), true)
  t.equal(app.pools.has('kiwi'), false)
  t.equal(app.pools.has(''), false)
  t.equal(app.pools.has('constructor'), false, 'no prototype leak')
  t.equal(app.pools.has('BANANA'), false, 'ids are case-sensitive')
  t.same(app.pools.ids, ['banana', 'main', 'apple'])
  t.equal(app.pools.defaultId, 'main')
})

t.test('get(id).settings: the effective values, numbers and booleans as such, secrets masked when printed', async (t) => {
  const { app } = await build(t)
  const banana = app.pools.get('banana').settings
  t.equal(banana.id, 'banana')
  t.equal(banana.default, false)
  t.equal(banana['http.socket.timeout'], 1234)
  t.equal(banana['http.conn-manager.max-per-route'], 7)
  t.equal(banana['http.conn-manager.max-total'], 400, 'defaults are filled in')
  t.equal(banana['retry.max-attempts'], 1)
  t.equal(banana['http.tcp.nodelay'], true)
  t.same(banana.headers.map((h) => ({ name: h.name, value: h.value })), [{ name: 'x-pool', value: 'banana-secret-value' }, { name: 'x-second', value: 'two' }])
  const main = app.pools.get().settings
  t.equal(main.default, true)
  t.equal(main['retry.max-attempts'], 1)
  t.equal(main['http.socket.timeout'], 30000)
  t.equal(app.pools.get('apple').settings['retry.max-attempts'], 1)

  t.notMatch(JSON.stringify(banana), /banana-secret-value/, 'a static header value does not show in JSON')
  t.notMatch(inspect(banana, { depth: 10 }), /banana-secret-value/, 'nor in util.inspect')
  t.match(JSON.stringify(banana), /\*\*\*/)
})

t.test('get(id).dispatcher works as undici.request(url, { dispatcher }) and carries the pool\'s headers', async (t) => {
  const up = await upstream(t)
  const { app } = await build(t)
  const res = await request(`${up.origin}/d?x=1`, { dispatcher: app.pools.get('banana').dispatcher, signal: AbortSignal.timeout(BOUND_MS) })
  t.equal(res.statusCode, 200)
  const body = await res.body.json() as { url: string, headers: Record<string, string> }
  t.equal(body.url, '/d?x=1')
  t.equal(body.headers['x-pool'], 'banana-secret-value')
  t.equal(body.headers['x-second'], 'two')

  const plain = await request(`${up.origin}/d`, { dispatcher: app.pools.get('apple').dispatcher, signal: AbortSignal.timeout(BOUND_MS) })
  const plainBody = await plain.body.json() as { headers: Record<string, string> }
  t.equal(plainBody.headers['x-pool'], undefined, 'another pool\'s header is not sent')
})

t.test('a dispatcher kept across reloads carries each request on the pool\'s current dispatcher; its close() leaves the pool serving', async (t) => {
  const up = await upstream(t)
  const { app } = await build(t)
  const kept = app.pools.get('banana').dispatcher
  const seen = async (): Promise<string | undefined> => {
    const res = await request(`${up.origin}/kept`, { dispatcher: kept, signal: AbortSignal.timeout(BOUND_MS) })
    t.equal(res.statusCode, 200)
    return ((await res.body.json()) as { headers: Record<string, string> }).headers['x-pool']
  }
  t.equal(await seen(), 'banana-secret-value')
  const before = app.pools.entryFor('banana').dispatcher
  // Same ids, banana's header changed: its dispatcher is replaced and the old one closes.
  await app.pools.reload({ xml: XML.replace('banana-secret-value', 'banana-reloaded') })
  t.not(app.pools.entryFor('banana').dispatcher, before, 'the reload replaced banana\'s dispatcher')
  t.equal(app.pools.get('banana').dispatcher, kept, 'get() hands out the same dispatcher object')
  t.equal(await seen(), 'banana-reloaded', 'the kept dispatcher went through the new pool')
  await kept.close()
  await kept.destroy()
  t.equal(await seen(), 'banana-reloaded', 'closing the handed-out dispatcher does not close the pool')
})

t.test('get(id).request(url) resolves to { statusCode, headers, body } and sends the pool\'s headers', async (t) => {
  const up = await upstream(t, (_req, res, seen) => {
    res.writeHead(201, { 'content-type': 'application/json', 'x-upstream': 'yes' })
    res.end(JSON.stringify({ method: seen.method, url: seen.url, headers: seen.headers, body: seen.body }))
  })
  const { app } = await build(t)
  const client = app.pools.get('banana')

  const res = await client.request(`${up.origin}/r`, { signal: AbortSignal.timeout(BOUND_MS) })
  t.equal(res.statusCode, 201)
  t.equal(res.headers['x-upstream'], 'yes')
  const json = await res.body.json() as { method: string, headers: Record<string, string> }
  t.equal(json.method, 'GET')
  t.equal(json.headers['x-pool'], 'banana-secret-value')

  // A client cannot override a pool header; its other headers and the body go through.
  const posted = await client.request(new URL(`${up.origin}/p`), {
    method: 'POST',
    headers: { 'x-pool': 'spoofed', 'x-caller': 'me', 'content-type': 'text/plain' },
    body: 'hello',
    signal: AbortSignal.timeout(BOUND_MS)
  })
  const text = await posted.body.text()
  const echoed = JSON.parse(text) as { method: string, body: string, headers: Record<string, string> }
  t.equal(echoed.method, 'POST')
  t.equal(echoed.body, 'hello')
  t.equal(echoed.headers['x-pool'], 'banana-secret-value')
  t.equal(echoed.headers['x-caller'], 'me')

  // The body is also an ArrayBuffer and async-iterable.
  const buf = await (await client.request(`${up.origin}/b`, { signal: AbortSignal.timeout(BOUND_MS) })).body.arrayBuffer()
  t.ok(buf.byteLength > 0)
  const chunks: Buffer[] = []
  for await (const chunk of (await client.request(`${up.origin}/i`, { signal: AbortSignal.timeout(BOUND_MS) })).body) chunks.push(chunk as Buffer)
  t.match(Buffer.concat(chunks).toString(), /"url":"\/i"/)

  // The cache options are accepted (SPEC: extra options of request()).
  const keyed = await client.request(`${up.origin}/k`, { cacheKey: 'k', useCache: false, signal: AbortSignal.timeout(BOUND_MS) })
  t.equal(keyed.statusCode, 201)
  await keyed.body.text()
})

t.test('stats(): every pool with its counters; requests and errors are counted', async (t) => {
  const up = await upstream(t)
  // The upstream keeps idle connections open for as long as the pool wants them.
  up.server.keepAliveTimeout = 0
  const { app } = await build(t)
  const before = app.pools.stats()
  t.same(Object.keys(before), ['banana', 'main', 'apple'])
  for (const id of app.pools.ids) {
    const s = before[id] as unknown as Record<string, unknown>
    for (const key of STAT_KEYS) t.type(s[key], 'number', `${id}.${key} is a number`)
    t.has(s, { connected: 0, running: 0, pending: 0, queued: 0, requests: 0, errors: 0 }, `${id} is idle`)
  }

  const banana = app.pools.get('banana')
  for (let i = 0; i < 3; i++) await (await banana.request(`${up.origin}/s${i}`, { signal: AbortSignal.timeout(BOUND_MS) })).body.text()
  const refused = await closedPort()
  await t.rejects(banana.request(`http://127.0.0.1:${refused}/`, { signal: AbortSignal.timeout(BOUND_MS) }))

  const after = app.pools.stats()
  t.equal(after.banana!.requests, 4, 'four requests went through banana')
  t.equal(after.banana!.errors, 1, 'one failed')
  // undici may open a second connection when a request follows the previous
  // response's end in the same tick; either way they stay open (keep-alive).
  const { connected, running, pending } = after.banana!
  t.ok(connected >= 1 && connected <= 3, `idle keep-alive connections stay open (${connected})`)
  t.equal(running, 0)
  t.equal(pending, 0)
  t.has(after.main, { requests: 0, errors: 0, connected: 0 }, 'other pools untouched')
  t.has(after.apple, { requests: 0, errors: 0, connected: 0 })
  t.equal(new Set(up.seen.map((s) => s.headers['x-pool'])).size, 1)
})

t.test('stats() counts forwarded requests of a route in the route\'s pool', async (t) => {
  const up = await upstream(t)
  const { app } = await (async () => {
    const logs = logCapture()
    const app = Fastify({ logger: { level: 'warn', stream: logs.stream } })
    await app.register(plugin, { xml: XML, origin: up.origin })
    app.get('/f', { pool: 'apple' }, (_req, reply) => reply.from('/f'))
    return { app }
  })()
  const base = await listenGateway(t, app)
  t.equal((await get(`${base}/f`)).statusCode, 200)
  t.equal((await get(`${base}/f`)).statusCode, 200)
  const stats = app.pools.stats()
  t.equal(stats.apple!.requests, 2)
  t.equal(stats.main!.requests, 0)
  t.equal(stats.banana!.requests, 0)
})
