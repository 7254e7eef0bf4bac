// SPEC "Cache keys (cache.ttl)": a response is kept cache.ttl ms after it
// arrives, then expires whether or not anyone asks again; refreshCache always
// goes upstream and replaces the entry; useCache: false neither reads nor
// writes; cache.ttl="0" disables the cache.
// Timing: TTLs are small (200 ms). "Within" means right after the previous
// call completed; "after" means once the entry's expiry removed it. The TTL's
// arithmetic (from the response, not the request) is unit-tested on a moved
// clock in test/unit/cache.test.ts.
import t from 'tap'
import { BOUND_MS, cacheUpstream, eventually, gatewayApp, numbered, poolsXml, within, type Tap } from '../helpers/cache.js'

const TTL = 200

const XML = poolsXml(`
  <pool id="short" default="true" cache.ttl="${TTL}"/>
  <pool id="long" cache.ttl="10000"/>
  <pool id="off" cache.ttl="0"/>`)

async function pools (t: Tap) {
  const app = await gatewayApp(t, { xml: XML })
  await app.ready()
  return app
}

/** The `n` (upstream request number) of a response's JSON body. */
async function nOf (res: { body: { json: () => Promise<unknown> } }): Promise<number> {
  return (await res.body.json() as { n: number }).n
}

t.test('within cache.ttl the response is served without an upstream request; after it, exactly one request goes upstream', async (t) => {
  const up = await cacheUpstream(t)
  const app = await pools(t)
  const client = app.pools.get('short')
  const url = `${up.origin}/ttl`
  t.equal(await nOf(await client.request(url, { cacheKey: 'k' })), 1)
  t.equal(await nOf(await client.request(url, { cacheKey: 'k' })), 1, 'right after: the cached response')
  t.equal(up.count, 1, 'no second upstream request within the TTL')

  t.ok(await eventually(() => app.pools.stats().short!.cacheEntries === 0, TTL * 10), 'the entry expires')
  const [a, b] = await Promise.all([client.request(url, { cacheKey: 'k' }), client.request(url, { cacheKey: 'k' })])
  t.equal(await nOf(a!), 2, 'after the TTL: a fresh response')
  t.equal(await nOf(b!), 2, 'shared by a concurrent caller')
  t.equal(up.count, 2, 'exactly one more upstream request')
  t.equal(await nOf(await client.request(url, { cacheKey: 'k' })), 2, 'and that one is cached in turn')
  t.equal(up.count, 2)
})

t.test('entries expire even when nobody asks again: cacheEntries and cacheBytes drop to 0', async (t) => {
  const up = await cacheUpstream(t)
  const app = await pools(t)
  const client = app.pools.get('short')
  const res = await client.request(`${up.origin}/expire`, { cacheKey: 'k' })
  const size = Buffer.byteLength(await res.body.text())
  t.equal(app.pools.stats().short!.cacheEntries, 1, 'one entry right after the response')
  t.equal(app.pools.stats().short!.cacheBytes, size, 'holding the body\'s bytes')
  const gone = await eventually(() => app.pools.stats().short!.cacheEntries === 0, TTL * 10)
  t.ok(gone, `cacheEntries is 0 within ${TTL * 10} ms, with no further request`)
  t.equal(app.pools.stats().short!.cacheBytes, 0, 'and cacheBytes with it')
  t.equal(up.count, 1)
})

t.test('refreshCache: true always goes upstream and replaces the entry', async (t) => {
  const up = await cacheUpstream(t)
  const app = await pools(t)
  const client = app.pools.get('long')
  const url = `${up.origin}/refresh`
  t.equal(await nOf(await client.request(url, { cacheKey: 'k' })), 1)
  t.equal(await nOf(await client.request(url, { cacheKey: 'k', refreshCache: true })), 2, 'refresh: a fresh response although one is cached')
  t.equal(up.count, 2, 'refresh went upstream')
  t.equal(await nOf(await client.request(url, { cacheKey: 'k' })), 2, 'the next plain keyed call gets the refreshed response')
  t.equal(await nOf(await client.request(url, { cacheKey: 'k', refreshCache: true })), 3, 'refresh again: upstream again')
  t.equal(await nOf(await client.request(url, { cacheKey: 'k' })), 3)
  t.equal(up.count, 3)
  t.equal(app.pools.stats().long!.cacheEntries, 1, 'one entry for the key')
})

