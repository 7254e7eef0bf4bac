import type { PoolSettings } from '../config/schema.js'

// Nothing the origin processed: a connection that could not be made, or an
// HTTP/2 stream it refused or left out of its GOAWAY (lib/pool/connection-faults.ts).
// Any method may be retried.
const NOT_PROCESSED = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'FST_HTTP_POOLS_STREAM_REFUSED'])
// Failures after the request was written: retried for idempotent methods only.
const AFTER_WRITE = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ECONNABORTED', 'FST_HTTP_POOLS_STREAM_RESET'])
// What the breaker counts besides 502/503/504 responses and TLS failures: the upstream did not answer.
const BREAKER_ERRORS = new Set([...NOT_PROCESSED, ...AFTER_WRITE])
// OpenSSL's verification failures that do not say CERT in their code.
const TLS = new Set(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'HOSTNAME_MISMATCH'])

const code = (err: unknown): string => String((err as { code?: unknown })?.code ?? '')

/** A TLS handshake or verification failure: it would fail the same way again. */
export function isTlsFailure (err: unknown): boolean {
  const c = code(err)
  return TLS.has(c) || c.startsWith('ERR_TLS') || c.startsWith('ERR_SSL') || c.includes('CERT')
}

export function isNotProcessed (err: unknown): boolean { return NOT_PROCESSED.has(code(err)) }
export function isAfterWriteFailure (err: unknown): boolean { return AFTER_WRITE.has(code(err)) }
/** SPEC: the breaker counts refused, reset, closed, timeouts, TLS handshake failures and HTTP/2 stream resets. */
export function countsAsBreakerFailure (err: unknown): boolean { return BREAKER_ERRORS.has(code(err)) || isTlsFailure(err) }
export const isFailureStatus = (status: number): boolean => status === 502 || status === 503 || status === 504

/** Wait before retry `k` (1-based): `random(0.8, 1.0) * base * 2^(k-1)`, capped by max-delay. */
export function backoff (s: PoolSettings, k: number, random = Math.random): number {
  return Math.min(s['retry.max-delay'], (0.8 + 0.2 * random()) * s['retry.base-delay'] * 2 ** (k - 1))
}

/** `Retry-After` as delay-seconds or an HTTP-date, in ms; undefined when absent or unreadable. */
export function parseRetryAfter (value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = (Array.isArray(value) ? value[0] : value)?.trim()
  if (v === undefined || v === '') return undefined
  if (/^[0-9]+$/.test(v)) return Number(v) * 1000
  // An HTTP-date names its day and month; Date.parse would also take "-1" or "2026".
  if (!/^[A-Za-z]{3}/.test(v)) return undefined
  const date = Date.parse(v)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}
