// Issue 6 C: the retry policy (SPEC "Extensions" x:retry.*, "Which failures
// are retried"), through a real gateway and through pools.get(id).request(),
// against the loopback fault server. Attempts are counted where they land: at
// the upstream, and in the pool's stats.
import t from 'tap'
import { performance } from 'node:perf_hooks'
import { faultServer, httpDateAhead, refusedPort, type FaultServer } from '../helpers/fault-server.js'
import { BOUND_MS, config, gateway, pool, since, type Gateway, type Tap } from '../helpers/resilience.js'

const FAST = { 'x:retry.base-delay': 20, 'x:retry.max-delay': 2000 }
const XML = config(
  // Retry settings left at their defaults but the waits.
  pool('p', { default: 'true', ...FAST }),
  pool('post', { ...FAST, 'x:retry.methods': 'GET,POST' }),
  pool('only503', { ...FAST, 'x:retry.statuses': '503' }),
  pool('backoff', { 'x:retry.base-delay': 100, 'x:retry.max-delay': 2000, 'x:retry.max-attempts': 3 }),
  pool('single', { ...FAST, 'x:retry.max-attempts': 1 })
)

const BUSY = { status: 503, body: 'busy' }
const JSON_BODY = { method: 'POST' as const, headers: { 'content-type': 'application/json' }, body: '{"order":42}' }

async function setup (t: Tap): Promise<{ gw: Gateway, up: FaultServer }> {
  return { gw: await gateway(t, XML), up: await faultServer(t) }
}

/** Requests the upstream received since `from` (an earlier `up.count`), once pool `id` has settled. */
async function attemptsSince (gw: Gateway, id: string, up: FaultServer, from: number): Promise<number> {
  await gw.settled(id)
  return up.count - from
}

t.test('POST is never retried unless x:retry.methods lists it', async (t) => {
  const { gw, up } = await setup(t)

  t.test('default methods: a POST that gets a 503 gets it back after one attempt', async (t) => {
    up.serve(BUSY, 'ok')
    const from = up.count
    const res = await gw.forward('p', `${up.origin}/orders`, JSON_BODY)
    t.equal(res.statusCode, 503)
    t.equal(res.text, 'busy', 'the upstream\'s own 503')
    t.equal(await attemptsSince(gw, 'p', up, from), 1, 'one attempt')
  })

  t.test('default methods: a POST whose connection is reset after it was written fails with 502 after one attempt', async (t) => {
    up.serve('reset-before-headers', 'ok')
    const from = up.count
    const res = await gw.forward('p', `${up.origin}/orders`, JSON_BODY)
    t.equal(res.statusCode, 502)
    t.equal(res.json().code, 'FST_HTTP_POOLS_UPSTREAM_RESET')
    t.equal(await attemptsSince(gw, 'p', up, from), 1, 'one attempt: the order may have been taken')
  })

  t.test('default methods: PATCH is not retried either', async (t) => {
    up.serve(BUSY, 'ok')
    const from = up.count
    const res = await gw.forward('p', `${up.origin}/orders/1`, { ...JSON_BODY, method: 'PATCH' })
    t.equal(res.statusCode, 503)
    t.equal(await attemptsSince(gw, 'p', up, from), 1)
  })

  t.test('default methods: a POST sent on a reused keep-alive connection that the server closes is not retried', async (t) => {
    up.serve('keepalive-race', 'ok')
    t.equal((await gw.forward('p', `${up.origin}/prime`)).statusCode, 200, 'a GET leaves an idle keep-alive connection')
    await gw.settled('p')
    const from = up.count
    const res = await gw.forward('p', `${up.origin}/orders`, JSON_BODY)
    t.equal(res.statusCode, 502, 'the closed connection goes back as 502')
    t.equal(await attemptsSince(gw, 'p', up, from), 1, 'one attempt')
    t.ok(up.arrivals.at(-1)!.killed, 'the one the server closed')
  })

  t.test('a POST whose connection could not be made is retried: nothing was sent', async (t) => {
    const port = await refusedPort()
    const before = gw.stats('p').requests
    const res = await gw.forward('p', `http://127.0.0.1:${port}/orders`, JSON_BODY)
    t.equal(res.statusCode, 502)
    t.equal(res.json().code, 'FST_HTTP_POOLS_UPSTREAM_UNREACHABLE')
    await gw.settled('p')
    t.equal(gw.stats('p').requests - before, 3, 'three connect attempts')
  })

  t.test('x:retry.methods="GET,POST": a POST is retried on 503, the same body every time', async (t) => {
    up.serve(BUSY, BUSY, 'ok')
    const from = up.count
    const res = await gw.forward('post', `${up.origin}/orders`, JSON_BODY)
    t.equal(res.statusCode, 200)
    t.match(res.text, /^ok \d+$/)
    t.equal(await attemptsSince(gw, 'post', up, from), 3, 'three attempts')
    const sent = up.arrivals.slice(from)
    t.same(sent.map((a) => a.method), ['POST', 'POST', 'POST'])
    t.same(sent.map((a) => a.body.toString()), ['{"order":42}', '{"order":42}', '{"order":42}'], 'the body is replayed as it was')
  })

  t.test('x:retry.methods="GET,POST": a POST is retried after a reset', async (t) => {
    up.serve('reset-before-headers', 'ok')
    const from = up.count
    const res = await gw.forward('post', `${up.origin}/orders`, JSON_BODY)
    t.equal(res.statusCode, 200)
    t.equal(await attemptsSince(gw, 'post', up, from), 2)
    t.equal(up.arrivals.at(-1)!.body.toString(), '{"order":42}')
  })
})

