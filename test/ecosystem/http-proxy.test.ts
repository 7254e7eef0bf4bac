// SPEC "Ecosystem" and "Decorations" (httpProxyOptions, dispatcher): an
// @fastify/http-proxy registration spread with app.pools.httpProxyOptions(id)
// forwards through that pool (its static headers, its connections), maps
// failures to the plugin's 502/503/504 and codes, and survives reload() and
// watch. Real http-proxy, real reply-from, real loopback upstreams.
import httpProxy from '@fastify/http-proxy'
import Fastify, { type FastifyInstance } from 'fastify'
import replyFrom from '@fastify/reply-from'
import { writeFileSync } from 'node:fs'
import type { Socket } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { request } from 'undici'
import plugin from '../../index.js'
import { BOUND_MS, WARN, closedPort, get, listenGateway, logCapture, upstream, type LogLine, type Tap, type UpstreamHandler } from '../helpers/loopback.js'
import { waitFor } from '../helpers/wait.js'
import { config, pool } from '../helpers/xml.js'

const ONE_TRY = { 'x:retry.max-attempts': '1' }

const POOLS = (bananaHeader = 'banana'): string => config(
  pool('main', { default: 'true', ...ONE_TRY }, { 'x-pool': 'main' }),
  pool('apple', ONE_TRY, { 'x-pool': 'apple' }),
  pool('banana', ONE_TRY, { 'x-pool': bananaHeader }))

interface Gateway { app: FastifyInstance, url: string, logs: LogLine[] }

/** The plugin, then one http-proxy registration per prefix, each through its pool. */
async function gateway (t: Tap, plugins: Parameters<typeof plugin>[1], proxies: Record<string, { upstream: string, pool: string }>, more?: (app: FastifyInstance) => Promise<void>): Promise<Gateway> {
  const logs = logCapture()
  const app = Fastify({ logger: { level: 'warn', stream: logs.stream } })
  await app.register(plugin, plugins)
  for (const [prefix, { upstream, pool }] of Object.entries(proxies)) {
    await app.register(httpProxy, { upstream, prefix, ...app.pools.httpProxyOptions(pool) })
  }
  await more?.(app)
  const url = await listenGateway(t, app)
  return { app, url, logs: logs.lines }
}

const seenPool = (res: { json: () => any }): string => res.json().headers['x-pool']

t.test('each registration forwards through its own pool: its static headers, its connections', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { xml: POOLS() }, {
    '/a': { upstream: up.origin, pool: 'apple' },
    '/b': { upstream: `${up.origin}/base`, pool: 'banana' }
  })
  const before = gw.app.pools.stats()

  const b = await get(`${gw.url}/b/hello?x=1`, { headers: { 'x-pool': 'spoofed', 'proxy-authorization': 'Basic c2VjcmV0' } })
  t.equal(b.statusCode, 200)
  t.equal(b.json().url, '/base/hello?x=1', 'http-proxy rewrote the prefix onto the upstream path')
  t.equal(seenPool(b), 'banana', 'banana\'s static header, replacing the client\'s')
  t.equal(b.json().headers['proxy-authorization'], undefined, 'proxy-only client headers are dropped')

  const a = await get(`${gw.url}/a/hello`)
  t.equal(seenPool(a), 'apple')

  const after = gw.app.pools.stats()
  t.equal(after.banana!.requests - before.banana!.requests, 1, 'banana carried one exchange')
  t.equal(after.apple!.requests - before.apple!.requests, 1, 'apple carried one exchange')
  t.equal(after.main!.requests, before.main!.requests, 'the default pool carried none')
  t.equal(after.banana!.connected, 1, 'on a connection of banana\'s own, kept open')
  t.equal(after.apple!.connected, 1)
  t.equal(after.main!.connected, 0)

  // Bodies of any content type pass through unchanged (http-proxy hands reply-from the raw stream).
  for (const [type, body] of [['application/octet-stream', '\u0000\u00ff binary'], ['application/json', '{ "spaced":  1 }'], ['application/xml', '<a>1</a>']] as const) {
    const res = await get(`${gw.url}/b/post`, { method: 'POST', headers: { 'content-type': type }, body })
    t.equal(res.statusCode, 200, type)
    t.equal(res.json().body, body, `${type} body unchanged`)
  }
})

