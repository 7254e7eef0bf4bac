// x:connection.max-lifetime behind a real load balancer: haproxy in TCP mode
// picks a backend per connection (round robin), so only new connections can
// reach a backend that joins later. With a lifetime the pool reconnects and
// the new backend gets its share; without one, keep-alive connections stay
// pinned to the backends that were there first.
import t from 'tap'
import { startHaproxy } from '../helpers/haproxy.js'
import { BOUND_MS, clientAgent, config, failures, fetchOutcome, gateway, load, now, pool, upstream, waitFor, type Teardown } from '../helpers/lifecycle.js'

const LIFETIME_MS = 500
const LOOPS = 8
// Requests in this window (counted from enabling b3) are the ones measured:
// after about three lifetimes every connection has been replaced at least twice.
const WINDOW_START_MS = 3 * LIFETIME_MS
const WINDOW_MS = 1000

interface Run {
  /** Requests answered per backend, in the measured window. */
  window: Record<string, number>
  /** Requests b3 answered before it was enabled (must be none). */
  b3Before: number
  /** Requests b3 answered after it was enabled, window or not. */
  b3After: number
  /** The runtime API's reply to `enable server be/b3`. */
  enableReply: string
}

/**
 * b1 and b2 behind haproxy, b3 configured but disabled; a pool (max-per-route 4)
 * forwards 8 concurrent keep-alive request loops to haproxy. Once b1 and b2
 * serve, b3 is enabled through the runtime API; traffic goes on until the
 * measured window has passed.
 */
async function scenario (t: Teardown, lifetime: number | undefined): Promise<Run> {
  const names = ['b1', 'b2', 'b3']
  const backends = await Promise.all(names.map(async (name) => await upstream(t, (_req, res) => { res.end(name) })))
  const lb = await startHaproxy(t, names.map((name, i) => ({ name, port: backends[i]!.port, disabled: name === 'b3' })))
  const attributes: Record<string, string> = {
    default: 'true',
    'http.conn-manager.max-per-route': '4',
    // A failed request must show, not be retried away.
    'x:retry.max-attempts': '1'
  }
  if (lifetime !== undefined) attributes['x:connection.max-lifetime'] = String(lifetime)
  const gw = await gateway(t, { plugin: { xml: config(pool('lb', attributes)) }, routes: { '/lb': { pool: 'lb', to: `${lb.origin}/` } }, level: 'warn' })
  const agent = clientAgent(t)

  let enabledAt = Infinity
  const traffic = load({
    loops: LOOPS,
    durationMs: 15_000,
    maxRequests: 100_000,
    until: () => now() > enabledAt + WINDOW_START_MS + WINDOW_MS,
    send: async (i) => await fetchOutcome(agent, `${gw.url}/lb`, i)
  })
  traffic.catch(() => {}) // awaited below
  await waitFor(() => backends[0]!.served() >= 50 && backends[1]!.served() >= 50, BOUND_MS, 'b1 and b2 to serve traffic')
  const b3Before = backends[2]!.served()
  const enableReply = await lb.command('enable server be/b3')
  enabledAt = now()
  const outcomes = await traffic

  const bad = outcomes.filter((o) => o.error !== undefined || o.statusCode !== 200)
  if (bad.length > 0) throw new Error(`requests failed: ${failures(outcomes)}`)
  const window: Record<string, number> = { b1: 0, b2: 0, b3: 0 }
  let b3After = 0
  for (const o of outcomes) {
    if (o.body === 'b3' && o.sentAt >= enabledAt) b3After++
    if (o.sentAt >= enabledAt + WINDOW_START_MS && o.sentAt <= enabledAt + WINDOW_START_MS + WINDOW_MS) window[o.body!]!++
  }
  return { window, b3Before, b3After, enableReply }
}

const total = (w: Record<string, number>): number => Object.values(w).reduce((a, b) => a + b, 0)

t.test(`with x:connection.max-lifetime="${LIFETIME_MS}", a backend enabled under load gets a fair share of the requests`, async (t) => {
  const run = await scenario(t, LIFETIME_MS)
  t.equal(run.enableReply.trim(), '', 'haproxy accepted "enable server be/b3"')
  t.equal(run.b3Before, 0, 'b3 got nothing while disabled')
  const n = total(run.window)
  t.ok(n >= 50, `enough requests in the window to judge (${n})`)
  const share = run.window.b3! / n
  t.ok(share >= 0.15, `b3 answered ${(share * 100).toFixed(1)}% of the ${n} requests in the window (at least 15% expected; per backend: ${JSON.stringify(run.window)})`)
  t.ok(run.window.b1! > 0 && run.window.b2! > 0, 'b1 and b2 still serve too')
})

t.test('without a lifetime, the same traffic stays pinned: the enabled backend gets nothing', async (t) => {
  const run = await scenario(t, undefined)
  t.equal(run.enableReply.trim(), '', 'haproxy accepted "enable server be/b3"')
  t.ok(total(run.window) >= 50, `enough requests in the window to judge (${total(run.window)})`)
  t.equal(run.b3After, 0, `b3 answered no request after it was enabled (per backend in the window: ${JSON.stringify(run.window)})`)
})
