// close(): in-flight requests finish, then every socket closes; requests after
// close fail. stats and counters: what the pool is doing, back to idle after.
import t from 'tap'
import { request } from 'undici'
import { freePort as closedPort } from '../helpers/net.js'
import { BOUND_MS, dispatcherOf, failure, get, httpServer, settingsOf } from '../helpers/wire.js'

t.test('close() lets an in-flight request finish, then closes every connection, idle ones included', async (t) => {
  const events: string[] = []
  const s = await httpServer(t, (req, res) => {
    if (req.url === '/slow') {
      res.write('sl')
      setTimeout(() => {
        events.push('server sent the rest')
        res.end('ow')
      }, 300)
    } else {
      res.end('fast')
    }
  })
  const pool = dispatcherOf(t, settingsOf())
  // Two connections: one left idle by /fast, one busy with /slow.
  const slow = request(`${s.origin}/slow`, { dispatcher: pool, signal: AbortSignal.timeout(BOUND_MS) })
  t.equal(await get(`${s.origin}/fast`, pool), 'fast')
  const res = await slow
  t.equal(s.tracker.conns.length, 2)

  await pool.close()
  events.push('close() resolved')
  t.same(events, ['server sent the rest', 'close() resolved'], 'close() waited for the in-flight response')
  t.equal(await res.body.text(), 'slow', 'the in-flight response arrived whole')
  await s.tracker.waitEnded(2)
  t.pass('the server saw both connections end')
  t.equal(pool.budget.open, 0)
})

t.test('close() lets a request that waits for a connection (max-total) finish too', async (t) => {
  const a = await httpServer(t, (_req, res) => { setTimeout(() => res.end('a'), 200) })
  const b = await httpServer(t, (_req, res) => { res.end('b') })
  const pool = dispatcherOf(t, settingsOf('http.conn-manager.max-total="1" http.conn-manager.max-per-route="1"'))
  const first = get(`${a.origin}/`, pool)
  await a.tracker.waitUntil(() => a.tracker.conns.length === 1, BOUND_MS, 'A to be connected')
  const waiting = get(`${b.origin}/`, pool)
  const closed = pool.close()
  t.same(await Promise.all([first, waiting]), ['a', 'b'])
  await closed
  await Promise.all([a.tracker.waitEnded(1), b.tracker.waitEnded(1)])
  t.equal(pool.budget.open, 0)
})

t.test('requests after close() fail, and open no connection', async (t) => {
  const s = await httpServer(t, (_req, res) => { res.end('ok') })
  const pool = dispatcherOf(t, settingsOf())
  t.equal(await get(`${s.origin}/`, pool), 'ok')
  await pool.close()
  const err = await failure(get(`${s.origin}/`, pool))
  // undici's own codes: a closed dispatcher ends up destroyed once its sockets are gone.
  t.match(err.code, /^UND_ERR_(CLOSED|DESTROYED)$/)
  t.equal(s.tracker.conns.length, 1)
})

t.test('stats show what is running and queued, and return to idle; counters count requests and errors', async (t) => {
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  const s = await httpServer(t, (_req, res) => { gate.then(() => res.end('ok'), () => {}) })
  const refused = await closedPort()
  const pool = dispatcherOf(t, settingsOf('http.conn-manager.max-per-route="1"'))
  t.same(pool.counters, { requests: 0, errors: 0, queueTimeouts: 0, queueFull: 0 })

  const inFlight = Promise.all([1, 2, 3].map(async (i) => await get(`${s.origin}/${i}`, pool)))
  inFlight.catch(() => {}) // awaited below; a failure before then must not go unhandled
  await s.tracker.waitUntil(() => s.tracker.conns[0]?.requests === 1, BOUND_MS, 'the first request to arrive')
  // undici's `pending` includes what the pool has queued for lack of a free connection.
  t.match(pool.stats, { running: 1, connected: 1, free: 0, queued: 2, pending: 2, size: 3 }, 'one request on the wire, two waiting (max-per-route 1)')
  release()
  t.same(await inFlight, ['ok', 'ok', 'ok'])

  const err = await failure(get(`http://127.0.0.1:${refused}/`, pool))
  t.equal(err.code, 'ECONNREFUSED')

  t.same(pool.counters, { requests: 4, errors: 1, queueTimeouts: 0, queueFull: 0 })
  t.match(pool.stats, { running: 0, pending: 0, queued: 0 }, 'nothing running or waiting')
  t.equal(pool.stats.connected, 1, 'the keep-alive connection stays')
  t.equal(pool.stats.free, 1, 'and is free')
})

t.test('close() waits for a request queued behind a connection that the server closed', async (t) => {
  const events: string[] = []
  const s = await httpServer(t, (req, res) => {
    if (req.url === '/1') {
      // The server closes this connection after the response: /2 must reconnect.
      res.setHeader('connection', 'close')
      res.end('1')
    } else {
      setTimeout(() => {
        events.push('server sent /2')
        res.end('2')
      }, 300)
    }
  })
  const pool = dispatcherOf(t, settingsOf('http.conn-manager.max-per-route="1"'))
  const both = Promise.all([get(`${s.origin}/1`, pool), get(`${s.origin}/2`, pool)])
  both.catch(() => {}) // awaited below
  await s.tracker.waitUntil(() => s.tracker.conns[1]?.requests === 1, BOUND_MS, '/2 to reach the server on a second connection')
  await pool.close()
  events.push('close() resolved')
  t.same(await both, ['1', '2'], 'both requests succeed')
  t.same(events, ['server sent /2', 'close() resolved'], 'close() waited for the in-flight request')
  await s.tracker.waitEnded(2)
})
