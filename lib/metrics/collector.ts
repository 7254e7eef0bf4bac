import { Counter, Gauge, type Registry } from '@prometheus-io/client'
import { AppPools } from './app.js'
import { DEFINITIONS, type Definition, type Labels } from './definitions.js'
import { latencyHistogram } from './latency.js'

type Registers = NonNullable<ConstructorParameters<typeof Gauge>[0]['registers']>

/**
 * The metrics of one Prometheus registry, for every app that publishes to it.
 * Everything is read from the apps' pools when the registry is scraped.
 */
class Collector {
  readonly apps = new Set<AppPools>()

  constructor (registry: Registry) {
    const registers = [registry] as Registers
    registry.registerMetric(latencyHistogram(this.apps))
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
    const app = new AppPools()
    this.apps.add(app)
    return app
  }

  /** The app is closed: its series go (where another app has the same labels, that app's values stay). */
  detach (app: AppPools): void { this.apps.delete(app) }
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
