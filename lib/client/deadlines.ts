import { performance } from 'node:perf_hooks'

/** What a deadline watches: when it started (performance.now()), and what to do when time is up. */
export interface Timed {
  readonly startedAt: number
  expire: () => void
}

/**
 * `x:request.timeout` for every request of a pool. All share one limit, so
 * deadlines fall in start order: one timer, for the oldest request, serves
 * them all, instead of a timer set and cleared on every request.
 */
export class Deadlines {
  // A Set iterates in insertion order, which is start order.
  private readonly pending = new Set<Timed>()
  private timer: NodeJS.Timeout | undefined

  constructor (private readonly limit: number) {}

  add (item: Timed): void {
    this.pending.add(item)
    if (this.timer === undefined) this.arm(item.startedAt)
  }

  remove (item: Timed): void {
    this.pending.delete(item)
    // Nothing left to watch: no timer keeps the process alive.
    if (this.pending.size === 0 && this.timer !== undefined) {
      clearTimeout(this.timer)
      this.timer = undefined
    }
  }

  private arm (startedAt: number): void {
    this.timer = setTimeout(() => this.fire(), Math.max(1, startedAt + this.limit - performance.now()))
  }

  private fire (): void {
    const now = performance.now()
    for (const item of this.pending) {
      if (item.startedAt + this.limit > now) break
      this.pending.delete(item)
      item.expire()
    }
    // Set only now: requests added while expiring (a caller retrying at once) did not arm a second timer.
    this.timer = undefined
    const oldest = this.pending.values().next()
    if (oldest.done !== true) this.arm(oldest.value.startedAt)
  }
}
