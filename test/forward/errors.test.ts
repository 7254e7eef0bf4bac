// SPEC "Forwarding errors": when the upstream gives no usable response the
// gateway's client gets 502/504 with Fastify's JSON error and a stable code,
// never a hang; a warning names the pool. SPEC "Forwarding": reply-from's own
// defaults do not act (no certificate-less TLS, no retries of its own).
import Fastify, { type FastifyInstance } from 'fastify'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import plugin from '../../index.js'
import {
  BOUND_MS, WARN, closedPort, get, httpsUpstream, listenGateway, logCapture, poolsXml, rawUpstream, upstream,
  type Got, type LogLine, type Tap
} from '../helpers/loopback.js'

const TLS = join(__dirname, '..', 'fixtures', 'tls')
const pem = (name: string): Buffer => readFileSync(join(TLS, name))

// Retries of the pool are off (one attempt), so every upstream hit counted
// below comes from the gateway's own forwarding.
const XML = poolsXml(`
  <pool id="main" default="true" x:retry.max-attempts="1"/>
  <pool id="errs" x:retry.max-attempts="1"/>
  <pool id="slow" x:retry.max-attempts="1" http.socket.timeout="300" http.connection.timeout="300"/>`)

interface Gateway { app: FastifyInstance, base: string, logs: LogLine[] }

/** A gateway whose routes are `GET /<name>` → reply.from(target) through `pool`. */
async function gateway (t: Tap, routes: Record<string, { pool?: string, target: string }>, options: { replyFrom?: Record<string, unknown>, callOptions?: Record<string, unknown>, xml?: string } = {}): Promise<Gateway> {
  const logs = logCapture()
  const app = Fastify({ logger: { level: 'warn', stream: logs.stream } })
  await app.register(plugin, { xml: options.xml ?? XML, ...(options.replyFrom ? { replyFrom: options.replyFrom } : {}) })
  for (const [name, { pool, target }] of Object.entries(routes)) {
    app.get(`/${name}`, pool !== undefined ? { pool } : {}, (_req, reply) => reply.from(target, options.callOptions))
  }
  const base = await listenGateway(t, app)
  return { app, base, logs: logs.lines }
}

/** Fastify's usual error body, exactly these four fields. */
function assertErrorBody (t: Tap, res: Got, statusCode: number, code: string, error: string): void {
  t.equal(res.statusCode, statusCode, `status ${statusCode}`)
  t.match(res.headers['content-type'], /^application\/json/)
  const body = res.json()
  t.same(Object.keys(body).sort(), ['code', 'error', 'message', 'statusCode'], 'Fastify\'s error shape')
  t.equal(body.statusCode, statusCode)
  t.equal(body.code, code, `code ${code}`)
  t.equal(body.error, error)
  t.type(body.message, 'string')
  t.not(body.message, '')
}

function warned (logs: LogLine[], pool: string, code: string): boolean {
  return logs.some((l) => l.level === WARN && l.pool === pool && l.code === code)
}

t.test('connection refused: 502 FST_HTTP_POOLS_UPSTREAM_UNREACHABLE, a warning names the pool', async (t) => {
  const port = await closedPort()
  const gw = await gateway(t, { refused: { pool: 'errs', target: `http://127.0.0.1:${port}/x` } })
  const res = await get(`${gw.base}/refused`)
  assertErrorBody(t, res, 502, 'FST_HTTP_POOLS_UPSTREAM_UNREACHABLE', 'Bad Gateway')
  t.ok(warned(gw.logs, 'errs', 'FST_HTTP_POOLS_UPSTREAM_UNREACHABLE'), 'a warn line names the pool "errs"')
})

t.test('upstream resets the connection before responding: 502 FST_HTTP_POOLS_UPSTREAM_RESET', async (t) => {
  const up = await upstream(t, (req) => { req.socket.destroy() })
  const gw = await gateway(t, { reset: { pool: 'errs', target: `${up.origin}/x` } })
  const res = await get(`${gw.base}/reset`)
  assertErrorBody(t, res, 502, 'FST_HTTP_POOLS_UPSTREAM_RESET', 'Bad Gateway')
  t.equal(up.seen.length, 1, 'the request did reach the upstream')
  t.ok(warned(gw.logs, 'errs', 'FST_HTTP_POOLS_UPSTREAM_RESET'))
})

