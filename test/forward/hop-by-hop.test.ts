// SPEC "Forwarding": hop-by-hop and proxy-only request headers of the client
// never reach the upstream (connection and what it names, keep-alive,
// proxy-connection, proxy-authorization, te, trailer, upgrade, expect), and a
// client's `Expect: 100-continue` does not fail the request. The same holds for
// responses: the upstream's connection and what it names, keep-alive,
// proxy-connection, te, trailer, upgrade and transfer-encoding never reach the
// client, whose own `Connection: close` is then honoured. Requests are sent
// with node:http, which (unlike undici) lets a client send all of these.
import Fastify from 'fastify'
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http'
import { connect } from 'node:net'
import t from 'tap'
import plugin from '../../index.js'
import { BOUND_MS, type Tap, listenGateway, poolsXml, rawUpstream, upstream } from '../helpers/loopback.js'

const XML = poolsXml('<pool id="main" default="true"><headers><header name="x-pool" value="main"/></headers></pool>')

const HOP_BY_HOP = ['keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'upgrade', 'expect']

interface Answer { statusCode: number, headers: IncomingHttpHeaders, body: string, continued: boolean }

/** One request with node:http, no agent; with `expectContinue` the body is written only after the 100. */
async function send (url: string, options: { method?: string, headers: OutgoingHttpHeaders, body?: string, expectContinue?: boolean }): Promise<Answer> {
  return await new Promise((resolve, reject) => {
    let continued = false
    const req = httpRequest(url, { method: options.method ?? 'GET', headers: options.headers, agent: false, signal: AbortSignal.timeout(BOUND_MS) }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ statusCode: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString(), continued }))
      res.on('error', reject)
    })
    req.on('error', reject)
    if (options.expectContinue === true) {
      req.on('continue', () => {
        continued = true
        req.end(options.body)
      })
      req.flushHeaders()
    } else {
      req.end(options.body)
    }
  })
}

async function gateway (t: Tap, origin: string, replyFrom?: (path: string) => Record<string, unknown>): Promise<string> {
  const app = Fastify()
  await app.register(plugin, { xml: XML, origin })
  app.get('/cached', { cacheKey: () => 'one' }, (req, reply) => reply.from(req.url))
  app.all('/*', (req, reply) => reply.from(req.url, replyFrom?.(req.url)))
  return await listenGateway(t, app)
}

function assertDropped (t: Tap, headers: IncomingHttpHeaders): void {
  for (const name of HOP_BY_HOP) t.equal(headers[name], undefined, `${name} is dropped`)
  t.equal(headers['x-foo'], undefined, 'a header named by the client\'s `connection` is dropped')
  t.equal(headers['x-bar'], undefined, 'every header it names is dropped')
  t.notMatch(headers.connection ?? '', /x-foo|x-bar/i, 'the client\'s connection header is not forwarded')
  t.equal(headers['x-normal'], 'kept', 'an end-to-end header reaches the upstream')
  t.equal(headers.authorization, 'Bearer end-to-end', 'authorization (not proxy-authorization) reaches the upstream')
  t.equal(headers['x-pool'], 'main', 'the pool\'s own header is still added')
}

const CLIENT_HEADERS: OutgoingHttpHeaders = {
  connection: 'x-foo, x-bar',
  'x-foo': 'named by connection',
  'x-bar': 'named by connection too',
  'keep-alive': 'timeout=5, max=100',
  'proxy-connection': 'keep-alive',
  'proxy-authorization': 'Basic dXNlcjpwYXNz',
  te: 'trailers',
  trailer: 'x-checksum',
  upgrade: 'h2c',
  'x-normal': 'kept',
  authorization: 'Bearer end-to-end'
}

// node:http sends a `trailer` header only with a chunked body, hence POST.
const { trailer: _trailer, ...withoutTrailer } = CLIENT_HEADERS

