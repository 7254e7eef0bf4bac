// SPEC "Every exchange ends" and "Nothing leaks" (issues 13 and 19): an
// HTTP/1 client's leaving is seen from its connection, which one listener
// watches for all the exchanges it carries, pipelined ones included. Each
// exchange stops being watched when it ends, and a client whose connection
// closed before its request was forwarded (while an async hook ran) is
// never forwarded, on the direct path and through reply-from alike. An
// HTTP/2 client that resets its stream, and an injected request whose
// response is destroyed, cancel their exchanges too; a response the gateway
// ended without the upstream's body (an onSend hook replaced it) cancels its
// exchange without counting a client gone, and that body failing later
// harms nothing.
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import { once } from 'node:events'
import type { IncomingMessage } from 'node:http'
import { connect as connectH2 } from 'node:http2'
import { connect, type Socket } from 'node:net'
import t from 'tap'
import { Client } from 'undici'
import plugin from '../../index.js'
import { eventually } from '../helpers/resilience.js'
import { BOUND_MS, listenGateway, poolsXml, type Tap, upstream, type Upstream, type UpstreamHandler } from '../helpers/loopback.js'

const XML = poolsXml('<pool id="main" default="true" x:retry.max-attempts="1"/>')

interface Gateway { app: FastifyInstance, base: string, sockets: Set<Socket>, requests: IncomingMessage[] }

interface GatewayOptions {
  /** `reply.from()`'s options: none goes the direct way; an explicit method, through reply-from. */
  from?: { method?: 'GET' }
  /** The route's async preHandler hook. */
  preHandler?: (request: FastifyRequest) => Promise<void>
  /** The route's onSend hook: replaces the payload. */
  onSend?: () => Promise<string>
  http2?: boolean
}

const PATHS = [['the direct path', {}], ['reply-from', { method: 'GET' }]] as const

/** A gateway to `origin` whose route `/*` forwards, remembering each client connection and request it served. */
async function gateway (t: Tap, origin: string, { from = {}, preHandler, onSend, http2 = false }: GatewayOptions = {}): Promise<Gateway> {
  const app = http2 ? Fastify({ http2: true }) as unknown as FastifyInstance : Fastify()
  const sockets = new Set<Socket>()
  const requests: IncomingMessage[] = []
  await app.register(plugin, { xml: XML, origin })
  app.get('/*', {
    preHandler: async (request) => { await preHandler?.(request) },
    ...(onSend === undefined ? {} : { onSend })
  }, (request, reply) => {
    sockets.add(request.raw.socket)
    requests.push(request.raw)
    return reply.from(undefined, from)
  })
  return { app, base: await listenGateway(t, app), sockets, requests }
}

/** An upstream that answers only at teardown (with `first `, at once, when `trickle`). */
async function holding (t: Tap, trickle = false): Promise<Upstream> {
  const held: Array<() => void> = []
  const up = await upstream(t, (_req, res) => {
    if (trickle) res.write('first ')
    held.push(() => { res.end('late') })
  })
  t.teardown(() => { for (const answer of held) answer() })
  return up
}

/** A raw HTTP/1 client of `gw` that has sent `head`. */
async function rawClient (gw: Gateway, head: string): Promise<Socket> {
  const socket = connect(Number(new URL(gw.base).port), '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write(head)
  return socket
}

/** The exchanges the plugin still watches on a client connection (its own symbol-keyed set). */
function watched (socket: Socket): number {
  const key = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'fastify-http-pools.in-flight')
  if (key === undefined) throw new Error('the connection is not watched')
  return (socket as unknown as Record<symbol, Set<unknown>>)[key]!.size
}

const stats = (gw: Gateway) => gw.app.pools.stats().main!
const settled = async (gw: Gateway): Promise<boolean> => await eventually(() => stats(gw).running === 0, BOUND_MS)

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
  t.equal(stats(gw).clientAborts, 0, 'no client counted as gone')
  t.equal(up.seen.length, 60)
})

