// SPEC "Every exchange ends", reload (issue 13, item 8): an exchange waiting
// between retries finishes on the dispatcher it started on; no reload fails
// a request. Real gateway, real upstream, real reloads replacing the pool.
import { createServer } from 'node:http'
import { once } from 'node:events'
import t from 'tap'
import { config, gateway, pool, type Tap } from '../helpers/resilience.js'

/**
 * Pool `r` with retries; `variant` changes a setting so that each reload
 * replaces the pool. The retry budget is open: what is tested is that reloads
 * lose nothing, not how many retries the budget allows.
 */
const xml = (variant: number): string => config(pool('r', {
  default: 'true',
  'x:retry.budget': 100,
  'x:retry.base-delay': 60,
  'x:retry.max-delay': 1000,
  'http.socket.timeout': 10000 + variant
}))

/** An upstream whose first attempt of each request id listed by `fails` is a 503; every other attempt is 200. */
async function upstream (t: Tap, fails: (id: number) => boolean) {
  const seen = new Set<number>()
  let firstAttempts = 0
  const waiters: Array<() => void> = []
  const server = createServer((req, res) => {
    const id = Number(new URL(req.url!, 'http://x').searchParams.get('id'))
    const first = !seen.has(id)
    seen.add(id)
    if (first) {
      firstAttempts++
      waiters.splice(0).forEach((w) => { w() })
    }
    res.statusCode = first && fails(id) ? 503 : 200
    res.end(res.statusCode === 200 ? `ok ${id}` : 'busy')
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return {
    origin: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    nextFirstAttempt: async () => { await new Promise<void>((resolve) => waiters.push(resolve)) },
    get firstAttempts () { return firstAttempts }
  }
}

t.test('a reload while a request waits between retries: the request completes on its dispatcher', async (t) => {
  const gw = await gateway(t, xml(0))
  const up = await upstream(t, () => true)
  const arrived = up.nextFirstAttempt()
  const res = gw.forward('r', `${up.origin}/item?id=1`)
  await arrived
  await gw.app.pools.reload({ xml: xml(1) })
  const done = await res
  t.equal(done.statusCode, 200, 'not 502 "The client is destroyed"')
  t.equal(done.text, 'ok 1')
})

t.test('a storm: 300 requests, 30% of first attempts 503, 40 reloads: none is lost', async (t) => {
  const gw = await gateway(t, xml(0))
  const up = await upstream(t, (id) => id % 10 < 3)
  const requests = Array.from({ length: 300 }, async (_v, id) => await gw.forward('r', `${up.origin}/item?id=${id}`))
  await up.nextFirstAttempt()
  for (let i = 1; i <= 40; i++) {
    await gw.app.pools.reload({ xml: xml(i) })
    // Paced a few ms apart, so reloads keep landing while requests wait out their 60-120 ms backoff.
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  const results = await Promise.all(requests)
  const lost = results.filter((r) => r.statusCode !== 200)
  t.same(lost.map((r) => `${r.statusCode} ${r.text ?? ''}`), [], 'every request answered 200')
  t.equal(gw.app.pools.stats().r!.reloads, 40)
})