t.test('hop-by-hop and proxy-only headers never reach the upstream; the request succeeds', async (t) => {
  const up = await upstream(t)
  const base = await gateway(t, up.origin)

  const res = await send(`${base}/hop`, { method: 'POST', headers: { ...CLIENT_HEADERS, 'content-type': 'text/plain' }, body: 'chunked body' })
  t.equal(res.statusCode, 200)
  t.equal(up.seen.length, 1)
  t.equal(up.seen[0]!.body, 'chunked body')
  assertDropped(t, up.seen[0]!.headers)
})

t.test('a chunked upload left as a stream (the direct path): hop-by-hop and framing headers dropped, undici frames it again', async (t) => {
  const up = await upstream(t)
  const app = Fastify()
  await app.register(plugin, { xml: XML, origin: up.origin })
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => { done(null, payload) })
  app.post('/*', (req, reply) => reply.from(req.url))
  const base = await listenGateway(t, app)

  const res = await send(`${base}/stream`, { method: 'POST', headers: { ...CLIENT_HEADERS, 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' }, body: 'streamed body' })
  t.equal(res.statusCode, 200)
  const seen = up.seen[0]!
  t.equal(seen.body, 'streamed body', 'the whole body reached the upstream')
  // undici frames what it sends (a length once the upload has ended, chunks before): one framing, its own.
  t.not(seen.headers['content-length'] === undefined, seen.headers['transfer-encoding'] === undefined, 'one framing header reached the upstream')
  assertDropped(t, seen.headers)
})

t.test('on a GET as well', async (t) => {
  const up = await upstream(t)
  const base = await gateway(t, up.origin)
  const res = await send(`${base}/hop?q=1`, { headers: withoutTrailer })
  t.equal(res.statusCode, 200)
  t.equal(up.seen[0]!.url, '/hop?q=1')
  for (const name of HOP_BY_HOP) t.equal(up.seen[0]!.headers[name], undefined, `${name} is dropped`)
  t.equal(up.seen[0]!.headers['x-foo'], undefined)
  t.equal(up.seen[0]!.headers['x-normal'], 'kept')
})

t.test('Expect: 100-continue with a body: the gateway answers 100, the request succeeds, expect is not forwarded', async (t) => {
  const up = await upstream(t)
  const base = await gateway(t, up.origin)
  const body = 'payload '.repeat(1000)

  for (const framing of ['content-length', 'chunked']) {
    const res = await send(`${base}/upload`, {
      method: 'POST',
      headers: framing === 'content-length'
        ? { ...withoutTrailer, expect: '100-continue', 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) }
        : { ...CLIENT_HEADERS, expect: '100-continue', 'content-type': 'text/plain' },
      body,
      expectContinue: true
    })
    t.ok(res.continued, `${framing}: the client got 100 Continue`)
    t.equal(res.statusCode, 200, `${framing}: the request succeeds`)
    const seen = up.seen.at(-1)!
    t.equal(seen.method, 'POST')
    t.equal(seen.body, body, `${framing}: the whole body reached the upstream`)
    assertDropped(t, seen.headers)
  }
  t.equal(up.seen.length, 2)
})

t.test('Expect: 100-continue through app.inject (no 100 on the wire) succeeds as well', async (t) => {
  const up = await upstream(t)
  const app = Fastify()
  await app.register(plugin, { xml: XML, origin: up.origin })
  app.post('/inject', (_req, reply) => reply.from('/inject'))
  t.teardown(async () => { await app.close() })

  const res = await app.inject({ method: 'POST', url: '/inject', headers: { expect: '100-continue', 'content-type': 'text/plain', te: 'trailers' }, payload: 'hello' })
  t.equal(res.statusCode, 200)
  t.equal(up.seen[0]!.headers.expect, undefined)
  t.equal(up.seen[0]!.headers.te, undefined)
  t.equal(up.seen[0]!.body, 'hello')
})

t.test('a route\'s own rewriteRequestHeaders still runs, after the hop-by-hop headers are gone', async (t) => {
  const up = await upstream(t)
  let given: Record<string, unknown> = {}
  const base = await gateway(t, up.origin, () => ({
    rewriteRequestHeaders: (_req: unknown, headers: Record<string, unknown>) => {
      given = { ...headers }
      return { ...headers, 'x-added-by-route': 'yes' }
    }
  }))

  const res = await send(`${base}/rewrite`, { method: 'POST', headers: { ...CLIENT_HEADERS, 'content-type': 'text/plain' }, body: 'x' })
  t.equal(res.statusCode, 200)
  for (const name of HOP_BY_HOP) t.equal(given[name], undefined, `the route's rewrite does not see ${name}`)
  t.equal(given['x-normal'], 'kept')
  t.equal(up.seen[0]!.headers['x-added-by-route'], 'yes', 'what the route adds is sent')
  assertDropped(t, up.seen[0]!.headers)
})

/**
 * GETs of `path` on one raw connection, one after the other, with these
 * `Connection` values: everything that came back until the gateway closed the
 * connection. Each response's body is `hello`.
 */
async function onOneConnection (base: string, path: string, connections: string[]): Promise<string> {
  const { hostname, port } = new URL(base)
  const socket = connect(Number(port), hostname)
  const next = (): void => { socket.write(`GET ${path} HTTP/1.1\r\nHost: gw\r\nConnection: ${connections.shift()!}\r\n\r\n`) }
  next()
  let text = ''
  socket.setEncoding('latin1')
  socket.on('data', (chunk: string) => {
    text += chunk
    // A response ends with its body, or with the last chunk when it is chunked.
    if ((text.endsWith('hello') || text.endsWith('\r\n0\r\n\r\n')) && connections.length > 0) next()
  })
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`the gateway did not close the connection within ${BOUND_MS} ms: ${text}`)) }, BOUND_MS)
    socket.on('error', reject)
    socket.on('end', () => {
      clearTimeout(timer)
      socket.destroy()
      resolve(text)
    })
  })
}

