// SPEC "Cache keys (cache.ttl)", request() side: concurrent callers with one
// key share one upstream exchange and each gets the same status, headers and
// body, readable on its own; a failed exchange rejects every waiter and caches
// nothing; a caller's AbortSignal ends only that caller's wait.
// The upstream holds its answers until the test releases them, so the callers
// overlap by construction rather than by timing.
import t from 'tap'
import type { Dispatcher } from 'undici'
import { BOUND_MS, cacheUpstream, gatewayApp, numbered, poolsXml, within, type Tap } from '../helpers/cache.js'

// One attempt per request: every upstream request counted below is a caller's.
const XML = poolsXml('<pool id="a" default="true" cache.ttl="10000" x:retry.max-attempts="1"/>')

async function pool (t: Tap, xml = XML) {
  const app = await gatewayApp(t, { xml })
  await app.ready()
  return app
}

type Body = Dispatcher.ResponseData['body']

/** Reads a body in one of four ways; all give back the text. */
const READERS: Array<[string, (b: Body) => Promise<string>]> = [
  ['json()', async (b) => JSON.stringify(await b.json())],
  ['text()', async (b) => await b.text()],
  ['arrayBuffer()', async (b) => Buffer.from(await b.arrayBuffer()).toString()],
  ['async iteration', async (b) => {
    const parts: Buffer[] = []
    for await (const chunk of b) parts.push(Buffer.from(chunk as Buffer))
    return Buffer.concat(parts).toString()
  }]
]

/** A promise's outcome as a value, so a rejection is never left unhandled while the test waits. */
function outcome<T> (p: Promise<T>): Promise<{ ok: true, value: T } | { ok: false, error: any }> {
  return p.then((value) => ({ ok: true as const, value }), (error: unknown) => ({ ok: false as const, error }))
}

t.test('50 concurrent request() calls with one key: one upstream request; all get its status, headers and body, each readable on its own', async (t) => {
  const up = await cacheUpstream(t, numbered, true)
  const app = await pool(t)
  const client = app.pools.get('a')
  const url = `${up.origin}/shared?q=1`
  const calls = Array.from({ length: 50 }, () => client.request(url, { cacheKey: 'k' }))
  await within(up.arrived(1), BOUND_MS, 'the first request reaches the upstream')
  up.release()
  const responses = await within(Promise.all(calls), BOUND_MS, 'every caller gets the response')
  t.equal(up.count, 1, 'the upstream saw exactly one request')

  const expected = JSON.stringify({ n: 1, method: 'GET', url: '/shared?q=1', pool: null })
  // Every caller reads at once, in a mix of the four ways.
  const texts = await Promise.all(responses.map(async (r, i) => await READERS[i % READERS.length]![1](r.body)))
  for (const [i, r] of responses.entries()) {
    t.equal(r.statusCode, 203, `caller ${i}: the upstream's status`)
    t.equal(r.headers['x-custom'], 'shared', `caller ${i}: the upstream's custom header`)
    t.equal(r.headers['x-upstream'], '1', `caller ${i}: from the one upstream request`)
    t.equal(texts[i], expected, `caller ${i}: the whole body via ${READERS[i % READERS.length]![0]}`)
  }

  // Each caller has its own headers object.
  responses[0]!.headers['x-custom'] = 'changed by caller 0'
  t.equal(responses[1]!.headers['x-custom'], 'shared', 'one caller changing its headers does not touch another\'s')

  const s = app.pools.stats().a!
  t.equal(s.cacheMisses, 1, 'one miss (the caller that went upstream)')
  t.equal(s.cacheCoalesced, 49, 'the 49 others waited for it')
  t.equal(s.cacheHits, 0)

  // The stored response is intact after fifty callers consumed their copies.
  const later = await client.request(url, { cacheKey: 'k' })
  t.equal(await later.body.text(), expected, 'a later caller within the TTL gets the whole body again')
  t.equal(later.statusCode, 203)
  t.equal(up.count, 1, 'still one upstream request')
})

t.test('the upstream resets the connection: every waiter rejects, nothing is cached, the next request goes upstream', async (t) => {
  let reset = true
  const up = await cacheUpstream(t, (req, res, a) => {
    if (reset) req.socket.destroy()
    else numbered(req, res, a)
  }, true)
  const app = await pool(t)
  const client = app.pools.get('a')
  const url = `${up.origin}/flaky`
  const calls = Array.from({ length: 10 }, () => outcome(client.request(url, { cacheKey: 'k' })))
  await within(up.arrived(1), BOUND_MS, 'the first request reaches the upstream')
  up.release()
  const results = await within(Promise.all(calls), BOUND_MS, 'every caller settles')
  t.equal(up.count, 1, 'one upstream request for all ten callers')
  t.equal(results.filter((r) => !r.ok).length, 10, 'all ten callers reject')
  const codes = new Set(results.map((r) => r.ok ? 'resolved' : (r.error as { code?: string }).code))
  t.same([...codes], ['UND_ERR_SOCKET'], 'each with the socket error of the failed exchange')
  t.equal(app.pools.stats().a!.cacheEntries, 0, 'nothing is cached')

  reset = false
  const res = await client.request(url, { cacheKey: 'k' })
  t.equal(up.count, 2, 'the next request with the key goes upstream')
  t.equal(res.statusCode, 203, 'and succeeds now that the upstream answers')
  t.same(await res.body.json(), { n: 2, method: 'GET', url: '/flaky', pool: null })
  t.equal(app.pools.stats().a!.cacheEntries, 1, 'that response is cached')
})

