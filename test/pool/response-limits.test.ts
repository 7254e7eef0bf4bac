// http.connection.max-header-count and max-line-length (which undici lacks),
// and undici's own header-size limit, against a raw server that writes the
// response head byte for byte.
import t from 'tap'
import { BOUND_MS, dispatcherOf, failure, get, onRequests, rawServer, settingsOf, type Teardown } from '../helpers/wire.js'

/**
 * A raw server answering `GET /N` with response number N of `heads` (each a
 * status line plus header lines, without the blank line) and a body "ok".
 * Every response is keep-alive, so a rejected one must be dropped by the client.
 */
async function server (t: Teardown, heads: string[][]) {
  return await rawServer(t, (socket, conn) => {
    onRequests(socket, (head) => {
      conn.requests++
      const n = Number(/^GET \/(\d+)/.exec(head)![1])
      socket.write(`${heads[n]!.join('\r\n')}\r\ncontent-length: 2\r\n\r\nok`)
    })
  })
}

const OK = 'HTTP/1.1 200 OK'
/** `n` header fields (content-length, added by the server, is one of them). */
const fields = (n: number): string[] => Array.from({ length: n - 1 }, (_, i) => `x-h${i}: v`)
/** A header line `x-long: vvv…` of exactly `len` characters. */
const lineOf = (len: number): string => `x-long: ${'v'.repeat(len - 'x-long: '.length)}`

t.test('max-header-count: more header fields than allowed are rejected; exactly as many pass', async (t) => {
  const s = await server(t, [[OK, ...fields(5)], [OK, ...fields(6)]])
  const pool = dispatcherOf(t, settingsOf('http.connection.max-header-count="5"'))
  t.equal(await get(`${s.origin}/0`, pool), 'ok', '5 fields: at the limit')
  const err = await failure(get(`${s.origin}/1`, pool))
  t.equal(err.code, 'FST_HTTP_POOLS_RESPONSE_LIMIT')
  t.match(err.message, /max-header-count/)
})

t.test('max-line-length: a header line longer than allowed is rejected; exactly as long passes', async (t) => {
  const s = await server(t, [[OK, lineOf(100)], [OK, lineOf(101)]])
  const pool = dispatcherOf(t, settingsOf('http.connection.max-line-length="100"'))
  t.equal(await get(`${s.origin}/0`, pool), 'ok', 'a 100-character line: at the limit')
  const err = await failure(get(`${s.origin}/1`, pool))
  t.equal(err.code, 'FST_HTTP_POOLS_RESPONSE_LIMIT')
  t.match(err.message, /max-line-length/)
})

t.test('max-line-length: a status line longer than allowed (long reason phrase) is rejected', async (t) => {
  // "HTTP/1.1 200 " is 13 characters.
  const s = await server(t, [[`HTTP/1.1 200 ${'R'.repeat(87)}`], [`HTTP/1.1 200 ${'R'.repeat(88)}`]])
  const pool = dispatcherOf(t, settingsOf('http.connection.max-line-length="100"'))
  t.equal(await get(`${s.origin}/0`, pool), 'ok', 'a 100-character status line: at the limit')
  const err = await failure(get(`${s.origin}/1`, pool))
  t.equal(err.code, 'FST_HTTP_POOLS_RESPONSE_LIMIT')
  t.match(err.message, /max-line-length/)
})

t.test('max-header-count="0" and max-line-length="0" check nothing', async (t) => {
  const s = await server(t, [[OK, ...fields(300)], [OK, lineOf(12000)], [`HTTP/1.1 200 ${'R'.repeat(9000)}`]])
  const pool = dispatcherOf(t, settingsOf('http.connection.max-header-count="0" http.connection.max-line-length="0"'))
  t.equal(await get(`${s.origin}/0`, pool), 'ok', '300 header fields (default limit 100)')
  t.equal(await get(`${s.origin}/1`, pool), 'ok', 'a 12000-character header line (default limit 8192)')
  t.equal(await get(`${s.origin}/2`, pool), 'ok', 'a 9000-character reason phrase (default limit 8192)')
})

t.test('undici\'s own limit: response headers over 16 KiB fail with UND_ERR_HEADERS_OVERFLOW', async (t) => {
  // 40 lines of ~500 bytes: within the pool's count and line limits, over 16 KiB in all.
  const s = await server(t, [[OK, ...Array.from({ length: 40 }, (_, i) => `x-h${i}: ${'v'.repeat(500)}`)]])
  const pool = dispatcherOf(t, settingsOf())
  const err = await failure(get(`${s.origin}/0`, pool))
  t.equal(err.code, 'UND_ERR_HEADERS_OVERFLOW')
})

t.test('after a rejected response the pool serves the next request, not on that connection, and nothing stays running', async (t) => {
  const s = await server(t, [[OK, ...fields(3)], [OK, ...fields(2)]])
  const pool = dispatcherOf(t, settingsOf('http.connection.max-header-count="2"'))
  const err = await failure(get(`${s.origin}/0`, pool))
  t.equal(err.code, 'FST_HTTP_POOLS_RESPONSE_LIMIT')
  t.equal(await get(`${s.origin}/1`, pool), 'ok')
  const [rejected] = s.tracker.conns
  await s.tracker.waitUntil(() => rejected!.endedAt !== undefined, BOUND_MS, 'the rejected connection to be closed')
  t.equal(rejected!.requests, 1, 'the connection of the rejected response was not reused')
  t.equal(pool.stats.running, 0)
  t.equal(pool.stats.pending, 0)
  t.same(pool.counters, { requests: 2, errors: 1, queueTimeouts: 0, queueFull: 0 })
})
