// A purpose-built loopback upstream that misbehaves on demand, for the
// resilience tests (test/resilience). It speaks HTTP/1.1 over raw node:net
// sockets, so a fault can happen at any byte: before the headers, inside
// them, inside the body. It counts connections and requests (attempts) and
// answers each request with the next behaviour of a programmable sequence.
//
// Two upstreams that cannot be built from a listening HTTP server are
// separate helpers: `refusedPort()` (nothing listens: ECONNREFUSED) and
// `blackHole()` (a listener whose accept queue is full: the connect times out).
import { once } from 'node:events'
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import type { Teardown } from './tap.js'

export { blackHole, type BlackHole } from './black-hole.js'
export { freePort as refusedPort } from './net.js'
export type { Teardown } from './tap.js'

/**
 * The named faults:
 * - `ok`: 200, `content-type: text/plain`, body `ok <n>` (n: the request's number).
 * - `reset-before-headers`: the request is read, then the socket is reset (RST) without a byte of response.
 * - `close-mid-headers`: the status line and half a header are written, then the socket closes.
 * - `close-mid-body`: 200 with `content-length: 100`, 10 bytes of body, then the socket closes.
 * - `slow-headers`: the ok response is written only after `slowMs` (beyond any socket timeout under test).
 * - `stall-body`: 200 with `content-length: 100`, 10 bytes of body, then nothing (the socket stays open).
 * - `bad-status-line`: `HTTP/1.1 2x0 OK`, which no HTTP parser accepts.
 * - `too-many-headers`: 150 header fields (http.connection.max-header-count is 100 by default).
 * - `long-header-line`: one header line of 9000 bytes (http.connection.max-line-length is 8192 by default).
 * - `oversized-headers`: 40 header lines of about 500 bytes: 20 KB of headers, more than undici's
 *   16 KiB maximum, while both the count and every line stay within the pool's limits.
 * - `503-retry-after-1`: 503 with `Retry-After: 1`.
 * - `429-http-date`: 429 with `Retry-After` an HTTP-date on the next whole second plus one, so
 *   1 to 2 s ahead.
 * - `keepalive-race`: the ok response (keep-alive), after which the connection is closed as
 *   soon as the first bytes of its next request arrive, unanswered: the race of a client
 *   reusing a keep-alive connection that the server is closing. The killed request counts as
 *   an attempt (`killed: true`) but takes no behaviour of the sequence.
 * - `hang`: the request is read and never answered.
 * - `headers-then-stall`: 200 with `content-length: 100` and no byte of body (the socket stays open).
 * - `headers-then-close`: 200 with `content-length: 100`, then the socket closes before any body.
 * - `bad-chunk`: 200, `transfer-encoding: chunked`, then a chunk size that is not hex.
 * - `early-hints-forever`: a `103 Early Hints` every 300 ms, never a final response.
 * - `status-600`: `HTTP/1.1 600`, `content-length: 100`, 10 bytes of body, then nothing.
 * - `503-endless-body`: 503 with a chunked body that never ends (a small chunk every 50 ms).
 * - `503-huge-body`: 503 with a chunked body that never ends (16 KiB chunks as fast as they go).
 */
export type Fault =
  | 'ok' | 'reset-before-headers' | 'close-mid-headers' | 'close-mid-body' | 'slow-headers' | 'stall-body'
  | 'bad-status-line' | 'too-many-headers' | 'long-header-line' | 'oversized-headers'
  | '503-retry-after-1' | '429-http-date' | 'keepalive-race' | 'hang'
  | 'headers-then-stall' | 'headers-then-close' | 'bad-chunk' | 'early-hints-forever' | 'status-600'
  | '503-endless-body' | '503-huge-body'

/** A well-formed answer: `status` with `headers` and `body` (content-length is added), once `until` (if given) settles. */
export interface Reply {
  status: number
  headers?: Record<string, string>
  body?: string
  until?: Promise<unknown>
}

export type Behaviour = Fault | Reply

