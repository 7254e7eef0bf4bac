import { inspect, type InspectOptions } from 'node:util'
import { CacheMemory, ResponseCache, type CacheLimits } from '../cache/cache.js'
import { HttpClient } from '../client/http-client.js'
import type { ResilienceCounters, ResilientDispatcher } from '../resilience/dispatcher.js'
import { ConfigError } from '../config/errors.js'
import type { ParsedConfig } from '../config/parse.js'
import type { PoolSettings } from '../config/schema.js'
import { changedAttributes, inspectAs, sameSettings } from '../config/settings.js'
import type { PoolStats } from '../pool/dispatcher.js'
import type { ExchangeCounters, ExchangeObserver } from '../pool/exchange.js'
import { sameStores, storeDigests, storePaths, type StoreDigests } from '../tls/index.js'
import { httpProxyOptions, type HttpProxyOptions } from '../forward/http-proxy.js'
import { buildDispatcher, type BuildContext } from './build.js'
import { Tallies, type PoolTally } from './tallies.js'

export interface PoolEntry {
  settings: PoolSettings
  /** The content of the keystore and truststore files when the pool was built: a renewed file keeps its name. */
  stores: StoreDigests
  dispatcher: ResilientDispatcher
  /** `request()` callers' keys. */
  clientCache: ResponseCache
  /** Forwarded routes' `cacheKey`s: kept apart from the callers' keys. */
  forwardCache: ResponseCache
  /** The pool id's counters, shared with the dispatchers and caches it had before a reload. */
  tally: PoolTally
}

/**
 * `requests`: upstream exchanges (each retry attempt counts); `errors`: those
 * that failed without a response; `queueTimeouts`: requests given up by
 * `x:queue.timeout`, never sent. The counters only grow while the pool id stays
 * configured, across reloads that replace its dispatcher.
 */
export interface PoolCounters extends ResilienceCounters, ExchangeCounters {
  openCircuits: number
  clientAborts: number
  cacheHits: number
  cacheCoalesced: number
  cacheMisses: number
  cacheEntries: number
  cacheBytes: number
  /** Successful reloads of the config, rejected ones, and the last rejected one's error (null once a reload succeeds). */
  reloads: number
  rejectedReloads: number
  lastReloadError: string | null
}

export type RegistryStats = Record<string, PoolStats & PoolCounters>

export interface RegistryContext extends BuildContext {
  cacheLimits: CacheLimits
  /** Reads the config again: the file, or the XML given to `reload()` (named `file` in errors). */
  load: (xml?: string, file?: string) => Promise<ParsedConfig>
  /** Pools that routes use: a reload may not remove them. */
  usedPools: () => Iterable<string>
  /** The observer of a pool id's exchanges on the wire (metrics), if any. */
  observe?: (id: string) => ExchangeObserver | undefined
}

/** `obj[key] = value`, also for a pool named `__proto__`, which an assignment would take for the prototype. */
function own<T> (obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true })
}

// Old dispatchers get this long to finish their in-flight requests after a reload.
export const DRAIN_MS = 30000

/** `fastify.pools`: the pools of the current config, by id. */
export class PoolRegistry {
  private entries: Map<string, PoolEntry>
  private current: ParsedConfig
  private readonly clients = new Map<string, HttpClient>()
  private readonly retired = new Set<Promise<void>>()
  private queue: Promise<unknown> = Promise.resolve()
  private reloads = 0
  private rejectedReloads = 0
  private readonly tallies: Tallies
  private lastReloadError: ConfigError | Error | null = null
  /** A config that was read but whose pools could not be built (a keystore being replaced…): its files are worth watching too. */
  private attempted: ParsedConfig | undefined
  private readonly source

  constructor (config: ParsedConfig, private readonly ctx: RegistryContext) {
    this.current = config
    this.source = {
      settingsOf: (id: string) => this.entry(id).settings,
      dispatcherOf: (id: string) => this.entry(id).dispatcher,
      cacheOf: (id: string) => this.entry(id).clientCache,
      maxBodyBytes: ctx.cacheLimits.maxBodyBytes
    }
    this.tallies = new Tallies(ctx.observe ?? (() => undefined))
    this.entries = this.build(config, new Map())
  }

  get ids (): string[] { return this.current.pools.map((p) => p.id) }
  get defaultId (): string { return this.current.defaultId }

