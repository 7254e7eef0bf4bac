import { inspect, type InspectOptions } from 'node:util'
import type { ConnectionOptions } from 'node:tls'
import { errors, type Dispatcher } from 'undici'
import type { PoolSettings } from '../config/schema.js'
import { inspectAs } from '../config/settings.js'
import { composeDispatch, type Dispatch } from '../handler/decorator.js'
import type { Clock } from '../time/clock.js'
import { ClosableDispatcher } from './closable.js'
import { Exchanges, type ExchangeCounters, type ExchangeObserver } from './exchange.js'
import { OriginPools, type PoolStats } from './origins.js'
import { responseChecks } from './response-checks.js'
import { poolRequestOptions } from './static-headers.js'

export type { PoolStats } from './origins.js'

/** TLS options for upstream connections (client certificate, trusted CAs, verification), from the TLS layer. */
export interface DispatcherOptions {
  tls?: ConnectionOptions
  clock?: Clock
  /** The pool id's counters, kept across reloads (fresh ones when absent). */
  counters?: ExchangeCounters
  observer?: ExchangeObserver
}

/**
 * One pool's connection layer as an undici Dispatcher: the pool's request
 * options (static headers, connection: close), its response limits and its
 * exchanges (queue, `x:queue.timeout`, counts), composed over its sockets.
 */
export class PoolDispatcher extends ClosableDispatcher {
  private readonly sockets: OriginPools
  private readonly exchanges: Exchanges
  private readonly chain: Dispatch

  constructor (readonly settings: PoolSettings, options: DispatcherOptions = {}) {
    super()
    this.sockets = new OriginPools(settings, options.tls)
    this.exchanges = new Exchanges({
      // An HTTP/2 connection carries up to undici's 100 concurrent streams.
      perOrigin: settings['http.conn-manager.max-per-route'] * (settings.http2 ? H2_STREAMS : 1),
      total: settings['http.conn-manager.max-total'] * (settings.http2 ? H2_STREAMS : 1),
      queueTimeout: settings['queue.timeout'],
      maxPending: settings['queue.max-pending'],
      socketTimeout: settings['http.socket.timeout']
    }, options.clock, options.counters, options.observer)
    // A response that fails a check fails its exchange below the exchange's own count.
    this.chain = composeDispatch(this.sockets, [
      responseChecks(settings['http.connection.max-header-count'], settings['http.connection.max-line-length']),
      this.exchanges.interceptor,
      poolRequestOptions(settings)
    ])
  }

  override dispatch (opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    return this.chain(opts, handler)
  }

  /**
   * A pool being replaced keeps only the connections its exchanges in flight
   * hold: the idle ones close at once, so across a reload the pool's two
   * dispatchers hold at most max-total connections each, and the old one only
   * as many as it still has exchanges.
   */
  closeIdle (): void { this.sockets.budget.closeIdle('the pool was replaced') }

  /** What waits for room is still sent; then undici lets what is in flight finish and closes the sockets. */
  protected async closeAll (): Promise<void> {
    this.closeIdle()
    await this.exchanges.untilDrained()
    await this.sockets.close()
  }

  protected async destroyAll (err: Error | null): Promise<void> {
    this.exchanges.failWaiting(err ?? new errors.ClientDestroyedError())
    await this.sockets.destroy(err)
  }

  toJSON (): object { return { pool: this.settings.id } }
  [inspect.custom] (_depth: number, options: InspectOptions): string { return inspectAs(this, options) }

  get budget (): OriginPools['budget'] { return this.sockets.budget }
  get counters (): ExchangeCounters { return this.exchanges.counters }

  /** undici's counters, with the requests that wait in the pool's own queue as pending. */
  get stats (): PoolStats {
    const stats = this.sockets.stats
    const waiting = this.exchanges.waiting
    stats.pending += waiting
    stats.queued += waiting
    stats.size += waiting
    return stats
  }
}

const H2_STREAMS = 100
