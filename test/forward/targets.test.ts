// SPEC "Forwarding": a request target reply-from cannot forward (absolute form
// off the origin, `/\host`, a `..` that climbs out, a malformed
// percent-encoding) is the client's error: 400 with the plugin's code, never
// 500, and nothing reaches the upstream. Targets are written on a raw socket,
// as a client may write them.
import Fastify from 'fastify'
import { connect } from 'node:net'
import t from 'tap'
import plugin from '../../index.js'
import { BOUND_MS, listenGateway, poolsXml, upstream } from '../helpers/loopback.js'

/** One request with `target` as written on the request line; the status and the body. */
async function send (base: string, target: string): Promise<{ status: number, body: string }> {
  const { hostname, port } = new URL(base)
  const socket = connect(Number(port), hostname)
  socket.write(`GET ${target} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`)
  socket.setEncoding('latin1')
  let text = ''
  socket.on('data', (chunk: string) => { text += chunk })
  await new Promise<void>((resolve, reject) => {
    socket.setTimeout(BOUND_MS, () => { socket.destroy(); reject(new Error(`no answer to ${target}`)) })
    socket.on('end', resolve)
    socket.on('error', reject)
  })
  const [head, body] = text.split('\r\n\r\n')
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head!)?.[1]), body: body ?? '' }
}

t.test('targets the client wrote that cannot be forwarded: 400 FST_HTTP_POOLS_BAD_TARGET', async (t) => {
  const up = await upstream(t)
  const app = Fastify()
  await app.register(plugin, { xml: poolsXml('<pool id="main" default="true"/>'), origin: up.origin })
  app.get('/api/*', (req, reply) => reply.from(`/v1/${(req.params as Record<string, string>)['*']}`))
  app.get('/off-origin', (_req, reply) => reply.from('http://elsewhere.example/x'))
  app.all('/*', (_req, reply) => reply.from())
  const base = await listenGateway(t, app)

  for (const target of ['http://evil.example/x', 'https://evil.example:8443/x?q=1', '/\\evil', '/\\\\evil/x', '/a/../../etc/passwd', '/api/%25zz']) {
    const res = await send(base, target)
    t.equal(res.status, 400, `${target}: 400`)
    t.match(JSON.parse(res.body), { statusCode: 400, code: 'FST_HTTP_POOLS_BAD_TARGET', error: 'Bad Request', message: 'the request target cannot be forwarded' }, `${target}: the plugin's code`)
  }
  t.equal(up.seen.length, 0, 'nothing reached the upstream')

  const onOrigin = await send(base, `${up.origin}/same?x=1`)
  t.equal(onOrigin.status, 200, 'the absolute form naming the origin itself is forwarded')
  t.equal(up.seen[0]?.url, '/same?x=1')
  t.equal((await send(base, '/api/ok')).status, 200, 'a plain path through the same routes is forwarded')
  t.equal((await send(base, '/off-origin')).status, 500, 'a route that forwards off the origin itself is the route\'s error')
})
