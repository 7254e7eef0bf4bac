import { errors, type Dispatcher } from 'undici'
import type { PoolSettings } from '../config/schema.js'
import { ClosableDispatcher } from '../pool/closable.js'
import type { PoolDispatcher, PoolStats } from '../pool/dispatcher.js'
import { asLegacyHandler, type Handler } from '../pool/handler.js'
import { CircuitBreaker } from './breaker.js'
import { circuitOpen, PoolLimitError, queueTimeout, requestTimeout } from './errors.js'
import { backoff, countsAsBreakerFailure, isAfterWriteFailure, isConnectFailure, isFailureStatus, parseRetryAfter } from './retry-policy.js'

export interface ResilienceCounters {
  retries: number
  queueTimeouts: number
  requestTimeouts: number
  circuitRejections: number
}

/**
 * A pool's dispatcher with its retry policy, circuit breaker, queue and request
 * deadlines (the `x:` extensions). Forwarding and `request()` both go through
 * it, so there is one retry layer. With none of them configured it hands every
 * request straight to the pool.
 */
export class ResilientDispatcher extends ClosableDispatcher {
  readonly counters: ResilienceCounters = { retries: 0, queueTimeouts: 0, requestTimeouts: 0, circuitRejections: 0 }
  readonly breaker: CircuitBreaker | undefined
  readonly methods: ReadonlySet<string>
  readonly statuses: ReadonlySet<number>
  private readonly passThrough: boolean

  constructor (readonly pool: PoolDispatcher, readonly settings: PoolSettings) {
    super()
    const threshold = settings['circuit-breaker.threshold']
    this.breaker = threshold > 0 ? new CircuitBreaker(threshold, settings['circuit-breaker.reset']) : undefined
    this.methods = new Set(settings['retry.methods'])
    this.statuses = new Set(settings['retry.statuses'])
    this.passThrough = settings['retry.max-attempts'] === 1 && threshold === 0 &&
      settings['queue.timeout'] === 0 && settings['request.timeout'] === 0
  }

  override dispatch (opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (this.passThrough) return this.pool.dispatch(opts, handler)
    new Exchange(this, opts, asLegacyHandler(handler)).start()
    return true
  }

  protected async closeAll (): Promise<void> { await this.pool.close() }
  protected async destroyAll (err: Error | null): Promise<void> { await this.pool.destroy(err) }

  get stats (): PoolStats { return this.pool.stats }
}

const isReplayable = (body: unknown): boolean =>
  body == null || typeof body === 'string' || body instanceof Uint8Array

function header (raw: Buffer[], name: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === name.length && raw[i]!.toString('latin1').toLowerCase() === name) return raw[i + 1]!.toString('latin1')
  }
  return undefined
}

/** One request through the layer: its attempts, their timers, and the breaker outcome. */
class Exchange {
  private attempts = 0
  private current: Attempt | undefined
  private delivering = false
  private done = false
  private trial = false
  private deadline: NodeJS.Timeout | undefined
  private retryTimer: NodeJS.Timeout | undefined
  private breakerKey: string | undefined
  private readonly originKey: string
  private readonly replayable: boolean
  private readonly startedAt = Date.now()

  constructor (readonly layer: ResilientDispatcher, readonly opts: Dispatcher.DispatchOptions, readonly inner: Handler) {
    this.originKey = String(opts.origin)
    this.replayable = isReplayable(opts.body)
  }

  private get settings (): PoolSettings { return this.layer.settings }

  /** The breaker's key: scheme, host and port, however the caller wrote the origin (only the breaker needs it). */
  private get origin (): string {
    if (this.breakerKey === undefined) {
      const o = this.opts.origin
      this.breakerKey = typeof o === 'string' ? o.replace(/\/$/, '') : String(o?.origin)
    }
    return this.breakerKey
  }

  start (): void {
    // The caller's abort (signal, client gone) reaches every attempt, also between them.
    this.inner.onConnect?.((err?: Error) => this.finish(err ?? new errors.RequestAbortedError()))
    const limit = this.settings['request.timeout']
    if (limit > 0) {
      this.deadline = setTimeout(() => {
        this.layer.counters.requestTimeouts++
        this.finish(requestTimeout(limit))
      }, limit)
    }
    this.next()
  }

  private next (): void {
    if (this.done) return
    const admission = this.layer.breaker?.admit(this.origin)
    if (admission !== undefined && !admission.ok) {
      this.layer.counters.circuitRejections++
      this.finish(circuitOpen(this.origin, Math.ceil(admission.retryAfterMs / 1000)))
      return
    }
    this.trial = admission?.trial ?? false
    this.attempts++
    const attempt = new Attempt(this)
    this.current = attempt
    const wait = this.settings['queue.timeout']
    // Only waiting for a connection counts: opening one is x:connection.timeout's business.
    if (wait > 0 && this.layer.pool.saturated(this.originKey)) {
      attempt.queueTimer = setTimeout(() => {
        this.layer.counters.queueTimeouts++
        this.finish(queueTimeout(wait))
      }, wait)
    }
    this.layer.pool.dispatch(this.opts, attempt as never)
  }

