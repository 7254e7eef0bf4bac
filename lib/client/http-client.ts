import { request, type Dispatcher } from 'undici'
import type { PoolSettings } from '../config/schema.js'

/** What an HttpClient needs from the registry: the pool's current state, looked up on every call. */
export interface PoolSource {
  settingsOf: (id: string) => PoolSettings
  dispatcherOf: (id: string) => Dispatcher
}

export type RequestOptions = Omit<Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & Partial<Pick<Dispatcher.RequestOptions, 'method'>> & {
  /** Requests with the same key share one upstream exchange (`cache.ttl`). */
  cacheKey?: string
  useCache?: boolean
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

  async request (url: string | URL, options: RequestOptions = {}): Promise<Dispatcher.ResponseData> {
    const { cacheKey: _key, useCache: _use, refreshCache: _refresh, ...rest } = options
    return await request(url, { ...rest, dispatcher: this.dispatcher })
  }
}
