// The HTTP/2 twin of fault-server.ts: a real node:http2 secure server (the
// test CA's `server` certificate, HTTP/2 only) that answers each stream with
// the next behaviour of a programmable sequence, so the fault suite runs its
// faults against an HTTP/2 origin too, plus those only HTTP/2 has (stream
// resets, GOAWAY). Faults that HTTP/2 cannot express (a broken status line,
// half a header, a bad chunk) are not here.
import { constants, createSecureServer, type ServerHttp2Stream } from 'node:http2'
import type { Server, Socket } from 'node:net'
import { serverTls } from './e2e.js'
import { httpDateAhead, listenFaulty } from './fault-server.js'
import type { Teardown } from './tap.js'

/**
 * The named faults (as in fault-server.ts where the name is the same):
 * - `ok`: 200, body `ok <n>`.
 * - `reset-before-headers`: the stream arrives, then its TCP connection is reset (RST).
 * - `refused-stream`: RST_STREAM REFUSED_STREAM before any header (RFC 9113: not processed).
 * - `rst-before-headers`: RST_STREAM INTERNAL_ERROR before any header.
 * - `goaway-unprocessed`: a GOAWAY whose last stream id is the one before this stream, which is never answered.
 * - `goaway-in-flight`: a graceful GOAWAY (NO_ERROR, as on every deploy) that covers this stream, answered 100 ms later.
 * - `close-mid-body`, `stall-body`, `headers-then-stall`, `headers-then-close`: as in fault-server.ts (the
 *   connection closes, or the stream stalls, after 10 or 0 bytes of a 100-byte body).
 * - `slow-headers`: the ok response after 5 s.
 * - `too-many-headers`, `long-header-line`: 150 header fields; one of 9000 bytes.
 * - `503-retry-after-1`, `429-http-date`, `503-endless-body`, `503-huge-body`: as in fault-server.ts.
 * - `early-hints-forever`: a 103 every 300 ms, never a final response.
 */
export type H2Fault =
  | 'ok' | 'reset-before-headers' | 'refused-stream' | 'rst-before-headers' | 'goaway-unprocessed' | 'goaway-in-flight'
  | 'close-mid-body' | 'slow-headers' | 'stall-body' | 'too-many-headers' | 'long-header-line'
  | '503-retry-after-1' | '429-http-date' | 'headers-then-stall' | 'headers-then-close' | 'early-hints-forever'
  | '503-endless-body' | '503-huge-body'

export interface H2Arrival {
  /** 1-based, in arrival order. */
  n: number
  /** 1-based number of the session it came on. */
  session: number
  method: string
  /** performance.now() when its headers arrived. */
  at: number
}

export interface H2FaultServer {
  port: number
  /** `https://localhost:PORT` (the certificate's name). */
  origin: string
  readonly arrivals: readonly H2Arrival[]
  readonly count: number
  /** Sessions opened so far. */
  readonly sessions: number
  /** From now on, streams take these behaviours in order; the last one repeats. Starts with `serve('ok')`. */
  serve: (...sequence: H2Fault[]) => void
  /** Closes every session and the listener (also done at teardown). */
  close: () => Promise<void>
}

/** An HTTP/2 fault server on 127.0.0.1 (`port` as given, else a free one); closed at teardown. */
export async function h2FaultServer (t: Teardown, options: { port?: number } = {}): Promise<H2FaultServer> {
  const arrivals: H2Arrival[] = []
  const sockets = new Set<Socket>()
  // The TCP socket of each client port: a session's own socket is a proxy that cannot be reset.
  const byPort = new Map<number, Socket>()
  const timers = new Set<NodeJS.Timeout>()
  const sessionIds = new WeakMap<object, number>()
  let sequence: H2Fault[] = ['ok']
  let sessions = 0
  const take = (): H2Fault => sequence.length > 1 ? sequence.shift()! : sequence[0]!
  const later = (ms: number, fn: () => void, repeat = false): void => {
    const timer = repeat ? setInterval(fn, ms) : setTimeout(() => { timers.delete(timer); fn() }, ms)
    timers.add(timer)
  }

  function answer (stream: ServerHttp2Stream, fault: H2Fault, n: number): void {
    const session = stream.session!
    const live = (): boolean => !stream.destroyed && !stream.closed
    const ok = (): void => { if (live()) stream.respond({ ':status': 200, 'content-type': 'text/plain' }); if (live()) stream.end(`ok ${n}`) }
    const partial = (bytes: number): void => { stream.respond({ ':status': 200, 'content-length': '100' }); if (bytes > 0) stream.write('x'.repeat(bytes)) }
    const endless = (chunk: string, ms: number): void => {
      stream.respond({ ':status': 503 })
      later(ms, () => { if (live()) stream.write(chunk) }, true)
    }
    switch (fault) {
      case 'ok': return ok()
      case 'reset-before-headers': byPort.get(session.socket.remotePort!)?.resetAndDestroy(); return
      case 'refused-stream': stream.close(constants.NGHTTP2_REFUSED_STREAM); return
      case 'rst-before-headers': stream.close(constants.NGHTTP2_INTERNAL_ERROR); return
      case 'goaway-unprocessed': session.goaway(constants.NGHTTP2_NO_ERROR, stream.id! - 2); return
      case 'goaway-in-flight':
        session.close()
        return later(100, ok)
      case 'close-mid-body': partial(10); later(20, () => session.destroy()); return
      case 'slow-headers': return later(5000, ok)
      case 'stall-body': return partial(10)
      case 'too-many-headers': {
        const headers: Record<string, string | number> = { ':status': 200 }
        for (let i = 0; i < 150; i++) headers[`x-h${i}`] = 'v'
        stream.respond(headers)
        stream.end('many')
        return
      }
      case 'long-header-line': stream.respond({ ':status': 200, 'x-long': 'a'.repeat(9000) }); stream.end('long'); return
      case '503-retry-after-1': stream.respond({ ':status': 503, 'retry-after': '1' }); stream.end('busy'); return
      case '429-http-date': stream.respond({ ':status': 429, 'retry-after': httpDateAhead(1) }); stream.end('slow down'); return
      case 'headers-then-stall': return partial(0)
      case 'headers-then-close': partial(0); later(20, () => session.destroy()); return
      case 'early-hints-forever': return later(300, () => { if (live()) stream.additionalHeaders({ ':status': 103, link: '</a.css>; rel=preload' }) }, true)
      case '503-endless-body': return endless('a', 50)
      case '503-huge-body': return endless('b'.repeat(0x4000), 1)
    }
  }

  const server = createSecureServer({ ...serverTls(), allowHTTP1: false })
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    const port = socket.remotePort!
    byPort.set(port, socket)
    socket.on('close', () => {
      sockets.delete(socket)
      byPort.delete(port)
    })
  })
  server.on('session', (session) => {
    sessionIds.set(session, ++sessions)
    session.on('error', () => {})
  })
  server.on('stream', (stream, headers) => {
    // Resets and closed sessions are what this server is for: their errors are expected.
    stream.on('error', () => {})
    const n = arrivals.length + 1
    arrivals.push({ n, session: sessionIds.get(stream.session!) ?? 0, method: String(headers[':method']), at: performance.now() })
    answer(stream, take(), n)
  })
  const { port, close } = await listenFaulty(t, server as unknown as Server, options.port, sockets, timers)
  return {
    port,
    origin: `https://localhost:${port}`,
    arrivals,
    get count () { return arrivals.length },
    get sessions () { return sessions },
    serve: (...s) => {
      if (s.length === 0) throw new TypeError('serve() needs at least one behaviour')
      sequence = [...s]
    },
    close
  }
}