t.test('the upstream\'s hop-by-hop response headers never reach the client, whose own Connection: close is honoured', async (t) => {
  const up = await rawUpstream(t, (socket) => {
    socket.on('data', () => {
      socket.write([
        'HTTP/1.1 200 OK',
        'Connection: keep-alive, X-Internal-Route',
        'Keep-Alive: timeout=600',
        'X-Internal-Route: 10.0.0.7',
        'Proxy-Connection: keep-alive',
        'TE: trailers',
        'Trailer: x-checksum',
        'Upgrade: h2c',
        'X-Normal: kept',
        'Transfer-Encoding: chunked',
        '', '5', 'hello', '0', '', ''
      ].join('\r\n'))
    })
  })
  const base = await gateway(t, up.origin)
  // The second /cached is answered from the cache.
  for (const path of ['/plain', '/cached', '/cached']) {
    const res = await send(`${base}${path}`, { headers: {} })
    t.equal(res.statusCode, 200, path)
    t.equal(res.body, 'hello', `${path}: the body`)
    t.equal(res.headers['x-normal'], 'kept', `${path}: an end-to-end header is kept`)
    for (const name of ['x-internal-route', 'proxy-connection', 'te', 'trailer', 'upgrade']) t.equal(res.headers[name], undefined, `${path}: ${name} is dropped`)
    t.notMatch(String(res.headers['keep-alive']), /600/, `${path}: the upstream's keep-alive is not the client's`)
    t.notMatch(String(res.headers.connection), /x-internal-route/i, `${path}: nor its connection`)

    const closing = await onOneConnection(base, path, ['close'])
    t.equal(closing.match(/HTTP\/1\.1 200/g)?.length, 1, `${path}, Connection: close: the response, then the gateway closes the connection`)
    t.match(closing, /\r\nconnection: close\r\n/i, `${path}, Connection: close: the response says so`)
    const kept = await onOneConnection(base, path, ['keep-alive', 'close'])
    t.equal(kept.match(/HTTP\/1\.1 200/g)?.length, 2, `${path}, Connection: keep-alive: the connection serves the next request`)
  }
})
