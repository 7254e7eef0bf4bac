// SPEC "Route options" `cacheKey` and "Cache keys (cache.ttl)", forwarded side:
// `app.get('/x', { cacheKey, pool }, (req, reply) => reply.from())` coalesces
// and caches GET/HEAD responses per key; entries are kept apart by method and
// route declaration (two routes of one path with different constraints too)
// as well as by the key, and never mix with request() keys. Routes
// without cacheKey, and POST, are never cached. Real HTTP all the way: a
// listening gateway, an undici client, a loopback upstream.
import type { FastifyRequest } from 'fastify'
import t from 'tap'
import { BOUND_MS, cacheUpstream, call, gatewayApp, listenClient, numbered, poolsXml, within, type Got, type Tap } from '../helpers/cache.js'

// One attempt per request: every upstream request counted below is a client's.
const XML = poolsXml(`
  <pool id="a" default="true" cache.ttl="10000" x:retry.max-attempts="1"/>
  <pool id="b" cache.ttl="10000" x:retry.max-attempts="1"/>`)

/**
 * A gateway in front of a held upstream. Routes: GET /x, GET /y and POST /x
 * keyed by the Authorization header, GET /plain with no key, all on pool a.
 * `releaseAfter(n)`: the upstream answers once the key function has run n more
 * times, i.e. once n more requests have reached the cache.
 */
async function setup (t: Tap) {
  const up = await cacheUpstream(t, numbered, true)
  const app = await gatewayApp(t, { xml: XML, origin: up.origin })
  let keyCalls = 0
  let releaseAt = Infinity
  const byAuth = (req: FastifyRequest): string | undefined => {
    if (++keyCalls === releaseAt) up.release()
    return req.headers.authorization
  }
  app.get('/x', { cacheKey: byAuth, pool: 'a' }, (_req, reply) => reply.from())
  app.get('/y', { cacheKey: byAuth, pool: 'a' }, (_req, reply) => reply.from())
  app.post('/x', { cacheKey: byAuth, pool: 'a' }, (_req, reply) => reply.from())
  app.get('/plain', { pool: 'a' }, (_req, reply) => reply.from())
  const client = await listenClient(t, app)
  return {
    up,
    app,
    client,
    releaseAfter: (n: number) => { up.hold(); releaseAt = keyCalls + n },
    get keyCalls () { return keyCalls }
  }
}

const auth = (key: string) => ({ headers: { authorization: key } })
const nOf = (g: Got): number => g.json().n

t.test('50 concurrent gateway requests with one key: the upstream sees one; every client gets its status, headers and body', async (t) => {
  const gw = await setup(t)
  gw.releaseAfter(50)
  const got = await within(Promise.all(Array.from({ length: 50 }, () => call(gw.client, '/x?v=1', auth('k')))), BOUND_MS, 'every client gets a response')
  t.equal(gw.up.count, 1, 'the upstream saw exactly one request')
  const body = JSON.stringify({ n: 1, method: 'GET', url: '/x?v=1', pool: null })
  for (const [i, g] of got.entries()) {
    t.equal(g.statusCode, 203, `client ${i}: the upstream's status`)
    t.equal(g.headers['x-custom'], 'shared', `client ${i}: the upstream's custom header`)
    t.equal(g.headers['x-upstream'], '1', `client ${i}: from the one upstream request`)
    t.match(g.headers['content-type'], /^application\/json/, `client ${i}: content-type`)
    t.equal(g.text, body, `client ${i}: the whole body`)
  }
  const s = gw.app.pools.stats().a!
  t.same({ misses: s.cacheMisses, coalesced: s.cacheCoalesced, hits: s.cacheHits, entries: s.cacheEntries }, { misses: 1, coalesced: 49, hits: 0, entries: 1 })

  const later = await call(gw.client, '/x?v=1', auth('k'))
  t.equal(later.text, body, 'a later client within the TTL gets the cached response')
  t.equal(later.statusCode, 203)
  t.equal(gw.up.count, 1)
})

