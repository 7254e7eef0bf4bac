import { inspect, type InspectOptions } from 'node:util'
import { Dispatcher, request } from 'undici'
import type { PoolSettings } from '../config/schema.js'
import { inspectAs } from '../config/settings.js'
import type { Fetched, ResponseCache } from '../cache/cache.js'
import { buffer, materialize } from '../cache/response.js'

/** What an HttpClient needs from the registry: the pool's current state, looked up on every call. */
export interface PoolSource {
  settingsOf: (id: string) => PoolSettings
  dispatcherOf: (id: string) => Dispatcher
  cacheOf: (id: string) => ResponseCache
  maxBodyBytes: number
}

export type RequestOptions = Omit<Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & Partial<Pick<Dispatcher.RequestOptions, 'method'>> & {
  /** Requests with the same key share one upstream exchange and, for `cache.ttl` ms, its response. */
  cacheKey?: string
  /** Default true when a key is given; false neither reads nor writes the cache. */
  useCache?: boolean
  /** Always go upstream and replace the cached response. */
  refreshCache?: boolean
}

/**
 * A pool's dispatcher as callers keep it: a reload replaces the pool's real
 * dispatcher (and closes the old one), so this one looks the current one up
 * for every request instead of holding it.
 */
class CurrentDispatcher extends Dispatcher {
  constructor (private readonly id: string, private readonly source: PoolSource) { super() }

  override dispatch (opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    return this.source.dispatcherOf(this.id).dispatch(opts, handler)
  }

  // Printed as its pool's id only: its source leads to the pool's secrets.
  toJSON (): object { return { pool: this.id } }
  [inspect.custom] (_depth: number, options: InspectOptions): string { return inspectAs(this, options) }

  // The plugin owns the pools and closes them with the app: a caller's close
  // (reply-from's destroyAgent, a test's cleanup) must not take a pool down
  // for everyone else.
  override close (): Promise<void>
  override close (callback: () => void): void
  override close (callback?: () => void): Promise<void> | void {
    if (callback === undefined) return Promise.resolve()
    queueMicrotask(callback)
  }

  override destroy (): Promise<void>
  override destroy (err: Error | null): Promise<void>
  override destroy (callback: () => void): void
  override destroy (err: Error | null, callback: () => void): void
  override destroy (a?: Error | null | (() => void), b?: () => void): Promise<void> | void {
    const callback = typeof a === 'function' ? a : b
    if (callback === undefined) return Promise.resolve()
    queueMicrotask(callback)
  }
}

/**
 * The code-facing side of a pool (Repose's "HTTP client"). It holds only an id,
 * so it stays valid across reloads and always uses the pool's current settings.
 */
export class HttpClient {
  /** Valid across reloads: always hands requests to the pool's current dispatcher. */
  readonly dispatcher: Dispatcher

  constructor (readonly id: string, private readonly source: PoolSource) {
    this.dispatcher = new CurrentDispatcher(id, source)
  }

  get settings (): PoolSettings { return this.source.settingsOf(this.id) }

  toJSON (): object { return { id: this.id, settings: this.settings } }
  [inspect.custom] (_depth: number, options: InspectOptions): string { return inspectAs(this, options) }

  async request (url: string | URL, options: RequestOptions = {}): Promise<Dispatcher.ResponseData> {
    const { cacheKey, useCache, refreshCache, signal, ...rest } = options
    const dispatcher = this.dispatcher
    if (cacheKey === undefined || useCache === false || this.settings['cache.ttl'] === 0) {
      return await request(url, { ...rest, ...(signal ? { signal } : {}), dispatcher })
    }
    // The shared exchange runs without the first caller's signal: others may be waiting on it.
    const fetch = async (own?: AbortSignal): Promise<Fetched<Dispatcher.ResponseData>> =>
      await buffer(await request(url, { ...rest, ...(own ? { signal: own } : {}), dispatcher }), this.source.maxBodyBytes)
    return await this.source.cacheOf(this.id).run(cacheKey, fetch, materialize, { refresh: refreshCache === true, ...(signal ? { signal: signal as AbortSignal } : {}) })
  }
}
