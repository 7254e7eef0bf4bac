import type { IncomingHttpHeaders } from 'node:http'
import { systemClock, type Clock, type Timer } from '../time/clock.js'

/** The memory bound of one pool's caches: its request() keys and its forwarded routes' keys together. */
export interface CacheLimits {
  /** Responses kept at most; the oldest go first. */
  maxEntries: number
  /** A response body larger than this is not cached (nor shared with waiters). */
  maxBodyBytes: number
  /** Bytes of bodies kept at most, all responses together. */
  maxBytes: number
}

export const DEFAULT_CACHE_LIMITS: CacheLimits = Object.freeze({ maxEntries: 1000, maxBodyBytes: 1024 * 1024, maxBytes: 64 * 1024 * 1024 })

export interface CachedResponse {
  statusCode: number
  headers: IncomingHttpHeaders
  body: Buffer[]
  size: number
}

/** Starts an upstream exchange; `signal` is given only when no one else depends on it. */
export type Fetch<T> = (signal?: AbortSignal) => Promise<Fetched<T>>

/** What the leader's exchange produced: a response everyone may share, or one only the leader gets. */
export type Fetched<T> = { shared: CachedResponse } | { own: T }

export interface CacheCounters { hits: number, coalesced: number, misses: number }

export const cacheCounters = (): CacheCounters => ({ hits: 0, coalesced: 0, misses: 0 })

interface Stored { response: CachedResponse, expires: number, timer: Timer, age: number }
type Entry = { pending: Promise<Fetched<unknown>> } | Stored

/**
 * What the caches of one pool keep, together: each pool's two caches (keys of
 * request() callers, keys of forwarded routes) share one CacheLimits bound,
 * and past it the oldest response of either goes first.
 */
export class CacheMemory {
  entries = 0
  bytes = 0
  private stored = 0
  private readonly caches: ResponseCache[] = []

  constructor (readonly limits: CacheLimits) {}

  /** Orders stored responses by age, across the caches. */
  nextAge (): number { return ++this.stored }

  join (cache: ResponseCache): void { this.caches.push(cache) }

  /** Drops the oldest responses, whichever cache holds them, until the bound holds. */
  fit (): void {
    while (this.entries > this.limits.maxEntries || this.bytes > this.limits.maxBytes) {
      let oldest: ResponseCache | undefined
      let age = Infinity
      for (const cache of this.caches) {
        const a = cache.oldestAge()
        if (a < age) {
          age = a
          oldest = cache
        }
      }
      if (oldest === undefined) return
      oldest.dropOldest()
    }
  }
}

/**
 * Repose's `cache.ttl`: requests with the same key share one upstream exchange
 * and, for ttl ms after it, its response. Better than Repose: a failed exchange
 * rejects every waiter and caches nothing; memory is bounded.
 */
export class ResponseCache {
  private readonly entries = new Map<string, Entry>()
  private bytes = 0

  /** `counters` may be shared: a pool's two caches, and its caches before a reload, count together. */
  constructor (private readonly ttl: number, private readonly memory: CacheMemory, private readonly clock: Clock = systemClock,
    readonly counters: CacheCounters = cacheCounters()) {
    memory.join(this)
  }

  get size (): number { return this.entries.size }
  get totalBytes (): number { return this.bytes }

  /** The stored response for `key` if it is fresh (counted as a hit), without starting anything. */
  peek (key: string): CachedResponse | undefined {
    const entry = this.entries.get(key)
    if (entry === undefined || !('response' in entry) || entry.expires <= this.clock.now()) return undefined
    this.counters.hits++
    return entry.response
  }

