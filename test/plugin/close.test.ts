// SPEC "Plugin options": on close every pool is closed, in-flight requests
// finish, then sockets close. Checked on a listening gateway, on an in-flight
// HttpClient request, on the upstream's side of every pool socket, and in a
// child process that must exit by itself once the gateway is closed.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import type { Socket } from 'node:net'
import { join } from 'node:path'
import Fastify from 'fastify'
import t from 'tap'
import plugin from '../../index.js'
import { BOUND_MS, get, listenGateway, poolsXml, upstream, type Tap } from '../helpers/loopback.js'

const XML = poolsXml(`
  <pool id="main" default="true" x:retry.max-attempts="1"/>
  <pool id="banana" x:retry.max-attempts="1"><headers><header name="x-pool" value="banana"/></headers></pool>`)

/** Upstream-side sockets still open, kept open by the upstream for as long as the client wants (no keep-alive timeout). */
interface Tracked { open: Set<Socket>, closed: Map<Socket, Promise<unknown>> }

function trackSockets (server: import('node:http').Server): Tracked {
  server.keepAliveTimeout = 0
  const tracked: Tracked = { open: new Set(), closed: new Map() }
  server.on('connection', (socket: Socket) => {
    tracked.open.add(socket)
    tracked.closed.set(socket, once(socket, 'close').then(() => tracked.open.delete(socket)))
  })
  return tracked
}

