import type { PoolSettings } from '../config/schema.js'
import type { PoolRegistry, RegistryStats } from '../registry/registry.js'
import { PoolObserver, type Latency } from './origins.js'

/** A latency series: its pool and origin labels. */
export interface Series { pool: string, origin: string }

/**
 * One app's pools as its metrics read them at scrape time (its `fastify.pools`),
 * with the per-origin counts of each pool id, which outlive reloads.
 */
export class AppPools {
  private pools: PoolRegistry | undefined
  private readonly observers = new Map<string, PoolObserver>()

  constructor (private readonly latencyOf: (series: Series) => Latency) {}

  /** The observer of a pool id's exchanges: the registry hands it to each dispatcher of that id. */
  readonly observe = (id: string): PoolObserver => {
    let observer = this.observers.get(id)
    if (observer === undefined) {
      observer = new PoolObserver((origin) => this.latencyOf({ pool: id, origin }))
      this.observers.set(id, observer)
    }
    return observer
  }

  watch (pools: PoolRegistry): void { this.pools = pools }

  /** Ids configured now, in file order. */
  get ids (): string[] { return this.pools?.ids ?? [] }

  has (id: string): boolean { return this.pools?.has(id) === true }

  stats (): RegistryStats { return this.pools?.stats() ?? {} }

  settings (id: string): PoolSettings { return this.pools!.entryFor(id).settings }

  /** Origins whose circuit is open; undefined for a pool without a breaker. */
  openCircuits (id: string): Iterable<string> | undefined { return this.pools!.entryFor(id).dispatcher.breaker?.openOrigins() }

  /**
   * Forgets the per-origin counts of the pool ids no longer configured (all
   * of them once the app is closed), and returns their latency series.
   */
  forget (all = false): Series[] {
    const gone: Series[] = []
    for (const [id, observer] of this.observers) {
      if (!all && this.has(id)) continue
      this.observers.delete(id)
      for (const { label } of observer.origins) gone.push({ pool: id, origin: label })
    }
    return gone
  }
}
