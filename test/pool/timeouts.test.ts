// http.socket.timeout (inactivity while waiting for headers or between body
// chunks) and http.connection.timeout (establishing the connection), on the wire.
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { request } from 'undici'
import { blackHole } from '../helpers/black-hole.js'
import { BOUND_MS, dispatcherOf, failure, httpServer, rawServer, settingsOf, since } from '../helpers/wire.js'

// The tests mostly wait on timers, each with its own server and pool: run them side by side.
t.jobs = 8

t.test('http.socket.timeout: response headers later than the timeout fail with UND_ERR_HEADERS_TIMEOUT', async (t) => {
  const timers = new Set<NodeJS.Timeout>()
  t.teardown(() => { for (const x of timers) clearTimeout(x) })
  // Headers come after 3 s: far beyond the pool's 300 ms, well inside undici's own 300 s default.
  const s = await httpServer(t, (_req, res) => { timers.add(setTimeout(() => res.end('late'), 3000)) })
  const pool = dispatcherOf(t, settingsOf('http.socket.timeout="300"'))
  const start = performance.now()
  const err = await failure(request(`${s.origin}/`, { dispatcher: pool, signal: AbortSignal.timeout(BOUND_MS) }))
  const elapsed = since(start)
  t.equal(err.code, 'UND_ERR_HEADERS_TIMEOUT')
  t.ok(elapsed >= 250 && elapsed < 2500, `failed after the timeout, not before nor much later (${Math.round(elapsed)} ms)`)
})

t.test('http.socket.timeout: a body that stalls between chunks fails with UND_ERR_BODY_TIMEOUT', async (t) => {
  const s = await httpServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.write('first chunk')
    // ...and nothing more until the test ends (teardown closes the connection).
  })
  const pool = dispatcherOf(t, settingsOf('http.socket.timeout="300"'))
  const res = await request(`${s.origin}/`, { dispatcher: pool, signal: AbortSignal.timeout(BOUND_MS) })
  t.equal(res.statusCode, 200, 'headers arrived in time')
  const start = performance.now()
  const err = await failure(res.body.text())
  t.equal(err.code, 'UND_ERR_BODY_TIMEOUT')
  t.ok(since(start) < 2500, 'the stall was detected promptly')
})

t.test('http.socket.timeout is about inactivity: a slow but steady body passes', async (t) => {
  const timeout = 400
  const chunks = 12 // one every timeout/4: 1.2 s in all, 3 times the timeout
  const s = await httpServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' })
    let n = 0
    const timer = setInterval(() => {
      res.write(`${n},`)
      if (++n === chunks) {
        clearInterval(timer)
        res.end()
      }
    }, timeout / 4)
    res.on('close', () => clearInterval(timer))
  })
  const pool = dispatcherOf(t, settingsOf(`http.socket.timeout="${timeout}"`))
  const start = performance.now()
  const res = await request(`${s.origin}/`, { dispatcher: pool, signal: AbortSignal.timeout(BOUND_MS) })
  const body = await res.body.text()
  t.equal(body, Array.from({ length: chunks }, (_, i) => `${i},`).join(''), 'the whole body arrived')
  t.ok(since(start) > 2 * timeout, 'the exchange lasted longer than the timeout')
})

t.test('http.socket.timeout="0" means no timeout: slow headers and a stalling body pass', async (t) => {
  const s = await httpServer(t, (_req, res) => {
    setTimeout(() => {
      res.writeHead(200)
      res.write('a')
      setTimeout(() => res.end('b'), 600)
    }, 600)
  })
  const pool = dispatcherOf(t, settingsOf('http.socket.timeout="0"'))
  const res = await request(`${s.origin}/`, { dispatcher: pool, signal: AbortSignal.timeout(BOUND_MS) })
  t.equal(await res.body.text(), 'ab')
})

t.test('http.connection.timeout: a connection that cannot be established fails with UND_ERR_CONNECT_TIMEOUT', async (t) => {
  const { port } = await blackHole(t)
  const timeout = 1000
  const pool = dispatcherOf(t, settingsOf(`http.connection.timeout="${timeout}"`))
  const start = performance.now()
  // undici's own default connect timeout is 10 s: the bound below is well under it.
  const err = await failure(request(`http://127.0.0.1:${port}/`, { dispatcher: pool, signal: AbortSignal.timeout(BOUND_MS) }))
  const elapsed = since(start)
  t.equal(err.code, 'UND_ERR_CONNECT_TIMEOUT')
  t.ok(elapsed >= 0.9 * timeout && elapsed < 5 * timeout, `failed after about the timeout (${Math.round(elapsed)} ms)`)
  t.equal(pool.budget.open, 0, 'the failed connect gave its slot back')
  t.equal(pool.stats.running, 0)
})

t.test('http.connection.timeout covers the TLS handshake: a server that accepts but never answers it times out', async (t) => {
  // TCP is accepted at once; the ClientHello is never answered.
  const s = await rawServer(t, () => {})
  const timeout = 1000
  const pool = dispatcherOf(t, settingsOf(`http.connection.timeout="${timeout}"`))
  const start = performance.now()
  const err = await failure(request(`https://127.0.0.1:${s.port}/`, { dispatcher: pool, signal: AbortSignal.timeout(BOUND_MS) }))
  const elapsed = since(start)
  t.equal(err.code, 'UND_ERR_CONNECT_TIMEOUT')
  t.ok(elapsed >= 0.9 * timeout && elapsed < 5 * timeout, `failed after about the timeout (${Math.round(elapsed)} ms)`)
  t.equal(s.tracker.conns.length, 1, 'the TCP connection itself was made')
})
