import type { Dispatcher } from 'undici'
import { HttpClient } from '../client/http-client.js'
import type { ParsedConfig } from '../config/parse.js'
import type { PoolSettings } from '../config/schema.js'
import type { PoolDispatcher, PoolStats } from '../pool/dispatcher.js'
import { buildDispatcher, type BuildContext } from './build.js'

export interface PoolEntry {
  settings: PoolSettings
  dispatcher: PoolDispatcher
}

export type RegistryStats = Record<string, PoolStats & { requests: number, errors: number }>

/** `fastify.pools`: the pools of the current config, by id. */
export class PoolRegistry {
  private entries = new Map<string, PoolEntry>()
  private readonly clients = new Map<string, HttpClient>()
  private current: ParsedConfig
  private readonly source = {
    settingsOf: (id: string) => this.entry(id).settings,
    dispatcherOf: (id: string) => this.entry(id).dispatcher
  }

  private readonly log: BuildContext['log']

  constructor (config: ParsedConfig, ctx: BuildContext) {
    this.current = config
    this.log = ctx.log
    try {
      for (const settings of config.pools) this.entries.set(settings.id, { settings, dispatcher: buildDispatcher(settings, ctx) })
    } catch (err) {
      // A pool that cannot be built (unreadable keystore…) must not leave the others' dispatchers behind.
      for (const { dispatcher } of this.entries.values()) void dispatcher.destroy()
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

  /** The dispatcher that carries a request of this pool now (the default pool for an id no longer configured). */
  dispatcherFor (id: string | undefined): Dispatcher {
    return this.entry(id ?? this.defaultId).dispatcher
  }

  stats (): RegistryStats {
    const out: RegistryStats = {}
    for (const [id, { dispatcher }] of this.entries) out[id] = { ...dispatcher.stats, ...dispatcher.counters }
    return out
  }

  /** In-flight requests finish, then every socket of every pool closes. */
  async close (): Promise<void> {
    await Promise.all([...this.entries.values()].map(async (e) => await e.dispatcher.close()))
  }

  private entry (id: string): PoolEntry {
    return this.entries.get(id) ?? this.entries.get(this.defaultId)!
  }
}
