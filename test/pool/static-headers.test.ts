// A pool's <headers> on the wire: what the server receives (raw header lines).
import t from 'tap'
import { request, type Dispatcher } from 'undici'
import { BOUND_MS, dispatcherOf, httpServer, poolsOf, settingsOf, type Teardown } from '../helpers/wire.js'
import { PoolDispatcher } from '../../lib/pool/dispatcher.js'

/** A server answering every request with its raw header lines, as [name, value] pairs. */
async function echoServer (t: Teardown) {
  return await httpServer(t, (req, res) => {
    const pairs: Array<[string, string]> = []
    for (let i = 0; i < req.rawHeaders.length; i += 2) pairs.push([req.rawHeaders[i]!, req.rawHeaders[i + 1]!])
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify(pairs))
  })
}

/** The header lines the server saw, for the names in `names` (lower-cased), in order. */
async function seen (url: string, dispatcher: Dispatcher, names: string[], headers?: Dispatcher.RequestOptions['headers']): Promise<Array<[string, string]>> {
  const res = await request(url, { dispatcher, headers, signal: AbortSignal.timeout(BOUND_MS) })
  const pairs = await res.body.json() as Array<[string, string]>
  return pairs.filter(([n]) => names.includes(n.toLowerCase())).map(([n, v]) => [n.toLowerCase(), v])
}

const HEADERS = '<headers><header name="X-Pool" value="banana"/></headers>'

t.test('<headers> are set on every request of the pool', async (t) => {
  const s = await echoServer(t)
  const pool = dispatcherOf(t, settingsOf('', HEADERS))
  t.same(await seen(`${s.origin}/1`, pool, ['x-pool']), [['x-pool', 'banana']])
  t.same(await seen(`${s.origin}/2`, pool, ['x-pool'], { 'x-other': '1' }), [['x-pool', 'banana']])
})

t.test('<headers> replace a header of the same name that the request has, whatever its case and form', async (t) => {
  const s = await echoServer(t)
  const pool = dispatcherOf(t, settingsOf('', HEADERS))
  const names = ['x-pool', 'x-keep']
  t.same(await seen(`${s.origin}/`, pool, names, { 'x-pool': 'spoofed', 'x-keep': 'k' }), [['x-keep', 'k'], ['x-pool', 'banana']], 'object, same case')
  t.same(await seen(`${s.origin}/`, pool, names, { 'X-POOL': 'spoofed', 'x-keep': 'k' }), [['x-keep', 'k'], ['x-pool', 'banana']], 'object, other case')
  t.same(await seen(`${s.origin}/`, pool, names, { 'x-Pool': ['a', 'b'] }), [['x-pool', 'banana']], 'several values')
  t.same(await seen(`${s.origin}/`, pool, names, ['X-Pool', 'spoofed', 'x-keep', 'k']), [['x-keep', 'k'], ['x-pool', 'banana']], 'flat array')
  t.same(await seen(`${s.origin}/`, pool, names, [['x-pool', 'spoofed'], ['x-keep', 'k']] as unknown as string[]), [['x-keep', 'k'], ['x-pool', 'banana']], 'array of pairs')
  t.same(await seen(`${s.origin}/`, pool, names, new Map([['X-Pool', 'spoofed'], ['x-keep', 'k']])), [['x-keep', 'k'], ['x-pool', 'banana']], 'Map')
  t.same(await seen(`${s.origin}/`, pool, names, new Headers({ 'X-Pool': 'spoofed', 'x-keep': 'k' })), [['x-keep', 'k'], ['x-pool', 'banana']], 'fetch Headers')
})

t.test('several <header> entries with the same name send every value', async (t) => {
  const s = await echoServer(t)
  const pool = dispatcherOf(t, settingsOf('', '<headers><header name="X-Multi" value="one"/><header name="x-multi" value="two"/></headers>'))
  t.same(await seen(`${s.origin}/`, pool, ['x-multi'], { 'x-multi': 'spoofed' }), [['x-multi', 'one'], ['x-multi', 'two']])
})

t.test('<headers> never go on another pool\'s requests', async (t) => {
  const s = await echoServer(t)
  const [banana, plain] = poolsOf(`<pool id="banana" default="true">${HEADERS}</pool><pool id="plain"/>`)
  const a = new PoolDispatcher(banana!)
  const b = new PoolDispatcher(plain!)
  t.teardown(async () => { await Promise.all([a.destroy(), b.destroy()]) })
  // Interleaved, on the same server.
  t.same(await seen(`${s.origin}/`, a, ['x-pool']), [['x-pool', 'banana']])
  t.same(await seen(`${s.origin}/`, b, ['x-pool']), [], 'not added')
  t.same(await seen(`${s.origin}/`, b, ['x-pool'], { 'x-pool': 'mine' }), [['x-pool', 'mine']], 'not replaced')
  t.same(await seen(`${s.origin}/`, a, ['x-pool'], { 'x-pool': 'mine' }), [['x-pool', 'banana']])
})
