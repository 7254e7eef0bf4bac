// SPEC "Every exchange ends" and "Nothing leaks" (issues 13 and 19): an
// HTTP/1 client's leaving is seen from its connection, which one listener
// watches for all the exchanges it carries, pipelined ones included. Each
// exchange stops being watched when it ends, and a client whose connection
// closed before its request was forwarded (while an async hook ran) is
// never forwarded, on the direct path and through reply-from alike. An
// HTTP/2 client that resets its stream cancels its exchange too.
import Fastify, { type FastifyInstance } from 'fastify'
import { once } from 'node:events'
import { connect as connectH2 } from 'node:http2'
import { connect, type Socket } from 'node:net'
import t from 'tap'
import { Client } from 'undici'
import plugin from '../../index.js'
import { eventually } from '../helpers/resilience.js'
import { BOUND_MS, listenGateway, poolsXml, type Tap, upstream, type UpstreamHandler } from '../helpers/loopback.js'

const XML = poolsXml('<pool id="main" default="true" x:retry.max-attempts="1"/>')

interface Gateway { app: FastifyInstance, base: string, sockets: Set<Socket> }

// `reply.from()` options: none goes the direct way; an explicit method, through reply-from.
const PATHS = [['the direct path', {}], ['reply-from', { method: 'GET' }]] as const

/** A gateway to `origin` whose route `/*` forwards with `options`, remembering each client connection it served. */
async function gateway (t: Tap, origin: string, options: { method?: 'GET' } = {}, preHandler?: (socket: Socket) => Promise<void>, http2 = false): Promise<Gateway> {
  const app = http2 ? Fastify({ http2: true }) as unknown as FastifyInstance : Fastify()
  const sockets = new Set<Socket>()
  await app.register(plugin, { xml: XML, origin })
  app.get('/*', {
    preHandler: async (request) => { await preHandler?.(request.raw.socket) }
  }, (request, reply) => {
    sockets.add(request.raw.socket)
    return reply.from(undefined, options)
  })
  return { app, base: await listenGateway(t, app), sockets }
}

/** The exchanges the plugin still watches on a client connection (its own symbol-keyed set). */
function watched (socket: Socket): number {
  const key = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'fastify-http-pools.in-flight')
  if (key === undefined) throw new Error('the connection is not watched')
  return (socket as unknown as Record<symbol, Set<unknown>>)[key]!.size
}

const clientAborts = (gw: Gateway): number => gw.app.pools.stats().main!.clientAborts

t.test('one kept-alive connection, 30 requests in turn then 30 pipelined: all answered, one watcher, nothing left watched', async (t) => {
  // A short wait upstream, so that pipelined requests overlap.
  const later: UpstreamHandler = (_req, res) => { setTimeout(() => { res.end('ok') }, 5) }
  const up = await upstream(t, later)
  const gw = await gateway(t, up.origin)
  const client = new Client(gw.base, { pipelining: 10 })
  t.teardown(async () => { await client.close() })
  const get = async (i: number): Promise<string> => {
    const res = await client.request({ path: `/r${i}`, method: 'GET' })
    return `${res.statusCode} ${await res.body.text()}`
  }
  const inTurn: string[] = []
  for (let i = 0; i < 30; i++) inTurn.push(await get(i))
  t.same(inTurn, Array(30).fill('200 ok'))
  t.equal(gw.sockets.size, 1, 'one connection carried them')
  const [socket] = gw.sockets
  const listeners = socket!.listenerCount('close')
  t.equal(watched(socket!), 0, 'in turn: nothing watched once they ended')

  const pipelined = await Promise.all(Array.from({ length: 30 }, async (_v, i) => await get(30 + i)))
  t.same(pipelined, Array(30).fill('200 ok'))
  t.equal(gw.sockets.size, 1, 'still the one connection')
  t.equal(socket!.listenerCount('close'), listeners, 'no listener added per request')
  t.equal(watched(socket!), 0, 'pipelined: nothing watched once they ended')
  t.equal(clientAborts(gw), 0, 'no client counted as gone')
  t.equal(up.seen.length, 60)
})

