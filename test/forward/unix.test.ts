// SPEC "Forwarding": whatever the URL, the route's pool carries the request,
// unix sockets included. `origin: 'unix+http://%2Fpath.sock'` and
// `reply.from('unix+https://…')` go through the pool (its headers, its
// counters, its TLS verification and truststore), never through a connection
// pool of reply-from's own.
import Fastify from 'fastify'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import plugin from '../../index.js'
import { TLS_ROOT, serverTls } from '../helpers/e2e.js'
import { get, listenGateway, poolsXml, type Tap } from '../helpers/loopback.js'

const XML = poolsXml(`
  <pool id="main" default="true" x:retry.max-attempts="1" truststore-filename="ca.pem"><headers><header name="x-pool" value="main"/></headers></pool>
  <pool id="strict" x:retry.max-attempts="1"><headers><header name="x-pool" value="strict"/></headers></pool>`)

const echo = (req: IncomingMessage, res: ServerResponse): void => {
  res.setHeader('content-type', 'application/json')
  res.end(JSON.stringify({ url: req.url, host: req.headers.host, pool: req.headers['x-pool'] }))
}

/** An HTTP (or, with `tls`, HTTPS) server on a unix socket in a folder of its own; its `unix+http(s)://` origin. */
async function unixUpstream (t: Tap, name: string, tls?: ReturnType<typeof serverTls>): Promise<string> {
  // Not the test's folder: a socket path has at most 107 bytes.
  const dir = mkdtempSync(join(tmpdir(), 'fhp-unix-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const path = join(dir, name)
  const server = tls === undefined ? createServer(echo) : createHttpsServer(tls, echo)
  server.listen(path)
  await once(server, 'listening')
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return `unix+${tls === undefined ? 'http' : 'https'}://${encodeURIComponent(path)}`
}

t.test('origin on a unix socket: relative sources and reply.from() go through the route\'s pool', async (t) => {
  const origin = await unixUpstream(t, 'origin.sock')
  const app = Fastify()
  await app.register(plugin, { xml: XML, origin, configRoot: TLS_ROOT })
  app.get('/strict/*', { pool: 'strict' }, (_req, reply) => reply.from())
  app.get('/full', (_req, reply) => reply.from(`${origin}/full?via=url`))
  app.get('/*', (_req, reply) => reply.from())
  const base = await listenGateway(t, app)

  t.same((await get(`${base}/a/b?q=1`)).json(), { url: '/a/b?q=1', host: 'localhost', pool: 'main' }, 'the default pool, its header, Host: localhost')
  t.same((await get(`${base}/strict/x`)).json(), { url: '/strict/x', host: 'localhost', pool: 'strict' }, 'a route\'s pool')
  t.same((await get(`${base}/full`)).json(), { url: '/full?via=url', host: 'localhost', pool: 'main' }, 'a full URL on the origin')
  const stats = app.pools.stats()
  t.same([stats.main!.requests, stats.strict!.requests], [2, 1], 'every request is counted by its pool')
})

t.test('reply.from(unix+http(s) URL) without an origin: the pool carries it, TLS verified against the pool\'s truststore', async (t) => {
  const plain = await unixUpstream(t, 'plain.sock')
  const secure = await unixUpstream(t, 'secure.sock', serverTls())
  const untrusted = await unixUpstream(t, 'untrusted.sock', serverTls('server-unknown-ca'))
  const app = Fastify()
  await app.register(plugin, { xml: XML, configRoot: TLS_ROOT })
  app.get('/plain', (_req, reply) => reply.from(`${plain}/p?x=1`))
  app.get('/secure', (_req, reply) => reply.from(`${secure}/s`))
  app.get('/secure-strict', { pool: 'strict' }, (_req, reply) => reply.from(`${secure}/s`))
  app.get('/untrusted', (_req, reply) => reply.from(`${untrusted}/u`))
  const base = await listenGateway(t, app)

  t.same((await get(`${base}/plain`)).json(), { url: '/p?x=1', host: 'localhost', pool: 'main' }, 'unix+http: through the pool')
  t.same((await get(`${base}/secure`)).json(), { url: '/s', host: 'localhost', pool: 'main' }, 'unix+https: the test CA is the pool\'s truststore')
  const strict = await get(`${base}/secure-strict`)
  t.same([strict.statusCode, strict.json().code], [502, 'FST_HTTP_POOLS_UPSTREAM_TLS'], 'a pool without that truststore does not trust it')
  const unknown = await get(`${base}/untrusted`)
  t.same([unknown.statusCode, unknown.json().code], [502, 'FST_HTTP_POOLS_UPSTREAM_TLS'], 'a certificate of an unknown CA is refused')
  t.same([app.pools.stats().main!.requests, app.pools.stats().strict!.requests], [3, 1], 'every exchange is the pool\'s')
})
