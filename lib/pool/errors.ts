import { errors } from 'undici'

/** A response broke one of the pool's limits (header count, line length). */
export class ResponseLimitError extends errors.UndiciError {
  constructor (message: string, readonly limit: 'http.connection.max-header-count' | 'http.connection.max-line-length') {
    super(message)
    this.name = 'ResponseLimitError'
    this.code = 'FST_HTTP_POOLS_RESPONSE_LIMIT'
  }
}

/**
 * Why the pool closes one of its own idle connections (lifetime over, room for
 * another origin). A socket closed without an error crashes undici's HTTP/2
 * session handler, which then reads the socket it has already let go; with an
 * informational error both HTTP/1.1 and HTTP/2 clients take the close as
 * nothing to report.
 */
export const closedByPool = (why: string): Error => new errors.InformationalError(`connection closed by the pool: ${why}`)

/** A response that is not HTTP as the pool accepts it (a status outside 100-599). */
export class BadResponseError extends Error {
  readonly code = 'FST_HTTP_POOLS_BAD_RESPONSE'
  constructor (message: string) {
    super(message)
    this.name = 'BadResponseError'
  }
}

/**
 * The gateway's client went away (disconnected, or its upload failed) before
 * the exchange ended: not an upstream failure, so never retried, never counted
 * by the breaker or as an error. Told apart by `code`.
 */
export class ClientAbortError extends Error {
  readonly code = 'FST_HTTP_POOLS_CLIENT_ABORT'
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ClientAbortError'
  }
}

export const isClientAbort = (err: unknown): boolean => (err as { code?: unknown } | null)?.code === 'FST_HTTP_POOLS_CLIENT_ABORT'

/**
 * Failures the pool itself decides; never retried, never counted by the
 * breaker. A plain Error: undici's error classes answer `instanceof` for one
 * another, so every failure is told apart by `code`.
 */
export class PoolLimitError extends Error {
  constructor (message: string, readonly code: 'FST_HTTP_POOLS_QUEUE_TIMEOUT' | 'FST_HTTP_POOLS_QUEUE_FULL' | 'FST_HTTP_POOLS_CIRCUIT_OPEN' | 'FST_HTTP_POOLS_REQUEST_TIMEOUT', readonly retryAfter?: number) {
    super(message)
    this.name = 'PoolLimitError'
  }
}

export const queueTimeout = (ms: number): PoolLimitError =>
  new PoolLimitError(`no connection became free within x:queue.timeout (${ms} ms)`, 'FST_HTTP_POOLS_QUEUE_TIMEOUT')

export const queueFull = (max: number): PoolLimitError =>
  new PoolLimitError(`${max} requests already wait for a connection (x:queue.max-pending)`, 'FST_HTTP_POOLS_QUEUE_FULL')

export const requestTimeout = (ms: number): PoolLimitError =>
  new PoolLimitError(`the exchange did not complete within x:request.timeout (${ms} ms)`, 'FST_HTTP_POOLS_REQUEST_TIMEOUT')

export const circuitOpen = (origin: string, retryAfterSeconds: number): PoolLimitError =>
  new PoolLimitError(`circuit open for ${origin}: too many consecutive failures`, 'FST_HTTP_POOLS_CIRCUIT_OPEN', retryAfterSeconds)

const POOL_LIMITS = new Set(['FST_HTTP_POOLS_QUEUE_TIMEOUT', 'FST_HTTP_POOLS_QUEUE_FULL', 'FST_HTTP_POOLS_CIRCUIT_OPEN', 'FST_HTTP_POOLS_REQUEST_TIMEOUT'])

export const isPoolLimit = (err: unknown): boolean => POOL_LIMITS.has(String((err as { code?: unknown } | null)?.code))

/**
 * An HTTP/2 stream failure as its connection explains it. A plain Error with
 * the message that says what happened on the wire (the error undici gave is
 * not its cause: the error mapping reads the innermost cause's code).
 */
export class StreamError extends Error {
  constructor (message: string, readonly code: 'FST_HTTP_POOLS_STREAM_REFUSED' | 'FST_HTTP_POOLS_STREAM_RESET' | 'FST_HTTP_POOLS_STREAM_CUT') {
    super(message)
    this.name = 'StreamError'
  }
}

/** The origin did not process the stream (REFUSED_STREAM, above a GOAWAY's last stream id, never sent): safe to retry for any method. */
export const streamRefused = (what: string): StreamError => new StreamError(`${what}: not processed`, 'FST_HTTP_POOLS_STREAM_REFUSED')

/** The stream ended badly after it went out: the origin may have processed it. */
export const streamReset = (what: string): StreamError => new StreamError(what, 'FST_HTTP_POOLS_STREAM_RESET')

/**
 * A stream the origin's graceful GOAWAY covered, cut by undici closing the
 * session: the origin took it and was finishing it, so it is never sent again
 * (a PUT would run twice), and an origin shutting down as asked is no failure
 * of it for the breaker.
 */
export const streamCut = (what: string): StreamError => new StreamError(what, 'FST_HTTP_POOLS_STREAM_CUT')
