// Real loopback servers and a real gateway for the forwarding and plugin tests:
// upstreams on 127.0.0.1 (port 0) that record what reached them, a listening
// Fastify gateway, a bounded client, and a pino stream that keeps log lines.
import type { FastifyInstance } from 'fastify'
import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer, type ServerOptions as HttpsOptions } from 'node:https'
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net'
import { request as undiciRequest, type Dispatcher } from 'undici'
import { listenHttp as listen } from './net.js'
import type { Teardown } from './tap.js'
import { BOUND_MS } from './wait.js'

export { freePort as closedPort } from './net.js'
export type { Tap, Teardown } from './tap.js'
export { logCapture, WARN, type LogLine } from './logs.js'
export { BOUND_MS } from './wait.js'
export { EXT_NS, REPOSE_NS, poolsXml } from './xml.js'

export interface Seen {
  method: string
  url: string
  headers: IncomingHttpHeaders
  rawHeaders: string[]
  body: string
}

export type UpstreamHandler = (req: IncomingMessage, res: ServerResponse, seen: Seen) => void

export interface Upstream {
  server: Server
  port: number
  /** `http://127.0.0.1:PORT` */
  origin: string
  /** Every request that reached this upstream, in arrival order. */
  seen: Seen[]
  /** Resolves with the n-th request (1-based) once it has arrived. */
  nth: (n: number) => Promise<Seen>
}

/** Echoes what arrived: 200, JSON `{ method, url, headers, body }`. */
export const echo: UpstreamHandler = (_req, res, seen) => {
  res.setHeader('content-type', 'application/json')
  res.end(JSON.stringify({ method: seen.method, url: seen.url, headers: seen.headers, body: seen.body }))
}

function recorder (handler: UpstreamHandler) {
  const seen: Seen[] = []
  const waiting = new Map<number, Array<(s: Seen) => void>>()
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const s: Seen = { method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks).toString() }
      seen.push(s)
      for (const resolve of waiting.get(seen.length) ?? []) resolve(s)
      waiting.delete(seen.length)
      handler(req, res, s)
    })
  }
  const nth = async (n: number): Promise<Seen> => {
    if (seen.length >= n) return seen[n - 1]!
    return await new Promise((resolve) => { waiting.set(n, [...(waiting.get(n) ?? []), resolve]) })
  }
  return { seen, listener, nth }
}

/** An HTTP upstream on 127.0.0.1 that records every request, then lets `handler` answer. */
export async function upstream (t: Teardown, handler: UpstreamHandler = echo): Promise<Upstream> {
  const { seen, listener, nth } = recorder(handler)
  const server = createServer(listener)
  const port = await listen(t, server)
  return { server, port, origin: `http://127.0.0.1:${port}`, seen, nth }
}

/** An HTTPS upstream on 127.0.0.1 (TLS material in `tls`). */
export async function httpsUpstream (t: Teardown, tls: HttpsOptions, handler: UpstreamHandler = echo): Promise<Upstream> {
  const { seen, listener, nth } = recorder(handler)
  const server = createHttpsServer(tls, listener)
  const port = await listen(t, server as unknown as Server)
  return { server: server as unknown as Server, port, origin: `https://127.0.0.1:${port}`, seen, nth }
}

/** A raw TCP server: `onSocket` writes whatever bytes the test wants. Counts connections. */
export async function rawUpstream (t: Teardown, onSocket: (socket: Socket) => void): Promise<{ port: number, origin: string, connections: () => number }> {
  let count = 0
  const sockets = new Set<Socket>()
  const server = createNetServer((socket) => {
    count++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    onSocket(socket)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  const port = (server.address() as AddressInfo).port
  return { port, origin: `http://127.0.0.1:${port}`, connections: () => count }
}

/** Starts the gateway on 127.0.0.1 (port 0); closes it at teardown. Returns `http://127.0.0.1:PORT`. */
export async function listenGateway (t: Teardown, app: FastifyInstance): Promise<string> {
  t.teardown(async () => { await app.close() })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

export interface Got {
  statusCode: number
  headers: Record<string, string | string[] | undefined>
  text: string
  json: () => any
}

/** undici.request, bounded by BOUND_MS, body read in full. */
export async function get (url: string, options: Omit<Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & { method?: Dispatcher.HttpMethod } = {}): Promise<Got> {
  const res = await undiciRequest(url, { signal: AbortSignal.timeout(BOUND_MS), ...options })
  const text = await res.body.text()
  return { statusCode: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) }
}
