// x:connection.max-lifetime under continuous load: connections rotate without
// failing or stalling a request, even with every connection of the pool busy
// and requests queued for one (undici's own clientTtl can hang there), and a
// connection never serves requests past its lifetime (jitter only shortens).
import t from 'tap'
import { BOUND_MS, clientAgent, config, failures, fetchOutcome, gateway, load, now, pool, upstream, waitFor, type Outcome } from '../helpers/lifecycle.js'

t.test('no request fails or stalls while connections rotate at full concurrency (max-per-route and max-total reached)', async (t) => {
  const LIFETIME_MS = 100
  const STALL_MS = 2000
  const up = await upstream(t, (_req, res) => { res.end('ok') })
  const attributes = {
    default: 'true',
    'http.conn-manager.max-per-route': '2',
    'http.conn-manager.max-total': '2',
    'x:connection.max-lifetime': String(LIFETIME_MS),
    // A request broken by the rotation must fail here, not be retried away.
    'x:retry.max-attempts': '1'
  }
  const gw = await gateway(t, { plugin: { xml: config(pool('p', attributes)) }, routes: { '/r': { pool: 'p', to: `${up.origin}/` } }, level: 'warn' })
  const agent = clientAgent(t)
  // Warm up (code paths compiled, client connections open) so that the bound below measures the rotation.
  const warm = await Promise.all(Array.from({ length: 16 }, async (_, i) => await fetchOutcome(agent, `${gw.url}/r`, i)))
  t.equal(failures(warm), '0 of 16 failed', 'warm-up')

  // Sample the pool while the load runs: requests must have waited for a connection.
  let maxQueued = 0
  let maxConnected = 0
  const sampler = setInterval(() => {
    const s = gw.app.pools.stats().p!
    maxQueued = Math.max(maxQueued, s.queued)
    maxConnected = Math.max(maxConnected, s.connected)
  }, 5)
  t.teardown(() => { clearInterval(sampler) })
  const start = now()
  const outcomes = await load({
    loops: 16,
    durationMs: 3000,
    maxRequests: 60_000,
    // Longer than STALL_MS, so a stalled request is measured rather than cut short.
    send: async (i) => await fetchOutcome(agent, `${gw.url}/r`, i, 3 * STALL_MS)
  })
  const elapsed = now() - start
  clearInterval(sampler)

  t.equal(failures(outcomes), `0 of ${outcomes.length} failed`, 'every request succeeded')
  const slowest = outcomes.reduce<Outcome | undefined>((a, o) => a === undefined || o.doneAt - o.sentAt > a.doneAt - a.sentAt ? o : a, undefined)!
  const worst = slowest.doneAt - slowest.sentAt
  t.ok(worst < STALL_MS, `every request completed within ${STALL_MS} ms (slowest: ${worst.toFixed(0)} ms, sent ${(slowest.sentAt - start).toFixed(0)} ms into the run)`)
  t.ok(outcomes.length >= 100, `the loops kept going (${outcomes.length} requests in ${elapsed.toFixed(0)} ms)`)
  t.ok(maxQueued > 0, `requests queued for a connection: the limits were reached (max queued seen: ${maxQueued})`)
  t.ok(maxConnected <= 2, `max-total held while rotating (max connected seen: ${maxConnected})`)
  // 3 s of 100 ms lifetimes on 2 connections: dozens; without rotation, 2.
  t.ok(up.conns.length >= 10, `connections rotated (the upstream saw ${up.conns.length} connections)`)
  await waitFor(() => {
    const s = gw.app.pools.stats().p!
    return s.running === 0 && s.pending === 0 && s.queued === 0
  }, BOUND_MS, 'the pool to be idle')
  t.pass('the pool is idle afterwards')
})

t.test('a connection never serves a request more than its lifetime after its first one: jitter never lengthens it', async (t) => {
  const LIFETIME_MS = 2000
  // Loopback scheduling under a loaded machine; jitter that lengthened (up to
  // +10%, 200 ms) would overshoot in a good part of the connections.
  const MARGIN_MS = 150
  const CONNECTIONS = 16
  const up = await upstream(t, (_req, res) => { res.end('ok') })
  const attributes = {
    default: 'true',
    'http.conn-manager.max-per-route': String(CONNECTIONS),
    'x:connection.max-lifetime': String(LIFETIME_MS),
    'x:retry.max-attempts': '1'
  }
  const gw = await gateway(t, { plugin: { xml: config(pool('p', attributes)) }, routes: {}, level: 'warn' })
  const client = gw.app.pools.get('p')
  const url = `${up.origin}/`

  // Twice as many loops as connections: no connection is ever idle for long.
  const start = now()
  const outcomes = await load({
    loops: 2 * CONNECTIONS,
    durationMs: 2.2 * LIFETIME_MS,
    maxRequests: 200_000,
    send: async (loop) => {
      const sentAt = now()
      try {
        const res = await client.request(url, { signal: AbortSignal.timeout(BOUND_MS) })
        const body = await res.body.text()
        return { loop, sentAt, doneAt: now(), statusCode: res.statusCode, body }
      } catch (err) {
        return { loop, sentAt, doneAt: now(), error: err as Error }
      }
    }
  })
  const end = now()
  t.equal(failures(outcomes), `0 of ${outcomes.length} failed`, 'every request succeeded')

  const used = up.conns.filter((c) => c.requests.length > 0)
  const span = (c: typeof used[number]): number => c.requests.at(-1)! - c.requests[0]!
  const longest = Math.max(...used.map(span))
  const over = used.filter((c) => span(c) > LIFETIME_MS + MARGIN_MS).map((c) => `#${c.id}: ${span(c).toFixed(0)} ms, ${c.requests.length} requests`)
  t.same(over, [], `no connection served requests more than ${LIFETIME_MS} + ${MARGIN_MS} ms after its first (longest: ${longest.toFixed(0)} ms over ${used.length} connections)`)

  // Connections that opened during the run and were rotated before it ended lived their (shortened) lifetime.
  const rotated = used.filter((c) => c.openedAt > start && c.endedAt !== undefined && c.endedAt < end)
  t.ok(rotated.length >= CONNECTIONS, `connections rotated during the run (${rotated.length} of ${used.length})`)
  const short = rotated.filter((c) => span(c) < 0.9 * LIFETIME_MS - 250).map((c) => `#${c.id}: ${span(c).toFixed(0)} ms`)
  t.same(short, [], 'jitter shortened no lifetime by much more than 10%')
})