  /**
   * The response for `key`: cached, awaited from a concurrent exchange, or
   * fetched. `materialize` gives each caller its own copy of a shared response.
   */
  async run<T> (key: string, fetch: Fetch<T>, materialize: (r: CachedResponse) => T, options: { refresh?: boolean, signal?: AbortSignal } = {}): Promise<T> {
    const entry = options.refresh === true ? undefined : this.entries.get(key)
    if (entry !== undefined && 'response' in entry && entry.expires > this.clock.now()) {
      this.counters.hits++
      return materialize(entry.response)
    }
    if (entry !== undefined && 'pending' in entry) {
      this.counters.coalesced++
      const outcome = await abortable(entry.pending as Promise<Fetched<T>>, options.signal)
      if ('shared' in outcome) return materialize(outcome.shared)
      // The leader's response was its own (too large, or private): wait no more, ask for ours.
      return this.unshared(await fetch(options.signal), materialize)
    }
    this.counters.misses++
    // A refresh, or a miss on an expired entry whose timer has not fired yet, replaces a stored response.
    const stale = this.entries.get(key)
    if (stale !== undefined && 'response' in stale) this.remove(key, stale)
    const pending = fetch()
    const slot: Entry = { pending }
    this.entries.set(key, slot)
    pending.then((outcome) => this.settle(key, slot, outcome), () => { if (this.entries.get(key) === slot) this.entries.delete(key) })
    return this.unshared(await abortable(pending, options.signal), materialize)
  }

  /** Drops every entry (the pool is closing or its settings changed). */
  clear (): void {
    for (const entry of this.entries.values()) {
      if ('timer' in entry) {
        this.clock.clearTimeout(entry.timer)
        this.memory.entries--
      }
    }
    this.entries.clear()
    this.memory.bytes -= this.bytes
    this.bytes = 0
  }

  /** The age of the oldest stored response (Infinity when none is). */
  oldestAge (): number {
    for (const entry of this.entries.values()) if ('response' in entry) return entry.age
    return Infinity
  }

  dropOldest (): void {
    for (const [key, entry] of this.entries) {
      if ('response' in entry) {
        this.remove(key, entry)
        return
      }
    }
  }

  private unshared<T> (outcome: Fetched<T>, materialize: (r: CachedResponse) => T): T {
    return 'own' in outcome ? outcome.own : materialize(outcome.shared)
  }

  private settle (key: string, slot: Entry, outcome: Fetched<unknown>): void {
    if (this.entries.get(key) !== slot) return
    this.entries.delete(key)
    if (!('shared' in outcome) || this.ttl <= 0 || outcome.shared.size > this.memory.limits.maxBodyBytes) return
    const response = outcome.shared
    const timer = this.clock.setTimeout(() => this.expire(key, response), this.ttl)
    timer.unref()
    this.entries.set(key, { response, expires: this.clock.now() + this.ttl, timer, age: this.memory.nextAge() })
    this.bytes += response.size
    this.memory.bytes += response.size
    this.memory.entries++
    this.memory.fit()
  }

  private expire (key: string, response: CachedResponse): void {
    const entry = this.entries.get(key)
    if (entry !== undefined && 'response' in entry && entry.response === response) this.remove(key, entry)
  }

  private remove (key: string, entry: Stored): void {
    this.clock.clearTimeout(entry.timer)
    this.entries.delete(key)
    this.bytes -= entry.response.size
    this.memory.bytes -= entry.response.size
    this.memory.entries--
  }
}

function abortable<T> (promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (v) => { signal.removeEventListener('abort', onAbort); resolve(v) },
      (e) => { signal.removeEventListener('abort', onAbort); reject(e) }
    )
  })
}

/**
 * Reads a body up to `limit` bytes. Within the limit it is shareable; past it
 * the chunks read so far and the rest of the stream go to one caller only.
 */
export async function readUpTo (body: AsyncIterable<Buffer>, limit: number): Promise<{ chunks: Buffer[], size: number, rest?: AsyncIterable<Buffer> }> {
  const chunks: Buffer[] = []
  let size = 0
  const it = body[Symbol.asyncIterator]()
  for (;;) {
    const { done, value } = await it.next()
    if (done) return { chunks, size }
    chunks.push(value)
    size += value.length
    if (size > limit) return { chunks, size, rest: { [Symbol.asyncIterator]: () => it } }
  }
}
