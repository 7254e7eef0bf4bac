// SPEC "Decorations" `stats()`: per pool, cache counters that match what
// happened — cacheHits (served from a stored entry), cacheCoalesced (waited
// for a request in flight), cacheMisses (went upstream for the key),
// cacheEntries and cacheBytes (what is held now), request() and forwarded
// routes together; other pools untouched.
import t from 'tap'
import { BOUND_MS, cacheUpstream, call, eventually, gatewayApp, listenClient, numbered, poolsXml, within, type Tap } from '../helpers/cache.js'

const XML = poolsXml(`
  <pool id="a" default="true" cache.ttl="10000"/>
  <pool id="b" cache.ttl="10000"/>
  <pool id="short" cache.ttl="200"/>`)

type Counters = { hits: number, coalesced: number, misses: number, entries: number, bytes: number }

async function setup (t: Tap) {
  const up = await cacheUpstream(t, numbered)
  const app = await gatewayApp(t, { xml: XML, origin: up.origin })
  app.get('/fwd', { pool: 'a', cacheKey: (req) => req.headers.authorization }, (_req, reply) => reply.from())
  const client = await listenClient(t, app)
  const counters = (id: string): Counters => {
    const s = app.pools.stats()[id]!
    return { hits: s.cacheHits, coalesced: s.cacheCoalesced, misses: s.cacheMisses, entries: s.cacheEntries, bytes: s.cacheBytes }
  }
  return { up, app, client, counters }
}

t.test('cache counters of a pool match a small scenario', async (t) => {
  const { up, app, client, counters } = await setup(t)
  const a = app.pools.get('a')
  const zero: Counters = { hits: 0, coalesced: 0, misses: 0, entries: 0, bytes: 0 }
  t.same(counters('a'), zero, 'all zero at first')

  // Three concurrent callers, one key: one miss, two coalesced.
  up.hold()
  const three = Array.from({ length: 3 }, () => a.request(`${up.origin}/one`, { cacheKey: 'one' }))
  await within(up.arrived(1), BOUND_MS, 'the first request reaches the upstream')
  up.release()
  const bodies = await Promise.all((await Promise.all(three)).map(async (r) => await r.body.text()))
  const one = Buffer.byteLength(bodies[0]!)
  t.same(counters('a'), { hits: 0, coalesced: 2, misses: 1, entries: 1, bytes: one }, 'three callers: 1 miss, 2 coalesced, 1 entry')

  // The same key again: a hit.
  await (await a.request(`${up.origin}/one`, { cacheKey: 'one' })).body.dump()
  t.same(counters('a'), { hits: 1, coalesced: 2, misses: 1, entries: 1, bytes: one }, 'again within the TTL: 1 hit')

  // Another key: a miss and a second entry.
  const two = Buffer.byteLength(await (await a.request(`${up.origin}/two`, { cacheKey: 'two' })).body.text())
  t.same(counters('a'), { hits: 1, coalesced: 2, misses: 2, entries: 2, bytes: one + two }, 'another key: 1 more miss, 2 entries')

  // useCache: false and calls without a key are no cache traffic.
  await (await a.request(`${up.origin}/one`, { cacheKey: 'one', useCache: false })).body.dump()
  await (await a.request(`${up.origin}/one`)).body.dump()
  t.same(counters('a'), { hits: 1, coalesced: 2, misses: 2, entries: 2, bytes: one + two }, 'useCache: false and unkeyed calls change nothing')

  // A forwarded route on the same pool counts in the same counters.
  const fwd = await call(client, '/fwd', { headers: { authorization: 'k' } })
  await call(client, '/fwd', { headers: { authorization: 'k' } })
  const three3 = Buffer.byteLength(fwd.text)
  t.same(counters('a'), { hits: 2, coalesced: 2, misses: 3, entries: 3, bytes: one + two + three3 }, 'a forwarded miss then hit')

  t.same(counters('b'), zero, 'pool b is untouched')
  t.equal(up.count, 5, 'upstream requests: /one, /two, useCache: false, unkeyed, forwarded')
})

t.test('cacheBytes after refreshCache counts only the new body, and is 0 once the entry expires',
  async (t) => {
    const { up, app, counters } = await setup(t)
    const short = app.pools.get('short')
    const url = `${up.origin}/refreshed`
    const first = Buffer.byteLength(await (await short.request(url, { cacheKey: 'k' })).body.text())
    t.equal(counters('short').bytes, first, 'one body held')
    const second = Buffer.byteLength(await (await short.request(url, { cacheKey: 'k', refreshCache: true })).body.text())
    t.same({ entries: counters('short').entries, bytes: counters('short').bytes }, { entries: 1, bytes: second }, 'after refresh: one entry, the new body\'s bytes only')
    t.ok(await eventually(() => counters('short').entries === 0, 2000), 'the entry expires')
    t.equal(counters('short').bytes, 0, 'no entries, no bytes')
  })
