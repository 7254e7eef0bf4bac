import type { PoolSettings } from '../config/schema.js'
import type { RegistryStats } from '../registry/registry.js'
import type { AppPools } from './app.js'
import type { OriginTally } from './origins.js'

export type Labels = Record<string, string>
export type Add = (labels: Labels, value: number) => void

/** A counter or gauge whose values are read from the apps' pools at scrape time. */
export interface Definition {
  name: string
  help: string
  type: 'counter' | 'gauge'
  labelNames: string[]
  /** Adds one app's values (apps that publish to one registry add up where their labels meet). */
  fill: (app: AppPools, add: Add) => void
}

type Stats = RegistryStats[string]
type Type = Definition['type']

/** Every metric's name starts so (SPEC "Metrics"). */
export const PREFIX = 'http_client_pool_'

const perPool = (type: Type, name: string, help: string, read: (s: Stats, settings: PoolSettings) => number): Definition => ({
  name: PREFIX + name,
  help,
  type,
  labelNames: ['pool'],
  fill: (app, add) => {
    for (const [pool, s] of Object.entries(app.stats())) add({ pool }, read(s, app.settings(pool)))
  }
})

const perOrigin = (name: string, help: string, label: string, values: (tally: OriginTally) => Iterable<[string, number]>): Definition => ({
  name: PREFIX + name,
  help,
  type: 'counter',
  labelNames: ['pool', 'origin', label],
  fill: (app, add) => {
    for (const pool of app.ids) {
      for (const tally of app.observe(pool).origins) {
        for (const [value, n] of values(tally)) add({ pool, origin: tally.label, [label]: value }, n)
      }
    }
  }
})

export const DEFINITIONS: Definition[] = [
  perPool('gauge', 'connections_open', 'TCP connections the pool has open, idle ones included', (s) => s.connected),
  perPool('gauge', 'connections_idle', 'Connections open and idle, ready for a request', (s) => s.free),
  perPool('gauge', 'connections_max', 'The most connections the pool may open at once (http.conn-manager.max-total)', (_s, settings) => settings['http.conn-manager.max-total']),
  perPool('gauge', 'requests_queued', 'Requests waiting for a connection', (s) => s.queued),
  perPool('gauge', 'requests_running', 'Requests sent upstream and not yet complete', (s) => s.running),
  perPool('counter', 'upstream_requests_total', 'Requests sent upstream, each attempt counted', (s) => s.requests),
  perPool('counter', 'retries_total', 'Attempts made again after a failure or a retryable status', (s) => s.retries),
  perPool('counter', 'retries_over_budget_total', 'Retries not made because x:retry.budget was spent', (s) => s.retryBudgetExhausted),
  perPool('counter', 'queue_timeouts_total', 'Requests given up after waiting x:queue.timeout for a connection (503, never sent)', (s) => s.queueTimeouts),
  perPool('counter', 'queue_full_total', 'Requests refused at once because x:queue.max-pending requests already waited (503)', (s) => s.queueFull),
  perPool('counter', 'request_timeouts_total', 'Exchanges ended by x:request.timeout (504)', (s) => s.requestTimeouts),
  perPool('counter', 'circuit_rejections_total', 'Requests refused at once by an open circuit (503)', (s) => s.circuitRejections),
  perPool('counter', 'client_aborts_total', 'Forwarded requests whose client went away before the response was complete (499 in the log)', (s) => s.clientAborts),
  perPool('counter', 'cache_hits_total', 'Requests with a cache key answered from the cache (cache.ttl)', (s) => s.cacheHits),
  perPool('counter', 'cache_coalesced_total', 'Requests with a cache key that shared a concurrent request\'s upstream exchange', (s) => s.cacheCoalesced),
  perPool('counter', 'cache_misses_total', 'Requests with a cache key that went upstream', (s) => s.cacheMisses),
  perPool('gauge', 'cache_entries', 'Responses the cache holds, and keys whose upstream exchange is in progress', (s) => s.cacheEntries),
  perPool('gauge', 'cache_bytes', 'Bytes of response bodies the cache holds', (s) => s.cacheBytes),
  perOrigin('upstream_responses_total', 'Final responses from the upstream by status class, each attempt counted', 'class',
    (tally) => tally.classes.map((n, i): [string, number] => [`${i + 1}xx`, n])),
  perOrigin('upstream_failures_total', 'Upstream exchanges that failed without a response, by the code the client is sent', 'code',
    (tally) => tally.failures),
  {
    name: `${PREFIX}circuit_open`,
    help: 'Whether the origin\'s circuit is open (1) or closed (0), half-open counted as open; for origin "other", how many of those origins\' circuits are open. Pools with a circuit breaker only',
    type: 'gauge',
    labelNames: ['pool', 'origin'],
    fill: (app, add) => {
      for (const pool of app.ids) {
        const open = app.openCircuits(pool)
        if (open === undefined) continue
        const observer = app.observe(pool)
        for (const { label } of observer.origins) add({ pool, origin: label }, 0)
        for (const origin of open) add({ pool, origin: observer.tallyOf(origin).label }, 1)
      }
    }
  },
  {
    name: `${PREFIX}reloads_total`,
    help: 'Reloads of the config: applied, or rejected (the previous pools kept serving)',
    type: 'counter',
    labelNames: ['result'],
    fill: (app, add) => {
      const s = Object.values(app.stats())[0]
      if (s === undefined) return
      add({ result: 'applied' }, s.reloads)
      add({ result: 'rejected' }, s.rejectedReloads)
    }
  }
]
