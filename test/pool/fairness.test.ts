// Issue 15, item 6: at max-total, room that frees goes to the origins in turn,
// so a request for another origin never waits for one origin's whole backlog.
// 20 real loopback origins; one of them overloaded with 40 waiting requests.
import t from 'tap'
import { request } from 'undici'
import { BOUND_MS, dispatcherOf, httpServer, settingsOf } from '../helpers/wire.js'

t.test('20 origins at max-total, one with a backlog of 40: every other origin is answered before that backlog drains', async (t) => {
  const finished: string[] = []
  const slow = await httpServer(t, (_req, res) => { setTimeout(() => res.end('slow'), 50) })
  const others = await Promise.all(Array.from({ length: 19 }, async () => await httpServer(t, (_req, res) => { res.end('fast') })))
  const pool = dispatcherOf(t, settingsOf('http.conn-manager.max-total="5" http.conn-manager.max-per-route="5"'))
  const get = async (url: string, name: string): Promise<void> => {
    const res = await request(url, { dispatcher: pool, signal: AbortSignal.timeout(BOUND_MS) })
    await res.body.text()
    finished.push(name)
  }
  const backlog = Array.from({ length: 45 }, async (_v, i) => { await get(`${slow.origin}/${i}`, `slow-${i}`) })
  await slow.tracker.waitUntil(() => slow.tracker.conns.length === 5, BOUND_MS, 'the slow origin to hold all 5 connections')
  t.equal(pool.stats.pending, 40, '40 of its requests wait')
  const fair = others.map(async (s, i) => { await get(`${s.origin}/`, `other-${i}`) })
  await Promise.all([...backlog, ...fair])
  const lastOther = Math.max(...others.map((_s, i) => finished.indexOf(`other-${i}`)))
  const lastSlow = finished.indexOf('slow-44')
  t.ok(lastOther < lastSlow, `the 19 other origins were all answered (by position ${lastOther}) before the backlog drained (position ${lastSlow})`)
  const slowBefore = finished.slice(0, lastOther + 1).filter((n) => n.startsWith('slow')).length
  t.ok(slowBefore <= 5 + 19 + 1, `at most one of the backlog went between two other origins' turns (${slowBefore} slow answers before the last other one)`)
})
