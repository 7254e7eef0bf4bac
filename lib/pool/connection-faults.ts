import { subscribe } from 'node:diagnostics_channel'
import { constants, type ClientHttp2Stream, type Http2Session } from 'node:http2'
import type { Socket } from 'node:net'
import { Client, type Dispatcher } from 'undici'
import { HandlerDecorator, type Controller, type Handler } from '../handler/decorator.js'
import { isTlsFailure } from '../resilience/policy.js'
import { BadResponseError, streamCut, streamRefused, streamReset } from './errors.js'

/** Where a connection's watcher hangs on its socket, for the HTTP/2 stream channel to find it. */
const WATCHER = Symbol('fastify-http-pools.connection-faults')

interface Goaway { session: Http2Session, code: number, lastStreamId: number }

/** Whether ALPN chose HTTP/2 on this (TLS) socket. */
export const isH2 = (socket: Socket): boolean => (socket as Socket & { alpnProtocol?: string | false }).alpnProtocol === 'h2'

const code = (err: Error): string => String((err as { code?: unknown }).code ?? '')

/** undici's own reports of an HTTP/2 stream that ended badly (RST_STREAM CANCEL or NO_ERROR, a frame error). */
const isUndiciStreamError = (err: Error): boolean => code(err) === 'UND_ERR_INFO' && err.message.startsWith('HTTP/2')

/**
 * What one connection's own events say about a request that failed on it.
 * undici reports the failure as it saw it last: a socket it closed itself
 * after the origin's GOAWAY, "other side closed" where the origin's TLS alert
 * came first, Node's bare stream error. The connection knows better: the TLS
 * failure it had, the stream the request went out on (and whether the origin
 * refused it), the GOAWAY's last stream id. One watcher per undici Client,
 * which carries one socket at a time.
 */
export class ConnectionFaults {
  private socket: Socket | undefined
  private tls: Error | undefined
  private goaway: Goaway | undefined
  /** The request whose stream is about to be opened (undici opens it right after onRequestStart). */
  private starting: RequestOnWire | undefined

  /** A new socket of this connection: what the last one had is forgotten. */
  watch (socket: Socket): void {
    this.socket = socket
    this.tls = undefined
    this.goaway = undefined
    this.starting = undefined
    socket.on('error', (err) => {
      if (!isTlsFailure(err)) return
      // A late error of a socket this connection has let go explains nothing on the new one.
      if (socket === this.socket) this.tls ??= err
      // Over HTTP/2 the socket stays open after its TLS failure: undici would
      // write the next request on the dead session and never settle it.
      socket.destroy(err)
    })
    if (isH2(socket)) {
      watchStreams()
      ;(socket as unknown as Record<symbol, ConnectionFaults>)[WATCHER] = this
    }
  }

  starts (request: RequestOnWire): void { this.starting = request }

  /** A stream of this connection's session was opened: it carries the request that just started. */
  opened (stream: ClientHttp2Stream): void {
    const request = this.starting
    this.starting = undefined
    if (request === undefined) return
    request.stream = stream
    // Kept apart: a destroyed stream no longer names its session.
    const session = request.session = stream.session
    if (session === undefined || tracked.has(session)) return
    tracked.add(session)
    // Before undici's own listener, which fails the request in flight there and then.
    session.prependListener('goaway', (errorCode: number, lastStreamId: number) => {
      this.goaway = { session, code: errorCode, lastStreamId }
    })
  }