t.test('a reload in the middle: the request in flight finishes on the old pool, new ones go through the new one', async (t) => {
  let release: () => void = () => {}
  const held = new Promise<void>((resolve) => { release = resolve })
  const up = await upstream(t, (req, res, seen) => {
    const answer = (): void => { res.setHeader('x-seen', String(seen.headers['x-pool'])); res.end(`${req.url}`) }
    if (req.url === '/slow') held.then(answer, answer)
    else answer()
  })
  // Also the case: http-proxy given the client's dispatcher directly, without httpProxyOptions.
  const gw = await gateway(t, { xml: POOLS() }, { '/b': { upstream: up.origin, pool: 'banana' } }, async (app) => {
    await app.register(httpProxy, { upstream: up.origin, prefix: '/d', undici: app.pools.get('banana').dispatcher })
  })

  const slow = get(`${gw.url}/b/slow`)
  await up.nth(1)
  const old = gw.app.pools.entryFor('banana').dispatcher
  await gw.app.pools.reload({ xml: POOLS('banana-2') })
  t.not(gw.app.pools.entryFor('banana').dispatcher, old, 'the reload replaced banana\'s dispatcher')

  const fresh = await get(`${gw.url}/b/fast`)
  t.equal(fresh.statusCode, 200)
  t.equal(fresh.headers['x-seen'], 'banana-2', 'a new request goes through the new pool')
  const direct = await get(`${gw.url}/d/direct`)
  t.equal(direct.statusCode, 200, 'a registration holding the client\'s dispatcher still works (not "The client is destroyed")')
  t.equal(direct.headers['x-seen'], 'banana-2', 'through the new pool')

  release()
  const res = await slow
  t.equal(res.statusCode, 200, 'the request in flight completed')
  t.equal(res.text, '/slow')
  t.equal(res.headers['x-seen'], 'banana', 'on the pool it started on')
  t.equal(gw.logs.filter((l) => l.level >= WARN).length, 0, 'nothing failed')
})

t.test('watch: an edit of the config file takes effect on the registration, and no request fails meanwhile', async (t) => {
  const up = await upstream(t)
  const file = join(t.testdir({}), 'pools.cfg.xml')
  writeFileSync(file, POOLS('before'))
  const gw = await gateway(t, { config: file, watch: true }, { '/b': { upstream: up.origin, pool: 'banana' } })
  t.equal(seenPool(await get(`${gw.url}/b/x`)), 'before')

  writeFileSync(file, POOLS('after'))
  const statuses = new Set<number>()
  let seen = ''
  const deadline = Date.now() + BOUND_MS
  while (seen !== 'after' && Date.now() < deadline) {
    const res = await get(`${gw.url}/b/x`)
    statuses.add(res.statusCode)
    seen = seenPool(res)
  }
  t.equal(seen, 'after', 'the edited header reached the upstream')
  t.same([...statuses], [200], 'every request while the file changed got 200')
  t.equal(gw.app.pools.stats().banana!.reloads, 1)
})