  private canRetry (): boolean {
    return !this.done && !this.delivering && this.replayable && this.attempts < this.settings['retry.max-attempts']
  }

  /** Whether a retry after `delay` ms can still start before `x:request.timeout`. */
  private fits (delay: number): boolean {
    const limit = this.settings['request.timeout']
    return limit === 0 || Date.now() - this.startedAt + delay < limit
  }

  /** Retries after `delay` ms (a discarded response has been read to its end by then). */
  scheduleRetry (delay: number): void {
    if (this.done) return
    this.layer.counters.retries++
    this.current = undefined
    this.retryTimer = setTimeout(() => this.next(), delay)
  }

  private outcome (failed: boolean): void {
    const breaker = this.layer.breaker
    if (breaker === undefined) return
    if (failed) breaker.failure(this.origin)
    else breaker.success(this.origin)
    this.trial = false
  }

  /** Decides what a response's status means: true when it is discarded for a retry, after `delay` ms. */
  onStatus (status: number, raw: Buffer[]): number | undefined {
    const failed = isFailureStatus(status)
    this.outcome(failed)
    if (!this.canRetry() || !this.layer.statuses.has(status) || !this.layer.methods.has(this.opts.method)) return this.deliver()
    let delay = backoff(this.settings, this.attempts)
    if (status === 429 || status === 503) {
      // The server's Retry-After replaces the backoff, exactly; one longer than max-delay goes back as it is.
      const after = parseRetryAfter(header(raw, 'retry-after'))
      if (after !== undefined && after > this.settings['retry.max-delay']) return this.deliver()
      delay = after ?? delay
    }
    return this.fits(delay) ? delay : this.deliver()
  }

  private deliver (): undefined {
    this.delivering = true
    return undefined
  }

  onFailure (err: Error): void {
    if (this.done) return
    if (this.delivering) return this.finish(err)
    if (!(err instanceof PoolLimitError)) this.outcome(countsAsBreakerFailure(err))
    const retryable = isConnectFailure(err) || (isAfterWriteFailure(err) && this.layer.methods.has(this.opts.method))
    const delay = backoff(this.settings, this.attempts)
    if (retryable && this.canRetry() && this.fits(delay)) this.scheduleRetry(delay)
    else this.finish(err)
  }

  complete (trailers: string[] | null): void {
    if (this.done) return
    this.done = true
    this.clearTimers()
    this.inner.onComplete?.(trailers)
  }

  finish (err: Error): void {
    if (this.done) return
    this.done = true
    this.clearTimers()
    if (this.trial) this.layer.breaker?.abandon(this.origin)
    this.current?.cancel(err)
    this.inner.onError?.(err)
  }

  isCurrent (a: Attempt): boolean { return !this.done && this.current === a }

  private clearTimers (): void {
    clearTimeout(this.deadline)
    clearTimeout(this.retryTimer)
    if (this.current?.queueTimer !== undefined) clearTimeout(this.current.queueTimer)
  }
}

/** One attempt of an Exchange, as undici's handler. Stale attempts only clean up after themselves. */
class Attempt implements Handler {
  queueTimer: NodeJS.Timeout | undefined
  private abortFn: ((err: Error) => void) | undefined
  private cancelled: Error | undefined
  private retryDelay: number | undefined

  constructor (private readonly ex: Exchange) {}

  cancel (err: Error): void {
    this.cancelled = err
    this.abortFn?.(err)
  }

  onConnect (abort: (err?: Error) => void): void {
    clearTimeout(this.queueTimer)
    this.abortFn = abort
    // Given up on while it queued: leave the connection at once.
    if (this.cancelled !== undefined) abort(this.cancelled)
  }

  onHeaders (statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (!this.ex.isCurrent(this)) return true
    this.retryDelay = this.ex.onStatus(statusCode, rawHeaders)
    // A discarded response is read to its end so its connection is reused, not leaked.
    if (this.retryDelay !== undefined) return true
    return this.ex.inner.onHeaders!(statusCode, rawHeaders, resume, statusText)
  }

  onData (chunk: Buffer): boolean {
    if (this.retryDelay !== undefined || !this.ex.isCurrent(this)) return true
    return this.ex.inner.onData!(chunk)
  }

  onComplete (trailers: string[] | null): void {
    if (!this.ex.isCurrent(this)) return
    if (this.retryDelay !== undefined) this.ex.scheduleRetry(this.retryDelay)
    else this.ex.complete(trailers)
  }

  onError (err: Error): void {
    clearTimeout(this.queueTimer)
    if (!this.ex.isCurrent(this)) return
    if (this.retryDelay !== undefined) this.ex.scheduleRetry(this.retryDelay)
    else this.ex.onFailure(err)
  }

  onUpgrade (statusCode: number, headers: Buffer[] | string[] | null, socket: import('node:stream').Duplex): void {
    this.ex.inner.onUpgrade?.(statusCode, headers, socket)
  }

  onResponseStarted (): void {
    if (this.ex.isCurrent(this)) this.ex.inner.onResponseStarted?.()
  }
}
