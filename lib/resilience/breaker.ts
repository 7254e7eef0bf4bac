import { systemClock, type Clock } from '../time/clock.js'

interface Circuit {
  failures: number
  open: boolean
  /** clock.now() when the circuit last opened. */
  openedAt: number
  /** A half-open circuit lets one trial through at a time. */
  trial: boolean
}

export type Admission = { ok: true, trial: boolean } | { ok: false, retryAfterMs: number }

// The answer for a closed circuit, every request of a healthy origin: shared, not allocated.
const ADMITTED: Admission = Object.freeze({ ok: true, trial: false })

/**
 * Per-origin circuit breaker: `threshold` consecutive failures open the
 * circuit; while open it rejects at once; after `reset` ms one trial request
 * goes through (half-open) and its outcome closes or reopens it.
 */
export class CircuitBreaker {
  private readonly circuits = new Map<string, Circuit>()

  constructor (private readonly threshold: number, private readonly reset: number, private readonly clock: Clock = systemClock) {}

  get open (): number {
    return [...this.openOrigins()].length
  }

  /** The origins whose circuit is open (half-open ones included). */
  * openOrigins (): Iterable<string> {
    for (const [origin, c] of this.circuits) if (c.open) yield origin
  }

  admit (origin: string): Admission {
    const c = this.circuits.get(origin)
    if (c === undefined || !c.open) return ADMITTED
    const wait = c.openedAt + this.reset - this.clock.now()
    if (wait > 0 || c.trial) return { ok: false, retryAfterMs: Math.max(wait, 1000) }
    c.trial = true
    return { ok: true, trial: true }
  }

  success (origin: string): void {
    this.circuits.delete(origin)
  }

  /** A trial that ended with neither outcome (aborted by its caller) lets the next one through. */
  abandon (origin: string): void {
    const c = this.circuits.get(origin)
    if (c !== undefined) c.trial = false
  }

  failure (origin: string): void {
    let c = this.circuits.get(origin)
    if (c === undefined) {
      c = { failures: 0, open: false, openedAt: 0, trial: false }
      this.circuits.set(origin, c)
    }
    c.failures++
    if (c.trial || c.failures >= this.threshold) {
      c.open = true
      c.openedAt = this.clock.now()
      c.trial = false
    }
  }
}
