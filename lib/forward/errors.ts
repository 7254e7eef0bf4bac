import { isTlsFailure } from '../resilience/policy.js'

/** The error a gateway client gets when the upstream gave no usable response. */
export class UpstreamError extends Error {
  /** Seconds, for a 503 the client may retry later (open circuit). */
  retryAfter: number | undefined

  constructor (readonly statusCode: 502 | 503 | 504, readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'UpstreamError'
  }
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL'])
const RESET = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ECONNABORTED', 'FST_HTTP_POOLS_STREAM_REFUSED', 'FST_HTTP_POOLS_STREAM_RESET'])
const SOCKET_TIMEOUT = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])
const BAD_RESPONSE = new Set(['FST_HTTP_POOLS_RESPONSE_LIMIT', 'FST_HTTP_POOLS_BAD_RESPONSE', 'UND_ERR_HEADERS_OVERFLOW', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'UND_ERR_RES_EXCEEDED_MAX_SIZE'])

function rootCause (err: unknown): { code?: string, message?: string, name?: string, retryAfter?: number } {
  let e = err as { code?: string, message?: string, name?: string, cause?: unknown, retryAfter?: number } | undefined
  // reply-from wraps the undici error, sometimes in one with the same code: the
  // innermost cause says what happened on the wire, and carries the origin.
  while (e?.cause !== undefined && e.cause !== null) e = e.cause as typeof e
  return e ?? {}
}

// What the client is told, per code: the kind of failure, never the upstream's
// address, port or headers (they are in the cause, for the warn log).
const MESSAGES: Record<string, string> = {
  FST_HTTP_POOLS_QUEUE_TIMEOUT: 'no connection to the upstream became free in time',
  FST_HTTP_POOLS_QUEUE_FULL: 'too many requests already wait for a connection to the upstream',
  FST_HTTP_POOLS_REQUEST_TIMEOUT: 'the upstream exchange did not complete in time',
  FST_HTTP_POOLS_CIRCUIT_OPEN: 'the upstream failed too often: its circuit is open',
  FST_HTTP_POOLS_PROXY: 'the forward proxy refused the connection',
  FST_HTTP_POOLS_UPSTREAM_UNREACHABLE: 'upstream unreachable',
  FST_HTTP_POOLS_CONNECT_TIMEOUT: 'upstream connect timeout',
  FST_HTTP_POOLS_SOCKET_TIMEOUT: 'upstream socket timeout',
  FST_HTTP_POOLS_UPSTREAM_RESET: 'upstream closed the connection',
  FST_HTTP_POOLS_BAD_RESPONSE: 'invalid upstream response',
  FST_HTTP_POOLS_UPSTREAM_TLS: 'upstream TLS failure',
  FST_HTTP_POOLS_BAD_GATEWAY: 'upstream failure'
}

const upstreamError = (statusCode: 502 | 503 | 504, code: string, cause: unknown): UpstreamError =>
  new UpstreamError(statusCode, code, MESSAGES[code]!, { cause })

/**
 * SPEC "Forwarding errors": 502 when the upstream failed, 504 when it was too
 * slow, 503 when the pool shed the request. The cause (the innermost error,
 * with what happened on the wire) is for the log only.
 */
export function toUpstreamError (err: unknown): UpstreamError {
  if (err instanceof UpstreamError) return err
  const cause = rootCause(err)
  const code = cause.code ?? ''
  if (code === 'FST_HTTP_POOLS_QUEUE_TIMEOUT' || code === 'FST_HTTP_POOLS_QUEUE_FULL') return upstreamError(503, code, cause)
  if (code === 'FST_HTTP_POOLS_REQUEST_TIMEOUT') return upstreamError(504, code, cause)
  if (code === 'FST_HTTP_POOLS_CIRCUIT_OPEN') {
    const open = upstreamError(503, code, cause)
    open.retryAfter = cause.retryAfter
    return open
  }
  if (code === 'FST_HTTP_POOLS_PROXY') return upstreamError(502, code, cause)
  if (UNREACHABLE.has(code)) return upstreamError(502, 'FST_HTTP_POOLS_UPSTREAM_UNREACHABLE', cause)
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return upstreamError(504, 'FST_HTTP_POOLS_CONNECT_TIMEOUT', cause)
  if (SOCKET_TIMEOUT.has(code)) return upstreamError(504, 'FST_HTTP_POOLS_SOCKET_TIMEOUT', cause)
  if (RESET.has(code)) return upstreamError(502, 'FST_HTTP_POOLS_UPSTREAM_RESET', cause)
  // undici's parser errors may carry no code: their name tells.
  if (BAD_RESPONSE.has(code) || code.startsWith('HPE_') || cause.name === 'HTTPParserError') return upstreamError(502, 'FST_HTTP_POOLS_BAD_RESPONSE', cause)
  if (isTlsFailure(cause)) {
    return upstreamError(502, 'FST_HTTP_POOLS_UPSTREAM_TLS', cause)
  }
  return upstreamError(502, 'FST_HTTP_POOLS_BAD_GATEWAY', cause)
}

/** What happened on the wire, for the warn log: the cause's message (it may name the upstream). */
export function detailOf (err: UpstreamError): string {
  const cause = err.cause as { message?: unknown } | undefined
  return typeof cause?.message === 'string' && cause.message !== '' ? cause.message : String(cause)
}

/** A client's request target that reply-from cannot forward: the client's error, not the gateway's. */
export class BadTargetError extends Error {
  readonly statusCode = 400
  readonly code = 'FST_HTTP_POOLS_BAD_TARGET'
  constructor (cause: unknown) {
    super('the request target cannot be forwarded', { cause })
    this.name = 'BadTargetError'
  }
}

// reply-from's own errors for a source it will not build a URL from.
const OFF_ORIGIN = 'source must be a relative path string'
const TRAVERSAL = 'source/request contain invalid characters'

/**
 * Whether `err`, thrown while reply-from built the upstream URL, comes from the
 * client's request target `url`: a path that climbs out with `..`, a
 * malformed percent-encoding, or a target that is not a plain path (the
 * absolute form, `/\host`) whose URL is off the origin or no URL at all.
 * The same errors for a route's own plain source are the route's (500).
 */
export function isBadTarget (err: unknown, url: string): boolean {
  const e = err as { message?: unknown, code?: unknown } | null
  if (e?.message === TRAVERSAL || err instanceof URIError) return true
  const plainPath = url.charCodeAt(0) === 47 && !url.includes('\\')
  return !plainPath && (e?.message === OFF_ORIGIN || e?.code === 'ERR_INVALID_URL')
}
