import { Counter, Gauge, Histogram, type Registry } from '@prometheus-io/client'
import { AppPools, type Series } from './app.js'
import { DEFINITIONS, LATENCY, LATENCY_BUCKETS, type Definition, type Labels } from './definitions.js'

type Registers = NonNullable<ConstructorParameters<typeof Gauge>[0]['registers']>

/**
 * The metrics of one Prometheus registry, for every app that publishes to it.
 * Counters and gauges are read from the apps' pools when the registry is
 * scraped; only the latency histogram is observed as responses arrive.
 */
class Collector {
  readonly apps = new Set<AppPools>()
  private readonly latency: Histogram<'pool' | 'origin'>

  constructor (registry: Registry) {
    const registers = [registry] as Registers
    this.latency = new Histogram({
      ...LATENCY,
      buckets: LATENCY_BUCKETS,
      labelNames: ['pool', 'origin'],
      registers,
      collect: () => { for (const app of this.apps) this.drop(app.forget(), app) }
    })
    for (const definition of DEFINITIONS) this.publish(definition, registers)
  }

  private publish (definition: Definition, registers: Registers): void {
    const { fill, type, ...config } = definition
    const apps = this.apps
    // Counter and Gauge alike: emptied, then each app's values added.
    const collect = function (this: { reset: () => void, inc: (labels: Labels, value: number) => void }): void {
      this.reset()
      for (const app of apps) fill(app, (labels, value) => { this.inc(labels, value) })
    }
    if (type === 'counter') new Counter({ ...config, registers, collect }) // eslint-disable-line no-new
    else new Gauge({ ...config, registers, collect }) // eslint-disable-line no-new
  }

  app (): AppPools {
    const app = new AppPools((series) => this.latency.labels(series))
    this.apps.add(app)
    return app
  }

  /** The app is closed: its series go (those another app still has stay). */
  detach (app: AppPools): void {
    this.apps.delete(app)
    this.drop(app.forget(true))
  }

  private drop (series: Series[], except?: AppPools): void {
    for (const s of series) {
      const shared = [...this.apps].some((other) => other !== except && other.has(s.pool))
      if (!shared) this.latency.remove(s)
    }
  }
}

const collectors = new WeakMap<Registry, Collector>()

/** An app's place in `registry`'s metrics; `detach()` when the app closes. */
export function publishTo (registry: Registry): { pools: AppPools, detach: () => void } {
  let collector = collectors.get(registry)
  if (collector === undefined) {
    collector = new Collector(registry)
    collectors.set(registry, collector)
  }
  const pools = collector.app()
  return { pools, detach: () => { collector.detach(pools) } }
}
