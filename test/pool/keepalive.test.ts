// keepalive.timeout on the wire. The servers never close an idle connection
// themselves, so a connection that ends was closed by the pool.
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { KEEPALIVE_MARGIN } from '../../lib/pool/options.js'
import { dispatcherOf, get, httpServer, onRequests, rawServer, settingsOf, type Conn } from '../helpers/wire.js'

// undici closes an idle connection after 4 s unless told otherwise.
const UNDICI_DEFAULT_KEEPALIVE = 4000

// The tests mostly wait on timers, each with its own server and pool: run them side by side.
t.jobs = 8

const pause = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** Milliseconds from `start` until the server saw `conn` end. */
const idleFor = (conn: Conn, start: number): number => conn.endedAt! - start

t.test('keepalive.timeout="0" keeps an idle connection until the server closes it (longer than undici\'s 4 s default)', async (t) => {
  const s = await httpServer(t, (_req, res) => { res.end('ok') })
  const pool = dispatcherOf(t, settingsOf('keepalive.timeout="0"'))
  t.equal(await get(`${s.origin}/1`, pool), 'ok')
  // The scenario itself is an idle period: just longer than undici would keep the connection.
  await pause(UNDICI_DEFAULT_KEEPALIVE + 500)
  t.equal(s.tracker.ended, 0, 'the idle connection is still open')
  t.equal(await get(`${s.origin}/2`, pool), 'ok')
  t.equal(s.tracker.conns.length, 1, 'one connection in all')
  t.equal(s.tracker.conns[0]!.requests, 2, 'it served both requests')
})

t.test('keepalive.timeout="1000" closes an idle connection after about 1 s', async (t) => {
  const s = await httpServer(t, (_req, res) => { res.end('ok') })
  const pool = dispatcherOf(t, settingsOf('keepalive.timeout="1000"'))
  t.equal(await get(`${s.origin}/`, pool), 'ok')
  const idleSince = performance.now()
  await s.tracker.waitEnded(1)
  const idle = idleFor(s.tracker.conns[0]!, idleSince)
  t.ok(idle >= 500 && idle < 3000, `closed by the pool after ${Math.round(idle)} ms idle (expected about 1000)`)
})

t.test('keepalive.timeout="1" sends connection: close on every request, and never reuses a connection, whatever the response says', async (t) => {
  const heads: string[] = []
  // The server offers keep-alive and never closes: the pool must close each connection itself.
  const s = await rawServer(t, (socket, conn) => {
    onRequests(socket, (head) => {
      conn.requests++
      heads.push(head)
      socket.write('HTTP/1.1 200 OK\r\nconnection: keep-alive\r\nkeep-alive: timeout=60\r\ncontent-length: 2\r\n\r\nok')
    })
  })
  const pool = dispatcherOf(t, settingsOf('keepalive.timeout="1"'))
  for (let i = 0; i < 3; i++) t.equal(await get(`${s.origin}/${i}`, pool), 'ok')
  t.equal(heads.length, 3)
  for (const head of heads) t.match(head, /\r\nconnection: close(\r\n|$)/i, 'the request asks the server to close')
  t.equal(s.tracker.conns.length, 3, 'a new connection for every request')
  t.same(s.tracker.conns.map((c) => c.requests), [1, 1, 1])
  await s.tracker.waitEnded(3)
  t.pass('the pool closed every connection')
})

t.test('a response Keep-Alive: timeout=N wins over a longer keepalive.timeout (closed before the server would)', async (t) => {
  const s = await httpServer(t, (_req, res) => {
    res.setHeader('keep-alive', 'timeout=3')
    res.end('ok')
  })
  const pool = dispatcherOf(t, settingsOf('keepalive.timeout="60000"'))
  t.equal(await get(`${s.origin}/`, pool), 'ok')
  const idleSince = performance.now()
  await s.tracker.waitEnded(1)
  const idle = idleFor(s.tracker.conns[0]!, idleSince)
  // 3 s announced, less the pool's safety margin.
  t.ok(idle >= 3000 - KEEPALIVE_MARGIN - 500 && idle < 3000, `closed by the pool after ${Math.round(idle)} ms idle (expected about ${3000 - KEEPALIVE_MARGIN})`)
})

t.test('a response Keep-Alive: timeout=N wins over keepalive.timeout="0"', async (t) => {
  const s = await httpServer(t, (_req, res) => {
    res.setHeader('keep-alive', 'timeout=2')
    res.end('ok')
  })
  const pool = dispatcherOf(t, settingsOf('keepalive.timeout="0"'))
  t.equal(await get(`${s.origin}/`, pool), 'ok')
  const idleSince = performance.now()
  await s.tracker.waitEnded(1)
  const idle = idleFor(s.tracker.conns[0]!, idleSince)
  t.ok(idle < 2000, `closed by the pool after ${Math.round(idle)} ms idle, before the server's 2 s`)
})

t.test('a response Keep-Alive: timeout=N wins over a shorter keepalive.timeout', async (t) => {
  const s = await httpServer(t, (_req, res) => {
    res.setHeader('keep-alive', 'timeout=5')
    res.end('ok')
  })
  const pool = dispatcherOf(t, settingsOf('keepalive.timeout="1000"'))
  t.equal(await get(`${s.origin}/1`, pool), 'ok')
  // Idle for twice the pool's own timeout, well within the server's 5 s (less the margin).
  await pause(2000)
  t.equal(s.tracker.ended, 0, 'the idle connection is still open')
  t.equal(await get(`${s.origin}/2`, pool), 'ok')
  t.equal(s.tracker.conns.length, 1)
  t.equal(s.tracker.conns[0]!.requests, 2, 'the same connection served both requests')
})