t.test('failures get the plugin\'s statuses and codes, and a warn line naming the pool', async (t) => {
  const silent: UpstreamHandler = () => {} // never answers
  const hanging = await upstream(t, silent)
  const refused = `http://127.0.0.1:${await closedPort()}`
  const gw = await gateway(t, {
    xml: config(
      pool('main', { default: 'true', ...ONE_TRY }),
      pool('down', { ...ONE_TRY, 'x:circuit-breaker.threshold': '1', 'x:circuit-breaker.reset': '60000' }),
      pool('slow', { ...ONE_TRY, 'http.socket.timeout': '200' }))
  }, {
    '/down': { upstream: refused, pool: 'down' },
    '/slow': { upstream: hanging.origin, pool: 'slow' }
  })

  const unreachable = await get(`${gw.url}/down/x`)
  t.equal(unreachable.statusCode, 502, 'refused: 502')
  t.equal(unreachable.json().code, 'FST_HTTP_POOLS_UPSTREAM_UNREACHABLE')
  t.match(gw.logs.find((l) => l.level === WARN && l.code === 'FST_HTTP_POOLS_UPSTREAM_UNREACHABLE'), { pool: 'down' }, 'the warn line names the pool')

  const open = await get(`${gw.url}/down/x`)
  t.equal(open.statusCode, 503, 'circuit open: 503')
  t.equal(open.json().code, 'FST_HTTP_POOLS_CIRCUIT_OPEN')
  t.ok(Number(open.headers['retry-after']) > 0, 'with Retry-After')

  const timeout = await get(`${gw.url}/slow/x`)
  t.equal(timeout.statusCode, 504, 'socket timeout: 504')
  t.equal(timeout.json().code, 'FST_HTTP_POOLS_SOCKET_TIMEOUT')
  t.equal(gw.app.pools.stats().down!.retries, 0, 'reply-from retried nothing either')
})

t.test('a client that leaves cancels its exchange and counts as a client abort of the pool', async (t) => {
  const hanging = await upstream(t, () => {})
  let closed = 0
  hanging.server.on('connection', (socket: Socket) => socket.on('close', () => { closed++ }))
  const gw = await gateway(t, { xml: POOLS() }, { '/b': { upstream: hanging.origin, pool: 'banana' } })
  const ac = new AbortController()
  const pending = request(`${gw.url}/b/hang`, { signal: ac.signal })
  pending.catch(() => {})
  await hanging.nth(1)
  ac.abort()
  await waitFor(() => gw.app.pools.stats().banana!.clientAborts === 1, BOUND_MS, 'the client abort to be counted')
  await waitFor(() => closed === 1, BOUND_MS, 'the upstream connection of the exchange to close')
  const stats = gw.app.pools.stats().banana!
  t.equal(stats.running, 0, 'nothing left running')
  t.equal(stats.errors, 0, 'not an upstream error')
})

t.test('the pool of a registration is in use: a reload may not remove it; an unknown id is refused at once', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { xml: POOLS() }, { '/b': { upstream: up.origin, pool: 'banana' } })
  await t.rejects(gw.app.pools.reload({ xml: config(pool('main', { default: 'true' }), pool('apple')) }), { errors: [{ pool: 'banana', message: /used by a route/ }] })
  t.equal(seenPool(await get(`${gw.url}/b/x`)), 'banana', 'and it keeps serving')
  t.throws(() => gw.app.pools.httpProxyOptions('kiwi'), /no such pool.*"main", "apple", "banana"/)
})

t.test('an app that registered @fastify/reply-from itself gets an error saying what to do', async (t) => {
  const app = Fastify()
  t.teardown(async () => { await app.close().catch(() => {}) })
  await app.register(replyFrom)
  await t.rejects(async () => { await app.register(plugin) }, /registers @fastify\/reply-from itself.*Remove that registration.*`replyFrom` option/)
})

t.test('@fastify/http-proxy without httpProxyOptions still loads beside the plugin (its own reply-from lives in its own context)', async (t) => {
  const up = await upstream(t)
  const app = Fastify()
  await app.register(plugin, { xml: POOLS() })
  await app.register(httpProxy, { upstream: up.origin, prefix: '/plain' })
  app.get('/pooled', { pool: 'apple' }, (_req, reply) => reply.from(`${up.origin}/pooled`))
  const url = await listenGateway(t, app)
  t.equal((await get(`${url}/plain/x`)).statusCode, 200)
  t.equal(seenPool(await get(`${url}/pooled`)), 'apple', 'and the plugin\'s reply.from still forwards through its pools')
})
