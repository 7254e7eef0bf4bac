// SPEC "Cache keys (cache.ttl)": memory is bounded (entry count and body size
// limits, plugin option `cacheLimits`); a response too large to cache is not
// cached, and is not shared either: every caller still gets the whole body.
import t from 'tap'
import type { Dispatcher } from 'undici'
import {
  BOUND_MS, cacheUpstream, call, gatewayApp, listenClient, poolsXml, within, type Answer, type Tap
} from '../helpers/cache.js'

const XML = poolsXml('<pool id="a" default="true" cache.ttl="10000"/>')

/** A body of exactly `size` bytes that starts with the upstream request number: "7:yyyy…". */
function sized (n: number, size: number): string {
  return `${n}:`.padEnd(size, 'y')
}

/** Answers `/<size>` (e.g. `/10240`) with a body of that many bytes, in 1 KiB writes. */
const bySize: Answer = (req, res, a) => {
  const body = Buffer.from(sized(a.n, Number(new URL(req.url!, 'http://x').pathname.slice(1))))
  res.setHeader('x-upstream', String(a.n))
  res.setHeader('content-type', 'text/plain')
  for (let i = 0; i < body.length; i += 1024) res.write(body.subarray(i, i + 1024))
  res.end()
}

async function pool (t: Tap, cacheLimits: Record<string, number>) {
  const app = await gatewayApp(t, { xml: XML, cacheLimits })
  await app.ready()
  return app
}

type Body = Dispatcher.ResponseData['body']
const READERS: Array<(b: Body) => Promise<string>> = [
  async (b) => await b.text(),
  async (b) => Buffer.from(await b.arrayBuffer()).toString(),
  async (b) => {
    const parts: Buffer[] = []
    for await (const chunk of b) parts.push(Buffer.from(chunk as Buffer))
    return Buffer.concat(parts).toString()
  }
]

t.test('maxBodyBytes: a 10 KB response is not cached; sequential keyed calls each go upstream and get the whole body', async (t) => {
  const up = await cacheUpstream(t, bySize)
  const app = await pool(t, { maxBodyBytes: 1024 })
  const client = app.pools.get('a')
  const url = `${up.origin}/10240`
  for (let i = 1; i <= 2; i++) {
    const res = await client.request(url, { cacheKey: 'big' })
    t.equal(await READERS[i % READERS.length]!(res.body), sized(i, 10240), `call ${i}: the whole 10 KB body of upstream request ${i}`)
  }
  t.equal(up.count, 2, 'both calls went upstream')
  const s = app.pools.stats().a!
  t.equal(s.cacheEntries, 0, 'nothing cached')
  t.equal(s.cacheBytes, 0)
})

t.test('maxBodyBytes: concurrent waiters of a too-large response make their own requests and each gets the whole body', async (t) => {
  const up = await cacheUpstream(t, bySize, true)
  const app = await pool(t, { maxBodyBytes: 1024 })
  const client = app.pools.get('a')
  const url = `${up.origin}/10240`
  const calls = Array.from({ length: 6 }, () => client.request(url, { cacheKey: 'big' }))
  await within(up.arrived(1), BOUND_MS, 'the first request reaches the upstream')
  up.release()
  const responses = await within(Promise.all(calls), BOUND_MS, 'every caller gets a response')
  const texts = await Promise.all(responses.map(async (r, i) => await READERS[i % READERS.length]!(r.body)))
  for (const [i, r] of responses.entries()) {
    t.equal(texts[i], sized(Number(r.headers['x-upstream']), 10240), `caller ${i}: the whole body of its own upstream request`)
  }
  t.equal(up.count, 6, 'six callers, six upstream requests')
  t.same(responses.map((r) => Number(r.headers['x-upstream'])).sort((x, y) => x - y), [1, 2, 3, 4, 5, 6], 'no response went to two callers')
  t.equal(app.pools.stats().a!.cacheEntries, 0, 'nothing cached')
})

t.test('maxBodyBytes is inclusive: a body of exactly the limit is cached, one byte more is not', async (t) => {
  const up = await cacheUpstream(t, bySize)
  const app = await pool(t, { maxBodyBytes: 1024 })
  const client = app.pools.get('a')
  for (const size of [1024, 1025]) {
    const url = `${up.origin}/${size}`
    const before = up.count
    const first = await (await client.request(url, { cacheKey: String(size) })).body.text()
    const second = await (await client.request(url, { cacheKey: String(size) })).body.text()
    t.equal(first.length, size, `${size} bytes: whole body`)
    t.equal(second.length, size, `${size} bytes: whole body again`)
    t.equal(up.count - before, size === 1024 ? 1 : 2, size === 1024 ? '1024 bytes: the second call is served from the cache' : '1025 bytes: both calls go upstream')
  }
  t.equal(app.pools.stats().a!.cacheBytes, 1024, 'only the 1024-byte body is held')
})