/** One request as the fault server received it. */
export interface Arrival {
  /** 1-based, in arrival order (killed requests included). */
  n: number
  /** 1-based number of the connection it came on. */
  conn: number
  method: string
  path: string
  /** Header names lower-cased; repeated ones joined with `, `. */
  headers: Record<string, string>
  body: Buffer
  /** performance.now() when its last byte arrived (its first byte, for a killed request). */
  at: number
  /** The behaviour it got; undefined for a request killed by `keepalive-race`. */
  behaviour: Behaviour | undefined
  /** Closed unanswered by `keepalive-race`. */
  killed: boolean
}

export interface FaultServer {
  port: number
  /** `http://127.0.0.1:PORT` */
  origin: string
  /** TCP connections accepted so far. */
  readonly connections: number
  /** Of those, the ones closed so far. */
  readonly closedConnections: number
  /** Every request (attempt) received so far, in order. */
  readonly arrivals: readonly Arrival[]
  /** How many requests arrived. */
  readonly count: number
  /**
   * From now on, requests take these behaviours in order; the last one is
   * repeated for every request after it. The server starts with `serve('ok')`.
   */
  serve: (...sequence: Behaviour[]) => void
  /** Resolves once `n` requests in all have arrived. */
  arrived: (n: number) => Promise<void>
  /** Closes every connection and the listener (also done at teardown). */
  close: () => Promise<void>
}

export interface FaultServerOptions {
  /** Listen on this port of 127.0.0.1 rather than on a free one (e.g. one `refusedPort()` gave). */
  port?: number
  /** How long `slow-headers` waits before it answers; default 5000 ms. */
  slowMs?: number
}

const CRLF = '\r\n'

function head (status: number, reason: string, headers: Array<[string, string]>): string {
  return `HTTP/1.1 ${status} ${reason}${CRLF}${headers.map(([k, v]) => `${k}: ${v}${CRLF}`).join('')}${CRLF}`
}

