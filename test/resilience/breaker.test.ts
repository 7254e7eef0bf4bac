// Issue 6 D: the per-origin circuit breaker (SPEC "Extensions"
// x:circuit-breaker.*), through a real gateway to loopback fault servers.
// Retries are off in most pools (x:retry.max-attempts="1") so that one client
// request is one upstream attempt and failures are counted exactly.
import t from 'tap'
import { setTimeout as delay } from 'node:timers/promises'
import { faultServer, refusedPort, type FaultServer } from '../helpers/fault-server.js'
import { BOUND_MS, config, gateway, pool, type Gateway, type Sent, type Tap } from '../helpers/resilience.js'

const THRESHOLD = 3
const RESET = 400
// The reset waited out on the wire: a little past it, for the timer's own resolution
// (its arithmetic is unit-tested on a moved clock in test/unit/breaker.test.ts).
const PAST_RESET = RESET + 50

const XML = config(
  pool('cb', { default: 'true', 'x:retry.max-attempts': 1, 'x:circuit-breaker.threshold': THRESHOLD, 'x:circuit-breaker.reset': RESET }),
  // With retries: every attempt counts.
  pool('cbr', { 'x:retry.base-delay': 20, 'x:retry.max-delay': 2000, 'x:circuit-breaker.threshold': THRESHOLD, 'x:circuit-breaker.reset': RESET })
)

/** The answer of an open circuit: 503 at once, FST_HTTP_POOLS_CIRCUIT_OPEN, a Retry-After in whole seconds. */
function assertRejected (t: Tap, res: Sent): void {
  t.equal(res.statusCode, 503, 'rejected with 503')
  t.equal(res.json().code, 'FST_HTTP_POOLS_CIRCUIT_OPEN')
  const after = Number(res.headers['retry-after'])
  t.ok(Number.isInteger(after) && after >= 1, `with a Retry-After in seconds (${String(res.headers['retry-after'])})`)
  t.ok(res.elapsed < 500, `at once (${Math.round(res.elapsed)} ms)`)
}

/** Opens the circuit of `up`'s origin on pool `cb`: THRESHOLD failing requests. */
async function open (t: Tap, gw: Gateway, up: FaultServer): Promise<void> {
  up.serve({ status: 503, body: 'down' })
  for (let i = 0; i < THRESHOLD; i++) {
    const res = await gw.forward('cb', `${up.origin}/x`)
    t.equal(res.statusCode, 503, `failure ${i + 1} reaches the upstream`)
    t.equal(res.text, 'down')
  }
  t.equal(gw.stats('cb').openCircuits, 1, 'the circuit is open')
}

t.test('threshold consecutive failures open the circuit; then requests fail at once, without an upstream attempt', async (t) => {
  const gw = await gateway(t, XML)

  t.test('502, 503 and 504 responses count', async (t) => {
    const up = await faultServer(t)
    up.serve({ status: 502 }, { status: 503 }, { status: 504 }, 'ok')
    for (let i = 0; i < THRESHOLD - 1; i++) {
      await gw.forward('cb', `${up.origin}/x`)
      t.equal(gw.stats('cb').openCircuits, 0, `still closed after ${i + 1} failure(s)`)
    }
    await gw.forward('cb', `${up.origin}/x`)
    t.equal(gw.stats('cb').openCircuits, 1, `open after ${THRESHOLD}`)
    const requests = gw.stats('cb').requests
    const rejections = gw.stats('cb').circuitRejections
    const res = await gw.forward('cb', `${up.origin}/x`)
    assertRejected(t, res)
    t.equal(up.count, THRESHOLD, 'no upstream attempt')
    t.equal(gw.stats('cb').requests, requests, 'stats: no upstream exchange')
    t.equal(gw.stats('cb').circuitRejections, rejections + 1, 'stats: circuitRejections counts it')
    await gw.settled('cb')
  })

  t.test('network errors count: resets', async (t) => {
    const up = await faultServer(t)
    up.serve('reset-before-headers')
    const before = gw.stats('cb').openCircuits
    for (let i = 0; i < THRESHOLD; i++) t.equal((await gw.forward('cb', `${up.origin}/x`)).statusCode, 502)
    t.equal(gw.stats('cb').openCircuits, before + 1)
    assertRejected(t, await gw.forward('cb', `${up.origin}/x`))
    t.equal(up.count, THRESHOLD, 'no upstream attempt')
  })

  t.test('network errors count: refused connections', async (t) => {
    const port = await refusedPort()
    const before = gw.stats('cb')
    for (let i = 0; i < THRESHOLD; i++) t.equal((await gw.forward('cb', `http://127.0.0.1:${port}/x`)).statusCode, 502)
    t.equal(gw.stats('cb').openCircuits, before.openCircuits + 1)
    const res = await gw.forward('cb', `http://127.0.0.1:${port}/x`)
    assertRejected(t, res)
    t.equal(gw.stats('cb').requests - before.requests, THRESHOLD, 'the rejected request made no connect attempt')
  })

  t.test('only consecutive failures count: a success in between starts the count again', async (t) => {
    const up = await faultServer(t)
    up.serve({ status: 503 }, { status: 503 }, 'ok', { status: 503 }, { status: 503 }, 'ok')
    const before = gw.stats('cb').openCircuits
    for (let i = 0; i < 6; i++) await gw.forward('cb', `${up.origin}/x`)
    t.equal(gw.stats('cb').openCircuits, before, 'never open')
    t.equal(up.count, 6, 'every request reached the upstream')
  })
})