t.test('a route without cacheKey caches nothing', async (t) => {
  const gw = await setup(t)
  gw.up.hold()
  const concurrent = Array.from({ length: 5 }, () => call(gw.client, '/plain', auth('k')))
  await within(gw.up.arrived(5), BOUND_MS, 'five concurrent requests make five upstream requests')
  gw.up.release()
  t.same((await Promise.all(concurrent)).map(nOf).sort(), [1, 2, 3, 4, 5], 'each client gets its own response')
  t.equal(nOf(await call(gw.client, '/plain', auth('k'))), 6, 'a later request goes upstream too')
  const s = gw.app.pools.stats().a!
  t.same({ misses: s.cacheMisses, coalesced: s.cacheCoalesced, hits: s.cacheHits, entries: s.cacheEntries }, { misses: 0, coalesced: 0, hits: 0, entries: 0 })
})

t.test('different keys are separate entries; a key function returning undefined caches nothing', async (t) => {
  const gw = await setup(t)
  gw.up.release()
  t.equal(nOf(await call(gw.client, '/x', auth('alice'))), 1)
  t.equal(nOf(await call(gw.client, '/x', auth('bob'))), 2, 'another key goes upstream')
  t.equal(nOf(await call(gw.client, '/x', auth('alice'))), 1, 'alice\'s response is still alice\'s')
  t.equal(nOf(await call(gw.client, '/x', auth('bob'))), 2, 'bob\'s is bob\'s')
  t.equal(gw.up.count, 2)
  t.equal(gw.app.pools.stats().a!.cacheEntries, 2, 'one entry per key')

  t.equal(nOf(await call(gw.client, '/x')), 3, 'no Authorization: the key is undefined, the request goes upstream')
  t.equal(nOf(await call(gw.client, '/x')), 4, 'and is not cached')
  t.equal(gw.app.pools.stats().a!.cacheEntries, 2)
})

t.test('POST is never cached, even on a route with cacheKey', async (t) => {
  const gw = await setup(t)
  gw.up.release()
  t.equal(nOf(await call(gw.client, '/x', { method: 'POST', ...auth('k') })), 1)
  t.equal(nOf(await call(gw.client, '/x', { method: 'POST', ...auth('k') })), 2, 'the second POST goes upstream')
  gw.up.hold()
  const concurrent = Array.from({ length: 3 }, () => call(gw.client, '/x', { method: 'POST', ...auth('k') }))
  await within(gw.up.arrived(5), BOUND_MS, 'three concurrent POSTs make three upstream requests')
  gw.up.release()
  const got = await Promise.all(concurrent)
  t.same(got.map(nOf).sort(), [3, 4, 5])
  t.ok(got.every((g) => g.json().method === 'POST'), 'each reached the upstream as a POST')
  t.equal(gw.app.pools.stats().a!.cacheEntries, 0, 'nothing cached')
})

t.test('GET and HEAD of one route and key are kept apart', async (t) => {
  const gw = await setup(t)
  gw.up.release()
  const get = await call(gw.client, '/x', auth('k'))
  t.equal(nOf(get), 1)
  const head = await call(gw.client, '/x', { method: 'HEAD', ...auth('k') })
  t.equal(head.statusCode, 203)
  t.equal(head.headers['x-upstream'], '2', 'HEAD went upstream instead of taking the cached GET response')
  t.equal(gw.up.arrivals[1]!.method, 'HEAD', 'as a HEAD')
  t.equal(head.text, '', 'with no body')
  const head2 = await call(gw.client, '/x', { method: 'HEAD', ...auth('k') })
  t.equal(head2.headers['x-upstream'], '2', 'a second HEAD is served from the cache')
  const get2 = await call(gw.client, '/x', auth('k'))
  t.equal(get2.text, get.text, 'GET still gets its whole cached body')
  t.equal(gw.up.count, 2)
})

