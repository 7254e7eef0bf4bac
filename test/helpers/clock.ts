// A clock the test moves: the time logic of the layers (breaker, backoff,
// deadlines, cache TTL, lifetime) runs against it and never sleeps.
import type { Clock, Timer } from '../../lib/time/clock.js'

interface Pending extends Timer { at: number, fn: () => void, cancelled: boolean }

export class ManualClock implements Clock {
  private time: number
  private timers: Pending[] = []

  constructor (start = 1000) { this.time = start }

  now = (): number => this.time

  setTimeout = (fn: () => void, ms: number): Timer => {
    const timer: Pending = { at: this.time + Math.max(ms, 0), fn, cancelled: false, unref: () => timer }
    this.timers.push(timer)
    return timer
  }

  clearTimeout = (timer: Timer | undefined): void => {
    if (timer !== undefined) (timer as Pending).cancelled = true
  }

  /** Timers still waiting. */
  get pending (): number { return this.timers.filter((p) => !p.cancelled).length }

  /** Moves time on by `ms`, firing every timer that falls due, in order, each at its own time. */
  advance (ms: number): void {
    const end = this.time + ms
    for (;;) {
      const next = this.due(end)
      if (next === undefined) break
      this.time = Math.max(this.time, next.at)
      next.fn()
    }
    this.time = end
  }

  /**
   * Fires the timers due within `ms` without moving time: what a real timer
   * does when it fires a little early against the monotonic clock.
   */
  fireEarly (ms: number): void {
    // Only the timers already set: one armed again by these fires later.
    const early = this.timers.filter((p) => !p.cancelled && p.at <= this.time + ms).sort((a, b) => a.at - b.at)
    for (const p of early) {
      p.cancelled = true
      p.fn()
    }
  }

  private due (by: number): Pending | undefined {
    this.timers = this.timers.filter((p) => !p.cancelled)
    let first: Pending | undefined
    for (const p of this.timers) if (p.at <= by && (first === undefined || p.at < first.at)) first = p
    if (first !== undefined) first.cancelled = true
    return first
  }
}
