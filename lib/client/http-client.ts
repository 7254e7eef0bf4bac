import { inspect, type InspectOptions } from 'node:util'
import { request, type Dispatcher } from 'undici'
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
 * The code-facing side of a pool (Repose's "HTTP client"). It holds only an id,
 * so it stays valid across reloads and always uses the pool's current settings.
 */
export class HttpClient {
  constructor (readonly id: string, private readonly source: PoolSource) {}

  get settings (): PoolSettings { return this.source.settingsOf(this.id) }
  get dispatcher (): Dispatcher { return this.source.dispatcherOf(this.id) }

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