  /** The failure of `request` as this connection explains it. */
  explain (request: RequestOnWire, err: Error): Error {
    // The origin's TLS alert came before the request's own failure: the handshake failed.
    if (this.tls !== undefined && !request.responded) return this.tls
    const id = request.stream?.id
    const goaway = this.goaway
    if (goaway !== undefined && !request.responded && request.session === goaway.session) {
      return id === undefined || id > goaway.lastStreamId
        ? streamRefused(`the origin's GOAWAY (code ${goaway.code}, last stream ${goaway.lastStreamId}) left stream ${id ?? '(none)'} out`)
        : streamCut(`the origin's GOAWAY (code ${goaway.code}, last stream ${goaway.lastStreamId}) closed the session with stream ${id} in flight, which it may have processed: not sent again`)
    }
    const c = code(err)
    if (c === 'ERR_HTTP2_INVALID_SESSION' || c === 'ERR_HTTP2_GOAWAY_SESSION') return streamRefused('the HTTP/2 session had closed before the request went out')
    if (c === 'ERR_HTTP2_STREAM_ERROR' && request.stream?.rstCode === constants.NGHTTP2_REFUSED_STREAM && !request.responded) {
      return streamRefused(`the origin refused stream ${id} (REFUSED_STREAM)`)
    }
    if (c === 'ERR_HTTP2_STREAM_ERROR' && request.stream?.rstCode === constants.NGHTTP2_ENHANCE_YOUR_CALM && !request.responded) {
      // Node resets a stream itself whose response has more header fields than
      // it takes (128); an origin that says so wants fewer requests, not more.
      return new BadResponseError(`stream ${id} was reset with ENHANCE_YOUR_CALM before the response headers: a response with more header fields than Node takes (128), or an origin that asks to slow down`)
    }
    if (c === 'ERR_HTTP2_STREAM_ERROR' || isUndiciStreamError(err)) {
      return streamReset(`the origin reset stream ${id ?? '(none)'} ${request.responded ? 'after' : 'before'} the response headers: ${err.message}`)
    }
    return err
  }
}

/** Sessions whose GOAWAY a watcher listens to. */
const tracked = new WeakSet<Http2Session>()

/**
 * One request for an origin's Pool, as a controller-based handler: it notes
 * its stream and whether a response started, and has its failure explained by
 * the connection it went out on, once the Client that takes it says which.
 */
export class RequestOnWire extends HandlerDecorator {
  faults: ConnectionFaults | undefined
  stream: ClientHttp2Stream | undefined
  session: Http2Session | undefined
  responded = false

  override onRequestStart (controller: Controller, context: unknown): void {
    this.faults?.starts(this)
    super.onRequestStart(controller, context)
  }

  override onResponseStart (controller: Controller, statusCode: number, headers: Record<string, string | string[] | undefined>, statusMessage?: string): void {
    this.responded = true
    super.onResponseStart(controller, statusCode, headers, statusMessage)
  }

  override onResponseError (controller: Controller, err: Error): void {
    super.onResponseError(controller, this.faults?.explain(this, err) ?? err)
  }
}

// undici's Pool hands its Clients the request's options object as it got it
// (and its handler adapted to undici's older handler shape): a symbol key on
// the options tells a Client which request it took. (Not a WeakMap keyed by
// the options: one entry per request cost the garbage collector more than the
// rest of the exchange.)
const ON_WIRE = Symbol('fastify-http-pools.request-on-wire')

type WatchedOptions = Dispatcher.DispatchOptions & { [ON_WIRE]?: RequestOnWire }

/** `opts` and `handler` watched on the wire: a copy of `opts` that names the watched handler, to hand to the Pool as it is. */
export function watchRequest (opts: Dispatcher.DispatchOptions, handler: Handler): [Dispatcher.DispatchOptions, RequestOnWire] {
  const request = new RequestOnWire(handler)
  const watched: WatchedOptions = { ...opts, [ON_WIRE]: request }
  return [watched, request]
}

/** Whether connections to `origin` can fail in ways the connection explains: TLS (alerts) and HTTP/2 (streams, GOAWAY), which undici speaks over TLS only. */
export const hasConnectionFaults = (origin: string): boolean => origin.startsWith('https:') || origin.startsWith('unix+https:')

let watching = false

/** Node announces every HTTP/2 client stream (public diagnostics channel); the pool's watchers take theirs. */
function watchStreams (): void {
  if (watching) return
  watching = true
  subscribe('http2.client.stream.created', (message) => {
    const { stream } = message as { stream: ClientHttp2Stream }
    let watcher: ConnectionFaults | undefined
    try {
      watcher = (stream.session?.socket as unknown as Record<symbol, ConnectionFaults | undefined> | undefined)?.[WATCHER]
    } catch {
      // Another client's session that has already let its socket go (Node's socket proxy throws): not ours.
      return
    }
    watcher?.opened(stream)
  })
}

/** An undici Client whose requests' failures its connection explains. */
export class WatchedClient extends Client {
  readonly faults = new ConnectionFaults()

  override dispatch (opts: Dispatcher.DispatchOptions, handler: Handler): boolean {
    const request = (opts as WatchedOptions)[ON_WIRE]
    if (request !== undefined) request.faults = this.faults
    return super.dispatch(opts, handler)
  }
}