t.test('statuses not in x:retry.statuses are not retried', async (t) => {
  const { gw, up } = await setup(t)
  for (const status of [404, 501]) {
    up.serve({ status, body: `s${status}` }, 'ok')
    const from = up.count
    const res = await gw.forward('p', `${up.origin}/s`)
    t.equal(res.statusCode, status, `${status} goes back as it is`)
    t.equal(res.text, `s${status}`)
    t.equal(await attemptsSince(gw, 'p', up, from), 1, `${status}: one attempt (not in the default 408,429,500,502,503,504)`)
  }
  // The default list retries 500; a pool listing only 503 does not.
  up.serve({ status: 500, body: 'oops' }, 'ok')
  let from = up.count
  let res = await gw.forward('p', `${up.origin}/s`)
  t.equal(res.statusCode, 200, 'default statuses: 500 is retried')
  t.equal(await attemptsSince(gw, 'p', up, from), 2)

  up.serve({ status: 500, body: 'oops' }, 'ok')
  from = up.count
  res = await gw.forward('only503', `${up.origin}/s`)
  t.equal(res.statusCode, 500, 'x:retry.statuses="503": 500 goes back as it is')
  t.equal(res.text, 'oops')
  t.equal(await attemptsSince(gw, 'only503', up, from), 1)

  up.serve(BUSY, 'ok')
  from = up.count
  res = await gw.forward('only503', `${up.origin}/s`)
  t.equal(res.statusCode, 200, 'x:retry.statuses="503": 503 is retried')
  t.equal(await attemptsSince(gw, 'only503', up, from), 2)
})

t.test('backoff: with base-delay 100 and 3 attempts the waits are random(0.8, 1.0) * 100 * 2^(k-1)', async (t) => {
  const { gw, up } = await setup(t)
  up.serve(BUSY)
  const before = gw.stats('backoff')
  const from = up.count
  const res = await gw.forward('backoff', `${up.origin}/b`)
  t.equal(res.statusCode, 503, 'the last 503 goes back when the attempts are used up')
  t.equal(res.text, 'busy')
  t.equal(await attemptsSince(gw, 'backoff', up, from), 3, 'three attempts')
  const [a1, a2, a3] = up.arrivals.slice(from).map((a) => a.at) as [number, number, number]
  const w1 = a2 - a1
  const w2 = a3 - a2
  t.ok(w1 >= 0.8 * 100, `first wait ≥ 80 ms (${Math.round(w1)})`)
  t.ok(w2 >= 0.8 * 200, `second wait ≥ 160 ms (${Math.round(w2)})`)
  t.ok(w1 + w2 >= 0.8 * (100 + 200), `total wait ≥ 0.8 * (100 + 200) ms (${Math.round(w1 + w2)})`)
  // Upper bounds with a generous margin for a loaded machine: the waits are 100 and 200 ms at most.
  t.ok(w1 + w2 < 300 + 1500, `total wait well under 1.8 s (${Math.round(w1 + w2)})`)
  t.equal(gw.stats('backoff').retries - before.retries, 2, 'stats: two retries')
  t.equal(gw.stats('backoff').requests - before.requests, 3, 'stats: three upstream exchanges')
})

t.test('a Retry-After longer than x:retry.max-delay: the response goes back as it is, after one attempt', async (t) => {
  const { gw, up } = await setup(t)
  up.serve({ status: 503, headers: { 'retry-after': '5' }, body: 'later' }, 'ok')
  let from = up.count
  let res = await gw.forward('p', `${up.origin}/ra`)
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '5', 'with its Retry-After header')
  t.equal(res.text, 'later')
  t.ok(res.elapsed < 1000, `at once (${Math.round(res.elapsed)} ms)`)
  t.equal(await attemptsSince(gw, 'p', up, from), 1)

  // The same for a 429 whose HTTP-date is further ahead than max-delay (2 s).
  const date = httpDateAhead(10)
  up.serve({ status: 429, headers: { 'retry-after': date }, body: 'slow down' }, 'ok')
  from = up.count
  res = await gw.forward('p', `${up.origin}/ra`)
  t.equal(res.statusCode, 429)
  t.equal(res.headers['retry-after'], date)
  t.equal(await attemptsSince(gw, 'p', up, from), 1)
})

