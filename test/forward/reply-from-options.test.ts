// Issue 19: every `reply.from` option of @fastify/reply-from's README behaves
// as documented there on a pool's route. A call with no option but the header
// rewrites takes the direct path (the response handed to reply.send as the
// buffer it arrived in); any other option falls back to reply-from, whose
// response is a stream. An onSend hook tells the two apart on the wire path
// itself, so each test also proves which way its call went.
import compress from '@fastify/compress'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { gunzipSync } from 'node:zlib'
import t from 'tap'
import plugin from '../../index.js'
import { request } from 'undici'
import { BOUND_MS, closedPort, get, listenGateway, poolsXml, type Tap, upstream, type Upstream } from '../helpers/loopback.js'

const XML = poolsXml('<pool id="main" default="true"/><pool id="banana"/>')

type Way = 'direct' | 'reply-from' | 'none'

interface Gw { base: string, ways: Way[], app: FastifyInstance }

/**
 * A gateway forwarding to `up` (its `origin` option) on the default pool;
 * `route` declares the routes. `ways`: for each response, whether onSend got
 * the upstream body as a buffer (the direct path) or as a stream (reply-from).
 */
async function gateway (t: Tap, up: Upstream, route: (app: FastifyInstance) => void, before?: (app: FastifyInstance) => Promise<void>): Promise<Gw> {
  const app = Fastify()
  const ways: Way[] = []
  app.addHook('onSend', async (_req, _reply, payload) => {
    ways.push(Buffer.isBuffer(payload) ? 'direct' : typeof (payload as { pipe?: unknown } | null)?.pipe === 'function' ? 'reply-from' : 'none')
    return payload
  })
  await before?.(app)
  await app.register(plugin, { xml: XML, origin: up.origin })
  route(app)
  return { base: await listenGateway(t, app), ways, app }
}

const forward = (opts?: Record<string, unknown>) => (_req: FastifyRequest, reply: FastifyReply) => reply.from(undefined, opts)

t.test('no option: the direct path, on the default and on a named pool', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, up, (app) => {
    app.get('/plain', forward())
    app.get('/named', { pool: 'banana' }, forward())
  })
  for (const path of ['/plain?a=1', '/named']) {
    const res = await get(`${gw.base}${path}`)
    t.equal(res.statusCode, 200)
    t.equal(res.json().url, path, 'path and query forwarded')
    t.equal(res.headers['content-type'], 'application/json')
  }
  t.same(gw.ways, ['direct', 'direct'])
  t.equal(gw.app.pools.stats().banana!.requests, 1, 'the named route went through its pool')
})

t.test('rewriteHeaders(headers, request): the response headers as it returns them, on the direct path', async (t) => {
  const up = await upstream(t, (_req, res) => {
    res.setHeader('content-type', 'text/plain')
    res.setHeader('x-secret', 'internal')
    res.end('hello')
  })
  const gw = await gateway(t, up, (app) => {
    app.get('/*', forward({
      rewriteHeaders: (headers: Record<string, unknown>, request: FastifyRequest) => {
        const { 'x-secret': _dropped, ...rest } = headers
        return { ...rest, 'x-for': request.url }
      }
    }))
  })
  const res = await get(`${gw.base}/r`)
  t.equal(res.text, 'hello')
  t.equal(res.headers['x-secret'], undefined, 'a header it removed is gone')
  t.equal(res.headers['x-for'], '/r', 'a header it added, from the request it was given')
  t.same(gw.ways, ['direct'])
})

t.test('rewriteRequestHeaders(request, headers): the upstream gets what it returns, on the direct path', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, up, (app) => {
    app.get('/*', forward({
      rewriteRequestHeaders: (request: FastifyRequest, headers: Record<string, unknown>) => ({ ...headers, 'x-added': request.method, 'x-drop': undefined })
    }))
  })
  const res = await get(`${gw.base}/q`, { headers: { 'x-drop': 'gone', 'x-keep': 'kept' } })
  const seen = res.json().headers
  t.equal(seen['x-added'], 'GET')
  t.equal(seen['x-drop'], undefined)
  t.equal(seen['x-keep'], 'kept')
  t.equal(seen.host, `127.0.0.1:${up.port}`, 'host is the upstream\'s')
  t.same(gw.ways, ['direct'])
})

t.test('a response with no content-type stays unlabelled, and a body in parts streams, on the direct path', async (t) => {
  const up = await upstream(t, (req, res) => {
    if (req.url === '/parts') {
      res.setHeader('content-type', 'text/plain')
      res.write('first ')
      setImmediate(() => res.end('second'))
      return
    }
    res.end('bare')
  })
  const gw = await gateway(t, up, (app) => { app.get('/*', forward()) })
  const bare = await get(`${gw.base}/bare`)
  t.equal(bare.text, 'bare')
  t.equal(bare.headers['content-type'], undefined, 'Fastify did not label it application/octet-stream')
  const parts = await get(`${gw.base}/parts`)
  t.equal(parts.text, 'first second')
  t.same(gw.ways, ['reply-from', 'reply-from'], 'both went to reply.send as streams (no buffer to label; no whole body in one read)')
})

