// SPEC "Decorations" / "Cache keys": each pool has its own cache. The same key
// on two pools makes two upstream requests, and each pool keeps serving its
// own response; pool b's static header shows which pool carried a request.
import t from 'tap'
import { BOUND_MS, cacheUpstream, gatewayApp, numbered, poolsXml, within } from '../helpers/cache.js'

const XML = poolsXml(`
  <pool id="a" default="true" cache.ttl="10000"/>
  <pool id="b" cache.ttl="10000"><headers><header name="x-pool" value="b"/></headers></pool>`)

t.test('two pools never share entries: the same key on pool a and pool b makes two upstream requests', async (t) => {
  const up = await cacheUpstream(t)
  const app = await gatewayApp(t, { xml: XML })
  await app.ready()
  const a = app.pools.get('a')
  const b = app.pools.get('b')
  const url = `${up.origin}/same`
  const fromA = { n: 1, method: 'GET', url: '/same', pool: null }
  const fromB = { n: 2, method: 'GET', url: '/same', pool: 'b' }

  t.same(await (await a.request(url, { cacheKey: 'same' })).body.json(), fromA, 'pool a: upstream request 1, without pool b\'s header')
  t.same(await (await b.request(url, { cacheKey: 'same' })).body.json(), fromB, 'pool b: its own upstream request 2, carrying pool b\'s header')
  t.equal(up.count, 2, 'two upstream requests')
  t.same(await (await a.request(url, { cacheKey: 'same' })).body.json(), fromA, 'pool a keeps serving its own response')
  t.same(await (await b.request(url, { cacheKey: 'same' })).body.json(), fromB, 'pool b keeps serving its own response')
  t.equal(up.count, 2, 'both from their caches')
  t.equal(app.pools.stats().a!.cacheEntries, 1)
  t.equal(app.pools.stats().b!.cacheEntries, 1)

  // Concurrently, too: a request in flight on one pool is not joined by the other.
  up.hold()
  const both = [a.request(url, { cacheKey: 'concurrent' }), b.request(url, { cacheKey: 'concurrent' })]
  await within(up.arrived(4), BOUND_MS, 'both pools send their own request')
  up.release()
  const [ra, rb] = await Promise.all(both)
  t.equal((await ra!.body.json() as { pool: unknown }).pool, null, 'pool a\'s response')
  t.equal((await rb!.body.json() as { pool: unknown }).pool, 'b', 'pool b\'s response')
  t.equal(up.count, 4)
})

t.test('an unknown pool id falls back to the default pool and shares its cache (it is the same pool)', async (t) => {
  const up = await cacheUpstream(t, numbered)
  const app = await gatewayApp(t, { xml: XML })
  await app.ready()
  const url = `${up.origin}/fallback`
  await (await app.pools.get('a').request(url, { cacheKey: 'k' })).body.dump()
  await (await app.pools.get('nope').request(url, { cacheKey: 'k' })).body.dump()
  t.equal(up.count, 1, 'the fallback client is the default pool\'s, cache included')
})
