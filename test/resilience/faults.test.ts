// Issue 6: every way an upstream can fail, one row each, through a real
// gateway to a real loopback upstream that fails at the byte level
// (test/helpers/fault-server.ts). Each row checks what the gateway's client
// gets (SPEC "Forwarding errors"), how many upstream attempts were made (SPEC
// "Which failures are retried", GET with the default x:retry.max-attempts of
// 3), that the pool goes back to nothing running or pending, and that the next
// request to the same upstream, now healthy, succeeds.
//
// Issue 15: every fault that HTTP/2 can express runs again against an HTTP/2
// origin (test/helpers/h2-fault-server.ts) through a pool with x:http2, with
// the faults only HTTP/2 has (stream resets, GOAWAY).
import { resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { TLS_ROOT } from '../helpers/e2e.js'
import { blackHole, faultServer, refusedPort, type Behaviour } from '../helpers/fault-server.js'
import { openFds } from '../helpers/fds.js'
import { h2FaultServer, type H2Fault } from '../helpers/h2-fault-server.js'
import { config, eventually, gateway, pool, since, WARN, type Gateway, type Sent, type Tap } from '../helpers/resilience.js'

// Under a second, connect and socket timeouts run on the pool's own timers
// (undici's tick every half second): these fire at about 300 ms.
const SOCKET_TIMEOUT = 300
const CONNECT_TIMEOUT = 300

// Retries left at their default count (3 attempts for GET); short waits and timeouts keep the table fast.
// max-delay 3000 lets the 429's HTTP-date (1 to 2 s ahead) replace the backoff.
// The same pool speaking HTTP/2 to https origins with the test CA.
const POOL = {
  'x:retry.base-delay': 20,
  'x:retry.max-delay': 3000,
  'http.socket.timeout': SOCKET_TIMEOUT,
  'http.connection.timeout': CONNECT_TIMEOUT
}
const XML = config(
  pool('default', { default: 'true', ...POOL }),
  pool('h2', { ...POOL, 'x:http2': 'true', 'truststore-filename': resolve(TLS_ROOT, 'truststore.pem'), 'truststore-password': 'password' })
)

/** The upstream of a row, seen from the test. */
interface Upstream {
  /** The URL the gateway forwards to. */
  url: string
  /** Requests (attempts) the upstream has received; undefined where none can arrive (nothing accepts). */
  arrivals: () => number | undefined
  /** performance.now() of each request's arrival. */
  times: () => number[]
  /** Makes the same origin healthy: it answers 200 `ok <n>` from now on. */
  heal: () => Promise<void>
  /** Closes every listener and connection it opened. */
  close: () => Promise<void>
}

type Setup = (t: Tap) => Promise<Upstream>

interface Row {
  name: string
  upstream: Setup
  /** One request answered before the measured one (keep-alive race: it leaves an idle connection). */
  prime?: boolean
  /** Requests the upstream received, where undici itself sent some again (default: `attempts`). */
  arrivals?: number
  /**
   * What differs when the plugin runs on undici 8 (the CI's undici 8 stage),
   * which handles some HTTP/2 faults itself: it sends a refused stream once
   * more on its own, and lets the streams a graceful GOAWAY covers finish.
   */
  undici8?: Partial<Omit<Row, 'name' | 'upstream' | 'undici8'>>
  /** The measured request's method (GET unless told), with a small body. */
  method?: 'POST' | 'PUT'
  /** What stats().errors gains, where failedExchanges() cannot tell (attempts that failed on the way to a success). */
  errors?: number
  /** What the gateway's client gets. */
  status: number
  /** The `code` of the JSON error body (failures only). */
  code?: string
  /** Upstream attempts of the measured request. */
  attempts: number
  /** The response was already on its way to the client: 200, then the body breaks off. */
  aborted?: boolean
  /** What the warn line must say happened on the wire, where the code alone does not tell. */
  detail?: RegExp
  /** Bounds, in ms, on the wait between the first and the second attempt (Retry-After). */
  waited?: [number, number]
  why: string
}

// reply-from 12 wraps ECONNRESET, UND_ERR_SOCKET and UND_ERR_CONNECT_TIMEOUT in
// errors that carry the same code; lib/forward/errors.ts stops unwrapping there,
// so the warn line loses the origin (and the undici message).

/** A fault server answering with `sequence` (then `ok` once healed). */
const faulty = (...sequence: Behaviour[]): Setup => async (t) => {
  const s = await faultServer(t)
  s.serve(...sequence)
  return { url: `${s.origin}/item`, arrivals: () => s.count, times: () => s.arrivals.map((a) => a.at), heal: async () => { s.serve('ok') }, close: s.close }
}

/** An HTTP/2 fault server answering with `sequence` (then `ok` once healed). */
const h2faulty = (...sequence: H2Fault[]): Setup => async (t) => {
  const s = await h2FaultServer(t)
  s.serve(...sequence)
  return { url: `${s.origin}/item`, arrivals: () => s.count, times: () => s.arrivals.map((a) => a.at), heal: async () => { s.serve('ok') }, close: s.close }
}

/** How a port where nothing answers is healed: a server of the row's kind listens there; its origin for that port. */
interface Healer { listen: (t: Tap, port: number) => Promise<{ close: () => Promise<void> }>, origin: (port: number) => string }
const HTTP1: Healer = { listen: async (t, port) => await faultServer(t, { port }), origin: (port) => `http://127.0.0.1:${port}` }
const HTTP2: Healer = { listen: async (t, port) => await h2FaultServer(t, { port }), origin: (port) => `https://localhost:${port}` }

/** A closed port; healed by starting a server on that very port. */
const refused = (kind: Healer): Setup => async (t) => {
  const port = await refusedPort()
  let healed: { close: () => Promise<void> } | undefined
  return {
    url: `${kind.origin(port)}/item`,
    arrivals: () => undefined,
    times: () => [],
    heal: async () => { healed = await kind.listen(t, port) },
    close: async () => { await healed?.close() }
  }
}

/** A listener that never accepts; healed by closing it and listening on its port. */
const unreachable = (kind: Healer): Setup => async (t) => {
  const hole = await blackHole(t)
  let healed: { close: () => Promise<void> } | undefined
  return {
    url: `${kind.origin(hole.port)}/item`,
    arrivals: () => undefined,
    times: () => [],
    heal: async () => {
      await hole.close()
      healed = await kind.listen(t, hole.port)
    },
    close: async () => {
      await hole.close()
      await healed?.close()
    }
  }
}

const ROWS: Row[] = [
  {
    name: 'connection refused',
    upstream: refused(HTTP1),
    status: 502,
    code: 'FST_HTTP_POOLS_UPSTREAM_UNREACHABLE',
    attempts: 3,
    why: 'nothing was sent: retried for any method'
  },
  {
    name: 'connect timeout',
    upstream: unreachable(HTTP1),
    status: 504,
    code: 'FST_HTTP_POOLS_CONNECT_TIMEOUT',
    attempts: 3,
    why: 'nothing was sent: retried for any method'
  },
  {
    name: 'reset before the response headers',
    upstream: faulty('reset-before-headers'),
    status: 502,
    code: 'FST_HTTP_POOLS_UPSTREAM_RESET',
    attempts: 3,
    why: 'a failure after the request was written: retried for GET'
  },
  {
    name: 'connection closed in the middle of the headers',
    upstream: faulty('close-mid-headers'),
    status: 502,
    code: 'FST_HTTP_POOLS_UPSTREAM_RESET',
    attempts: 3,
    why: 'no response was received: retried for GET'
  },
  {
    name: 'connection closed in the middle of the body',
    upstream: faulty('close-mid-body'),
    status: 200,
    aborted: true,
    attempts: 1,
    why: 'the headers had gone on to the client: nothing is retried once any part of the response was sent'
  },
  {
    name: 'headers slower than http.socket.timeout',
    upstream: faulty('slow-headers'),
    status: 504,
    code: 'FST_HTTP_POOLS_SOCKET_TIMEOUT',
    attempts: 3,
    why: 'a socket timeout after the request was written: retried for GET'
  },
  {
    name: 'a body that stalls (http.socket.timeout between chunks)',
    upstream: faulty('stall-body'),
    status: 200,
    aborted: true,
    attempts: 1,
    why: 'the headers had gone on to the client: not retried'
  },
  {
    name: 'malformed status line',
    upstream: faulty('bad-status-line'),
    status: 502,
    code: 'FST_HTTP_POOLS_BAD_RESPONSE',
    attempts: 1,
    why: 'the upstream did answer, with a response that is not HTTP: not a connection failure, not retried'
  },
  {
    name: 'too many headers (http.connection.max-header-count)',
    upstream: faulty('too-many-headers'),
    status: 502,
    code: 'FST_HTTP_POOLS_BAD_RESPONSE',
    attempts: 1,
    why: 'a response that breaks a limit: not retried'
  },
  {
    name: 'a header line too long (http.connection.max-line-length)',
    upstream: faulty('long-header-line'),
    status: 502,
    code: 'FST_HTTP_POOLS_BAD_RESPONSE',
    attempts: 1,
    why: 'a response that breaks a limit: not retried'
  },
  {
    name: 'oversized headers (over 16 KiB in all)',
    upstream: faulty('oversized-headers'),
    status: 502,
    code: 'FST_HTTP_POOLS_BAD_RESPONSE',
    attempts: 1,
    why: 'a response that breaks a limit: not retried'
  },
  {
    name: '503 with Retry-After: 1, then 200',
    upstream: faulty('503-retry-after-1', 'ok'),
    status: 200,
    attempts: 2,
    waited: [800, 5000],
    why: '503 is in x:retry.statuses; its Retry-After (1 s, under x:retry.max-delay) replaces the backoff'
  },
  {
    name: '429 with an HTTP-date Retry-After, then 200',
    upstream: faulty('429-http-date', 'ok'),
    status: 200,
    attempts: 2,
    waited: [800, 5000],
    why: '429 is in x:retry.statuses; the date (1 to 2 s ahead) replaces the backoff'
  },
  // SPEC "Every exchange ends" (issue 13): failures after the headers but
  // before a body byte, informational responses that never end, broken
  // statuses, discarded bodies that never end.
  {
    name: 'headers, then the body never starts',
    upstream: faulty('headers-then-stall'),
    status: 504,
    code: 'FST_HTTP_POOLS_SOCKET_TIMEOUT',
    attempts: 1,
    why: 'no byte had gone to the client, so the status still says what failed; the response had started: not retried'
  },
  {
    name: 'headers, then the connection closes',
    upstream: faulty('headers-then-close'),
    status: 502,
    code: 'FST_HTTP_POOLS_UPSTREAM_RESET',
    attempts: 1,
    why: 'no byte had gone to the client: a reset; the response had started: not retried'
  },
  {
    name: 'headers, then a malformed chunk size',
    upstream: faulty('bad-chunk'),
    status: 502,
    code: 'FST_HTTP_POOLS_BAD_RESPONSE',
    attempts: 1,
    why: 'no byte had gone to the client: bad framing; not retried'
  },
  {
    name: '103 Early Hints every 300 ms, never a final response',
    upstream: faulty('early-hints-forever'),
    status: 504,
    code: 'FST_HTTP_POOLS_SOCKET_TIMEOUT',
    attempts: 3,
    why: 'informational responses do not extend http.socket.timeout; a socket timeout is retried for GET'
  },
  {
    name: 'a status outside 100-599',
    upstream: faulty('status-600'),
    status: 502,
    code: 'FST_HTTP_POOLS_BAD_RESPONSE',
    attempts: 1,
    why: 'a malformed response: its connection is closed, not retried'
  },
  {
    name: 'a retryable 503 whose body never ends (slowly), then 200',
    upstream: faulty('503-endless-body', 'ok'),
    status: 200,
    attempts: 2,
    why: 'the discarded 503 is read for at most http.socket.timeout, then its connection closes and the retry goes on'
  },
  {
    name: 'a retryable 503 whose body never ends (fast), then 200',
    upstream: faulty('503-huge-body', 'ok'),
    status: 200,
    attempts: 2,
    why: 'the discarded 503 is read for at most 64 KiB, then its connection closes and the retry goes on'
  },
  {
    name: 'keep-alive race: the reused idle connection is closed as the request arrives',
    upstream: faulty('keepalive-race', 'ok'),
    prime: true,
    status: 200,
    attempts: 2,
    why: 'a reused keep-alive connection that the server had closed: retried for GET, on a new connection'
  }
]

const UNPROCESSED = 'the origin did not process the stream: retried for any method'

/** The HTTP/2 rows: the faults above that HTTP/2 can express, then its own (SPEC "Which failures are retried"). */
const H2_ROWS: Row[] = [
  { name: 'connection refused', upstream: refused(HTTP2), status: 502, code: 'FST_HTTP_POOLS_UPSTREAM_UNREACHABLE', attempts: 3, why: 'nothing was sent: retried for any method' },
  { name: 'connect timeout', upstream: unreachable(HTTP2), status: 504, code: 'FST_HTTP_POOLS_CONNECT_TIMEOUT', attempts: 3, why: 'nothing was sent: retried for any method' },
  { name: 'connection reset before the response headers', upstream: h2faulty('reset-before-headers'), status: 502, code: 'FST_HTTP_POOLS_UPSTREAM_RESET', attempts: 3, why: 'a failure after the request was written: retried for GET' },
  { name: 'connection closed in the middle of the body', upstream: h2faulty('close-mid-body'), status: 200, aborted: true, attempts: 1, why: 'the headers had gone on to the client: not retried' },
  { name: 'headers slower than http.socket.timeout', upstream: h2faulty('slow-headers'), status: 504, code: 'FST_HTTP_POOLS_SOCKET_TIMEOUT', attempts: 3, why: 'a socket timeout after the request was written: retried for GET' },
  { name: 'a body that stalls', upstream: h2faulty('stall-body'), status: 200, aborted: true, attempts: 1, why: 'the headers had gone on to the client: not retried' },
  { name: 'too many headers', upstream: h2faulty('too-many-headers'), status: 502, code: 'FST_HTTP_POOLS_BAD_RESPONSE', attempts: 1, why: 'a response that breaks a limit: not retried' },
  { name: 'a header line too long', upstream: h2faulty('long-header-line'), status: 502, code: 'FST_HTTP_POOLS_BAD_RESPONSE', attempts: 1, why: 'a response that breaks a limit: not retried' },
  { name: '503 with Retry-After: 1, then 200', upstream: h2faulty('503-retry-after-1', 'ok'), status: 200, attempts: 2, waited: [800, 5000], why: 'its Retry-After replaces the backoff' },
  { name: '429 with an HTTP-date Retry-After, then 200', upstream: h2faulty('429-http-date', 'ok'), status: 200, attempts: 2, waited: [800, 5000], why: 'the date replaces the backoff' },
  { name: 'headers, then the body never starts', upstream: h2faulty('headers-then-stall'), status: 504, code: 'FST_HTTP_POOLS_SOCKET_TIMEOUT', attempts: 1, why: 'the response had started: not retried' },
  { name: 'headers, then the connection closes', upstream: h2faulty('headers-then-close'), status: 502, code: 'FST_HTTP_POOLS_UPSTREAM_RESET', attempts: 1, why: 'the response had started: not retried' },
  { name: '103 Early Hints every 300 ms, never a final response', upstream: h2faulty('early-hints-forever'), status: 504, code: 'FST_HTTP_POOLS_SOCKET_TIMEOUT', attempts: 3, why: 'informational responses do not extend http.socket.timeout' },
  { name: 'a retryable 503 whose body never ends (slowly), then 200', upstream: h2faulty('503-endless-body', 'ok'), status: 200, attempts: 2, why: 'the discarded 503 is read for at most http.socket.timeout' },
  { name: 'a retryable 503 whose body never ends (fast), then 200', upstream: h2faulty('503-huge-body', 'ok'), status: 200, attempts: 2, why: 'the discarded 503 is read for at most 64 KiB' },
  // Issue 15, item 4: RST_STREAM before the response headers.
  { name: 'RST_STREAM REFUSED_STREAM, then 200, for a POST', upstream: h2faulty('refused-stream', 'ok'), method: 'POST', status: 200, attempts: 2, errors: 1, why: UNPROCESSED, undici8: { attempts: 1, arrivals: 2, errors: 0, why: 'undici 8 sends the refused stream again itself' } },
  { name: 'RST_STREAM REFUSED_STREAM every time', upstream: h2faulty('refused-stream'), status: 502, code: 'FST_HTTP_POOLS_UPSTREAM_RESET', attempts: 3, why: UNPROCESSED, undici8: { arrivals: 6 } },
  { name: 'RST_STREAM INTERNAL_ERROR before the headers', upstream: h2faulty('rst-before-headers'), status: 502, code: 'FST_HTTP_POOLS_UPSTREAM_RESET', attempts: 3, why: 'a reset after the request was written: retried for GET' },
  { name: 'RST_STREAM INTERNAL_ERROR before the headers, for a POST', upstream: h2faulty('rst-before-headers'), method: 'POST', status: 502, code: 'FST_HTTP_POOLS_UPSTREAM_RESET', attempts: 1, why: 'the origin may have processed it: POST is not retried' },
  // Issue 15, item 5: GOAWAY.
  { name: 'a GOAWAY that leaves the stream out, then 200, for a POST', upstream: h2faulty('ok', 'goaway-unprocessed', 'ok'), prime: true, method: 'POST', status: 200, attempts: 2, why: `above the GOAWAY's last stream id: ${UNPROCESSED}`, undici8: { attempts: 1, arrivals: 2, errors: 0, why: 'undici 8 sends the stream again itself' } },
  { name: 'a graceful GOAWAY with the stream in flight, for a POST', upstream: h2faulty('goaway-in-flight'), method: 'POST', status: 502, code: 'FST_HTTP_POOLS_UPSTREAM_RESET', attempts: 1, detail: /GOAWAY .* closed the session with stream \d+ in flight, which it may have processed/, why: 'undici closes the session under a stream the origin is processing (README): POST is not retried', undici8: { status: 200, code: undefined, detail: undefined, why: 'undici 8 lets the stream the GOAWAY covered finish' } },
  { name: 'a graceful GOAWAY with the stream in flight, for a PUT', upstream: h2faulty('goaway-in-flight'), method: 'PUT', status: 502, code: 'FST_HTTP_POOLS_UPSTREAM_RESET', attempts: 1, detail: /GOAWAY .* closed the session with stream \d+ in flight, which it may have processed/, why: 'the origin took the stream: not sent again, even for a method x:retry.methods lists', undici8: { status: 200, code: undefined, detail: undefined, why: 'undici 8 lets the stream the GOAWAY covered finish' } }
]

/**
 * What stats().errors (exchanges that failed without a response) gains: every
 * attempt of a row that ends in an error, the one killed attempt of the
 * keep-alive race, none for 503/429 then 200; not checked where the body broke off.
 */
function failedExchanges (row: Row): number | undefined {
  if (row.errors !== undefined) return row.errors
  if (row.aborted === true) return undefined
  if (row.code !== undefined) return row.attempts
  return row.prime === true ? 1 : 0
}

/** The response was on its way: status 200, then the body broke off before its 100 bytes. */
function assertAborted (t: Tap, res: Sent): void {
  t.ok(res.bodyError !== undefined || (res.text ?? '').length < 100,
    `the client's body read fails or is truncated (error ${res.bodyError?.code ?? res.bodyError?.message}, ${res.text?.length ?? 0} bytes)`)
  t.not(res.text, 'x'.repeat(100), 'the client never gets a complete body')
}

function assertError (t: Tap, gw: Gateway, res: Sent, row: Row, origin: string, poolId: string): void {
  const body = res.json()
  t.equal(body.statusCode, row.status, 'Fastify\'s JSON error')
  t.equal(body.code, row.code, `code ${row.code}`)
  // Issue 6 F: the plugin's warn line names pool, origin and cause (reply-from's own line has no pool).
  const line = gw.logs.find((l) => l.level === WARN && l.pool !== undefined)
  t.ok(line, 'a warn line for the failure')
  t.equal(line?.code, body.code, 'the warn line has the code the client got')
  t.equal(line?.pool, poolId, 'the warn line names the pool')
  t.equal(line?.origin, origin, 'the warn line names the origin')
  t.match(line?.msg, row.detail ?? /\S/, 'the warn line says what happened')
}

/** One row through pool `poolId`: the measured request, its attempts and stats, then the healed origin. */
async function check (t: Tap, row: Row, poolId: string): Promise<void> {
  const fds = openFds()
  const up = await row.upstream(t)
  const origin = new URL(up.url).origin
  const gw = await gateway(t, XML)
  if (row.prime === true) {
    const first = await gw.forward(poolId, up.url)
    t.equal(first.statusCode, 200, 'the priming request is answered, keep-alive')
    await gw.settled(poolId)
  }
  const before = { arrivals: up.arrivals() ?? 0, ...gw.stats(poolId) }

  const res = await gw.forward(poolId, up.url, row.method !== undefined ? { method: row.method, headers: { 'content-type': 'text/plain' }, body: 'a body' } : {})
  t.equal(res.statusCode, row.status, `the client gets ${row.status}`)
  if (row.aborted === true) assertAborted(t, res)
  else if (row.status >= 400) assertError(t, gw, res, row, origin, poolId)
  else t.match(res.text, /^ok \d+$/, 'the healthy answer reaches the client')

  const after = await gw.settled(poolId)
  t.equal(after.running, 0, 'nothing running')
  t.equal(after.pending, 0, 'nothing pending')
  // Each attempt is one upstream exchange of the pool; those the upstream saw are counted there too.
  t.equal(after.requests - before.requests, row.attempts, `${row.attempts} attempt(s) (${row.why})`)
  t.equal(after.retries - before.retries, row.attempts - 1, `${row.attempts - 1} retry(ies)`)
  const failed = failedExchanges(row)
  if (failed !== undefined) t.equal(after.errors - before.errors, failed, `${failed} failed exchange(s) in stats().errors`)
  const arrivals = up.arrivals()
  const sent = row.arrivals ?? row.attempts
  if (arrivals !== undefined) t.equal(arrivals - before.arrivals, sent, `the upstream received ${sent} request(s)`)

  if (row.waited !== undefined) {
    const [min, max] = row.waited
    const [first, second] = up.times().slice(before.arrivals)
    const gap = second! - first!
    t.ok(gap >= min && gap < max, `the retry waited about Retry-After (${Math.round(gap)} ms between the attempts, bounds ${min}..${max})`)
    t.ok(res.elapsed >= min && res.elapsed < max, `and so did the client (${Math.round(res.elapsed)} ms)`)
  }

  // The same origin, healthy now: the next request succeeds.
  await up.heal()
  const start = performance.now()
  const next = await gw.forward(poolId, up.url)
  t.equal(next.statusCode, 200, 'the next request succeeds')
  t.match(next.text, /^ok \d+$/)
  t.ok(since(start) < 2000, `promptly (${Math.round(since(start))} ms)`)
  const end = await gw.settled(poolId)
  t.equal(end.running + end.pending + end.queued, 0, 'and leaves nothing running, pending or queued')

  // Every socket the exchange touched is accounted for: gateway and upstream gone, the fds are as before.
  await gw.app.close()
  await up.close()
  t.ok(await eventually(() => openFds() <= fds, 2000), `the process's open file descriptors return to ${fds} (${openFds()})`)
}

for (const row of ROWS) t.test(`${row.name}: ${row.status}, ${row.attempts} attempt(s)`, async (t) => { await check(t, row, 'default') })
const UNDICI_MAJOR = Number((require('undici/package.json') as { version: string }).version.split('.')[0])
const onThisUndici = (row: Row): Row => UNDICI_MAJOR >= 8 && row.undici8 !== undefined ? { ...row, ...row.undici8 } : row
for (const row of H2_ROWS.map(onThisUndici)) t.test(`HTTP/2: ${row.name}: ${row.status}, ${row.attempts} attempt(s)`, async (t) => { await check(t, row, 'h2') })
