import { errors } from 'undici'

/** Failures the pool itself decides; never retried. */
export class PoolLimitError extends errors.UndiciError {
  constructor (message: string, code: 'FST_HTTP_POOLS_QUEUE_TIMEOUT' | 'FST_HTTP_POOLS_CIRCUIT_OPEN' | 'FST_HTTP_POOLS_REQUEST_TIMEOUT', readonly retryAfter?: number) {
    super(message)
    this.name = 'PoolLimitError'
    this.code = code
  }
}

export const queueTimeout = (ms: number): PoolLimitError =>
  new PoolLimitError(`no connection became free within x:queue.timeout (${ms} ms)`, 'FST_HTTP_POOLS_QUEUE_TIMEOUT')

export const requestTimeout = (ms: number): PoolLimitError =>
  new PoolLimitError(`the exchange did not complete within x:request.timeout (${ms} ms)`, 'FST_HTTP_POOLS_REQUEST_TIMEOUT')

export const circuitOpen = (origin: string, retryAfterSeconds: number): PoolLimitError =>
  new PoolLimitError(`circuit open for ${origin}: too many consecutive failures`, 'FST_HTTP_POOLS_CIRCUIT_OPEN', retryAfterSeconds)