t.test('a streamed request body is never retried', async (t) => {
  const { gw, up } = await setup(t)
  const stream = { method: 'PUT' as const, headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from('streamed bytes') }

  up.serve('reset-before-headers', 'ok')
  let from = up.count
  let res = await gw.forward('p', `${up.origin}/blob`, stream)
  t.equal(res.statusCode, 502, 'PUT is a retry method, but its body was a stream: the reset goes back as 502')
  t.equal(await attemptsSince(gw, 'p', up, from), 1, 'one attempt')
  t.equal(up.arrivals.at(-1)!.body.toString(), 'streamed bytes', 'the stream did reach the upstream')

  up.serve(BUSY, 'ok')
  from = up.count
  res = await gw.forward('p', `${up.origin}/blob`, stream)
  t.equal(res.statusCode, 503, 'a retryable status goes back as it is')
  t.equal(await attemptsSince(gw, 'p', up, from), 1)

  // The control: the same PUT with a parsed (JSON) body is replayable, so it is retried.
  up.serve('reset-before-headers', 'ok')
  from = up.count
  res = await gw.forward('p', `${up.origin}/blob`, { ...JSON_BODY, method: 'PUT' })
  t.equal(res.statusCode, 200, 'a buffered body is retried')
  t.equal(await attemptsSince(gw, 'p', up, from), 2)
})

t.test('reply-from\'s own retries do not stack on the pool\'s', async (t) => {
  const { gw, up } = await setup(t)
  const zero = { status: 503, headers: { 'retry-after': '0' }, body: 'busy' }

  // reply-from alone would retry a GET's 503 up to ten times.
  up.serve(zero, 'ok')
  let from = up.count
  let res = await gw.forward('single', `${up.origin}/z`)
  t.equal(res.statusCode, 503, 'x:retry.max-attempts="1": the 503 goes back')
  t.equal(await attemptsSince(gw, 'single', up, from), 1, 'exactly one attempt')

  up.serve(zero)
  from = up.count
  res = await gw.forward('p', `${up.origin}/z`)
  t.equal(res.statusCode, 503)
  t.equal(await attemptsSince(gw, 'p', up, from), 3, 'default x:retry.max-attempts: exactly three attempts, not more')

  // Nothing comes later either: the next request is the next arrival.
  up.serve('ok')
  from = up.count
  res = await gw.forward('p', `${up.origin}/z`)
  t.equal(res.statusCode, 200)
  t.equal(up.count - from, 1)
})

t.test('pools.get(id).request() gets the same retries', async (t) => {
  const { gw, up } = await setup(t)
  const call = async (id: string, path: string, options: { method?: 'GET' | 'POST', body?: string } = {}) => {
    const start = performance.now()
    const res = await gw.app.pools.get(id).request(`${up.origin}${path}`, { ...options, signal: AbortSignal.timeout(BOUND_MS) })
    return { statusCode: res.statusCode, headers: res.headers, text: await res.body.text(), elapsed: since(start) }
  }

  up.serve('reset-before-headers', 'close-mid-headers', 'ok')
  let from = up.count
  let res = await call('p', '/r')
  t.equal(res.statusCode, 200, 'a GET is retried after failures after the write')
  t.equal(await attemptsSince(gw, 'p', up, from), 3)

  up.serve('503-retry-after-1', 'ok')
  from = up.count
  res = await call('p', '/r')
  t.equal(res.statusCode, 200, 'a 503 with Retry-After: 1 is retried')
  t.ok(res.elapsed >= 800 && res.elapsed < 5000, `after about a second (${Math.round(res.elapsed)} ms)`)
  t.equal(await attemptsSince(gw, 'p', up, from), 2)

  up.serve(BUSY, 'ok')
  from = up.count
  res = await call('p', '/r', { method: 'POST', body: 'x' })
  t.equal(res.statusCode, 503, 'a POST is not retried')
  t.equal(await attemptsSince(gw, 'p', up, from), 1)

  up.serve(BUSY, 'ok')
  from = up.count
  res = await call('post', '/r', { method: 'POST', body: 'x' })
  t.equal(res.statusCode, 200, 'unless the pool lists POST')
  t.equal(await attemptsSince(gw, 'post', up, from), 2)
  t.same(up.arrivals.slice(from).map((a) => a.body.toString()), ['x', 'x'])

  up.serve({ status: 404, body: 'nope' }, 'ok')
  from = up.count
  res = await call('p', '/r')
  t.equal(res.statusCode, 404, 'a status outside x:retry.statuses is not retried')
  t.equal(await attemptsSince(gw, 'p', up, from), 1)

  const port = await refusedPort()
  const before = gw.stats('p')
  const err = await gw.app.pools.get('p').request(`http://127.0.0.1:${port}/r`, { signal: AbortSignal.timeout(BOUND_MS) }).then(() => undefined, (e: Error & { code?: string }) => e)
  t.equal(err?.code, 'ECONNREFUSED', 'a refused connection rejects with the undici error')
  await gw.settled('p')
  t.equal(gw.stats('p').requests - before.requests, 3, 'after three attempts')
  t.equal(gw.stats('p').retries - before.retries, 2)
})