/** A raw upstream that answers every request with `head` (status line and header lines, CRLF-separated). */
async function rawResponder (t: Tap, head: string): Promise<string> {
  const raw = await rawUpstream(t, (socket) => {
    socket.once('data', () => { socket.write(`${head}\r\ncontent-length: 2\r\n\r\nok`) })
  })
  return raw.origin
}

t.test('a response that breaks a limit: 502 FST_HTTP_POOLS_BAD_RESPONSE', async (t) => {
  const lines = (n: number, value: string): string => Array.from({ length: n }, (_, i) => `x-h${i}: ${value}`).join('\r\n')
  const tooMany = await rawResponder(t, `HTTP/1.1 200 OK\r\n${lines(120, 'v')}`)
  const tooLong = await rawResponder(t, `HTTP/1.1 200 OK\r\nx-long: ${'a'.repeat(9000)}`)
  const tooBig = await rawResponder(t, `HTTP/1.1 200 OK\r\n${lines(12, 'b'.repeat(4000))}`)
  const fine = await rawResponder(t, `HTTP/1.1 200 OK\r\n${lines(90, 'v')}`)
  const gw = await gateway(t, {
    many: { pool: 'errs', target: `${tooMany}/` },
    long: { pool: 'errs', target: `${tooLong}/` },
    big: { pool: 'errs', target: `${tooBig}/` },
    fine: { pool: 'errs', target: `${fine}/` }
  })

  assertErrorBody(t, await get(`${gw.base}/many`), 502, 'FST_HTTP_POOLS_BAD_RESPONSE', 'Bad Gateway')
  t.ok(warned(gw.logs, 'errs', 'FST_HTTP_POOLS_BAD_RESPONSE'), 'header count: warned with the pool')
  assertErrorBody(t, await get(`${gw.base}/long`), 502, 'FST_HTTP_POOLS_BAD_RESPONSE', 'Bad Gateway')
  assertErrorBody(t, await get(`${gw.base}/big`), 502, 'FST_HTTP_POOLS_BAD_RESPONSE', 'Bad Gateway')

  const ok = await get(`${gw.base}/fine`)
  t.equal(ok.statusCode, 200, 'within the limits, the response passes')
  t.equal(ok.text, 'ok')
  t.equal(ok.headers['x-h89'], 'v')
})

t.test('response headers later than http.socket.timeout: 504 FST_HTTP_POOLS_SOCKET_TIMEOUT', async (t) => {
  // The upstream never answers; the test's teardown closes its connections.
  const up = await upstream(t, () => {})
  const gw = await gateway(t, { late: { pool: 'slow', target: `${up.origin}/x` } })
  const started = Date.now()
  const res = await get(`${gw.base}/late`)
  const elapsed = Date.now() - started
  assertErrorBody(t, res, 504, 'FST_HTTP_POOLS_SOCKET_TIMEOUT', 'Gateway Timeout')
  t.ok(elapsed >= 250, `not before the timeout (${elapsed} ms)`)
  t.ok(elapsed < BOUND_MS, 'well before the client\'s bound')
  t.ok(warned(gw.logs, 'slow', 'FST_HTTP_POOLS_SOCKET_TIMEOUT'))
})

t.test('a TLS handshake that never completes: 504 FST_HTTP_POOLS_CONNECT_TIMEOUT (http.connection.timeout)', async (t) => {
  // Accepts TCP, never answers the ClientHello.
  const silent = await rawUpstream(t, () => {})
  const gw = await gateway(t, { handshake: { pool: 'slow', target: `https://127.0.0.1:${silent.port}/x` } })
  const res = await get(`${gw.base}/handshake`)
  assertErrorBody(t, res, 504, 'FST_HTTP_POOLS_CONNECT_TIMEOUT', 'Gateway Timeout')
  t.ok(warned(gw.logs, 'slow', 'FST_HTTP_POOLS_CONNECT_TIMEOUT'))
})

t.test('the body stalls after the headers were sent: the client connection is ended, it does not hang', async (t) => {
  const up = await upstream(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100' })
    res.write('first part')
  })
  const gw = await gateway(t, { stall: { pool: 'slow', target: `${up.origin}/x` } })
  const { request } = await import('undici')
  const res = await request(`${gw.base}/stall`, { signal: AbortSignal.timeout(BOUND_MS) })
  t.equal(res.statusCode, 200, 'the headers had already gone to the client')
  const err = await res.body.text().then(() => undefined, (e: Error) => e)
  t.ok(err, 'the truncated body fails on the client side')
  t.notOk(err?.name === 'TimeoutError' || err?.name === 'AbortError', `ended by the gateway, not by the client's bound (${err?.name}: ${err?.message})`)
})

