// Issue 6 E: x:queue.timeout and x:request.timeout (SPEC "Extensions",
// "Which failures are retried", "Forwarding errors"), through a real gateway
// to the loopback fault server, with the stats counters they move.
import t from 'tap'
import { blackHole, faultServer } from '../helpers/fault-server.js'
import { BOUND_MS, config, gateway, pool, type Tap } from '../helpers/resilience.js'
import { performance } from 'node:perf_hooks'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

const QUEUE = 200
const DEADLINE = 600

const XML = config(
  // One connection in all: a second request can only wait for the first one's (and as many may wait as come).
  pool('q', { default: 'true', 'http.conn-manager.max-total': 1, 'http.conn-manager.max-per-route': 1, 'x:queue.timeout': QUEUE, 'x:queue.max-pending': 0, 'x:retry.base-delay': 20 }),
  // Five attempts, 100 ms base delay: the deadline comes while attempts are left.
  pool('d', { 'x:request.timeout': DEADLINE, 'x:retry.max-attempts': 5, 'x:retry.base-delay': 100, 'x:retry.max-delay': 2000 }),
  // A connect that cannot complete, slower than the queue timeout.
  pool('qc', { 'x:queue.timeout': QUEUE, 'http.connection.timeout': 1000, 'x:retry.max-attempts': 1 })
)

/** V8's garbage collector, for a heap measurement that counts only what is still held. */
function collector (): () => void {
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
}

/** A promise and the function that settles it. */
function gate (): { wait: Promise<void>, open: () => void } {
  let open!: () => void
  const wait = new Promise<void>((resolve) => { open = resolve })
  return { wait, open }
}

/** Pool `q`'s only connection, held by a first request until `first.open()`. */
async function holdOnlyConnection (t: Tap) {
  const gw = await gateway(t, XML)
  const up = await faultServer(t)
  const first = gate()
  up.serve({ status: 200, body: 'first', until: first.wait }, 'ok')
  const holding = gw.forward('q', `${up.origin}/slow`)
  await up.arrived(1)
  return { gw, up, first, holding }
}

t.test('x:queue.timeout: a request that waits longer for the only connection gets 503 FST_HTTP_POOLS_QUEUE_TIMEOUT, never retried', async (t) => {
  const { gw, up, first, holding } = await holdOnlyConnection(t)
  t.equal(gw.stats('q').running, 1, 'the first request holds the only connection')

  const res = await gw.forward('q', `${up.origin}/queued`)
  t.equal(res.statusCode, 503)
  const body = res.json()
  t.equal(body.code, 'FST_HTTP_POOLS_QUEUE_TIMEOUT')
  t.equal(body.statusCode, 503)
  t.ok(res.elapsed >= 0.8 * QUEUE && res.elapsed < QUEUE + 2000, `after about x:queue.timeout (${Math.round(res.elapsed)} ms for ${QUEUE})`)
  const s = gw.stats('q')
  t.equal(s.queueTimeouts, 1, 'stats: queueTimeouts')
  t.equal(s.retries, 0, 'stats: not retried')
  t.equal(up.count, 1, 'the queued request never reached the upstream')

  first.open()
  const done = await holding
  t.equal(done.statusCode, 200, 'the first request completes')
  t.equal(done.text, 'first')
  await gw.settled('q')
  t.equal(gw.stats('q').pending, 0, 'nothing left pending')

  // The timed-out request is not sent later either: the next one is the second arrival.
  const next = await gw.forward('q', `${up.origin}/next`)
  t.equal(next.statusCode, 200)
  t.equal(up.count, 2)
  t.same(up.arrivals.map((a) => a.path.split('?')[0]), ['/slow', '/next'])
  t.equal(gw.stats('q').retries, 0)
})

// SPEC keepalive.timeout 0: an idle connection is kept until the server closes it.

