import type { ConnectionOptions } from 'node:tls'
import type { Dispatcher } from 'undici'
import type { PoolSettings } from '../config/schema.js'
import { composeDispatch, type Dispatch } from '../handler/decorator.js'
import { ClosableDispatcher } from './closable.js'
import { Exchanges, type ExchangeCounters } from './exchange.js'
import { OriginPools, type PoolStats } from './origins.js'
import { responseLimits } from './response-limits.js'
import { poolRequestOptions } from './static-headers.js'

export type { PoolStats } from './origins.js'

/** TLS options for upstream connections (client certificate, trusted CAs, verification), from the TLS layer. */
export interface DispatcherOptions {
  tls?: ConnectionOptions
}

/**
 * One pool's connection layer as an undici Dispatcher: the pool's request
 * options (static headers, connection: close), its response limits and the
 * exchange count, composed over its sockets.
 */
export class PoolDispatcher extends ClosableDispatcher {
  private readonly sockets: OriginPools
  private readonly exchanges = new Exchanges()
  private readonly chain: Dispatch

  constructor (readonly settings: PoolSettings, options: DispatcherOptions = {}) {
    super()
    this.sockets = new OriginPools(settings, options.tls)
    this.chain = composeDispatch(this.sockets, this.exchanges.interceptor,
      responseLimits(settings['http.connection.max-header-count'], settings['http.connection.max-line-length']),
      poolRequestOptions(settings))
  }

  override dispatch (opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    return this.chain(opts, handler)
  }

  protected async closeAll (): Promise<void> { await this.sockets.close() }
  protected async destroyAll (err: Error | null): Promise<void> { await this.sockets.destroy(err) }

  get budget (): OriginPools['budget'] { return this.sockets.budget }
  get counters (): ExchangeCounters { return this.exchanges.counters }
  get stats (): PoolStats { return this.sockets.stats }

  /**
   * Whether a request to `origin` would wait for a connection: as many
   * exchanges are in flight as max-per-route or max-total allow sockets.
   */
  saturated (origin: string): boolean {
    return this.exchanges.inFlightTo(origin) >= this.settings['http.conn-manager.max-per-route'] ||
      this.exchanges.inFlight >= this.settings['http.conn-manager.max-total']
  }
}
