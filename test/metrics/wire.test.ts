// Issue 17, SPEC "Metrics": what the Prometheus metrics say, checked against
// what happened on the wire (requests the loopback upstream received, the
// statuses it sent, the failures the gateway's clients got), and the
// exposition checked by promtool.
import { Registry } from '@prometheus-io/client'
import t from 'tap'
import { faultServer, refusedPort, type FaultServer } from '../helpers/fault-server.js'
import { promtoolCheck, samples, series, value } from '../helpers/metrics.js'
import { config, gateway, pool, type Gateway, type Tap } from '../helpers/resilience.js'

const FAST = { 'x:retry.base-delay': 1, 'x:retry.max-delay': 10 }
const XML = config(
  pool('p', { default: 'true', ...FAST, 'x:retry.max-attempts': 2 }),
  pool('single', { 'x:retry.max-attempts': 1 }),
  pool('breaker', { 'x:retry.max-attempts': 1, 'x:circuit-breaker.threshold': 2, 'x:circuit-breaker.reset': 600000 }),
  pool('cached', { 'cache.ttl': 600000 })
)

async function setup (t: Tap, xml = XML): Promise<{ gw: Gateway, up: FaultServer, registry: Registry, scrape: () => Promise<string> }> {
  const registry = new Registry()
  const gw = await gateway(t, xml, 'error', { metrics: { registry } })
  const up = await faultServer(t)
  return { gw, up, registry, scrape: async () => await registry.metrics() }
}

const m = (name: string): string => `http_client_pool_${name}`

t.test('requests, status classes, retries and latencies are those the upstream saw', async (t) => {
  const { gw, up, scrape } = await setup(t)
  const origin = up.origin
  up.serve({ status: 200, body: 'a' }, { status: 200, body: 'b' }, { status: 200, body: 'c' }, { status: 404 }, { status: 503 }, { status: 503 }, { status: 200 })
  const statuses: number[] = []
  // Three 200s, a 404, then a GET that gets 503, is retried once (max-attempts 2) and gets 503 again.
  for (let i = 0; i < 5; i++) statuses.push((await gw.forward('p', `${origin}/x${i}`)).statusCode)
  await gw.settled('p')
  t.same(statuses, [200, 200, 200, 404, 503])
  t.equal(up.count, 6, 'the upstream received 6 requests')

  const text = await scrape()
  t.equal(value(text, m('upstream_requests_total'), { pool: 'p' }), 6, 'upstream requests: every attempt')
  const responses = (cls: string): number | undefined => value(text, m('upstream_responses_total'), { pool: 'p', origin, class: cls })
  t.same(['1xx', '2xx', '3xx', '4xx', '5xx'].map(responses), [0, 3, 0, 1, 2], 'responses by status class')
  t.equal(value(text, m('retries_total'), { pool: 'p' }), 1, 'one retry')
  t.equal(value(text, m('upstream_header_latency_seconds_count'), { pool: 'p', origin }), 6, 'one latency per response')
  const sum = value(text, m('upstream_header_latency_seconds_sum'), { pool: 'p', origin })!
  t.ok(sum > 0 && sum < 10, `latencies in seconds (sum ${sum})`)
  t.equal(value(text, m('upstream_header_latency_seconds_bucket'), { pool: 'p', origin, le: '30' }), 6, 'the largest finite bucket is 30 s')
  t.equal(value(text, m('upstream_header_latency_seconds_bucket'), { pool: 'p', origin, le: '0.001' }) !== undefined, true, 'the smallest is 1 ms')
  t.equal(value(text, m('upstream_header_latency_seconds_bucket'), { pool: 'p', origin, le: '+Inf' }), 6, '+Inf counts them all')
  t.equal(value(text, m('connections_max'), { pool: 'p' }), 400, 'the connection limit')
  t.equal(value(text, m('requests_running'), { pool: 'p' }), 0)
  t.equal(value(text, m('requests_queued'), { pool: 'p' }), 0)
  t.equal(value(text, m('connections_open'), { pool: 'p' }), gw.stats('p').connected, 'open connections as stats() says')
  t.ok(value(text, m('connections_open'), { pool: 'p' })! >= 1, 'a connection is open')

  const check = await promtoolCheck(text)
  t.equal(check.code, 0, `promtool check metrics passes: ${check.output}`)
  t.equal(check.output.trim(), '', 'and finds nothing to say')
})

t.test('failures by code: refused, reset; retried ones counted per attempt', async (t) => {
  const { gw, up, scrape } = await setup(t)
  const refused = `http://127.0.0.1:${await refusedPort()}`
  // A refused connection is retried for any method: two attempts, two failures.
  const res = await gw.forward('p', `${refused}/x`)
  t.equal(res.json().code, 'FST_HTTP_POOLS_UPSTREAM_UNREACHABLE')
  up.serve('reset-before-headers')
  const reset = await gw.forward('single', `${up.origin}/y`)
  t.equal(reset.json().code, 'FST_HTTP_POOLS_UPSTREAM_RESET')
  await gw.settled('single')

  const text = await scrape()
  t.equal(value(text, m('upstream_failures_total'), { pool: 'p', origin: refused, code: 'FST_HTTP_POOLS_UPSTREAM_UNREACHABLE' }), 2, 'two refused attempts')
  t.equal(value(text, m('retries_total'), { pool: 'p' }), 1)
  t.equal(value(text, m('upstream_failures_total'), { pool: 'single', origin: up.origin, code: 'FST_HTTP_POOLS_UPSTREAM_RESET' }), 1, 'one reset')
  t.equal(up.count, 1, 'the reset request reached the upstream once')
  t.equal(value(text, m('upstream_requests_total'), { pool: 'single' }), 1)
  t.equal(series(text, m('upstream_failures_total')).length, 2, 'no other failure')
})