t.test('x:queue.timeout: the request given up on does not take the freed connection down with it', async (t) => {
  const { gw, up, first, holding } = await holdOnlyConnection(t)
  t.equal((await gw.forward('q', `${up.origin}/queued`)).statusCode, 503)
  first.open()
  t.equal((await holding).statusCode, 200)
  await gw.settled('q')
  for (let i = 0; i < 3; i++) t.equal((await gw.forward('q', `${up.origin}/next`)).statusCode, 200)
  t.equal(up.connections, 1, `the first request's keep-alive connection serves the next ones (${up.connections} connection(s) opened)`)
  t.same(up.arrivals.map((a) => a.conn), [1, 1, 1, 1], 'every request on connection 1')
  t.equal(gw.stats('q').errors, 0, 'no upstream exchange failed')
})

t.test('x:queue.timeout through pools.get(id).request(): rejects with FST_HTTP_POOLS_QUEUE_TIMEOUT', async (t) => {
  const gw = await gateway(t, XML)
  const up = await faultServer(t)
  const first = gate()
  up.serve({ status: 200, until: first.wait }, 'ok')
  const client = gw.app.pools.get('q')
  const holding = client.request(`${up.origin}/slow`, { signal: AbortSignal.timeout(BOUND_MS) })
  await up.arrived(1)
  const start = performance.now()
  const err = await client.request(`${up.origin}/queued`, { signal: AbortSignal.timeout(BOUND_MS) }).then(() => undefined, (e: Error & { code?: string }) => e)
  const elapsed = performance.now() - start
  t.equal(err?.code, 'FST_HTTP_POOLS_QUEUE_TIMEOUT')
  t.ok(elapsed >= 0.8 * QUEUE && elapsed < QUEUE + 2000, `after about x:queue.timeout (${Math.round(elapsed)} ms)`)
  first.open()
  await (await holding).body.dump()
  await gw.settled('q')
  t.equal(up.count, 1)
})

t.test('x:queue.timeout against a stuck origin: 1500 requests get their 503 and leave nothing behind', async (t) => {
  const { gw, up, first, holding } = await holdOnlyConnection(t)
  const gc = collector()
  gc()
  const heapBefore = process.memoryUsage().heapUsed
  const N = 1500
  const results = await Promise.all(Array.from({ length: N }, async () => await gw.app.pools.get('q')
    .request(`${up.origin}/queued`, { signal: AbortSignal.timeout(BOUND_MS) }).then(() => 'sent', (e: { code?: string }) => e.code)))
  t.equal(results.filter((c) => c === 'FST_HTTP_POOLS_QUEUE_TIMEOUT').length, N, 'every one timed out in the queue')
  const s = gw.stats('q')
  t.equal(s.pending, 0, 'none is left pending')
  t.equal(s.queued, 0, 'none is left queued')
  t.equal(s.queueTimeouts, N)
  results.length = 0
  gc()
  const grown = process.memoryUsage().heapUsed - heapBefore
  t.ok(grown < 4 * 1024 * 1024, `the heap keeps nothing of them (${Math.round(grown / 1024)} KiB)`)
  first.open()
  t.equal((await holding).statusCode, 200)
  t.equal(up.count, 1, 'none was sent later')
})

// x:queue.timeout counts only the wait for room in the pool: a request that
// has room is sent, and connecting is http.connection.timeout's business.

t.test('x:queue.timeout does not cut a connect short: a connect that cannot complete is a connect timeout (504)', async (t) => {
  const gw = await gateway(t, XML)
  const hole = await blackHole(t)
  const res = await gw.forward('qc', `${hole.origin}/x`)
  t.equal(res.statusCode, 504, 'no request was waiting for a busy connection: the connection could not be made')
  t.equal(res.json().code, 'FST_HTTP_POOLS_CONNECT_TIMEOUT', 'code')
  t.ok(res.elapsed >= 0.9 * 1000, `after http.connection.timeout, not x:queue.timeout (${Math.round(res.elapsed)} ms)`)
  t.equal(gw.stats('qc').queueTimeouts, 0, 'no queue timeout counted')
  await gw.settled('qc')
})