t.test('keys of different routes never mix, even when the key function returns the same string', async (t) => {
  const gw = await setup(t)
  gw.up.release()
  const x = await call(gw.client, '/x', auth('same'))
  const y = await call(gw.client, '/y', auth('same'))
  t.same(x.json(), { n: 1, method: 'GET', url: '/x', pool: null })
  t.same(y.json(), { n: 2, method: 'GET', url: '/y', pool: null }, '/y gets /y\'s response, from its own upstream request')
  t.equal(nOf(await call(gw.client, '/x', auth('same'))), 1, '/x keeps its entry')
  t.equal(nOf(await call(gw.client, '/y', auth('same'))), 2, '/y keeps its entry')
  t.equal(gw.up.count, 2)

  // Concurrently too: a request in flight on /x is not joined by one on /y.
  gw.releaseAfter(2)
  const both = await within(Promise.all([call(gw.client, '/x', auth('both')), call(gw.client, '/y', auth('both'))]), BOUND_MS, 'both respond')
  t.same(both.map((g) => g.json().url), ['/x', '/y'])
  t.equal(gw.up.count, 4)
})

t.test('forwarded keys never mix with request() keys on the same pool', async (t) => {
  const gw = await setup(t)
  gw.up.release()
  const client = gw.app.pools.get('a')
  t.equal(nOf(await call(gw.client, '/x', auth('k'))), 1, 'forwarded GET /x with key "k" is cached')
  for (const key of ['k', 'GET /x k']) {
    const before = gw.up.count
    const res = await client.request(`${gw.up.origin}/x`, { cacheKey: key })
    t.equal((await res.body.json() as { n: number }).n, before + 1, `request() with key ${JSON.stringify(key)} goes upstream`)
  }
  // The other way round: a request() entry is not served to a forwarded route.
  await (await client.request(`${gw.up.origin}/y`, { cacheKey: 'GET /y k2' })).body.dump()
  await (await client.request(`${gw.up.origin}/y`, { cacheKey: 'k2' })).body.dump()
  const before = gw.up.count
  t.equal(nOf(await call(gw.client, '/y', auth('k2'))), before + 1, 'forwarded GET /y with key "k2" goes upstream')
  t.equal(nOf(await call(gw.client, '/x', auth('k'))), 1, 'and GET /x still has its own entry')
})

t.test('the upstream resets the connection: every waiting client gets 502, nothing is cached, the next request goes upstream', async (t) => {
  let reset = true
  const gw = await setup(t)
  gw.up.answer = (req, res, a) => {
    if (reset) req.socket.destroy()
    else numbered(req, res, a)
  }
  gw.releaseAfter(10)
  const got = await within(Promise.all(Array.from({ length: 10 }, () => call(gw.client, '/x', auth('k')))), BOUND_MS, 'every client gets a response')
  t.same([...new Set(got.map((g) => g.statusCode))], [502], 'all ten clients get 502')
  t.equal(gw.up.count, 1, 'from one upstream request')
  t.equal(gw.app.pools.stats().a!.cacheEntries, 0, 'nothing cached')
  reset = false
  const next = await call(gw.client, '/x', auth('k'))
  t.equal(next.statusCode, 203, 'the next request goes upstream and succeeds')
  t.equal(gw.up.count, 2)
})

t.test('two declarations of one path (host constraints), same pool and key: each gets its own upstream\'s response', async (t) => {
  const upA = await cacheUpstream(t, (_req, res) => { res.end('private to a.example') })
  const upB = await cacheUpstream(t, (_req, res) => { res.end('private to b.example') })
  const app = await gatewayApp(t, { xml: XML })
  const sameKey = (): string => 'k'
  app.get('/catalog', { constraints: { host: 'a.example' }, pool: 'a', cacheKey: sameKey }, (_req, reply) => reply.from(`${upA.origin}/catalog`))
  app.get('/catalog', { constraints: { host: 'b.example' }, pool: 'a', cacheKey: sameKey }, (_req, reply) => reply.from(`${upB.origin}/catalog`))
  const client = await listenClient(t, app)
  const a = await call(client, '/catalog', { headers: { host: 'a.example' } })
  const b = await call(client, '/catalog', { headers: { host: 'b.example' } })
  t.equal(a.text, 'private to a.example')
  t.equal(b.text, 'private to b.example', 'host b never gets host a\'s response')
  t.same([upA.count, upB.count], [1, 1], 'each upstream was asked')
  t.equal((await call(client, '/catalog', { headers: { host: 'a.example' } })).text, 'private to a.example', 'each route keeps its own entry')
  t.same([upA.count, upB.count], [1, 1], 'from the cache')
})