/** Resolves when every socket has closed; rejects after `ms` (a bound, not a wait). */
async function allClosed (sockets: Tracked, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const bound = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${sockets.open.size} upstream socket(s) still open ${ms} ms after close`)), ms)
  })
  try {
    await Promise.race([Promise.all(sockets.closed.values()), bound])
  } finally {
    clearTimeout(timer)
  }
}

t.test('a forwarded slow request in flight when close() is called completes with 200, then close resolves', async (t) => {
  const events: string[] = []
  let release: () => void = () => { throw new Error('the upstream has no request to release') }
  const up = await upstream(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.write('slow ')
    release = () => {
      events.push('released')
      res.end('and done')
    }
  })
  const sockets = trackSockets(up.server)
  const app = Fastify()
  await app.register(plugin, { xml: XML, origin: up.origin })
  app.get('/slow', { pool: 'banana' }, (_req, reply) => reply.from('/slow'))
  // close() has begun: the gateway accepts no new connection from here on.
  app.addHook('preClose', async () => { release() })
  const base = await listenGateway(t, app)

  // `reset`: connection: close, so the gateway's close need not wait for this client's keep-alive.
  const response = get(`${base}/slow`, { reset: true }).then((res) => { events.push('response'); return res })
  await up.nth(1)
  const closing = app.close().then(() => { events.push('closed') })
  const res = await response
  await closing
  t.equal(res.statusCode, 200)
  t.equal(res.text, 'slow and done', 'the whole body arrived')
  t.same(events.filter((e) => e !== 'response'), ['released', 'closed'], 'close resolved only after the upstream finished')
  t.ok(events.indexOf('response') >= 0)
  await allClosed(sockets, 5000)
  t.equal(sockets.open.size, 0, 'the pool closed its upstream connection')
})

t.test('an HttpClient request in flight when close() is called finishes, with its whole body, before close resolves', async (t) => {
  // 8 MiB: far more than undici buffers, so the exchange stays in flight
  // (backpressure) until the test reads the body.
  const size = 8 * 1024 * 1024
  const up = await upstream(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) })
    res.end(Buffer.alloc(size, 0x61))
  })
  const sockets = trackSockets(up.server)
  const app = Fastify()
  await app.register(plugin, { xml: XML })
  await app.ready()

  const res = await app.pools.get('banana').request(`${up.origin}/big`, { signal: AbortSignal.timeout(BOUND_MS) })
  t.equal(res.statusCode, 200)
  let closed = false
  const closing = app.close().then(() => { closed = true })
  let received = 0
  let closedHalfway: boolean | undefined
  for await (const chunk of res.body) {
    received += (chunk as Buffer).length
    if (closedHalfway === undefined && received >= size / 2) closedHalfway = closed
  }
  t.equal(closedHalfway, false, 'close had not resolved with half of the body still to come')
  t.equal(received, size, 'the body arrived in full: close did not cut the exchange')
  await closing
  t.ok(closed)
  await allClosed(sockets, 5000)
  t.equal(sockets.open.size, 0, 'then the socket closed')
})

t.test('after close, no pool socket is left open (seen from the upstream), for every pool', async (t) => {
  const up = await upstream(t)
  const sockets = trackSockets(up.server)
  const app = Fastify()
  await app.register(plugin, { xml: XML, origin: up.origin })
  app.get('/a', { pool: 'banana' }, (_req, reply) => reply.from('/a'))
  app.get('/b', (_req, reply) => reply.from('/b'))
  const base = await listenGateway(t, app)
  t.equal((await get(`${base}/a`)).statusCode, 200)
  t.equal((await get(`${base}/b`)).statusCode, 200)
  await (await app.pools.get('banana').request(`${up.origin}/c`, { signal: AbortSignal.timeout(BOUND_MS) })).body.text()
  t.ok(sockets.open.size >= 2, `both pools hold idle keep-alive connections (${sockets.open.size})`)

  await app.close()
  await allClosed(sockets, 5000)
  t.equal(sockets.open.size, 0)
})

// The built package in a fresh process: register, forward, close. The
// upstream lives in this process and never closes idle connections itself.
// After close, and while the child still runs (it waits for its stdin to end),
// every pool socket must have been closed: undici unrefs idle sockets, so a
// leaked one would not keep the child alive. Then, stdin ended, the child must
// exit by itself: a ref'd timer or handle left by the plugin would keep it alive.
const DIST = join(__dirname, '..', '..', 'dist', 'index.js')
const CHILD = `
const Fastify = require('fastify')
const { Agent, request } = require('undici')
const plugin = require(${JSON.stringify(DIST)}).default
;(async () => {
  const app = Fastify()
  await app.register(plugin, { xml: process.env.POOLS_XML, origin: process.env.UPSTREAM })
  app.get('/x', { pool: 'banana' }, (req, reply) => reply.from('/x'))
  app.get('/y', (req, reply) => reply.from('/y'))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const agent = new Agent()
  const base = 'http://127.0.0.1:' + app.server.address().port
  const out = []
  for (const path of ['/x', '/y']) {
    const res = await request(base + path, { dispatcher: agent })
    out.push({ status: res.statusCode, body: await res.body.json() })
  }
  await agent.close()
  await app.close()
  process.stdout.write(JSON.stringify(out) + '\\n')
  process.stdin.resume()
})().catch((err) => { console.error(err); process.exitCode = 1 })
`

t.test('a process that registers, forwards and closes: its pool sockets close, then it exits by itself', { skip: existsSync(DIST) ? false : 'dist/ is not built (npm test builds it first)' }, async (t: Tap) => {
  const up = await upstream(t)
  const sockets = trackSockets(up.server)
  const child = spawn(process.execPath, ['-e', CHILD], {
    cwd: join(__dirname, '..', '..'),
    env: { ...process.env, POOLS_XML: XML, UPSTREAM: up.origin, NODE_OPTIONS: '' },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  const timer = setTimeout(() => child.kill('SIGKILL'), 2 * BOUND_MS)
  t.teardown(() => { clearTimeout(timer); if (child.exitCode === null) child.kill('SIGKILL') })
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  let stdout = ''
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const closed = new Promise<string>((resolve) => {
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString()
      if (stdout.includes('\n')) resolve(stdout)
    })
    child.once('exit', () => resolve(stdout))
  })

  const line = await closed
  t.ok(child.exitCode === null, `the child is still running after app.close() (stderr: ${stderr})`)
  const out = JSON.parse(line || '[]') as Array<{ status: number, body: { headers: Record<string, string> } }>
  t.equal(out.length, 2)
  t.equal(out[0]?.status, 200)
  t.equal(out[0]?.body.headers['x-pool'], 'banana', 'forwarded through the route\'s pool')
  t.equal(out[1]?.status, 200)
  t.equal(out[1]?.body.headers['x-pool'], undefined)
  t.ok(sockets.closed.size >= 1, 'the pools had connected to the upstream')
  await t.resolves(allClosed(sockets, 5000), 'app.close() closed every pool socket (the child is still alive)')

  child.stdin.end()
  const exitTimer = setTimeout(() => child.kill('SIGKILL'), BOUND_MS)
  const [code, signal] = await exited
  clearTimeout(exitTimer)
  t.equal(signal, null, `exited by itself within ${BOUND_MS} ms of its stdin ending`)
  t.equal(code, 0, stderr)
})
