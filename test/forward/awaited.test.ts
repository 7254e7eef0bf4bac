// Issue 19: a handler that awaits `reply.from()` (or returns it) resumes as
// with Fastify's own `reply.then`: once the response is done, whether it went
// whole, streamed, as an error, or its client left; never before, never not.
import Fastify, { type FastifyReply } from 'fastify'
import { connect } from 'node:net'
import t from 'tap'
import plugin from '../../index.js'
import { BOUND_MS, closedPort, get, listenGateway, poolsXml, type Tap, upstream, type UpstreamHandler } from '../helpers/loopback.js'

const XML = poolsXml('<pool id="main" default="true" x:retry.max-attempts="1"/>')

interface Resumed { sent: boolean, finished: boolean }

/** A gateway whose one route awaits reply.from(); `resumed` settles with the reply's state when the handler goes on. */
async function gateway (t: Tap, origin: string): Promise<{ base: string, resumed: Promise<Resumed> }> {
  const app = Fastify()
  let resume!: (state: Resumed) => void
  const resumed = new Promise<Resumed>((resolve) => { resume = resolve })
  await app.register(plugin, { xml: XML, origin })
  app.get('/*', async (_req, reply: FastifyReply) => {
    await reply.from()
    resume({ sent: reply.sent, finished: reply.raw.writableFinished })
  })
  return { base: await listenGateway(t, app), resumed }
}

const bounded = async <T>(p: Promise<T>, what: string): Promise<T> => await Promise.race([p,
  new Promise<T>((_resolve, reject) => setTimeout(() => { reject(new Error(`${what}: not within ${BOUND_MS} ms`)) }, BOUND_MS).unref())])

t.test('a body sent whole: the handler resumes with the response sent', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, up.origin)
  const res = await get(`${gw.base}/whole`)
  t.equal(res.statusCode, 200)
  t.same(await bounded(gw.resumed, 'the handler resumed'), { sent: true, finished: true })
})

t.test('a streamed body: the handler resumes only once the last byte is written', async (t) => {
  // The body trickles: handed over with its first chunk, ended a while later.
  const trickle: UpstreamHandler = (_req, res) => {
    res.setHeader('content-type', 'text/plain')
    res.write('first ')
    setTimeout(() => { res.end('last') }, 100)
  }
  const up = await upstream(t, trickle)
  const gw = await gateway(t, up.origin)
  t.equal((await get(`${gw.base}/stream`)).text, 'first last')
  t.same(await bounded(gw.resumed, 'the handler resumed'), { sent: true, finished: true }, 'resumed after the end, not at the hand-over')
})

t.test('an upstream failure: the handler resumes once the 502 is sent', async (t) => {
  const gw = await gateway(t, `http://127.0.0.1:${await closedPort()}`)
  const res = await get(`${gw.base}/down`)
  t.equal(res.statusCode, 502)
  t.same(await bounded(gw.resumed, 'the handler resumed'), { sent: true, finished: true })
})

t.test('a client that leaves before the response: the handler still resumes, the response never sent', async (t) => {
  let arrived!: () => void
  const reached = new Promise<void>((resolve) => { arrived = resolve })
  const up = await upstream(t, () => { arrived() }) // never answers
  const gw = await gateway(t, up.origin)
  const { port } = new URL(gw.base)
  const socket = connect(Number(port), '127.0.0.1')
  socket.on('error', () => {})
  socket.write('GET /gone HTTP/1.1\r\nhost: gw\r\n\r\n')
  await bounded(reached, 'the request reached the upstream')
  socket.destroy()
  const state = await bounded(gw.resumed, 'the handler resumed')
  t.equal(state.sent, false, 'nothing was sent')
  t.equal(state.finished, false, 'nor finished')
})