t.test('a failing route of the default pool: the warning names the default pool by its id', async (t) => {
  const port = await closedPort()
  const gw = await gateway(t, { plain: { target: `http://127.0.0.1:${port}/x` } })
  const res = await get(`${gw.base}/plain`)
  assertErrorBody(t, res, 502, 'FST_HTTP_POOLS_UPSTREAM_UNREACHABLE', 'Bad Gateway')
  t.ok(warned(gw.logs, 'main', 'FST_HTTP_POOLS_UPSTREAM_UNREACHABLE'), 'pool "main" in the warning')
})

t.test('reply-from\'s insecure TLS defaults do not act: an upstream certificate nobody trusts gives 502, not 200', async (t) => {
  const unknownCa = await httpsUpstream(t, { cert: pem('server-unknown-ca.pem'), key: pem('server-unknown-ca.key') })
  // Signed by the test CA, which is not among Node's default CAs either.
  const testCa = await httpsUpstream(t, { cert: pem('server.pem'), key: pem('server.key') })
  const gw = await gateway(t, {
    unknown: { pool: 'errs', target: `${unknownCa.origin}/x` },
    testca: { target: `${testCa.origin}/x` }
  })

  for (const [route, up] of [['unknown', unknownCa], ['testca', testCa]] as const) {
    const res = await get(`${gw.base}/${route}`)
    t.equal(res.statusCode, 502, `${route}: 502, not 200`)
    t.same(Object.keys(res.json()).sort(), ['code', 'error', 'message', 'statusCode'])
    t.match(res.json().code, /^FST_HTTP_POOLS_/)
    t.equal(up.seen.length, 0, `${route}: no request was sent over the untrusted connection`)
  }
  t.ok(gw.logs.some((l) => l.level === WARN && l.pool === 'errs'), 'warned, naming the pool')
})

t.test('the same upstreams answer 200 through a pool with x:tls.insecure (so the 502 is certificate verification)', async (t) => {
  const unknownCa = await httpsUpstream(t, { cert: pem('server-unknown-ca.pem'), key: pem('server-unknown-ca.key') })
  const otherHost = await httpsUpstream(t, { cert: pem('server-other-host.pem'), key: pem('server-other-host.key') })
  const xml = poolsXml(`
    <pool id="main" default="true" x:retry.max-attempts="1"/>
    <pool id="lax" x:retry.max-attempts="1" x:tls.insecure="true"/>`)
  const gw = await gateway(t, {
    lax: { pool: 'lax', target: `${unknownCa.origin}/x` },
    laxhost: { pool: 'lax', target: `${otherHost.origin}/x` },
    strict: { target: `${unknownCa.origin}/x` }
  }, { xml })
  t.ok(gw.logs.some((l) => l.level === WARN && l.pool === 'lax'), 'a warning names the insecure pool')

  const res = await get(`${gw.base}/lax`)
  t.equal(res.statusCode, 200, res.text)
  t.equal(unknownCa.seen.length, 1)
  t.equal((await get(`${gw.base}/laxhost`)).statusCode, 200, 'host name not checked either')
  t.equal((await get(`${gw.base}/strict`)).statusCode, 502, 'other pools still verify')
  t.equal(unknownCa.seen.length, 1)
})

t.test('an upstream certificate that does not verify is reported as FST_HTTP_POOLS_UPSTREAM_TLS', async (t) => {
  const unknownCa = await httpsUpstream(t, { cert: pem('server-unknown-ca.pem'), key: pem('server-unknown-ca.key') })
  const gw = await gateway(t, { unknown: { pool: 'errs', target: `${unknownCa.origin}/x` } })
  assertErrorBody(t, await get(`${gw.base}/unknown`), 502, 'FST_HTTP_POOLS_UPSTREAM_TLS', 'Bad Gateway')
  t.ok(warned(gw.logs, 'errs', 'FST_HTTP_POOLS_UPSTREAM_TLS'))
})

t.test('the same https upstream is reachable once its CA is the pool\'s truststore (the 502 above is verification)', async (t) => {
  const up = await httpsUpstream(t, { cert: pem('server.pem'), key: pem('server.key') })
  const xml = poolsXml('<pool id="main" default="true" x:retry.max-attempts="1" truststore-filename="ca.pem"/>')
  const logs = logCapture()
  const app = Fastify({ logger: { level: 'warn', stream: logs.stream } })
  await app.register(plugin, { xml, configRoot: TLS })
  app.get('/x', (_req, reply) => reply.from(`${up.origin}/x`))
  const base = await listenGateway(t, app)
  const res = await get(`${base}/x`)
  t.equal(res.statusCode, 200, res.text)
  t.equal(up.seen.length, 1)
})

