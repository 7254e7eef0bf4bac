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
const RESET = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ECONNABORTED'])
const SOCKET_TIMEOUT = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])
// OpenSSL's verification failures that do not say CERT in their code.
const TLS = new Set(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'HOSTNAME_MISMATCH'])
const BAD_RESPONSE = new Set(['FST_HTTP_POOLS_RESPONSE_LIMIT', 'FST_HTTP_POOLS_BAD_RESPONSE', 'UND_ERR_HEADERS_OVERFLOW', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'UND_ERR_RES_EXCEEDED_MAX_SIZE'])

function rootCause (err: unknown): { code?: string, message?: string, name?: string, retryAfter?: number } {
  let e = err as { code?: string, message?: string, name?: string, cause?: unknown, retryAfter?: number } | undefined
  // reply-from wraps the undici error, sometimes in one with the same code: the
  // innermost cause says what happened on the wire, and carries the origin.
  while (e?.cause !== undefined && e.cause !== null) e = e.cause as typeof e
  return e ?? {}
}

/** SPEC "Forwarding errors": 502 when the upstream failed, 504 when it was too slow, 503 when the pool shed the request. */
export function toUpstreamError (err: unknown): UpstreamError {
  if (err instanceof UpstreamError) return err
  const cause = rootCause(err)
  const code = cause.code ?? ''
  const detail = cause.message ?? String(err)
  if (code === 'FST_HTTP_POOLS_QUEUE_TIMEOUT' || code === 'FST_HTTP_POOLS_QUEUE_FULL') return new UpstreamError(503, code, detail, { cause })
  if (code === 'FST_HTTP_POOLS_REQUEST_TIMEOUT') return new UpstreamError(504, code, detail, { cause })
  if (code === 'FST_HTTP_POOLS_CIRCUIT_OPEN') {
    const open = new UpstreamError(503, code, detail, { cause })
    open.retryAfter = cause.retryAfter
    return open
  }
  if (code === 'FST_HTTP_POOLS_PROXY') return new UpstreamError(502, code, detail, { cause })
  if (UNREACHABLE.has(code)) return new UpstreamError(502, 'FST_HTTP_POOLS_UPSTREAM_UNREACHABLE', `upstream unreachable: ${detail}`, { cause })
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return new UpstreamError(504, 'FST_HTTP_POOLS_CONNECT_TIMEOUT', `upstream connect timeout: ${detail}`, { cause })
  if (SOCKET_TIMEOUT.has(code)) return new UpstreamError(504, 'FST_HTTP_POOLS_SOCKET_TIMEOUT', `upstream socket timeout: ${detail}`, { cause })
  if (RESET.has(code)) return new UpstreamError(502, 'FST_HTTP_POOLS_UPSTREAM_RESET', `upstream closed the connection: ${detail}`, { cause })
  // undici's parser errors may carry no code: their name tells.
  if (BAD_RESPONSE.has(code) || code.startsWith('HPE_') || cause.name === 'HTTPParserError') return new UpstreamError(502, 'FST_HTTP_POOLS_BAD_RESPONSE', `invalid upstream response: ${detail}`, { cause })
  if (TLS.has(code) || code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || code.includes('CERT')) {
    return new UpstreamError(502, 'FST_HTTP_POOLS_UPSTREAM_TLS', `upstream TLS failure: ${detail}`, { cause })
  }
  return new UpstreamError(502, 'FST_HTTP_POOLS_BAD_GATEWAY', `upstream failure: ${detail}`, { cause })
}
