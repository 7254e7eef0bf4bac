import type { IncomingHttpHeaders } from 'node:http'
import type { Duplex } from 'node:stream'
import { errors, type Dispatcher } from 'undici'
import type { PoolSettings } from '../config/schema.js'
import type { Controller, Dispatch, Handler } from '../handler/decorator.js'
import type { Clock, Timer } from '../time/clock.js'
import type { Linked } from './active.js'
import type { CircuitBreaker } from './breaker.js'
import { circuitOpen, isClientAbort, isPoolLimit, requestTimeout } from '../pool/errors.js'
import { backoff, countsAsBreakerFailure, isAfterWriteFailure, isFailureStatus, isNotProcessed, parseRetryAfter } from './policy.js'

export interface ResilienceCounters {
  retries: number
  requestTimeouts: number
  circuitRejections: number
  /** Retries not made because the pool's retry budget was spent. */
  retryBudgetExhausted: number
}

export const resilienceCounters = (): ResilienceCounters => ({ retries: 0, requestTimeouts: 0, circuitRejections: 0, retryBudgetExhausted: 0 })

/** What an exchange needs of its pool's resilience layer. */
export interface Layer {
  readonly settings: PoolSettings
  readonly counters: ResilienceCounters
  readonly breaker: CircuitBreaker | undefined
  readonly methods: ReadonlySet<string>
  readonly statuses: ReadonlySet<number>
  readonly clock: Clock
  /** Called once when the exchange has ended, whichever way. */
  ended: (exchange: Exchange) => void
  /** Whether a retry may be made now (`x:retry.budget`), by an exchange already counted as retrying or not; counts a refusal. */
  mayRetry: (alreadyRetrying: boolean) => boolean
  /** Exchanges between their first attempt's failure and their end. */
  retrying: number
}

// SPEC "Broken responses end": how much of a response discarded for a retry is read.
const DISCARD_BYTES = 64 * 1024

const isReplayable = (body: unknown): boolean =>
  body == null || typeof body === 'string' || body instanceof Uint8Array

/**
 * One request through the resilience layer: its attempts, their timers and
 * the breaker outcome. It is the controller its caller holds, from the start
 * until the end, so the caller can cancel it at any point: queued, connecting,
 * waiting for headers, streaming, or between attempts.
 */
export class Exchange implements Controller, Linked {
  prevActive: Linked | undefined = undefined
  nextActive: Linked | undefined = undefined
  private attempts = 0
  private current: Attempt | undefined
  private delivering = false
  private done = false
  private trial = false
  private isPaused = false
  private retrying = false
  private abortReason: Error | null = null
  private deadline: Timer | undefined
  private retryTimer: Timer | undefined
  private breakerKey: string | undefined
  private readonly replayable: boolean
  private readonly startedAt: number

  constructor (readonly layer: Layer, private readonly dispatch: Dispatch, readonly opts: Dispatcher.DispatchOptions, readonly inner: Handler) {
    this.replayable = isReplayable(opts.body)
    this.startedAt = layer.clock.now()
  }

  // The caller's controller.
  get aborted (): boolean { return this.abortReason !== null }
  get paused (): boolean { return this.isPaused }
  get reason (): Error | null { return this.abortReason }

  abort (reason: Error): void {
    if (this.done) return
    this.abortReason = reason ?? new errors.RequestAbortedError()
    this.finish(this.abortReason)
  }

  pause (): void {
    this.isPaused = true
    this.current?.controller?.pause()
  }