t.test('4xx responses never count as failures', async (t) => {
  const gw = await gateway(t, XML)
  const up = await faultServer(t)
  up.serve({ status: 503 }, { status: 503 }, { status: 400 }, { status: 404 }, { status: 429 }, { status: 409 }, { status: 404 }, 'ok')
  const statuses: number[] = []
  for (let i = 0; i < 8; i++) statuses.push((await gw.forward('cb', `${up.origin}/x`)).statusCode)
  t.same(statuses, [503, 503, 400, 404, 429, 409, 404, 200], 'two failures, then five 4xx: none is the third failure')
  t.equal(gw.stats('cb').openCircuits, 0)
  t.equal(gw.stats('cb').circuitRejections, 0)
  t.equal(up.count, 8)
})

t.test('half-open: after reset ms one trial goes through; success closes the circuit', async (t) => {
  const gw = await gateway(t, XML)
  const up = await faultServer(t)
  await open(t, gw, up)
  assertRejected(t, await gw.forward('cb', `${up.origin}/x`))
  // The circuit opened before its third failure reached the client: from now on, past its reset.
  await delay(PAST_RESET)

  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  up.serve({ status: 200, body: 'trial ok', until: gate }, 'ok')
  const count = up.count
  const trial = gw.forward('cb', `${up.origin}/x`)
  await up.arrived(count + 1)
  // While the trial is out, nothing else goes through.
  const other = await gw.forward('cb', `${up.origin}/x`)
  assertRejected(t, other)
  t.equal(up.count, count + 1, 'only the trial reached the upstream')
  release()
  const res = await trial
  t.equal(res.statusCode, 200, 'the trial succeeds')
  t.equal(res.text, 'trial ok')
  t.equal(gw.stats('cb').openCircuits, 0, 'the circuit is closed')

  for (let i = 0; i < 3; i++) t.equal((await gw.forward('cb', `${up.origin}/x`)).statusCode, 200, 'requests flow again')
  t.equal(gw.stats('cb').circuitRejections, 2)
  await gw.settled('cb')
})

t.test('half-open: a failed trial opens the circuit again, for another reset period', async (t) => {
  const gw = await gateway(t, XML)
  const up = await faultServer(t)
  await open(t, gw, up)
  await delay(PAST_RESET)
  up.serve({ status: 503, body: 'still down' }, 'ok')
  const trial = await gw.forward('cb', `${up.origin}/x`)
  t.equal(trial.statusCode, 503, 'the trial reaches the upstream and gets its 503')
  t.equal(trial.text, 'still down')
  t.equal(up.count, THRESHOLD + 1)
  t.equal(gw.stats('cb').openCircuits, 1, 'open again')
  assertRejected(t, await gw.forward('cb', `${up.origin}/x`))
  t.equal(up.count, THRESHOLD + 1, 'at once, with no new threshold of failures')

  await delay(PAST_RESET)
  const next = await gw.forward('cb', `${up.origin}/x`)
  t.equal(next.statusCode, 200, 'after another reset period the next trial goes through and closes it')
  t.equal(gw.stats('cb').openCircuits, 0)
})

t.test('the breaker is per origin: another origin on the same pool is unaffected', async (t) => {
  const gw = await gateway(t, XML)
  const a = await faultServer(t)
  const b = await faultServer(t)
  await open(t, gw, a)
  assertRejected(t, await gw.forward('cb', `${a.origin}/x`))
  for (let i = 0; i < 3; i++) {
    const res = await gw.forward('cb', `${b.origin}/x`)
    t.equal(res.statusCode, 200, 'the other origin answers through the same pool')
  }
  t.equal(b.count, 3)
  t.equal(gw.stats('cb').openCircuits, 1, 'one open circuit')
  // A failure of B does not add to A's, nor open B's before its own threshold.
  b.serve({ status: 503 })
  await gw.forward('cb', `${b.origin}/x`)
  t.equal(gw.stats('cb').openCircuits, 1)
})

t.test('with retries, each failed attempt counts', async (t) => {
  const gw = await gateway(t, XML)
  const up = await faultServer(t)
  up.serve({ status: 503, body: 'down' })
  const res = await gw.forward('cbr', `${up.origin}/x`)
  t.equal(res.statusCode, 503, 'the last attempt\'s 503')
  t.equal(up.count, 3, 'three attempts')
  t.equal(gw.stats('cbr').openCircuits, 1, `${THRESHOLD} failed attempts open the circuit`)
  const next = await gw.forward('cbr', `${up.origin}/x`)
  assertRejected(t, next)
  t.equal(gw.stats('cbr').retries, 2, 'an open circuit is not retried')
  t.equal(up.count, 3)
})

t.test('pools.get(id).request() on an open circuit rejects at once with FST_HTTP_POOLS_CIRCUIT_OPEN', async (t) => {
  const gw = await gateway(t, XML)
  const up = await faultServer(t)
  await open(t, gw, up)
  const err = await gw.app.pools.get('cb').request(`${up.origin}/x`, { signal: AbortSignal.timeout(BOUND_MS) }).then(() => undefined, (e: Error & { code?: string }) => e)
  t.equal(err?.code, 'FST_HTTP_POOLS_CIRCUIT_OPEN')
  t.equal(up.count, THRESHOLD, 'no upstream attempt')
  t.equal(gw.stats('cb').circuitRejections, 1)
})