t.test('maxBodyBytes on a forwarded route: too large to cache, every client still gets the whole body', async (t) => {
  const up = await cacheUpstream(t, bySize, true)
  const gw = await gatewayApp(t, { xml: XML, origin: up.origin, cacheLimits: { maxBodyBytes: 1024 } })
  let keyCalls = 0
  const expected = 4
  gw.get('/10240', { cacheKey: () => { if (++keyCalls === expected) up.release(); return 'big' } }, (_req, reply) => reply.from())
  const client = await listenClient(t, gw)
  const got = await within(Promise.all(Array.from({ length: expected }, () => call(client, '/10240'))), BOUND_MS, 'every client gets a response')
  for (const [i, g] of got.entries()) {
    t.equal(g.statusCode, 200, `client ${i}: status`)
    t.equal(g.text, sized(Number(g.headers['x-upstream']), 10240), `client ${i}: the whole body of its own upstream request`)
  }
  t.equal(up.count, expected, 'one upstream request per client')
  const again = await call(client, '/10240')
  t.equal(again.text.length, 10240, 'a later client gets the whole body')
  t.equal(up.count, expected + 1, 'from a new upstream request: nothing was cached')
})

t.test('maxEntries: 3 — five distinct keys leave at most three entries, the oldest go first', async (t) => {
  const up = await cacheUpstream(t, bySize)
  const app = await pool(t, { maxEntries: 3 })
  const client = app.pools.get('a')
  const url = `${up.origin}/100`
  for (let k = 1; k <= 5; k++) {
    await (await client.request(url, { cacheKey: `k${k}` })).body.dump()
    t.ok(app.pools.stats().a!.cacheEntries <= 3, `after key ${k}: at most 3 entries`)
  }
  t.equal(app.pools.stats().a!.cacheEntries, 3, 'three entries')
  t.equal(up.count, 5)
  for (const k of [5, 4, 3]) t.equal(await (await client.request(url, { cacheKey: `k${k}` })).body.text(), sized(k, 100), `k${k} (one of the newest three) is still cached`)
  t.equal(up.count, 5, 'the newest three were served from the cache')
  await (await client.request(url, { cacheKey: 'k1' })).body.dump()
  t.equal(up.count, 6, 'k1 (the oldest) had been dropped')
  t.equal(app.pools.stats().a!.cacheEntries, 3)
})

t.test('maxBytes: entries together hold at most maxBytes of bodies', async (t) => {
  const up = await cacheUpstream(t, bySize)
  const app = await pool(t, { maxBytes: 2500 })
  const client = app.pools.get('a')
  const url = `${up.origin}/1000`
  for (let k = 1; k <= 3; k++) await (await client.request(url, { cacheKey: `k${k}` })).body.dump()
  const s = app.pools.stats().a!
  t.equal(s.cacheEntries, 2, 'two 1000-byte bodies fit in 2500 bytes, three do not')
  t.equal(s.cacheBytes, 2000)
  await (await client.request(url, { cacheKey: 'k3' })).body.dump()
  await (await client.request(url, { cacheKey: 'k2' })).body.dump()
  t.equal(up.count, 3, 'the newest two are cached')
})

t.test('maxBytes keeps caching after refreshes: a refreshed entry gives its bytes back',
  async (t) => {
    const up = await cacheUpstream(t, bySize)
    const app = await pool(t, { maxBytes: 3000 })
    const client = app.pools.get('a')
    const url = `${up.origin}/1000`
    await (await client.request(url, { cacheKey: 'k' })).body.dump()
    for (let i = 0; i < 3; i++) await (await client.request(url, { cacheKey: 'k', refreshCache: true })).body.dump()
    t.equal(app.pools.stats().a!.cacheBytes, 1000, 'one entry of 1000 bytes after three refreshes')
    await (await client.request(url, { cacheKey: 'other' })).body.dump()
    const before = up.count
    await (await client.request(url, { cacheKey: 'other' })).body.dump()
    t.equal(up.count, before, 'a new key is still cached (2000 bytes of 3000)')
  })

t.test('a pool\'s request() keys and forwarded routes share one bound, not one each', async (t) => {
  const up = await cacheUpstream(t, bySize)
  const app = await gatewayApp(t, { xml: XML, origin: up.origin, cacheLimits: { maxEntries: 3, maxBytes: 2500 } })
  app.get('/:size', { pool: 'a', cacheKey: (req) => String(req.headers['x-key']) }, (_req, reply) => reply.from())
  const gw = await listenClient(t, app)
  const client = app.pools.get('a')
  for (const k of [1, 2]) {
    await (await client.request(`${up.origin}/1000`, { cacheKey: `k${k}` })).body.dump()
    t.equal((await call(gw, '/1000', { headers: { 'x-key': `k${k}` } })).text.length, 1000, `forwarded k${k}`)
  }
  const s = app.pools.stats().a!
  t.equal(s.cacheBytes, 2000, `four 1000-byte responses, at most 2500 bytes kept in all (${s.cacheBytes})`)
  t.equal(s.cacheEntries, 2)
  for (const k of [3, 4, 5]) await (await client.request(`${up.origin}/10`, { cacheKey: `small${k}` })).body.dump()
  t.equal(app.pools.stats().a!.cacheEntries, 3, 'maxEntries 3 in all')
})
