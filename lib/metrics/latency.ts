import type { Metric } from '@prometheus-io/client'
import type { AppPools } from './app.js'
import { PREFIX } from './definitions.js'

/** Upstream response-header latency buckets, in seconds: a gateway's range, 1 ms to 30 s. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

const NAME = `${PREFIX}upstream_header_latency_seconds`
const HELP = 'Seconds from sending a request upstream (after any wait for a connection) to its final response\'s headers, each attempt counted'

/**
 * One origin's response-header latencies, counted by the pool itself. The
 * client's Histogram hashes its labels on every observation, about 1 µs a
 * response measured on the forwarding path; this is an array increment.
 */
export class LatencyBuckets {
  /** Observations per bucket, not cumulative; the last one counts those above every bound. */
  readonly counts = new Float64Array(LATENCY_BUCKETS.length + 1)
  sum = 0

  observe (seconds: number): void {
    let i = 0
    while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]!) i++
    this.counts[i]!++
    this.sum += seconds
  }

  /** Adds `other`'s observations (one series of several apps). */
  add (other: LatencyBuckets): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i]! += other.counts[i]!
    this.sum += other.sum
  }
}

interface Value { metricName: string, labels: Record<string, string>, value: number }

/** The exposition of one series: cumulative buckets, +Inf, sum and count. */
function seriesValues (pool: string, origin: string, latency: LatencyBuckets): Value[] {
  const values: Value[] = []
  let count = 0
  for (let i = 0; i < latency.counts.length; i++) {
    count += latency.counts[i]!
    const le = i < LATENCY_BUCKETS.length ? String(LATENCY_BUCKETS[i]) : '+Inf'
    values.push({ metricName: `${NAME}_bucket`, labels: { pool, origin, le }, value: count })
  }
  values.push({ metricName: `${NAME}_sum`, labels: { pool, origin }, value: latency.sum },
    { metricName: `${NAME}_count`, labels: { pool, origin }, value: count })
  return values
}

/**
 * The latency histogram as a metric of the registry, read from the apps'
 * tallies at scrape time like the counters. Apps that share a registry add
 * up where their pool and origin meet; pools no longer configured are gone.
 */
export function latencyHistogram (apps: Iterable<AppPools>): Metric {
  const get = async (): Promise<{ name: string, help: string, type: 'histogram', aggregator: 'sum', values: Value[] }> => {
    const series = new Map<string, { pool: string, origin: string, latency: LatencyBuckets }>()
    for (const app of apps) {
      app.forget()
      for (const pool of app.ids) {
        for (const tally of app.observe(pool).origins) {
          const key = `${pool}\n${tally.label}`
          let s = series.get(key)
          if (s === undefined) series.set(key, s = { pool, origin: tally.label, latency: new LatencyBuckets() })
          s.latency.add(tally.latency)
        }
      }
    }
    const values = [...series.values()].flatMap((s) => seriesValues(s.pool, s.origin, s.latency))
    return { name: NAME, help: HELP, type: 'histogram', aggregator: 'sum', values }
  }
  // The registry reads any object with a name and get(); its typings list only the client's own
  // classes. reset() is a no-op as for the counters, whose values are the pools' own.
  return { name: NAME, help: HELP, type: 'histogram', aggregator: 'sum', get, reset: () => {} } as unknown as Metric
}
