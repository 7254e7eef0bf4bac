// Issue 18, SPEC "Extensions" x:queue.max-pending, x:retry.budget and
// x:retry.min-concurrent, through a real gateway to loopback upstreams: the
// bounded queue is a bulkhead (the excess is answered at once, nothing else
// is lost), and retries cannot multiply an outage's load.
import t from 'tap'
import { faultServer } from '../helpers/fault-server.js'
import { config, gateway, pool } from '../helpers/resilience.js'

t.test('x:queue.max-pending holds under 5x more requests than it allows: the excess gets 503 at once, the rest is served', async (t) => {
  const gw = await gateway(t, config(pool('b', {
    default: 'true',
    'http.conn-manager.max-total': 2,
    'http.conn-manager.max-per-route': 2,
    'x:queue.max-pending': 4
  })))
  const up = await faultServer(t)
  let release!: () => void
  const held = new Promise<void>((resolve) => { release = resolve })
  up.serve({ status: 200, body: 'served', until: held })
  const allowed = 2 + 4
  const responses = Array.from({ length: 5 * allowed }, async () => await gw.forward('b', `${up.origin}/x`))
  await up.arrived(2)
  const excess = await Promise.all(responses.map(async (r) => await Promise.race([r, new Promise<undefined>((resolve) => setTimeout(resolve, 2000))])))
  const refused = excess.filter((r) => r !== undefined)
  t.equal(refused.length, 4 * allowed, 'every request over the bound was answered while the upstream still held the others')
  t.ok(refused.every((r) => r!.statusCode === 503 && r!.json().code === 'FST_HTTP_POOLS_QUEUE_FULL'), '503 FST_HTTP_POOLS_QUEUE_FULL')
  t.equal(gw.stats('b').queueFull, 4 * allowed, 'stats: queueFull')
  t.equal(gw.stats('b').pending, 4, 'the bound is full, not over')
  release()
  const all = await Promise.all(responses)
  t.equal(all.filter((r) => r.statusCode === 200 && r.text === 'served').length, allowed, 'the requests within the bound are all served')
  t.equal(up.count, allowed, 'the refused ones never reached the upstream')
})

t.test('x:retry.budget: a failing origin under concurrent load gets about (1 + budget) times the requests, not max-attempts times', async (t) => {
  const gw = await gateway(t, config(pool('r', { default: 'true', 'x:retry.base-delay': 20 })))
  const up = await faultServer(t)
  const N = 50
  // Under load: the first attempts of all N are in progress together before the outage answers them.
  up.serve({ status: 503, body: 'down', until: up.arrived(N) })
  const all = await Promise.all(Array.from({ length: N }, async () => await gw.forward('r', `${up.origin}/x`)))
  t.ok(all.every((r) => r.statusCode === 503), 'every client gets the 503')
  // Default budget 20 % of the requests in progress; on top, while few are left, the 3
  // that min-concurrent always lets retry, each with its 2 retries.
  const bound = N * 1.2 + 3 * 2
  t.ok(up.count <= bound, `the origin received ${up.count} attempts for ${N} requests (at most ${bound}; without a budget: ${N * 3})`)
  const s = gw.stats('r')
  t.ok(s.retryBudgetExhausted > 0, `stats: retryBudgetExhausted (${s.retryBudgetExhausted})`)
  t.equal(s.retries, up.count - N)
})

t.test('x:retry.min-concurrent: a lone request still makes all its attempts, even with no budget', async (t) => {
  const gw = await gateway(t, config(pool('m', { default: 'true', 'x:retry.base-delay': 20, 'x:retry.budget': 0, 'x:retry.min-concurrent': 1 })))
  const up = await faultServer(t)
  up.serve({ status: 503 }, { status: 503 }, 'ok')
  const res = await gw.forward('m', `${up.origin}/x`)
  t.equal(res.statusCode, 200)
  t.equal(up.count, 3)
  t.equal(gw.stats('m').retryBudgetExhausted, 0)
})
