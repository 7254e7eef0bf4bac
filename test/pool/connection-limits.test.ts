// http.conn-manager.max-per-route and max-total on the wire: the servers count
// their open connections (from accept until they read the client's FIN).
import t from 'tap'
import { request } from 'undici'
import { BOUND_MS, ConnTracker, dispatcherOf, httpServer, settingsOf, type Handler } from '../helpers/wire.js'

// Slow enough that every request of a burst is in flight at once.
const slow = (ms: number): Handler => (_req, res) => { setTimeout(() => res.end('ok'), ms) }

async function get (url: string, dispatcher: import('undici').Dispatcher): Promise<string> {
  const res = await request(url, { dispatcher, signal: AbortSignal.timeout(BOUND_MS) })
  const text = await res.body.text()
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`)
  return text
}

t.test('max-per-route caps the connections to one origin; every request still succeeds', async (t) => {
  const s = await httpServer(t, slow(50))
  const pool = dispatcherOf(t, settingsOf('http.conn-manager.max-per-route="2"'))
  const bodies = await Promise.all(Array.from({ length: 10 }, async () => await get(`${s.origin}/`, pool)))
  t.same(bodies, Array(10).fill('ok'))
  t.equal(s.tracker.maxOpen, 2, 'never more than 2 connections, and the burst did use 2')
  t.equal(s.tracker.conns.length, 2, 'the 2 connections were reused for all 10 requests')
})

t.test('max-total caps connections across origins in a concurrent burst; every request succeeds', async (t) => {
  const all = new ConnTracker()
  const servers = await Promise.all([1, 2, 3].map(async () => await httpServer(t, slow(30), all)))
  const pool = dispatcherOf(t, settingsOf('http.conn-manager.max-total="2" http.conn-manager.max-per-route="2"'))
  const urls = servers.flatMap((s) => [1, 2, 3, 4].map((i) => `${s.origin}/${i}`))
  const bodies = await Promise.all(urls.map(async (u) => await get(u, pool)))
  t.same(bodies, Array(urls.length).fill('ok'))
  t.ok(all.maxOpen <= 2, `at most 2 connections open across the 3 origins (saw ${all.maxOpen})`)
  for (const s of servers) t.ok(s.tracker.conns.length >= 1, 'every origin was served')
  t.equal(pool.budget.waiting, 0, 'no connect left waiting')
})

t.test('at max-total, an idle connection of another origin is closed to make room', async (t) => {
  const a = await httpServer(t, slow(20))
  const b = await httpServer(t, slow(0))
  const pool = dispatcherOf(t, settingsOf('http.conn-manager.max-total="2" http.conn-manager.max-per-route="2"'))
  await Promise.all([get(`${a.origin}/1`, pool), get(`${a.origin}/2`, pool)])
  t.equal(a.tracker.open, 2, 'origin A holds 2 idle keep-alive connections: the pool is full')
  t.equal(a.tracker.ended, 0)

  t.equal(await get(`${b.origin}/`, pool), 'ok', 'origin B is served (does not wait forever)')
  await a.tracker.waitEnded(1)
  t.equal(a.tracker.ended, 1, 'exactly one idle connection of A was closed')
  t.equal(b.tracker.conns.length, 1)
  t.ok(pool.budget.open <= 2)

  t.equal(await get(`${a.origin}/3`, pool), 'ok', 'A is still served on its remaining connection')
})

t.test('a request waiting at max-total proceeds when a busy connection of another origin frees up', async (t) => {
  const a = await httpServer(t, slow(300))
  const b = await httpServer(t, slow(0))
  const pool = dispatcherOf(t, settingsOf('http.conn-manager.max-total="1" http.conn-manager.max-per-route="1"'))
  const first = get(`${a.origin}/`, pool)
  await a.tracker.waitUntil(() => a.tracker.conns.length === 1, BOUND_MS, 'A to be connected')
  const second = get(`${b.origin}/`, pool)
  t.same(await Promise.all([first, second]), ['ok', 'ok'])
  t.ok(a.tracker.conns[0]!.endedAt! <= b.tracker.conns[0]!.openedAt, 'B connected only after A had given its connection back')
})

t.test('max-per-route holds when the origin\'s only connection closes while a request waits for it', async (t) => {
  let third: Promise<string> | undefined
  const s = await httpServer(t, (req, res) => {
    if (req.url === '/1') {
      // The server closes this connection after the response; /2 is waiting for it.
      res.setHeader('connection', 'close')
      res.end('1')
    } else if (req.url === '/2') {
      // While /2 is on the wire, /3 must wait for that same (only) connection.
      third = get(`${s.origin}/3`, pool)
      setTimeout(() => res.end('2'), 200)
    } else {
      res.end('3')
    }
  })
  const pool = dispatcherOf(t, settingsOf('http.conn-manager.max-per-route="1"'))
  t.same(await Promise.all([get(`${s.origin}/1`, pool), get(`${s.origin}/2`, pool)]), ['1', '2'])
  t.equal(await third, '3')
  t.equal(s.tracker.maxOpen, 1, `never more than 1 connection to the origin (saw ${s.tracker.maxOpen})`)
})
