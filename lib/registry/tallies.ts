import { cacheCounters, type CacheCounters } from '../cache/cache.js'
import { exchangeCounters, type ExchangeCounters, type ExchangeObserver } from '../pool/exchange.js'
import { resilienceCounters, type ResilienceCounters } from '../resilience/exchange.js'

/**
 * A pool id's counters. Every dispatcher and cache the id gets, the current
 * one and those a reload replaced (still finishing their requests), counts
 * into the same tally, so the counts only grow while the id stays configured.
 */
export interface PoolTally {
  exchanges: ExchangeCounters
  resilience: ResilienceCounters
  /** The pool's two caches (`request()` keys and forwarded routes' keys) together. */
  cache: CacheCounters
  /** Forwarded requests whose client went away before the response was complete. */
  clientAborts: number
  /** Per-origin outcomes (the metrics'), when metrics are on. */
  observer: ExchangeObserver | undefined
}

/** The tallies of the configured pool ids. */
export class Tallies {
  private readonly byId = new Map<string, PoolTally>()

  constructor (private readonly observe: (id: string) => ExchangeObserver | undefined) {}

  of (id: string): PoolTally {
    let tally = this.byId.get(id)
    if (tally === undefined) {
      tally = { exchanges: exchangeCounters(), resilience: resilienceCounters(), cache: cacheCounters(), clientAborts: 0, observer: this.observe(id) }
      this.byId.set(id, tally)
    }
    return tally
  }

  /** Forgets the ids no longer configured: one added again later counts from zero. */
  keepOnly (ids: { has: (id: string) => boolean }): void {
    for (const id of this.byId.keys()) if (!ids.has(id)) this.byId.delete(id)
  }
}