for (const [path, options] of PATHS) {
  t.test(`${path}: a client that leaves with three pipelined requests in flight: all three are cancelled and counted`, async (t) => {
    const held: Array<() => void> = []
    const up = await upstream(t, (_req, res) => { held.push(() => { res.end('late') }) }) // answers only at teardown
    t.teardown(() => { for (const answer of held) answer() })
    const gw = await gateway(t, up.origin, options)
    const { port } = new URL(gw.base)
    const socket = connect(Number(port), '127.0.0.1')
    socket.on('error', () => {})
    await once(socket, 'connect')
    socket.write('GET /a HTTP/1.1\r\nhost: gw\r\n\r\nGET /b HTTP/1.1\r\nhost: gw\r\n\r\nGET /c HTTP/1.1\r\nhost: gw\r\n\r\n')
    await up.nth(3)
    socket.destroy()
    t.ok(await eventually(() => clientAborts(gw) === 3, BOUND_MS), 'three client aborts counted')
    t.ok(await eventually(() => gw.app.pools.stats().main!.running === 0, BOUND_MS), 'nothing left running')
  })

  t.test(`${path}: a client that left while an async hook ran: its request is never forwarded, and it is counted as gone`, async (t) => {
    const up = await upstream(t)
    let forwarded!: () => void
    const handlerRan = new Promise<void>((resolve) => { forwarded = resolve })
    const gw = await gateway(t, up.origin, options, async (socket) => {
      if (!socket.destroyed) await once(socket, 'close')
      // The handler runs next; resolve once it has.
      setImmediate(forwarded)
    })
    const { port } = new URL(gw.base)
    const socket = connect(Number(port), '127.0.0.1')
    socket.on('error', () => {})
    await once(socket, 'connect')
    socket.write('GET /gone HTTP/1.1\r\nhost: gw\r\n\r\n')
    socket.destroy()
    await handlerRan
    t.equal(gw.sockets.size, 1, 'the handler forwarded it')
    t.ok(await eventually(() => clientAborts(gw) === 1, BOUND_MS), 'counted as a client gone')
    t.equal(up.seen.length, 0, 'nothing reached the upstream')
    t.equal(gw.app.pools.stats().main!.requests, 0, 'nothing sent through the pool')
  })
}

t.test('HTTP/2 clients: one that resets its stream cancels the exchange; ones that read to the end are not counted as gone', async (t) => {
  let waiting = 0
  const held: Array<() => void> = []
  // /hang never answers (until teardown); anything else trickles a body in two parts.
  const up = await upstream(t, (req, res) => {
    if (req.url === '/hang') {
      waiting++
      held.push(() => { res.end() })
      return
    }
    res.write('first ')
    setTimeout(() => { res.end('last') }, 20)
  })
  t.teardown(() => { for (const answer of held) answer() })
  const gw = await gateway(t, up.origin, {}, undefined, true)
  const session = connectH2(gw.base)
  t.teardown(() => { session.close() })
  const read = async (path: string): Promise<string> => {
    const stream = session.request({ ':path': path })
    stream.setEncoding('utf8')
    let body = ''
    for await (const chunk of stream) body += chunk as string
    return body
  }
  t.same(await Promise.all([read('/a'), read('/b')]), ['first last', 'first last'])
  t.equal(clientAborts(gw), 0, 'complete responses: no client gone')

  const stream = session.request({ ':path': '/hang' })
  stream.on('error', () => {})
  t.ok(await eventually(() => waiting === 1, BOUND_MS), 'the request reached the upstream')
  stream.close()
  t.ok(await eventually(() => clientAborts(gw) === 1, BOUND_MS), 'the reset stream counted as a client gone')
  t.ok(await eventually(() => gw.app.pools.stats().main!.running === 0, BOUND_MS), 'its exchange cancelled: nothing left running')
  t.equal(await read('/c'), 'first last', 'the session goes on serving')
})