for (const [path, from] of PATHS) {
  t.test(`${path}: a client that leaves with three pipelined requests in flight: all three are cancelled and counted`, async (t) => {
    const up = await holding(t)
    const gw = await gateway(t, up.origin, { from })
    const socket = await rawClient(gw, 'GET /a HTTP/1.1\r\nhost: gw\r\n\r\nGET /b HTTP/1.1\r\nhost: gw\r\n\r\nGET /c HTTP/1.1\r\nhost: gw\r\n\r\n')
    await up.nth(3)
    socket.destroy()
    t.ok(await eventually(() => stats(gw).clientAborts === 3, BOUND_MS), 'three client aborts counted')
    t.ok(await settled(gw), 'nothing left running')
  })

  t.test(`${path}: a client that left while an async hook ran: its request is never forwarded, and it is counted as gone`, async (t) => {
    const up = await upstream(t)
    const gw = await gateway(t, up.origin, {
      from,
      preHandler: async ({ raw: { socket } }) => { if (!socket.destroyed) await once(socket, 'close') }
    })
    const socket = await rawClient(gw, 'GET /gone HTTP/1.1\r\nhost: gw\r\n\r\n')
    socket.destroy()
    t.ok(await eventually(() => gw.requests.length === 1, BOUND_MS), 'the handler forwarded it')
    t.ok(await eventually(() => stats(gw).clientAborts === 1, BOUND_MS), 'counted as a client gone')
    t.equal(stats(gw).requests, 0, 'nothing sent through the pool')
    t.equal(up.seen.length, 0, 'nothing reached the upstream')
  })

  t.test(`${path}: an onSend hook that replaces the streamed body: the exchange is cancelled with the connection, no client counted as gone`, async (t) => {
    const up = await holding(t, true)
    const gw = await gateway(t, up.origin, { from, onSend: async () => 'replaced' })
    const client = new Client(gw.base)
    const res = await client.request({ path: '/replaced', method: 'GET' })
    t.equal(await res.body.text(), 'replaced')
    t.equal(stats(gw).running, 1, 'the upstream exchange still runs while the connection is open')
    await client.close()
    t.ok(await settled(gw), 'cancelled once the connection closed')
    t.equal(stats(gw).clientAborts, 0, 'the client did not leave: not counted')
    t.equal(stats(gw).errors, 0, 'nor an upstream error')
  })

  t.test(`${path}: an onSend hook that replaced the streamed body, then the upstream fails: the gateway goes on`, async (t) => {
    const up = await upstream(t, (req, res) => {
      if (req.url !== '/fails') return res.end('next')
      res.write('first ')
      setTimeout(() => { res.socket!.destroy() }, 20)
    })
    const gw = await gateway(t, up.origin, { from, onSend: async () => 'replaced' })
    const client = new Client(gw.base)
    t.teardown(async () => { await client.close() })
    const res = await client.request({ path: '/fails', method: 'GET' })
    t.equal(await res.body.text(), 'replaced')
    t.ok(await eventually(() => stats(gw).errors === 1, BOUND_MS), 'the upstream\'s failure counted')
    t.ok(await settled(gw), 'nothing left running')
    t.equal(stats(gw).clientAborts, 0)
    const next = await client.request({ path: '/next', method: 'GET' })
    t.equal(await next.body.text(), 'replaced', 'the next request is served: the unread body\'s failure crashed nothing')
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
  const gw = await gateway(t, up.origin, { http2: true })
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
  t.equal(stats(gw).clientAborts, 0, 'complete responses: no client gone')

  const stream = session.request({ ':path': '/hang' })
  stream.on('error', () => {})
  t.ok(await eventually(() => waiting === 1, BOUND_MS), 'the request reached the upstream')
  stream.close()
  t.ok(await eventually(() => stats(gw).clientAborts === 1, BOUND_MS), 'the reset stream counted as a client gone')
  t.ok(await settled(gw), 'its exchange cancelled: nothing left running')
  t.equal(await read('/c'), 'first last', 'the session goes on serving')
})

t.test('an HTTP/2 client that reset its stream while an async hook ran: its request is never forwarded', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, up.origin, {
    http2: true,
    preHandler: async (request) => {
      const stream = (request.raw as unknown as { stream: NodeJS.EventEmitter & { destroyed: boolean } }).stream
      if (!stream.destroyed) await once(stream, 'close')
    }
  })
  const session = connectH2(gw.base)
  t.teardown(() => { session.close() })
  const stream = session.request({ ':path': '/gone' })
  stream.on('error', () => {})
  await once(stream, 'ready')
  stream.close()
  t.ok(await eventually(() => gw.requests.length === 1, BOUND_MS), 'the handler forwarded it')
  t.ok(await eventually(() => stats(gw).clientAborts === 1, BOUND_MS), 'counted as a client gone')
  t.equal(stats(gw).requests, 0, 'nothing sent through the pool')
  t.equal(up.seen.length, 0, 'nothing reached the upstream')
})

t.test('inject: a request whose injected response is destroyed (its stand-in socket never closes) cancels the exchange', async (t) => {
  const up = await holding(t)
  const gw = await gateway(t, up.origin)
  const injected = gw.app.inject({ url: '/injected' })
  injected.catch(() => {})
  await up.nth(1)
  // What light-my-request does when its request is destroyed.
  gw.requests[0]!.destroy()
  t.ok(await eventually(() => stats(gw).clientAborts === 1, BOUND_MS), 'counted as a client gone')
  t.ok(await settled(gw), 'its exchange cancelled: nothing left running')
})
