import { inspect, type InspectOptions } from 'node:util'
import { errors, type Dispatcher } from 'undici'
import type { PoolSettings } from '../config/schema.js'
import { inspectAs } from '../config/settings.js'
import { composeDispatch, refusedController, type Dispatch, type Interceptor } from '../handler/decorator.js'
import { ClosableDispatcher } from '../pool/closable.js'
import type { PoolDispatcher, PoolStats } from '../pool/dispatcher.js'
import { systemClock, type Clock } from '../time/clock.js'
import { Active } from './active.js'
import { CircuitBreaker } from './breaker.js'
import { Exchange, resilienceCounters, type Layer, type ResilienceCounters } from './exchange.js'

export type { ResilienceCounters } from './exchange.js'

/**
 * A pool's dispatcher with its retry policy, circuit breaker and request
 * deadline (the `x:` extensions), as one interceptor over the pool's
 * connection layer. Forwarding and `request()` both go through it, so there is
 * one retry layer. With none of them configured it hands every request
 * straight to the pool. Closing waits for the exchanges in progress, also
 * those waiting between attempts, before the pool's sockets close.
 */
export class ResilientDispatcher extends ClosableDispatcher implements Layer {
  retrying = 0
  readonly breaker: CircuitBreaker | undefined
  readonly methods: ReadonlySet<string>
  readonly statuses: ReadonlySet<number>
  private readonly chain: Dispatch
  private readonly active = new Active<Exchange>()
  private closing = false
  private idle: (() => void) | undefined

  /** `counters` may be shared with the pool's earlier dispatchers: a reload keeps them growing. */
  constructor (readonly pool: PoolDispatcher, readonly settings: PoolSettings, readonly clock: Clock = systemClock,
    readonly counters: ResilienceCounters = resilienceCounters()) {
    super()
    const threshold = settings['circuit-breaker.threshold']
    this.breaker = threshold > 0 ? new CircuitBreaker(threshold, settings['circuit-breaker.reset'], clock) : undefined
    this.methods = new Set(settings['retry.methods'])
    this.statuses = new Set(settings['retry.statuses'])
    const passThrough = settings['retry.max-attempts'] === 1 && threshold === 0 && settings['request.timeout'] === 0
    this.chain = passThrough ? pool.dispatch.bind(pool) : composeDispatch(pool, [this.interceptor])
  }

  /** The layer itself: each request becomes an Exchange over the dispatch below. */
  readonly interceptor: Interceptor = (dispatch) => (opts, handler) => {
    if (this.closing) {
      const err = new errors.ClientDestroyedError()
      handler.onResponseError?.(refusedController(err), err)
      return false
    }
    const exchange = new Exchange(this, dispatch, opts, handler)
    this.active.add(exchange)
    exchange.start()
    return true
  }

  override dispatch (opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    return this.chain(opts, handler)
  }

  /**
   * `x:retry.budget`: a retry is made only while the other exchanges retrying
   * are fewer than this share of the exchanges in progress (queued, running or
   * between attempts), or than `x:retry.min-concurrent`: an outage then brings
   * the failing origin about (1 + budget) times the requests, not max-attempts
   * times, while a lone request still makes all its attempts.
   */
  mayRetry (alreadyRetrying: boolean): boolean {
    const others = this.retrying - (alreadyRetrying ? 1 : 0)
    const allowed = Math.max(this.settings['retry.min-concurrent'], this.settings['retry.budget'] / 100 * this.active.size)
    if (others < allowed) return true
    this.counters.retryBudgetExhausted++
    return false
  }

  ended (exchange: Exchange): void {
    this.active.delete(exchange)
    if (this.active.size === 0) this.idle?.()
  }

  protected async closeAll (): Promise<void> {
    this.closing = true
    this.pool.closeIdle()
    if (this.active.size > 0) await new Promise<void>((resolve) => { this.idle = resolve })
    await this.pool.close()
  }

  protected async destroyAll (err: Error | null): Promise<void> {
    this.closing = true
    const reason = err ?? new errors.ClientDestroyedError()
    for (const exchange of this.active.toArray()) exchange.finish(reason)
    await this.pool.destroy(err)
  }

  get stats (): PoolStats { return this.pool.stats }

  toJSON (): object { return { pool: this.settings.id } }
  [inspect.custom] (_depth: number, options: InspectOptions): string { return inspectAs(this, options) }
}