t.test('reply-from\'s own retries do not act: a 503 with Retry-After: 0 reaches the upstream once and goes to the client', async (t) => {
  const up = await upstream(t, (_req, res) => {
    res.writeHead(503, { 'retry-after': '0', 'content-type': 'text/plain' })
    res.end('busy')
  })
  const target = `${up.origin}/x`

  await t.test('plugin defaults', async (t) => {
    const gw = await gateway(t, { a: { pool: 'errs', target }, b: { target } })
    const before = up.seen.length
    const res = await get(`${gw.base}/a`)
    t.equal(res.statusCode, 503)
    t.equal(res.text, 'busy', 'the upstream\'s own response')
    t.equal(res.headers['retry-after'], '0')
    t.equal(up.seen.length - before, 1, 'hit exactly once')
    const res2 = await get(`${gw.base}/b`)
    t.equal(res2.statusCode, 503)
    t.equal(up.seen.length - before, 2, 'once more for the default pool route')
  })

  await t.test('even when replyFrom options ask for retries', async (t) => {
    const gw = await gateway(t, { a: { pool: 'errs', target } }, {
      replyFrom: { retryMethods: ['GET', 'HEAD'], retriesCount: 5, maxRetriesOn503: 5 }
    })
    const before = up.seen.length
    const res = await get(`${gw.base}/a`)
    t.equal(res.statusCode, 503)
    t.equal(up.seen.length - before, 1, 'hit exactly once')
  })

  await t.test('even when a reply.from() call asks for retries', async (t) => {
    const gw = await gateway(t, { a: { pool: 'errs', target } }, {
      callOptions: { retriesCount: 5, maxRetriesOn503: 5, retryDelay: ({ attempt }: { attempt: number }) => (attempt < 3 ? 1 : null) }
    })
    const before = up.seen.length
    const res = await get(`${gw.base}/a`)
    t.equal(res.statusCode, 503)
    t.equal(up.seen.length - before, 1, 'hit exactly once')
  })
})

t.test('error bodies name no upstream address, host, port or header; the warn line has the details', async (t) => {
  const port = await closedPort()
  const tooLong = await rawResponder(t, `HTTP/1.1 200 OK\r\nx-internal-route: ${'a'.repeat(9000)}`)
  const unknownCa = await httpsUpstream(t, { cert: pem('server-unknown-ca.pem'), key: pem('server-unknown-ca.key') })
  const failing = await upstream(t, (_req, res) => { res.statusCode = 503; res.end() })
  const xml = poolsXml(`
    <pool id="main" default="true" x:retry.max-attempts="1"/>
    <pool id="breaker" x:retry.max-attempts="1" x:circuit-breaker.threshold="1"/>`)
  const gw = await gateway(t, {
    refused: { target: `http://127.0.0.1:${port}/x` },
    unresolvable: { target: 'http://no-such-host.invalid/x' },
    limit: { target: `${tooLong}/x` },
    tls: { target: `${unknownCa.origin}/x` },
    circuit: { pool: 'breaker', target: `${failing.origin}/x` }
  }, { xml })
  t.equal((await get(`${gw.base}/circuit`)).statusCode, 503, 'the first 503 opens the circuit')
  const internals = ['127.0.0.1', String(port), new URL(tooLong).port, String(unknownCa.port), String(failing.port), 'no-such-host', 'x-internal-route', 'localhost', 'ECONNREFUSED', 'ENOTFOUND']
  for (const route of ['refused', 'unresolvable', 'limit', 'tls', 'circuit']) {
    const res = await get(`${gw.base}/${route}`)
    t.match(res.statusCode, /^50[234]$/, `${route}: ${res.statusCode} ${res.json().code}`)
    t.same(internals.filter((s) => res.text.includes(s)), [], `${route}: the body names nothing internal (${res.json().message})`)
  }
  const warnings = gw.logs.filter((l) => l.level === WARN && l.pool !== undefined).map((l) => l.msg).join('\n')
  t.match(warnings, `ECONNREFUSED 127.0.0.1:${port}`, 'the warn log has the address')
  t.match(warnings, /no-such-host\.invalid/, 'and the host name')
  t.match(warnings, /max-line-length/, 'and the limit broken')
})