t.test('an opened circuit: its state per origin and the requests it refused', async (t) => {
  const { gw, up, scrape } = await setup(t)
  up.serve({ status: 503 })
  // Threshold 2: two 503s open the circuit; the next two are refused without reaching the upstream.
  const statuses: number[] = []
  for (let i = 0; i < 4; i++) statuses.push((await gw.forward('breaker', `${up.origin}/z`)).statusCode)
  t.same(statuses, [503, 503, 503, 503])
  t.equal(up.count, 2, 'only two reached the upstream')
  const text = await scrape()
  t.equal(value(text, m('circuit_open'), { pool: 'breaker', origin: up.origin }), 1, 'the origin\'s circuit is open')
  t.equal(value(text, m('circuit_rejections_total'), { pool: 'breaker' }), 2)
  t.equal(value(text, m('upstream_responses_total'), { pool: 'breaker', origin: up.origin, class: '5xx' }), 2)
  t.same(series(text, m('circuit_open'), { pool: 'p' }), [], 'a pool without a breaker has no circuit series')
})

t.test('cache hits, coalesced requests and misses, and what the cache holds', async (t) => {
  const { gw, up, scrape } = await setup(t)
  const client = gw.app.pools.get('cached')
  up.serve({ status: 200, body: 'twelve bytes' })
  for (let i = 0; i < 3; i++) t.equal(await (await client.request(`${up.origin}/c`, { cacheKey: 'k' })).body.text(), 'twelve bytes')
  let release: () => void = () => {}
  const held = new Promise<void>((resolve) => { release = resolve })
  up.serve({ status: 200, body: 'held', until: held })
  const together = Promise.all([1, 2, 3].map(async () => await (await client.request(`${up.origin}/d`, { cacheKey: 'held' })).body.text()))
  await up.arrived(2)
  release()
  t.same(await together, ['held', 'held', 'held'])
  t.equal(up.count, 2, 'two requests reached the upstream')
  const text = await scrape()
  t.equal(value(text, m('cache_misses_total'), { pool: 'cached' }), 2)
  t.equal(value(text, m('cache_hits_total'), { pool: 'cached' }), 2)
  t.equal(value(text, m('cache_coalesced_total'), { pool: 'cached' }), 2)
  t.equal(value(text, m('cache_entries'), { pool: 'cached' }), 2)
  t.equal(value(text, m('cache_bytes'), { pool: 'cached' }), 'twelve bytes'.length + 'held'.length)
})

t.test('a reload: counters of a pool that stays keep growing, a removed pool\'s series go, reloads counted by result', async (t) => {
  const { gw, up, scrape } = await setup(t, config(pool('p', { default: 'true' })))
  // A pool no route uses, so that a reload may remove it.
  await gw.app.pools.reload({ xml: config(pool('p', { default: 'true' }), pool('gone')) })
  for (let i = 0; i < 2; i++) t.equal((await gw.forward('p', `${up.origin}/r`)).statusCode, 200)
  const direct = await gw.app.pools.get('gone').request(`${up.origin}/r`)
  t.equal(direct.statusCode, 200)
  await direct.body.text()
  let text = await scrape()
  t.equal(value(text, m('upstream_requests_total'), { pool: 'p' }), 2)
  t.equal(value(text, m('upstream_header_latency_seconds_count'), { pool: 'gone', origin: up.origin }), 1)

  // p's settings change (a new dispatcher); gone goes.
  await gw.app.pools.reload({ xml: config(pool('p', { default: 'true', 'http.conn-manager.max-total': 10, 'http.conn-manager.max-per-route': 10 })) })
  t.equal((await gw.forward('p', `${up.origin}/r`)).statusCode, 200)
  await t.rejects(gw.app.pools.reload({ xml: '<not-a-config/>' }))
  text = await scrape()
  t.equal(up.count, 4)
  t.equal(value(text, m('upstream_requests_total'), { pool: 'p' }), 3, 'p counts on across its new dispatcher')
  t.equal(value(text, m('upstream_responses_total'), { pool: 'p', origin: up.origin, class: '2xx' }), 3)
  t.equal(value(text, m('upstream_header_latency_seconds_count'), { pool: 'p', origin: up.origin }), 3)
  t.equal(value(text, m('connections_max'), { pool: 'p' }), 10, 'gauges read the new settings')
  t.same(samples(text).filter((s) => s.labels.pool === 'gone'), [], 'no series of the removed pool')
  t.equal(value(text, m('reloads_total'), { result: 'applied' }), 2)
  t.equal(value(text, m('reloads_total'), { result: 'rejected' }), 1)
  t.match(gw.app.pools.stats().p, { requests: 3 }, 'stats() counts on too')
})
