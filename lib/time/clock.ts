import { performance } from 'node:perf_hooks'

/** A pending timer; `unref` lets the process exit while it waits. */
export interface Timer { unref: () => unknown }

/**
 * Time as the layers see it: a monotonic `now()` (never the wall clock, which
 * jumps) and timers. Injected, so the logic with time in it is unit-tested
 * with a clock the test moves, not by sleeping.
 */
export interface Clock {
  now: () => number
  setTimeout: (fn: () => void, ms: number) => Timer
  clearTimeout: (timer: Timer | undefined) => void
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (timer) => { clearTimeout(timer as NodeJS.Timeout | undefined) }
}