t.test('refreshCache: true goes upstream even while a request for the key is in flight; its response is the one kept', async (t) => {
  const up = await cacheUpstream(t, numbered, true)
  const app = await pools(t)
  const client = app.pools.get('long')
  const url = `${up.origin}/refresh-inflight`
  const plain = client.request(url, { cacheKey: 'k' })
  await within(up.arrived(1), BOUND_MS, 'the plain request reaches the upstream')
  const refresh = client.request(url, { cacheKey: 'k', refreshCache: true })
  await within(up.arrived(2), BOUND_MS, 'the refresh does not wait for the plain request: it goes upstream too')
  up.release()
  t.equal(await nOf(await plain), 1)
  t.equal(await nOf(await refresh), 2)
  t.equal(await nOf(await client.request(url, { cacheKey: 'k' })), 2, 'the refreshed response is the cached one')
  t.equal(up.count, 2)
})

t.test('useCache: false neither reads nor writes the cache, nor joins a request in flight', async (t) => {
  const up = await cacheUpstream(t)
  const app = await pools(t)
  const client = app.pools.get('long')
  const url = `${up.origin}/nocache`
  t.equal(await nOf(await client.request(url, { cacheKey: 'k', useCache: false })), 1)
  t.equal(app.pools.stats().long!.cacheEntries, 0, 'useCache: false wrote nothing')
  t.equal(await nOf(await client.request(url, { cacheKey: 'k' })), 2, 'so a keyed call goes upstream')
  t.equal(await nOf(await client.request(url, { cacheKey: 'k', useCache: false })), 3, 'useCache: false does not read the cached response')
  t.equal(await nOf(await client.request(url, { cacheKey: 'k' })), 2, 'nor replace it')
  t.equal(up.count, 3)

  up.hold()
  const keyed = client.request(url, { cacheKey: 'j' })
  await within(up.arrived(4), BOUND_MS, 'a keyed request for "j" is in flight')
  const concurrent = Array.from({ length: 5 }, () => client.request(url, { cacheKey: 'j', useCache: false }))
  await within(up.arrived(4 + 5), BOUND_MS, 'five useCache: false calls with that key make five upstream requests of their own')
  up.release()
  t.equal(await nOf(await keyed), 4)
  t.same((await Promise.all(concurrent.map(async (p) => await nOf(await p)))).sort(), [5, 6, 7, 8, 9], 'each gets its own response')
  t.equal(await nOf(await client.request(url, { cacheKey: 'j' })), 4, 'the keyed response is the cached one')
  const s = app.pools.stats().long!
  t.equal(s.cacheEntries, 2, 'one entry per key')
  t.same({ misses: s.cacheMisses, hits: s.cacheHits, coalesced: s.cacheCoalesced }, { misses: 2, hits: 2, coalesced: 0 }, 'useCache: false calls are not counted as cache traffic')
})

t.test('cache.ttl="0": every keyed call goes upstream, nothing is kept', async (t) => {
  const up = await cacheUpstream(t)
  const app = await pools(t)
  const client = app.pools.get('off')
  const url = `${up.origin}/off`
  for (let i = 1; i <= 3; i++) t.equal(await nOf(await client.request(url, { cacheKey: 'k' })), i, `sequential call ${i} went upstream`)
  const concurrent = await Promise.all(Array.from({ length: 5 }, () => client.request(url, { cacheKey: 'k' })))
  t.equal(up.count, 8, 'concurrent calls too')
  for (const r of concurrent) await r.body.dump()
  t.equal(app.pools.stats().off!.cacheEntries, 0, 'nothing is cached')
})
