// Issue 15, items 8 and 9, on real sockets: keepalive.timeout="1" closes an
// HTTP/2 session after its request, as it sends `connection: close` over
// HTTP/1.1; a TLS 1.3 origin that requires a client certificate the pool
// lacks is one UPSTREAM_TLS failure (one handshake, no retry), over HTTP/1.1
// and HTTP/2. (Stream resets and GOAWAY are rows of test/resilience/faults.test.ts.)
import type { Http2ServerRequest } from 'node:http2'
import t from 'tap'
import {
  codesOf, config, gateway, http2Upstream, httpsUpstream, mutualTls, PEM_TRUSTSTORE, pool, poolGet, rejection, serverTls, type Upstream
} from '../helpers/e2e.js'
import type { Tap } from '../helpers/tap.js'
import { BOUND_MS, eventually } from '../helpers/wait.js'

t.test('keepalive.timeout="1" over HTTP/2: every request has a session of its own, closed once it is done', async (t) => {
  const sessions = new Set<unknown>()
  const up = await http2Upstream(t, serverTls(), (req, res) => {
    sessions.add((req as Http2ServerRequest).stream.session)
    res.end(req.httpVersion)
  })
  const gw = await gateway(t, config(
    pool('once', { default: 'true', ...PEM_TRUSTSTORE, 'x:http2': 'true', 'keepalive.timeout': 1 }),
    pool('kept', { ...PEM_TRUSTSTORE, 'x:http2': 'true' })
  ))
  const url = `https://localhost:${up.port}/`
  for (let i = 1; i <= 3; i++) {
    t.equal((await poolGet(gw.app, 'once', url)).text, '2.0', `request ${i}: HTTP/2`)
    t.equal(sessions.size, i, `request ${i} came on a session of its own`)
    t.ok(await eventually(() => gw.app.pools.stats().once!.connected === 0, BOUND_MS), `and its session closed after it (request ${i})`)
  }
  sessions.clear()
  for (let i = 0; i < 3; i++) await poolGet(gw.app, 'kept', url)
  t.equal(sessions.size, 1, 'a pool without it keeps its session for the next requests')
})

/** Requests through a pool without a keystore to an origin that requires a client certificate, with the pool's default three attempts. */
async function refusedOnce (t: Tap, up: Upstream, http2: boolean): Promise<void> {
  const gw = await gateway(t, config(pool('no-keystore', { default: 'true', ...PEM_TRUSTSTORE, 'x:http2': String(http2), 'x:retry.base-delay': 10 })))
  const target = `https://localhost:${up.port}/`

  const forwarded = await gw.forward('no-keystore', target)
  t.equal(forwarded.statusCode, 502, 'reply.from: 502')
  t.equal(forwarded.json().code, 'FST_HTTP_POOLS_UPSTREAM_TLS', 'reply.from: the TLS failure, not a reset')
  t.equal(up.tlsErrors.length, 1, `one handshake, not retried (the origin's errors: ${up.tlsErrors.join(', ')})`)
  t.match(up.tlsErrors[0], /CERTIFICATE/, 'refused for want of a client certificate')

  // The next requests too: each its one handshake, none left hanging on a dead session.
  for (const n of [2, 3]) {
    const err = await rejection(poolGet(gw.app, 'no-keystore', target))
    t.equal(codesOf(err)[0], 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', `request() ${n}: the origin's TLS alert`)
    t.equal(up.tlsErrors.length, n, `one more handshake (${n})`)
  }
  t.equal(up.hits(), 0, 'no request reached the origin\'s handler')
  const stats = gw.app.pools.stats()['no-keystore']!
  t.equal(stats.retries, 0, 'nothing retried')
  t.ok(await eventually(() => gw.app.pools.stats()['no-keystore']!.connected === 0, BOUND_MS), 'no connection is left open')
  t.equal(gw.app.pools.stats()['no-keystore']!.pending, 0, 'no request is left pending')
}

t.test('TLS 1.3, a client certificate required and none in the pool: one UPSTREAM_TLS failure', async (t) => {
  t.test('HTTP/1.1', async (t) => { await refusedOnce(t, await httpsUpstream(t, mutualTls(), (_req, res) => { res.end() }), false) })
  // Over HTTP/2 the session was left open on its dead socket, and the next request never settled.
  t.test('HTTP/2', async (t) => { await refusedOnce(t, await http2Upstream(t, mutualTls(), (_req, res) => { res.end() }), true) })
})