const REASONS: Record<number, string> = { 200: 'OK', 201: 'Created', 204: 'No Content', 400: 'Bad Request', 404: 'Not Found', 408: 'Request Timeout', 429: 'Too Many Requests', 500: 'Internal Server Error', 501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' }

/** A complete response with a body and its content-length. */
function response (status: number, headers: Record<string, string>, body: string): Buffer {
  const b = Buffer.from(body)
  const list: Array<[string, string]> = [...Object.entries(headers), ['content-length', String(b.length)]]
  return Buffer.concat([Buffer.from(head(status, REASONS[status] ?? 'Whatever', list), 'latin1'), b])
}

/** An HTTP-date on the next whole second plus `seconds`: between `seconds` and `seconds + 1` s ahead. */
export function httpDateAhead (seconds: number, now = Date.now()): string {
  return new Date((Math.floor(now / 1000) + 1 + seconds) * 1000).toUTCString()
}

interface ParsedHead { method: string, path: string, headers: Record<string, string> }

function parseHead (text: string): ParsedHead {
  const [requestLine = '', ...lines] = text.split(CRLF)
  const [method = '', path = ''] = requestLine.split(' ')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const i = line.indexOf(':')
    if (i <= 0) continue
    const name = line.slice(0, i).trim().toLowerCase()
    const value = line.slice(i + 1).trim()
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`
  }
  return { method, path, headers }
}

/**
 * Reads HTTP/1.1 requests off a socket, one after the other (bodies by
 * content-length or chunked): `onStart` when the first byte of a request
 * arrives (return false to stop reading), `onRequest` once it is complete.
 */
function readRequests (socket: Socket, onStart: () => boolean, onRequest: (h: ParsedHead, body: Buffer) => void): void {
  let buf = Buffer.alloc(0)
  let started = false
  let parsed: ParsedHead | undefined
  let bodyLength = -1 // -1 while unknown; -2 chunked
  const chunks: Buffer[] = []
  const reset = (): void => { started = false; parsed = undefined; bodyLength = -1; chunks.length = 0 }

  const step = (): boolean => {
    if (buf.length === 0 && !started) return false
    if (!started) {
      started = true
      if (!onStart()) return false
    }
    if (parsed === undefined) {
      const end = buf.indexOf('\r\n\r\n')
      if (end === -1) return false
      parsed = parseHead(buf.subarray(0, end).toString('latin1'))
      buf = buf.subarray(end + 4)
      const te = parsed.headers['transfer-encoding']
      bodyLength = te !== undefined && /chunked/i.test(te) ? -2 : Number(parsed.headers['content-length'] ?? 0)
    }
    if (bodyLength >= 0) {
      if (buf.length < bodyLength) return false
      chunks.push(buf.subarray(0, bodyLength))
      buf = buf.subarray(bodyLength)
    } else {
      // Chunked: size line, data, CRLF; a zero-size chunk, then the (empty) trailer section.
      for (;;) {
        const eol = buf.indexOf(CRLF)
        if (eol === -1) return false
        const size = parseInt(buf.subarray(0, eol).toString('latin1'), 16)
        if (size === 0) {
          const end = buf.indexOf('\r\n\r\n', eol)
          if (end === -1) return false
          buf = buf.subarray(end + 4)
          break
        }
        if (buf.length < eol + 2 + size + 2) return false
        chunks.push(buf.subarray(eol + 2, eol + 2 + size))
        buf = buf.subarray(eol + 2 + size + 2)
      }
    }
    const h = parsed
    const body = Buffer.concat(chunks)
    reset()
    onRequest(h, body)
    return true
  }

  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk])
    while (!socket.destroyed && step()) { /* next request */ }
  })
}

/**
 * Listens on 127.0.0.1 (`port`, else a free one). `close` (also at teardown,
 * once however often called) stops the server's timers, destroys its sockets
 * and closes the listener.
 */
export async function listenFaulty (t: Teardown, server: Server, port: number | undefined, sockets: Set<Socket>, timers: Set<NodeJS.Timeout>): Promise<{ port: number, close: () => Promise<void> }> {
  server.listen({ port: port ?? 0, host: '127.0.0.1' })
  await once(server, 'listening')
  let closing: Promise<void> | undefined
  const close = async (): Promise<void> => {
    closing ??= (async () => {
      for (const timer of timers) clearInterval(timer)
      timers.clear()
      for (const s of sockets) s.destroy()
      await new Promise((resolve) => server.close(resolve))
    })()
    await closing
  }
  t.teardown(close)
  return { port: (server.address() as AddressInfo).port, close }
}

/** A fault server on 127.0.0.1; closed at teardown. */
export async function faultServer (t: Teardown, options: FaultServerOptions = {}): Promise<FaultServer> {
  const slowMs = options.slowMs ?? 5000
  const arrivals: Arrival[] = []
  const sockets = new Set<Socket>()
  const timers = new Set<NodeJS.Timeout>()
  const waiters: Array<{ n: number, resolve: () => void }> = []
  let sequence: Behaviour[] = ['ok']
  let connections = 0
  let closedConnections = 0

  const later = (ms: number, fn: () => void): void => {
    const timer = setTimeout(() => { timers.delete(timer); fn() }, ms)
    timers.add(timer)
  }
  /** `fn` every `ms` while `socket` is open. */
  const every = (socket: Socket, ms: number, fn: () => void): void => {
    const timer = setInterval(() => { if (socket.destroyed) { clearInterval(timer); timers.delete(timer) } else fn() }, ms)
    timers.add(timer)
  }

  const record = (a: Arrival): void => {
    arrivals.push(a)
    for (const w of waiters.filter((w) => arrivals.length >= w.n)) {
      waiters.splice(waiters.indexOf(w), 1)
      w.resolve()
    }
  }

  const take = (): Behaviour => sequence.length > 1 ? sequence.shift()! : sequence[0]!

  function answer (socket: Socket, behaviour: Behaviour, n: number, arm: () => void): void {
    const write = (bytes: string | Buffer): void => { if (!socket.destroyed) socket.write(bytes) }
    const ok = (): Buffer => response(200, { 'content-type': 'text/plain' }, `ok ${n}`)
    const partialBody = head(200, 'OK', [['content-type', 'text/plain'], ['content-length', '100']]) + 'x'.repeat(10)
    if (typeof behaviour === 'object') {
      const send = (): void => write(response(behaviour.status, behaviour.headers ?? {}, behaviour.body ?? ''))
      if (behaviour.until !== undefined) behaviour.until.then(send, send)
      else send()
      return
    }
    switch (behaviour) {
      case 'ok': return write(ok())
      case 'reset-before-headers': socket.resetAndDestroy(); return
      case 'close-mid-headers': socket.end('HTTP/1.1 200 OK\r\ncontent-type: text/pl', () => socket.destroy()); return
      case 'close-mid-body': socket.end(partialBody, () => socket.destroy()); return
      case 'slow-headers': return later(slowMs, () => write(ok()))
      case 'stall-body': return write(partialBody)
      case 'bad-status-line': return write('HTTP/1.1 2x0 OK\r\ncontent-length: 2\r\n\r\nok')
      case 'too-many-headers': {
        const headers: Record<string, string> = {}
        for (let i = 0; i < 150; i++) headers[`x-h${i}`] = 'v'
        return write(response(200, headers, 'many'))
      }
      case 'long-header-line': return write(response(200, { 'x-long': 'a'.repeat(9000) }, 'long'))
      case 'oversized-headers': {
        const headers: Record<string, string> = {}
        for (let i = 0; i < 40; i++) headers[`x-big${i}`] = 'b'.repeat(500)
        return write(response(200, headers, 'big'))
      }
      case '503-retry-after-1': return write(response(503, { 'retry-after': '1' }, 'busy'))
      case '429-http-date': return write(response(429, { 'retry-after': httpDateAhead(1) }, 'slow down'))
      case 'keepalive-race':
        write(ok())
        arm()
        break
      case 'hang':
        break
      case 'headers-then-stall': return write(head(200, 'OK', [['content-length', '100']]))
      case 'headers-then-close': socket.end(head(200, 'OK', [['content-length', '100']]), () => socket.destroy()); return
      case 'bad-chunk': return write(head(200, 'OK', [['transfer-encoding', 'chunked']]) + 'zz\r\n')
      case 'early-hints-forever': return every(socket, 300, () => write('HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n'))
      case 'status-600': return write(head(600, 'Weird', [['content-length', '100']]) + 'x'.repeat(10))
      case '503-endless-body':
        write(head(503, 'Service Unavailable', [['transfer-encoding', 'chunked']]))
        return every(socket, 50, () => write('1\r\na\r\n'))
      case '503-huge-body': {
        write(head(503, 'Service Unavailable', [['transfer-encoding', 'chunked']]))
        const chunk = `4000\r\n${'b'.repeat(0x4000)}\r\n`
        return every(socket, 1, () => write(chunk))
      }
    }
  }

  const server: Server = createServer((socket) => {
    const conn = ++connections
    sockets.add(socket)
    socket.on('close', () => {
      sockets.delete(socket)
      closedConnections++
    })
    socket.on('error', () => {})
    let armed = false
    readRequests(socket, () => {
      if (!armed) return true
      // keepalive-race: the next request's first bytes meet a closing connection.
      record({ n: arrivals.length + 1, conn, method: '', path: '', headers: {}, body: Buffer.alloc(0), at: performance.now(), behaviour: undefined, killed: true })
      socket.destroy()
      return false
    }, (h, body) => {
      const behaviour = take()
      const n = arrivals.length + 1
      record({ n, conn, method: h.method, path: h.path, headers: h.headers, body, at: performance.now(), behaviour, killed: false })
      answer(socket, behaviour, n, () => { armed = true })
    })
  })
  const { port, close } = await listenFaulty(t, server, options.port, sockets, timers)
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    get connections () { return connections },
    get closedConnections () { return closedConnections },
    arrivals,
    get count () { return arrivals.length },
    serve: (...s) => {
      if (s.length === 0) throw new TypeError('serve() needs at least one behaviour')
      sequence = [...s]
    },
    arrived: async (n) => {
      if (arrivals.length >= n) return
      await new Promise<void>((resolve) => waiters.push({ n, resolve }))
    },
    close
  }
}
