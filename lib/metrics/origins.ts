import { failureCode } from '../forward/errors.js'
import type { ExchangeObserver } from '../pool/exchange.js'
import { LatencyBuckets } from './latency.js'

/** Origins of one pool with a label of their own; further ones share OTHER (SPEC "Metrics"). */
export const MAX_ORIGINS = 100
export const OTHER = 'other'
// Names (as dispatchers write origins) remembered per pool: several may name one origin.
const MAX_NAMES = 4 * MAX_ORIGINS
const DEFAULT_PORTS: Record<string, string> = { 'http:': '80', 'https:': '443' }

/** `scheme://host:port` of an origin as a dispatcher names it: the port written out, never user-info or a path. */
export function originLabel (origin: string): string {
  let url: URL
  try {
    url = new URL(origin)
  } catch {
    return OTHER
  }
  const port = url.port !== '' ? url.port : DEFAULT_PORTS[url.protocol]
  return `${url.protocol}//${url.hostname}${port === undefined ? '' : `:${port}`}`
}

/** What one origin (or the OTHER ones) of a pool did on the wire. */
export class OriginTally {
  /** Final responses by status class: 1xx at index 0 to 5xx at 4. */
  readonly classes = [0, 0, 0, 0, 0]
  /** Exchanges that failed without a response, by the code their client is sent. */
  readonly failures = new Map<string, number>()
  /** Response-header latencies of its final responses. */
  readonly latency = new LatencyBuckets()

  constructor (readonly label: string) {}
}

/**
 * One pool id's exchanges per origin, as its dispatchers (current and
 * replaced) report them: the only per-request work of the metrics.
 */
export class PoolObserver implements ExchangeObserver {
  private readonly byLabel = new Map<string, OriginTally>()
  private readonly byName = new Map<string, OriginTally>()

  get origins (): Iterable<OriginTally> { return this.byLabel.values() }

  responded (origin: string, status: number, ms: number): void {
    const tally = this.tallyOf(origin)
    tally.classes[Math.min(Math.max(Math.trunc(status / 100), 1), 5) - 1]!++
    tally.latency.observe(ms / 1000)
  }

  failed (origin: string, err: Error): void {
    const { failures } = this.tallyOf(origin)
    const code = failureCode(err)
    failures.set(code, (failures.get(code) ?? 0) + 1)
  }

  /** The tally of `origin`: its own while the pool has had fewer than MAX_ORIGINS, else OTHER's. */
  tallyOf (origin: string): OriginTally {
    let tally = this.byName.get(origin)
    if (tally !== undefined) return tally
    const found = originLabel(origin)
    tally = this.byLabel.get(found)
    if (tally === undefined) {
      const named = this.byLabel.size - (this.byLabel.has(OTHER) ? 1 : 0)
      const label = named < MAX_ORIGINS ? found : OTHER
      tally = this.byLabel.get(label) ?? new OriginTally(label)
      this.byLabel.set(label, tally)
    }
    if (this.byName.size < MAX_NAMES) this.byName.set(origin, tally)
    return tally
  }
}