t.test('x:request.timeout covers the retries: 504 FST_HTTP_POOLS_REQUEST_TIMEOUT while attempts are left', async (t) => {
  const gw = await gateway(t, XML)
  const up = await faultServer(t)
  // Two 503s (retried after about 100 and 200 ms), then an attempt that hangs.
  up.serve({ status: 503 }, { status: 503 }, 'hang')
  const res = await gw.forward('d', `${up.origin}/x`)
  t.equal(res.statusCode, 504)
  const body = res.json()
  t.equal(body.code, 'FST_HTTP_POOLS_REQUEST_TIMEOUT')
  t.ok(res.elapsed >= 0.9 * DEADLINE && res.elapsed < DEADLINE + 2000, `after about x:request.timeout (${Math.round(res.elapsed)} ms for ${DEADLINE})`)
  t.equal(up.count, 3, 'three attempts were made; two of the five were left')
  const s = await gw.settled('d')
  t.equal(s.requestTimeouts, 1, 'stats: requestTimeouts')
  t.equal(s.retries, 2, 'stats: the two retries before the deadline')
  t.equal(s.running, 0, 'the hanging attempt was abandoned')

  // Nothing of the timed-out exchange is sent later: the next request is the fourth arrival.
  up.serve('ok')
  const next = await gw.forward('d', `${up.origin}/next`)
  t.equal(next.statusCode, 200)
  t.equal(up.count, 4)
  t.equal(gw.stats('d').retries, 2, 'no retry after the deadline')
  t.equal(gw.stats('d').requestTimeouts, 1)
})

t.test('x:request.timeout bounds a single slow attempt too, and rejects request() with FST_HTTP_POOLS_REQUEST_TIMEOUT', async (t) => {
  const gw = await gateway(t, XML)
  const up = await faultServer(t)
  up.serve('hang')
  const start = performance.now()
  const err = await gw.app.pools.get('d').request(`${up.origin}/x`, { signal: AbortSignal.timeout(BOUND_MS) }).then(() => undefined, (e: Error & { code?: string }) => e)
  const elapsed = performance.now() - start
  t.equal(err?.code, 'FST_HTTP_POOLS_REQUEST_TIMEOUT')
  t.ok(elapsed >= 0.9 * DEADLINE && elapsed < DEADLINE + 2000, `after about x:request.timeout (${Math.round(elapsed)} ms)`)
  t.equal(up.count, 1, 'one attempt: a request timeout is never retried')
  const s = await gw.settled('d')
  t.equal(s.requestTimeouts, 1)
  t.equal(s.retries, 0)
})

t.test('x:request.timeout after the headers but before a body byte: 504 FST_HTTP_POOLS_REQUEST_TIMEOUT, not Fastify\'s 500', async (t) => {
  const gw = await gateway(t, XML)
  const up = await faultServer(t)
  up.serve('headers-then-stall')
  const res = await gw.forward('d', `${up.origin}/x`)
  t.equal(res.statusCode, 504)
  t.equal(res.json().code, 'FST_HTTP_POOLS_REQUEST_TIMEOUT')
  t.ok(res.elapsed >= 0.9 * DEADLINE && res.elapsed < DEADLINE + 2000, `after about x:request.timeout (${Math.round(res.elapsed)} ms)`)
  await gw.settled('d')
})

t.test('x:request.timeout: a retry that could not start before the deadline is not waited for', async (t) => {
  const gw = await gateway(t, XML)
  const up = await faultServer(t)
  // Retry-After: 1 is within max-delay, but 1 s is past the 600 ms deadline: the 503 goes back at once.
  up.serve('503-retry-after-1', 'ok')
  const res = await gw.forward('d', `${up.origin}/x`)
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '1')
  t.ok(res.elapsed < DEADLINE, `before the deadline (${Math.round(res.elapsed)} ms)`)
  t.equal(up.count, 1)
  await gw.settled('d')
})
