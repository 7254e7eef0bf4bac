// Wire-level helpers for the pool tests (test/pool): a pool built from inline
// XML, and loopback servers (127.0.0.1, port 0) that record every connection
// as the server sees it, so tests can assert what actually happened on TCP.
import { EventEmitter, once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { request, type Dispatcher } from 'undici'
import { parseConfig } from '../../lib/config/parse.js'
import type { PoolSettings } from '../../lib/config/schema.js'
import { PoolDispatcher } from '../../lib/pool/dispatcher.js'
import { listenHttp } from './net.js'
import type { Teardown } from './tap.js'
import { BOUND_MS } from './wait.js'
import { REPOSE_NS } from './xml.js'

export type { Teardown } from './tap.js'
export { rejection as failure } from './errors.js'
export { BOUND_MS } from './wait.js'
export { REPOSE_NS } from './xml.js'

/** The settings of pool `p` (the default pool) carrying `attributes` and, inside <pool>, `inner`. */
export function settingsOf (attributes = '', inner = ''): PoolSettings {
  return poolsOf(`<pool id="p" default="true" ${attributes}>${inner}</pool>`)[0]!
}

/** Every pool of a config whose root holds `body`. */
export function poolsOf (body: string): PoolSettings[] {
  return parseConfig(`<http-connection-pools xmlns="${REPOSE_NS}">${body}</http-connection-pools>`).pools
}

/** GET `url` through `dispatcher`, bounded by BOUND_MS; resolves with the body. */
export async function get (url: string, dispatcher: Dispatcher): Promise<string> {
  const res = await request(url, { dispatcher, signal: AbortSignal.timeout(BOUND_MS) })
  return await res.body.text()
}

/** A PoolDispatcher that is destroyed at teardown (whatever the test left running). */
export function dispatcherOf (t: Teardown, settings: PoolSettings): PoolDispatcher {
  const d = new PoolDispatcher(settings)
  t.teardown(async () => { await d.destroy().catch(() => {}) })
  return d
}

/** One TCP connection as the server saw it. */
export interface Conn {
  id: number
  socket: Socket
  /** performance.now() when the server accepted it. */
  openedAt: number
  /** performance.now() when the server read the client's FIN (or the socket closed first). */
  endedAt: number | undefined
  /** Requests served on this connection (httpServer counts them; raw-server tests count their own). */
  requests: number
}

/**
 * Connection bookkeeping of one server. A connection counts as open from
 * 'connection' until the server reads the client's FIN ('end'), or until it
 * closes, whichever comes first: 'close' can come much later than the FIN.
 */
export class ConnTracker extends EventEmitter {
  readonly conns: Conn[] = []
  open = 0
  maxOpen = 0
  private readonly bySocket = new WeakMap<Socket, Conn>()
  /** Shared by several servers: counts their connections together. */
  constructor (private readonly parent?: ConnTracker) { super() }

  add (socket: Socket): Conn {
    const conn: Conn = { id: this.conns.length + 1, socket, openedAt: performance.now(), endedAt: undefined, requests: 0 }
    this.conns.push(conn)
    this.bySocket.set(socket, conn)
    this.up()
    socket.once('end', () => this.markEnded(conn))
    socket.once('close', () => this.markEnded(conn))
    socket.on('error', () => {})
    this.emit('connection', conn)
    return conn
  }

  of (socket: Socket): Conn { return this.bySocket.get(socket)! }

  /** Records one more request served on `conn` (HTTP servers do it themselves). */
  served (conn: Conn): void {
    conn.requests++
    this.emit('change')
  }

  get ended (): number { return this.conns.filter((c) => c.endedAt !== undefined).length }

  /** Resolves once `n` connections have ended; rejects after `ms`. */
  async waitEnded (n: number, ms = BOUND_MS): Promise<void> {
    await this.waitUntil(() => this.ended >= n, ms, `${n} connection(s) to end (${this.ended} did)`)
  }

  /** Resolves once `pred()` holds (checked whenever a connection opens or ends or serves a request); rejects after `ms`. */
  async waitUntil (pred: () => boolean, ms: number, what: string): Promise<void> {
    if (pred()) return
    await new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (!pred()) return
        done()
        resolve()
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`timed out after ${ms} ms waiting for ${what}`))
      }, ms)
      const done = (): void => {
        clearTimeout(timer)
        this.off('change', check)
      }
      this.on('change', check)
    })
  }

  private up (): void {
    this.open++
    // The peak is read once the events the kernel handed over with this accept are
    // handled: a connection whose FIN was sent before this one's SYN but is read
    // after its accept (the server is in the same process, same loop turn) was
    // already closed, and does not count as open beside it.
    setImmediate(() => { this.maxOpen = Math.max(this.maxOpen, this.open) })
    this.parent?.up()
    this.emit('change')
  }

  private down (): void {
    this.open--
    this.parent?.down()
    this.emit('change')
  }

  private markEnded (conn: Conn): void {
    if (conn.endedAt !== undefined) return
    conn.endedAt = performance.now()
    this.down()
    this.emit('end', conn)
  }
}

export type Handler = (req: IncomingMessage, res: ServerResponse, conn: Conn) => void

export interface HttpServer {
  server: Server
  origin: string
  port: number
  tracker: ConnTracker
}

/**
 * A node:http server on 127.0.0.1 that never closes an idle keep-alive
 * connection itself (keepAliveTimeout 0), so whatever closes one is the client.
 */
export async function httpServer (t: Teardown, handler: Handler, parent?: ConnTracker): Promise<HttpServer> {
  const tracker = new ConnTracker(parent)
  const server = createServer((req, res) => {
    const conn = tracker.of(req.socket)
    tracker.served(conn)
    handler(req, res, conn)
  })
  server.keepAliveTimeout = 0
  server.on('connection', (socket: Socket) => { tracker.add(socket) })
  const port = await listenHttp(t, server)
  return { server, origin: `http://127.0.0.1:${port}`, port, tracker }
}

export interface RawServer {
  server: NetServer
  origin: string
  port: number
  tracker: ConnTracker
}

/** A raw TCP server on 127.0.0.1: `onSocket` writes whatever bytes the test wants. */
export async function rawServer (t: Teardown, onSocket: (socket: Socket, conn: Conn) => void): Promise<RawServer> {
  const tracker = new ConnTracker()
  const server = createNetServer((socket) => { onSocket(socket, tracker.add(socket)) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    for (const c of tracker.conns) c.socket.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  const port = (server.address() as AddressInfo).port
  return { server, origin: `http://127.0.0.1:${port}`, port, tracker }
}

/**
 * Reads one HTTP/1.1 request head from a raw socket (requests in these tests
 * have no body), then calls `answer` with it; repeats for the next request.
 */
export function onRequests (socket: Socket, answer: (head: string) => void): void {
  let buf = ''
  socket.setEncoding('latin1')
  socket.on('data', (chunk: string) => {
    buf += chunk
    let end: number
    while ((end = buf.indexOf('\r\n\r\n')) !== -1) {
      const head = buf.slice(0, end)
      buf = buf.slice(end + 4)
      answer(head)
    }
  })
}

/** performance.now() milliseconds since `start`. */
export const since = (start: number): number => performance.now() - start
