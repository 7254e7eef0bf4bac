// Helpers for the lifecycle tests (test/lifecycle): connection rotation and
// live reload under load. Real loopback upstreams (127.0.0.1, port 0) that
// record every connection and when each of its requests arrived, a real
// gateway, a client Agent of the test's own, load loops bounded in count and
// time, and a pino stream that keeps log lines. Everything closes at teardown.
import Fastify, { type FastifyInstance } from 'fastify'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { Agent, request } from 'undici'
import plugin, { type FastifyHttpPoolsOptions } from '../../index.js'
import { logCapture, type LogLine } from './logs.js'
import { listenHttp } from './net.js'
import type { Teardown } from './tap.js'
import { BOUND_MS, waitFor } from './wait.js'

export { logCapture, type LogLine } from './logs.js'
export type { Teardown } from './tap.js'
export { BOUND_MS, waitFor } from './wait.js'
export { config, EXT_NS, pool, REPOSE_NS } from './xml.js'

/** performance.now(): the one clock of these tests (gateway, upstream and clients share the process). */
export const now = (): number => performance.now()

/** One TCP connection as the upstream saw it. */
export interface Conn {
  id: number
  socket: Socket
  openedAt: number
  /** When the server read the client's FIN, or the socket closed first. */
  endedAt: number | undefined
  /** Arrival time of each request served on this connection. */
  requests: number[]
}

export type Handler = (req: IncomingMessage, res: ServerResponse, conn: Conn) => void

export interface Upstream {
  server: Server
  port: number
  origin: string
  conns: Conn[]
  /** Connections not ended yet. */
  open: () => Conn[]
  /** Requests served so far, over every connection. */
  served: () => number
  /** Resolves once every connection the server accepted has ended; rejects after `ms`. */
  allEnded: (ms?: number) => Promise<void>
}

/**
 * A node:http upstream on 127.0.0.1 that records each connection and the
 * arrival time of each request on it. It never closes an idle keep-alive
 * connection itself (keepAliveTimeout 0), so whatever closes one is the client.
 */
export async function upstream (t: Teardown, handler: Handler): Promise<Upstream> {
  const conns: Conn[] = []
  const bySocket = new WeakMap<Socket, Conn>()
  const server = createServer((req, res) => {
    const conn = bySocket.get(req.socket)!
    conn.requests.push(now())
    handler(req, res, conn)
  })
  server.keepAliveTimeout = 0
  server.on('connection', (socket: Socket) => {
    const conn: Conn = { id: conns.length + 1, socket, openedAt: now(), endedAt: undefined, requests: [] }
    conns.push(conn)
    bySocket.set(socket, conn)
    const ended = (): void => { conn.endedAt ??= now() }
    socket.once('end', ended)
    socket.once('close', ended)
    socket.on('error', () => {})
  })
  const port = await listenHttp(t, server)
  const open = (): Conn[] => conns.filter((c) => c.endedAt === undefined)
  return {
    server,
    port,
    origin: `http://127.0.0.1:${port}`,
    conns,
    open,
    served: () => conns.reduce((n, c) => n + c.requests.length, 0),
    allEnded: async (ms = BOUND_MS) => { await waitFor(() => open().length === 0, ms, () => `every upstream connection to end (${open().length} of ${conns.length} still open)`) }
  }
}

export interface GatewayOptions {
  plugin: FastifyHttpPoolsOptions
  /** Route path (GET) to pool id and upstream URL. */
  routes: Record<string, { pool: string, to: string }>
  /** pino level of the app. Default 'info', so reload lines are kept; the routes log at 'warn' (no line per request). */
  level?: string
  onLog?: (line: LogLine) => void
}

export interface Gateway {
  app: FastifyInstance
  url: string
  logs: LogLine[]
}

/** A listening gateway on 127.0.0.1: the plugin with `options.plugin`, one forwarding GET route per entry of `routes`. */
export async function gateway (t: Teardown, options: GatewayOptions): Promise<Gateway> {
  const logs = logCapture(options.onLog)
  const app = Fastify({ logger: { level: options.level ?? 'info', stream: logs.stream } })
  t.teardown(async () => { await app.close() })
  await app.register(plugin, options.plugin)
  for (const [path, { pool, to }] of Object.entries(options.routes)) {
    app.get(path, { pool, logLevel: 'warn' }, async (_request, reply) => await reply.from(to))
  }
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, logs: logs.lines }
}

/** The test's own client side: a keep-alive Agent, closed at teardown (so no socket of the test is left behind). */
export function clientAgent (t: Teardown): Agent {
  const agent = new Agent({ keepAliveTimeout: 30_000 })
  t.teardown(async () => { await agent.destroy() })
  return agent
}

export interface Outcome {
  loop: number
  sentAt: number
  doneAt: number
  statusCode?: number
  headers?: Record<string, string | string[] | undefined>
  body?: string
  error?: Error
}

/** GET `url` through `agent`, body read in full, bounded by `timeoutMs`; a failure is an outcome too. */
export async function fetchOutcome (agent: Agent, url: string, loop: number, timeoutMs = BOUND_MS): Promise<Outcome> {
  const sentAt = now()
  try {
    const res = await request(url, { dispatcher: agent, signal: AbortSignal.timeout(timeoutMs) })
    const body = await res.body.text()
    return { loop, sentAt, doneAt: now(), statusCode: res.statusCode, headers: res.headers, body }
  } catch (err) {
    return { loop, sentAt, doneAt: now(), error: err as Error }
  }
}

export interface LoadOptions {
  /** Concurrent loops, each sending its next request when the previous one is done. */
  loops: number
  /** No request starts after this many ms. */
  durationMs: number
  /** Nor once this many were sent in all. */
  maxRequests: number
  /** Nor once this returns true (checked before each request). */
  until?: () => boolean
  send: (loop: number) => Promise<Outcome>
}

/** Runs `loops` request loops until `durationMs` has passed, `maxRequests` were sent or `until()` holds; every outcome, in completion order. */
export async function load (options: LoadOptions): Promise<Outcome[]> {
  const outcomes: Outcome[] = []
  const end = now() + options.durationMs
  let sent = 0
  const loop = async (i: number): Promise<void> => {
    while (now() < end && sent < options.maxRequests && options.until?.() !== true) {
      sent++
      outcomes.push(await options.send(i))
    }
  }
  await Promise.all(Array.from({ length: options.loops }, async (_, i) => { await loop(i) }))
  return outcomes
}

/** A short description of the failed outcomes, for assertion messages. */
export function failures (outcomes: Outcome[]): string {
  const bad = outcomes.filter((o) => o.error !== undefined || o.statusCode !== 200)
  const sample = bad.slice(0, 5).map((o) => o.error !== undefined
    ? `${(o.error as Error & { code?: string }).code ?? o.error.name}: ${o.error.message}`
    : `${o.statusCode} ${o.body?.slice(0, 200)}`)
  return `${bad.length} of ${outcomes.length} failed${sample.length > 0 ? `: ${sample.join(' | ')}` : ''}`
}