t.test('onResponse(request, reply, res): falls back to reply-from, which calls it with the response', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, up, (app) => {
    app.get('/*', forward({
      onResponse: (_request: FastifyRequest, reply: FastifyReply, res: { statusCode: number, stream: NodeJS.ReadableStream }) => {
        reply.code(203).header('x-on-response', String(res.statusCode)).send(res.stream)
      }
    }))
  })
  const res = await get(`${gw.base}/o`)
  t.equal(res.statusCode, 203)
  t.equal(res.headers['x-on-response'], '200')
  t.equal(res.json().url, '/o')
  t.same(gw.ways, ['reply-from'])
})

t.test('onError(reply, { error }): falls back to reply-from, which calls it for an upstream failure', async (t) => {
  const port = await closedPort()
  const gw = await gateway(t, { origin: `http://127.0.0.1:${port}` } as Upstream, (app) => {
    app.get('/*', forward({
      onError: (reply: FastifyReply, { error }: { error: Error }) => { reply.code(599).send({ caught: error.message !== '' }) }
    }))
  })
  const res = await get(`${gw.base}/e`)
  t.equal(res.statusCode, 599)
  t.same(res.json(), { caught: true })
  t.same(gw.ways, ['none'], 'no upstream body')
})

t.test('queryString (object or function): falls back to reply-from, which replaces the query', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, up, (app) => {
    app.get('/object', forward({ queryString: { a: '1', b: 'two' } }))
    app.get('/function', forward({ queryString: (search: string, reqUrl: string) => `from=${encodeURIComponent(reqUrl)}&search=${search}` }))
  })
  t.equal((await get(`${gw.base}/object?x=9`)).json().url, '/object?a=1&b=two')
  t.equal((await get(`${gw.base}/function?x=9`)).json().url, `/function?from=${encodeURIComponent('/function?x=9')}&search=`)
  t.same(gw.ways, ['reply-from', 'reply-from'])
})

t.test('body, method and contentType: fall back to reply-from, which sends the new body', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, up, (app) => {
    app.get('/json', forward({ method: 'POST', body: { x: 1 } }))
    app.get('/text', forward({ method: 'PUT', body: 'raw text', contentType: 'text/plain' }))
    app.post('/parsed', forward())
  })
  const json = (await get(`${gw.base}/json`)).json()
  t.equal(json.method, 'POST')
  t.equal(json.body, '{"x":1}')
  t.equal(json.headers['content-type'], 'application/json')
  const text = (await get(`${gw.base}/text`)).json()
  t.equal(text.method, 'PUT')
  t.equal(text.body, 'raw text')
  t.equal(text.headers['content-type'], 'text/plain')
  // A body Fastify parsed is re-encoded by reply-from: that call falls back too.
  const parsed = (await get(`${gw.base}/parsed`, { method: 'POST', body: '{"y":2}', headers: { 'content-type': 'application/json' } })).json()
  t.equal(parsed.body, '{"y":2}')
  t.same(gw.ways, ['reply-from', 'reply-from', 'reply-from'])
})

t.test('getUpstream(request, base): falls back to reply-from, which sends to the origin it returns, through the route\'s pool', async (t) => {
  const up = await upstream(t)
  const other = await upstream(t)
  const gw = await gateway(t, up, (app) => {
    app.get('/*', { pool: 'banana' }, forward({ getUpstream: () => other.origin }))
  })
  const res = await get(`${gw.base}/g`)
  t.equal(res.json().url, '/g')
  t.equal(other.seen.length, 1, 'the other origin got it')
  t.equal(up.seen.length, 0)
  t.equal(gw.app.pools.stats().banana!.requests, 1)
  t.same(gw.ways, ['reply-from'])
})

t.test('timeout: falls back to reply-from; an upstream slower than it gives 504', async (t) => {
  const up = await upstream(t, (_req, res) => { setTimeout(() => res.end('late'), 3000).unref() })
  const gw = await gateway(t, up, (app) => { app.get('/*', forward({ timeout: 200 })) })
  const res = await get(`${gw.base}/slow`)
  t.equal(res.statusCode, 504)
  t.equal(res.json().code, 'FST_HTTP_POOLS_SOCKET_TIMEOUT')
})

t.test('the direct path runs the route\'s hooks: @fastify/compress, an onSend hook and onResponse', async (t) => {
  const body = JSON.stringify({ data: 'x'.repeat(4096) })
  const up = await upstream(t, (_req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end(body)
  })
  let responded = 0
  const gw = await gateway(t, up, (app) => {
    app.addHook('onSend', async (_req, reply, payload) => {
      reply.header('x-hook', 'ran')
      return payload
    })
    app.addHook('onResponse', async () => { responded++ })
    app.get('/*', forward())
  }, async (app) => { await app.register(compress, { global: true }) })
  const res = await request(`${gw.base}/z`, { headers: { 'accept-encoding': 'gzip' }, signal: AbortSignal.timeout(BOUND_MS) })
  const bytes = Buffer.from(await res.body.arrayBuffer())
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-encoding'], 'gzip', 'compressed by @fastify/compress')
  t.equal(gunzipSync(bytes).toString(), body, 'the upstream\'s body, compressed')
  t.equal(res.headers['x-hook'], 'ran')
  t.equal(responded, 1, 'onResponse ran')
  t.same(gw.ways, ['direct'], 'on the direct path')
})
