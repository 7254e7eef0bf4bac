// Issue 15, item 1: the pool closing an idle HTTP/2 connection itself
// (x:connection.max-lifetime retirement, or max-total making room for another
// origin) must not crash the process; the next request opens a new session.
import t from 'tap'
import { config, gateway, http2Upstream, PEM_TRUSTSTORE, pool, poolGet, serverTls } from '../helpers/e2e.js'
import { BOUND_MS, eventually } from '../helpers/wait.js'

t.test('x:http2 with x:connection.max-lifetime: retired idle sessions close cleanly, the next request gets a new one', async (t) => {
  const sessions = new Set<unknown>()
  const up = await http2Upstream(t, { ...serverTls(), allowHTTP1: true }, (req, res) => {
    sessions.add((req as unknown as { stream: { session: unknown } }).stream.session)
    res.end(req.httpVersion)
  })
  const crashes: Error[] = []
  const onCrash = (err: Error): void => { crashes.push(err) }
  process.on('uncaughtException', onCrash)
  t.teardown(() => { process.off('uncaughtException', onCrash) })
  const gw = await gateway(t, config(pool('h2', { default: 'true', ...PEM_TRUSTSTORE, 'x:http2': 'true', 'x:connection.max-lifetime': 200 })))
  const url = `https://localhost:${up.port}/`
  t.equal((await poolGet(gw.app, 'h2', url)).text, '2.0')
  t.ok(await eventually(() => gw.app.pools.stats().h2!.connected === 0, BOUND_MS), 'the idle session was retired at its lifetime')
  t.equal((await poolGet(gw.app, 'h2', url)).text, '2.0', 'the next request is served')
  t.equal(sessions.size, 2, 'on a new session')
  t.same(crashes.map((e) => e.message), [], 'no uncaught exception')
})

t.test('x:http2 at max-total: an idle session of another origin closed to make room does not crash the process', async (t) => {
  const handler = (req: { httpVersion: string }, res: { end: (s: string) => void }): void => { res.end(req.httpVersion) }
  const a = await http2Upstream(t, { ...serverTls(), allowHTTP1: true }, handler)
  const b = await http2Upstream(t, { ...serverTls(), allowHTTP1: true }, handler)
  const crashes: Error[] = []
  const onCrash = (err: Error): void => { crashes.push(err) }
  process.on('uncaughtException', onCrash)
  t.teardown(() => { process.off('uncaughtException', onCrash) })
  const gw = await gateway(t, config(pool('one', { default: 'true', ...PEM_TRUSTSTORE, 'x:http2': 'true', 'http.conn-manager.max-total': 1, 'http.conn-manager.max-per-route': 1 })))
  for (const up of [a, b, a, b]) t.equal((await poolGet(gw.app, 'one', `https://localhost:${up.port}/`)).text, '2.0', `origin ${up === a ? 'a' : 'b'} served over HTTP/2`)
  t.same(crashes.map((e) => e.message), [], 'no uncaught exception')
})
