// Issue 17, SPEC "Metrics": the origin label (scheme://host:port), its cap
// (past 100 origins in a pool, further ones share "other"), and the latency
// the pool's exchanges report, on a clock the test moves.
import t from 'tap'
import type { Dispatcher } from 'undici'
import { failureCode } from '../../lib/forward/errors.js'
import { LATENCY_BUCKETS, LatencyBuckets } from '../../lib/metrics/latency.js'
import { MAX_ORIGINS, OTHER, originLabel, PoolObserver } from '../../lib/metrics/origins.js'
import { Exchanges, type ExchangeObserver } from '../../lib/pool/exchange.js'
import { ManualClock } from '../helpers/clock.js'

t.test('an origin label is scheme://host:port, the port written out, nothing else', async (t) => {
  t.equal(originLabel('http://127.0.0.1:3000'), 'http://127.0.0.1:3000')
  t.equal(originLabel('http://example.com'), 'http://example.com:80')
  t.equal(originLabel('https://example.com/'), 'https://example.com:443')
  t.equal(originLabel('https://user:secret@example.com:8443/path?q=1'), 'https://example.com:8443', 'no user-info, path or query')
  t.equal(originLabel('http://[::1]:81'), 'http://[::1]:81')
  t.equal(originLabel('not a url'), OTHER)
})

t.test('past 100 origins in a pool, further ones share the label "other"; names of one origin share its tally', async (t) => {
  const observer = new PoolObserver()
  for (let i = 0; i < MAX_ORIGINS + 5; i++) observer.responded(`http://10.0.0.1:${1000 + i}`, 200, 5)
  observer.responded('http://10.0.0.1:1000/', 503, 5)
  observer.failed('http://10.0.0.1:2000', Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }))
  const labels = [...observer.origins].map((o) => o.label)
  t.equal(labels.length, MAX_ORIGINS + 1, '100 origins and "other"')
  t.equal(new Set(labels).size, labels.length, 'each label once')
  t.ok(labels.includes(OTHER))
  const other = [...observer.origins].find((o) => o.label === OTHER)!
  t.same(other.classes, [0, 5, 0, 0, 0], 'the five origins past the cap')
  t.same([...other.failures], [['FST_HTTP_POOLS_UPSTREAM_UNREACHABLE', 1]], 'failures by the code the client gets')
  const first = [...observer.origins][0]!
  t.same(first.classes, [0, 1, 0, 0, 1], 'the same origin written with a slash')
  t.equal(first.latency.counts[LATENCY_BUCKETS.indexOf(0.005)], 2, 'latencies in seconds: 5 ms is in the 5 ms bucket')
  t.equal(first.latency.sum, 0.01)
  t.equal(failureCode(new Error('x')), 'FST_HTTP_POOLS_BAD_GATEWAY')
})

t.test('the pool\'s exchanges report each final response with the time since the request was sent, and each failure', async (t) => {
  const clock = new ManualClock()
  const seen: Array<[string, number, number] | [string, string]> = []
  const observer: ExchangeObserver = {
    responded: (origin, status, ms) => { seen.push([origin, status, ms]) },
    failed: (origin, err) => { seen.push([origin, err.message]) }
  }
  const exchanges = new Exchanges({ perOrigin: 1, total: 1, queueTimeout: 0, maxPending: 0, socketTimeout: 0 }, clock, undefined, observer)
  const handlers: Dispatcher.DispatchHandler[] = []
  const dispatch = exchanges.interceptor((_opts, handler) => { handlers.push(handler); return true })
  const controller = { abort () {}, pause () {}, resume () {}, aborted: false, paused: false, reason: null }
  const send = (): void => { dispatch({ origin: 'http://a:1', path: '/', method: 'GET' }, {}) }
  send()
  send()
  clock.advance(100) // the second waits for the first's connection
  handlers[0]!.onRequestStart!(controller, {})
  clock.advance(250)
  handlers[0]!.onResponseStart!(controller, 103, {}, 'Early Hints')
  clock.advance(50)
  handlers[0]!.onResponseStart!(controller, 200, {}, 'OK')
  handlers[0]!.onResponseEnd!(controller, {})
  await new Promise((resolve) => setImmediate(resolve))
  clock.advance(30)
  t.equal(handlers.length, 2, 'the second is sent once the first ends')
  handlers[1]!.onRequestStart!(controller, {})
  handlers[1]!.onResponseError!(controller, new Error('reset'))
  t.same(seen, [['http://a:1', 200, 400], ['http://a:1', 'reset']], 'the final response 400 ms after its request was sent; the failure')
  t.match(exchanges.counters, { requests: 2, errors: 1 })
})

t.test('latency buckets: a bound includes its value, what is above 30 s counts in +Inf only, series add up', async (t) => {
  const latency = new LatencyBuckets()
  for (const seconds of [0, 0.001, 0.0011, 30, 30.5, 1000]) latency.observe(seconds)
  const at = (bound: number): number => latency.counts[LATENCY_BUCKETS.indexOf(bound)]!
  t.equal(at(0.001), 2, '0 and exactly 1 ms are in the 1 ms bucket')
  t.equal(at(0.0025), 1, 'just over 1 ms is in the next')
  t.equal(at(30), 1, 'exactly 30 s is in the 30 s bucket')
  t.equal(latency.counts[LATENCY_BUCKETS.length], 2, 'above 30 s: the +Inf bucket alone')
  t.equal(latency.counts.reduce((a, b) => a + b), 6, 'each observation counted once')
  t.equal(latency.sum, 1060.5021)
  const both = new LatencyBuckets()
  both.add(latency)
  both.add(latency)
  t.equal(both.counts[LATENCY_BUCKETS.length], 4)
  t.equal(both.sum, 2 * latency.sum)
})
