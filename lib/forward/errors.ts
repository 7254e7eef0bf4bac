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
const RESET = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ECONNABORTED', 'FST_HTTP_POOLS_STREAM_REFUSED', 'FST_HTTP_POOLS_STREAM_RESET', 'FST_HTTP_POOLS_STREAM_CUT'])
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

type Cause = ReturnType<typeof rootCause>
type Kind = [statusCode: 502 | 503 | 504, code: string]

/** SPEC "Forwarding errors": 502 when the upstream failed, 504 when it was too slow, 503 when the pool shed the request. */
function kindOf (cause: Cause): Kind {
  const code = cause.code ?? ''
  if (code === 'FST_HTTP_POOLS_QUEUE_TIMEOUT' || code === 'FST_HTTP_POOLS_QUEUE_FULL' || code === 'FST_HTTP_POOLS_CIRCUIT_OPEN') return [503, code]
  if (code === 'FST_HTTP_POOLS_REQUEST_TIMEOUT') return [504, code]
  if (code === 'FST_HTTP_POOLS_PROXY') return [502, code]
  if (UNREACHABLE.has(code)) return [502, 'FST_HTTP_POOLS_UPSTREAM_UNREACHABLE']
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return [504, 'FST_HTTP_POOLS_CONNECT_TIMEOUT']
  if (SOCKET_TIMEOUT.has(code)) return [504, 'FST_HTTP_POOLS_SOCKET_TIMEOUT']
  if (RESET.has(code)) return [502, 'FST_HTTP_POOLS_UPSTREAM_RESET']
  // undici's parser errors may carry no code: their name tells.
  if (BAD_RESPONSE.has(code) || code.startsWith('HPE_') || cause.name === 'HTTPParserError') return [502, 'FST_HTTP_POOLS_BAD_RESPONSE']
  if (isTlsFailure(cause)) return [502, 'FST_HTTP_POOLS_UPSTREAM_TLS']
  return [502, 'FST_HTTP_POOLS_BAD_GATEWAY']
}

/** The stable code of a failure (the one its client is sent), without building the error: for counting. */
export const failureCode = (err: unknown): string => kindOf(rootCause(err))[1]

/** The error the client is sent; the cause (the innermost error, with what happened on the wire) is for the log only. */
export function toUpstreamError (err: unknown): UpstreamError {
  if (err instanceof UpstreamError) return err
  const cause = rootCause(err)
  const [statusCode, code] = kindOf(cause)
  const upstream = new UpstreamError(statusCode, code, MESSAGES[code]!, { cause })
  // An open circuit says when to come back.
  if (code === 'FST_HTTP_POOLS_CIRCUIT_OPEN') upstream.retryAfter = cause.retryAfter
  return upstream
}

const kOrigin = Symbol('fastify-http-pools.origin')

/** Names the upstream on a failure, for its log line (reply-from does not pass the request on to onError). */
export function markOrigin (err: Error, origin: string): void {
  // One error may end several exchanges (a pool destroyed under them), each
  // marking it with its own origin just before its log line: never a second
  // definition that throws.
  Object.defineProperty(err, kOrigin, { value: origin, configurable: true, writable: true })
}

/** The upstream `markOrigin` named on the failure behind `err`. */
export const failedOrigin = (err: UpstreamError): string | undefined => (err.cause as Record<symbol, string> | undefined)?.[kOrigin]

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

// The errors for a source no URL is built from: reply-from's, and the direct path's (same words).
export const OFF_ORIGIN = 'source must be a relative path string'
export const TRAVERSAL = 'source/request contain invalid characters'

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