t.test('a waiter whose signal aborts mid-wait rejects with an abort error; the others still get the response', async (t) => {
  const up = await cacheUpstream(t, numbered, true)
  const app = await pool(t)
  const client = app.pools.get('a')
  const url = `${up.origin}/abort-waiter`
  const leader = client.request(url, { cacheKey: 'k' })
  const ac = new AbortController()
  const aborted = outcome(client.request(url, { cacheKey: 'k', signal: ac.signal }))
  const others = Array.from({ length: 5 }, () => client.request(url, { cacheKey: 'k' }))
  await within(up.arrived(1), BOUND_MS, 'the first request reaches the upstream')

  ac.abort()
  // The upstream still holds its answer: the waiter must not need it to give up.
  const result = await within(aborted, BOUND_MS, 'the aborted waiter settles while the upstream still holds its answer')
  t.notOk(result.ok, 'the aborted waiter rejects')
  if (!result.ok) t.equal(result.error?.name, 'AbortError', 'with an abort error')

  up.release()
  for (const [i, r] of (await within(Promise.all([leader, ...others]), BOUND_MS, 'the others settle')).entries()) {
    t.equal(r.statusCode, 203, `caller ${i}: status`)
    t.same(await r.body.json(), { n: 1, method: 'GET', url: '/abort-waiter', pool: null }, `caller ${i}: body`)
  }
  t.equal(up.count, 1, 'one upstream request')
})

t.test('the leader aborting does not break the others, and its exchange still fills the cache', async (t) => {
  const up = await cacheUpstream(t, numbered, true)
  const app = await pool(t)
  const client = app.pools.get('a')
  const url = `${up.origin}/abort-leader`
  const ac = new AbortController()
  const leader = outcome(client.request(url, { cacheKey: 'k', signal: ac.signal }))
  const others = Array.from({ length: 5 }, () => client.request(url, { cacheKey: 'k' }))
  await within(up.arrived(1), BOUND_MS, 'the leader\'s request reaches the upstream')

  ac.abort()
  const result = await within(leader, BOUND_MS, 'the aborted leader settles while the upstream still holds its answer')
  t.notOk(result.ok, 'the leader rejects')
  if (!result.ok) t.equal(result.error?.name, 'AbortError', 'with an abort error')

  up.release()
  for (const [i, r] of (await within(Promise.all(others), BOUND_MS, 'the others settle')).entries()) {
    t.equal(r.statusCode, 203, `waiter ${i}: status`)
    t.same(await r.body.json(), { n: 1, method: 'GET', url: '/abort-leader', pool: null }, `waiter ${i}: body`)
  }
  const later = await client.request(url, { cacheKey: 'k' })
  t.same(await later.body.json(), { n: 1, method: 'GET', url: '/abort-leader', pool: null }, 'a later caller gets the cached response')
  t.equal(up.count, 1, 'one upstream request in all')
})

t.test('a waiter that has to make its own request (the shared response was too large) can still abort it',
  async (t) => {
    const big = 'x'.repeat(10 * 1024)
    const up = await cacheUpstream(t, (_req, res, a) => {
      res.setHeader('x-upstream', String(a.n))
      res.end(big)
    }, true)
    const app = await gatewayApp(t, { xml: XML, cacheLimits: { maxBodyBytes: 1024 } })
    await app.ready()
    const client = app.pools.get('a')
    const url = `${up.origin}/big`
    const leader = client.request(url, { cacheKey: 'k' })
    const ac = new AbortController()
    const waiter = outcome(client.request(url, { cacheKey: 'k', signal: ac.signal }))
    await within(up.arrived(1), BOUND_MS, 'the leader\'s request reaches the upstream')
    up.release()
    up.hold() // the waiter's own request, which follows the leader's too-large response, is held
    await within(up.arrived(2), BOUND_MS, 'the waiter makes its own request')
    t.equal((await (await leader).body.text()).length, big.length, 'the leader gets its whole body')

    ac.abort()
    const result = await within(waiter, 1000, 'the aborted waiter settles while the upstream holds its own request').catch((err: Error) => ({ ok: 'pending' as const, error: err }))
    up.release() // whatever happened, let the held request finish before teardown
    t.equal(result.ok, false, 'the waiter rejects once its signal aborts')
    if (result.ok === false) t.equal(result.error?.name, 'AbortError', 'with an abort error')
  })
