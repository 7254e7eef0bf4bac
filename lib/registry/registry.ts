import { ResponseCache, type CacheLimits } from '../client/cache.js'
import { HttpClient } from '../client/http-client.js'
import type { ParsedConfig } from '../config/parse.js'
import type { PoolSettings } from '../config/schema.js'
import type { ResilienceCounters, ResilientDispatcher } from '../client/resilient-dispatcher.js'
import type { PoolStats } from '../pool/dispatcher.js'
import { buildDispatcher, type BuildContext } from './build.js'

export interface PoolEntry {
  settings: PoolSettings
  dispatcher: ResilientDispatcher
  /** `request()` callers' keys. */
  clientCache: ResponseCache
  /** Forwarded routes' `cacheKey`s: kept apart from the callers' keys. */
  forwardCache: ResponseCache
}

export interface PoolCounters extends ResilienceCounters {
  /** Upstream exchanges (each retry attempt counts) and those that failed without a response. */
  requests: number
  errors: number
  openCircuits: number
  cacheHits: number
  cacheCoalesced: number
  cacheMisses: number
  cacheEntries: number
  cacheBytes: number
}

export type RegistryStats = Record<string, PoolStats & PoolCounters>

export interface RegistryContext extends BuildContext {
  cacheLimits: CacheLimits
}

/** `fastify.pools`: the pools of the current config, by id. */
export class PoolRegistry {
  private entries = new Map<string, PoolEntry>()
  private readonly clients = new Map<string, HttpClient>()
  private current: ParsedConfig
  private readonly source

  private readonly log: BuildContext['log']

  constructor (config: ParsedConfig, ctx: RegistryContext) {
    this.current = config
    this.log = ctx.log
    this.source = {
      settingsOf: (id: string) => this.entry(id).settings,
      dispatcherOf: (id: string) => this.entry(id).dispatcher,
      cacheOf: (id: string) => this.entry(id).clientCache,
      maxBodyBytes: ctx.cacheLimits.maxBodyBytes
    }
    try {
      for (const settings of config.pools) {
        const ttl = settings['cache.ttl']
        this.entries.set(settings.id, {
          settings,
          dispatcher: buildDispatcher(settings, ctx),
          clientCache: new ResponseCache(ttl, ctx.cacheLimits),
          forwardCache: new ResponseCache(ttl, ctx.cacheLimits)
        })
      }
    } catch (err) {
      // A pool that cannot be built (unreadable keystore…) must not leave the others' dispatchers behind.
      for (const { dispatcher } of this.entries.values()) dispatcher.destroy().catch(() => {})
      throw err
    }
  }

  get ids (): string[] { return this.current.pools.map((p) => p.id) }
  get defaultId (): string { return this.current.defaultId }

  has (id: string): boolean { return this.entries.has(id) }

  /** The client of a pool; the default pool for `undefined`/`null` or, with a warning, for an unknown id (as Repose does). */
  get (id?: string | null): HttpClient {
    let key = id ?? this.defaultId
    if (!this.entries.has(key)) {
      this.log.warn({ pool: key, defaultPool: this.defaultId }, `connection pool "${key}" is not configured; using the default pool "${this.defaultId}"`)
      key = this.defaultId
    }
    let client = this.clients.get(key)
    if (client === undefined) {
      client = new HttpClient(key, this.source)
      this.clients.set(key, client)
    }
    return client
  }

  /** The pool that carries a request now (the default pool for an id no longer configured). */
  entryFor (id: string | undefined): PoolEntry {
    return this.entry(id ?? this.defaultId)
  }

  stats (): RegistryStats {
    const out: RegistryStats = {}
    for (const [id, { dispatcher, clientCache, forwardCache }] of this.entries) {
      const caches = [clientCache, forwardCache]
      const sum = (f: (c: ResponseCache) => number): number => caches.reduce((n, c) => n + f(c), 0)
      out[id] = {
        ...dispatcher.stats,
        ...dispatcher.pool.counters,
        ...dispatcher.counters,
        openCircuits: dispatcher.breaker?.open ?? 0,
        cacheHits: sum((c) => c.counters.hits),
        cacheCoalesced: sum((c) => c.counters.coalesced),
        cacheMisses: sum((c) => c.counters.misses),
        cacheEntries: sum((c) => c.size),
        cacheBytes: sum((c) => c.totalBytes)
      }
    }
    return out
  }

  /** In-flight requests finish, then every socket of every pool closes. */
  async close (): Promise<void> {
    await Promise.all([...this.entries.values()].map(async (e) => {
      e.clientCache.clear()
      e.forwardCache.clear()
      await e.dispatcher.close()
    }))
  }

  private entry (id: string): PoolEntry {
    return this.entries.get(id) ?? this.entries.get(this.defaultId)!
  }
}