  resume (): void {
    this.isPaused = false
    this.current?.controller?.resume()
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
    this.inner.onRequestStart?.(this, undefined)
    // The caller may have been cancelled already.
    if (this.done) return
    const limit = this.settings['request.timeout']
    if (limit > 0) {
      this.deadline = this.layer.clock.setTimeout(() => {
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
    this.dispatch(this.opts, attempt)
  }

  private canRetry (): boolean {
    return !this.done && !this.delivering && this.replayable && this.attempts < this.settings['retry.max-attempts']
  }

  /** Whether a retry after `delay` ms can still start before `x:request.timeout`. */
  private fits (delay: number): boolean {
    const limit = this.settings['request.timeout']
    return limit === 0 || this.layer.clock.now() - this.startedAt + delay < limit
  }

  /** Retries after `delay` ms (a discarded response has been read to its end by then). */
  scheduleRetry (delay: number): void {
    if (this.done) return
    this.layer.counters.retries++
    if (!this.retrying) {
      this.retrying = true
      this.layer.retrying++
    }
    this.current = undefined
    this.retryTimer = this.layer.clock.setTimeout(() => this.next(), delay)
  }

  private outcome (failed: boolean): void {
    const breaker = this.layer.breaker
    if (breaker === undefined) return
    if (failed) breaker.failure(this.origin)
    else breaker.success(this.origin)
    this.trial = false
  }

  /** Decides what a final response's status means: a delay when it is discarded for a retry after that many ms. */
  onStatus (status: number, headers: IncomingHttpHeaders): number | undefined {
    this.outcome(isFailureStatus(status))
    if (!this.canRetry() || !this.layer.statuses.has(status) || !this.layer.methods.has(this.opts.method)) return this.deliver()
    let delay = backoff(this.settings, this.attempts)
    if (status === 429 || status === 503) {
      // The server's Retry-After replaces the backoff, exactly; one longer than max-delay goes back as it is.
      const after = parseRetryAfter(headers['retry-after'])
      if (after !== undefined && after > this.settings['retry.max-delay']) return this.deliver()
      delay = after ?? delay
    }
    return this.fits(delay) && this.budgetAllows() ? delay : this.deliver()
  }

  private budgetAllows (): boolean {
    return this.layer.mayRetry(this.retrying)
  }

  private deliver (): undefined {
    this.delivering = true
    return undefined
  }

  onFailure (err: Error): void {
    if (this.done) return
    if (this.delivering) return this.finish(err)
    // Neither the pool's own limits nor the caller's going away say anything about the origin.
    if (isPoolLimit(err) || isClientAbort(err)) return this.finish(err)
    // A failure of the origin counts; anything else (a malformed response, the proxy) is no success either.
    if (countsAsBreakerFailure(err)) this.outcome(true)
    const retryable = isNotProcessed(err) || (isAfterWriteFailure(err) && this.layer.methods.has(this.opts.method))
    const delay = backoff(this.settings, this.attempts)
    if (retryable && this.canRetry() && this.fits(delay) && this.budgetAllows()) this.scheduleRetry(delay)
    else this.finish(err)
  }

  complete (trailers: IncomingHttpHeaders): void {
    if (this.done) return
    this.end()
    this.inner.onResponseEnd?.(this, trailers)
  }

  finish (err: Error): void {
    if (this.done) return
    this.end()
    if (this.trial) this.layer.breaker?.abandon(this.origin)
    this.current?.cancel(err)
    this.inner.onResponseError?.(this, err)
  }

  private end (): void {
    this.done = true
    if (this.retrying) this.layer.retrying--
    const { clock } = this.layer
    clock.clearTimeout(this.deadline)
    clock.clearTimeout(this.retryTimer)
    this.layer.ended(this)
  }

  isCurrent (a: Attempt): boolean { return !this.done && this.current === a }
}

/** One attempt of an Exchange, as undici's handler. Stale attempts only clean up after themselves. */
class Attempt implements Handler {
  controller: Controller | undefined
  private cancelled: Error | undefined
  private retryDelay: number | undefined
  private discarded = 0
  private discardTimer: Timer | undefined

  constructor (private readonly ex: Exchange) {}

  cancel (err: Error): void {
    this.cancelled = err
    this.controller?.abort(err)
  }

  onRequestStart (controller: Controller): void {
    this.controller = controller
    if (this.cancelled !== undefined) controller.abort(this.cancelled)
    else if (this.ex.paused) controller.pause()
  }

  onResponseStart (_controller: Controller, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    if (!this.ex.isCurrent(this)) return
    // Informational responses pass on; only the final status decides a retry.
    if (statusCode >= 200) {
      this.retryDelay = this.ex.onStatus(statusCode, headers)
      if (this.retryDelay !== undefined) {
        this.boundDiscard()
        return
      }
    }
    this.ex.inner.onResponseStart?.(this.ex, statusCode, headers, statusMessage)
  }

  /**
   * A discarded response is read to its end so its connection is reused, but
   * for at most DISCARD_BYTES or http.socket.timeout: past either, its
   * connection is closed (aborting it ends the attempt, and the retry goes on).
   */
  private boundDiscard (): void {
    const ms = this.ex.layer.settings['http.socket.timeout']
    if (ms > 0) this.discardTimer = this.ex.layer.clock.setTimeout(() => { this.stopDiscarding('took longer than http.socket.timeout') }, ms)
  }

  private stopDiscarding (why: string): void {
    this.ex.layer.clock.clearTimeout(this.discardTimer)
    this.controller?.abort(new errors.InformationalError(`a response discarded for a retry ${why}`))
  }

  onResponseData (_controller: Controller, chunk: Buffer): void {
    if (!this.ex.isCurrent(this)) return
    if (this.retryDelay === undefined) {
      this.ex.inner.onResponseData?.(this.ex, chunk)
      return
    }
    this.discarded += chunk.length
    if (this.discarded > DISCARD_BYTES) this.stopDiscarding(`is over ${DISCARD_BYTES} bytes`)
  }

  onResponseEnd (_controller: Controller, trailers: IncomingHttpHeaders): void {
    this.ex.layer.clock.clearTimeout(this.discardTimer)
    if (!this.ex.isCurrent(this)) return
    if (this.retryDelay !== undefined) this.ex.scheduleRetry(this.retryDelay)
    else this.ex.complete(trailers)
  }

  onResponseError (_controller: Controller, err: Error): void {
    this.ex.layer.clock.clearTimeout(this.discardTimer)
    if (!this.ex.isCurrent(this)) return
    if (this.retryDelay !== undefined) this.ex.scheduleRetry(this.retryDelay)
    else this.ex.onFailure(err)
  }

  onRequestUpgrade (_controller: Controller, statusCode: number, headers: IncomingHttpHeaders, socket: Duplex): void {
    this.ex.inner.onRequestUpgrade?.(this.ex, statusCode, headers, socket)
  }
}
