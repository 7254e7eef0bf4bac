/**
 * Failures the pool itself decides; never retried, never counted by the
 * breaker. A plain Error: undici's error classes answer `instanceof` for one
 * another, so every failure is told apart by `code`.
 */
export class PoolLimitError extends Error {
  constructor (message: string, readonly code: 'FST_HTTP_POOLS_QUEUE_TIMEOUT' | 'FST_HTTP_POOLS_CIRCUIT_OPEN' | 'FST_HTTP_POOLS_REQUEST_TIMEOUT', readonly retryAfter?: number) {
    super(message)
    this.name = 'PoolLimitError'
  }
}

export const queueTimeout = (ms: number): PoolLimitError =>
  new PoolLimitError(`no connection became free within x:queue.timeout (${ms} ms)`, 'FST_HTTP_POOLS_QUEUE_TIMEOUT')

export const requestTimeout = (ms: number): PoolLimitError =>
  new PoolLimitError(`the exchange did not complete within x:request.timeout (${ms} ms)`, 'FST_HTTP_POOLS_REQUEST_TIMEOUT')

export const circuitOpen = (origin: string, retryAfterSeconds: number): PoolLimitError =>
  new PoolLimitError(`circuit open for ${origin}: too many consecutive failures`, 'FST_HTTP_POOLS_CIRCUIT_OPEN', retryAfterSeconds)

const POOL_LIMITS = new Set(['FST_HTTP_POOLS_QUEUE_TIMEOUT', 'FST_HTTP_POOLS_CIRCUIT_OPEN', 'FST_HTTP_POOLS_REQUEST_TIMEOUT'])

export const isPoolLimit = (err: unknown): boolean => POOL_LIMITS.has(String((err as { code?: unknown } | null)?.code))