  has (id: string): boolean { return this.entries.has(id) }

  toJSON (): object { return { defaultId: this.defaultId, ids: this.ids } }
  [inspect.custom] (_depth: number, options: InspectOptions): string { return inspectAs(this, options) }

  /** The client of a pool; the default pool for `undefined`/`null` or, with a warning, for an unknown id (as Repose does). */
  get (id?: string | null): HttpClient {
    let key = id ?? this.defaultId
    if (!this.entries.has(key)) {
      this.ctx.log.warn({ pool: key, defaultPool: this.defaultId }, `connection pool "${key}" is not configured; using the default pool "${this.defaultId}"`)
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

  /**
   * Options to spread into an @fastify/http-proxy registration so that it
   * forwards through pool `id`, with the plugin's error mapping, across reloads.
   */
  httpProxyOptions (id: string): HttpProxyOptions {
    if (!this.has(id)) throw new Error(`fastify.pools.httpProxyOptions("${id}"): no such pool (known pools: ${this.ids.map((p) => `"${p}"`).join(', ')})`)
    return httpProxyOptions(id, { target: () => this.entryFor(id), defaultPool: () => this.defaultId })
  }

  /**
   * Re-reads the config (or uses `xml`). Invalid: rejects with the error and the
   * current pools keep serving. Valid: new requests use the new pools at once;
   * pools whose settings and keystore/truststore contents did not change keep
   * their dispatcher, connections and cache; replaced ones finish their
   * in-flight requests, then close.
   * `file` names where `xml` came from, for errors.
   */
  async reload (opts: { xml?: string, file?: string } = {}): Promise<void> {
    await this.reloadWith(async () => await this.ctx.load(opts.xml, opts.file))
  }

  /** `reload` with a config from `load`, whose rejection counts as an invalid config (the file watcher's way in). */
  async reloadWith (load: () => Promise<ParsedConfig>): Promise<void> {
    const run = this.queue.then(async () => await this.apply(load))
    this.queue = run.catch(() => {})
    await run
  }

  /** Absolute paths of the keystores and truststores the pools were built from (and those of a config that could not be built). */
  storeFiles (): string[] {
    const pools = [...[...this.entries.values()].map((e) => e.settings), ...(this.attempted?.pools ?? [])]
    return [...new Set(pools.flatMap((settings) => storePaths(settings, this.ctx.configRoot)))]
  }

  /**
   * Whether a reload of the same config would build something else: a
   * keystore or truststore's content differs from what its pool was built
   * from, or the last config read could not be built and may now be.
   */
  storesChanged (): boolean {
    if (this.attempted !== undefined) return true
    for (const { settings, stores } of this.entries.values()) {
      if ((stores.keystore !== null || stores.truststore !== null) && !sameStores(stores, storeDigests(settings, this.ctx.configRoot))) return true
    }
    return false
  }

  stats (): RegistryStats {
    const out: RegistryStats = {}
    const lastReloadError = this.lastReloadError?.message ?? null
    for (const [id, { dispatcher, clientCache, forwardCache, tally }] of this.entries) {
      own(out, id, {
        ...dispatcher.stats,
        ...tally.exchanges,
        ...tally.resilience,
        openCircuits: dispatcher.breaker?.open ?? 0,
        clientAborts: tally.clientAborts,
        cacheHits: tally.cache.hits,
        cacheCoalesced: tally.cache.coalesced,
        cacheMisses: tally.cache.misses,
        cacheEntries: clientCache.size + forwardCache.size,
        cacheBytes: clientCache.totalBytes + forwardCache.totalBytes,
        reloads: this.reloads,
        rejectedReloads: this.rejectedReloads,
        lastReloadError
      })
    }
    return out
  }

  /** In-flight requests finish, then every socket of every pool, current or retired, closes. */
  async close (): Promise<void> {
    await this.queue
    await Promise.all([...[...this.entries.values()].map(async (e) => await this.retire(e)), ...this.retired])
  }

  private async apply (load: () => Promise<ParsedConfig>): Promise<void> {
    let config: ParsedConfig
    let next: Map<string, PoolEntry>
    this.attempted = undefined
    try {
      config = await load()
      this.attempted = config
      const used = new Set(this.ctx.usedPools())
      const removed = this.ids.filter((id) => used.has(id) && !config.pools.some((p) => p.id === id))
      if (removed.length > 0) {
        throw new ConfigError(removed.map((id) => ({ message: 'is used by a route and cannot be removed', pool: id })))
      }
      next = this.build(config, this.entries)
    } catch (err) {
      this.rejectedReloads++
      this.tallies.keepOnly(this.entries)
      this.lastReloadError = err as Error
      this.ctx.log.error({ errors: (err as ConfigError).errors }, `config reload rejected, the previous pools keep serving: ${(err as Error).message}`)
      throw err
    }
    const previous = this.entries
    this.entries = next
    this.attempted = undefined
    this.current = config
    this.tallies.keepOnly(next)
    this.reloads++
    this.lastReloadError = null
    this.logChanges(previous, next)
    for (const [id, entry] of previous) {
      if (next.get(id) !== entry) {
        const closing = this.retire(entry)
        this.retired.add(closing)
        closing.finally(() => this.retired.delete(closing)).catch(() => {})
      }
    }
  }

  /** Entries for `config`, reusing those of `keep` whose settings and store contents did not change. */
  private build (config: ParsedConfig, keep: Map<string, PoolEntry>): Map<string, PoolEntry> {
    const built = new Map<string, PoolEntry>()
    const fresh: PoolEntry[] = []
    try {
      for (const settings of config.pools) {
        // Read before the pool is built: should a file change in between, the
        // next comparison sees a difference and rebuilds, rather than missing it.
        const stores = storeDigests(settings, this.ctx.configRoot)
        const old = keep.get(settings.id)
        if (old !== undefined && sameSettings(old.settings, settings) && sameStores(old.stores, stores)) {
          built.set(settings.id, old)
          continue
        }
        const ttl = settings['cache.ttl']
        // One bound for both caches: cacheLimits is what a pool may hold.
        const memory = new CacheMemory(this.ctx.cacheLimits)
        const tally = this.tallies.of(settings.id)
        const entry: PoolEntry = {
          settings,
          stores,
          dispatcher: buildDispatcher(settings, this.ctx, tally),
          clientCache: new ResponseCache(ttl, memory, undefined, tally.cache),
          forwardCache: new ResponseCache(ttl, memory, undefined, tally.cache),
          tally
        }
        fresh.push(entry)
        built.set(settings.id, entry)
      }
    } catch (err) {
      // A pool that cannot be built (unreadable keystore…) must not leave the others' dispatchers behind.
      for (const e of fresh) e.dispatcher.destroy().catch(() => {})
      throw err
    }
    return built
  }

  /** Lets the entry's in-flight requests finish, forcing its sockets closed after DRAIN_MS. */
  private async retire (entry: PoolEntry): Promise<void> {
    entry.clientCache.clear()
    entry.forwardCache.clear()
    const force = setTimeout(() => { entry.dispatcher.destroy().catch(() => {}) }, DRAIN_MS)
    force.unref()
    try {
      await entry.dispatcher.close()
    } finally {
      clearTimeout(force)
    }
  }

  private logChanges (previous: Map<string, PoolEntry>, next: Map<string, PoolEntry>): void {
    const changes: Record<string, string> = {}
    for (const [id, entry] of next) {
      const old = previous.get(id)
      own(changes, id, old === undefined ? 'added' : old === entry ? 'unchanged' : `changed: ${[...changedAttributes(old.settings, entry.settings), ...changedStores(old, entry)].join(', ')}`)
    }
    for (const id of previous.keys()) if (!next.has(id)) own(changes, id, 'removed')
    this.ctx.log.info({ pools: changes }, `config reloaded (${Object.entries(changes).map(([id, c]) => `${id}: ${c}`).join('; ')})`)
  }

  private entry (id: string): PoolEntry {
    return this.entries.get(id) ?? this.entries.get(this.defaultId)!
  }
}

/** Stores whose file name stayed but whose content changed, for the reload log. */
function changedStores (old: PoolEntry, entry: PoolEntry): string[] {
  return (['keystore', 'truststore'] as const)
    .filter((role) => old.settings[`${role}-filename`] === entry.settings[`${role}-filename`] && old.stores[role] !== entry.stores[role])
    .map((role) => `${role}-filename (file content)`)
}
