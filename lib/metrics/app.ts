import type { PoolSettings } from '../config/schema.js'
import type { PoolRegistry, RegistryStats } from '../registry/registry.js'
import { PoolObserver } from './origins.js'

/**
 * One app's pools as its metrics read them at scrape time (its `fastify.pools`),
 * with the per-origin counts of each pool id, which outlive reloads.
 */
export class AppPools {
  private pools: PoolRegistry | undefined
  private readonly observers = new Map<string, PoolObserver>()

  /** The observer of a pool id's exchanges: the registry hands it to each dispatcher of that id. */
  readonly observe = (id: string): PoolObserver => {
    let observer = this.observers.get(id)
    if (observer === undefined) {
      observer = new PoolObserver()
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

  /** Forgets the per-origin counts of the pool ids no longer configured. */
  forget (): void {
    for (const id of this.observers.keys()) if (!this.has(id)) this.observers.delete(id)
  }
}
