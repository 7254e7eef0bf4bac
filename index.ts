import { register as defaultRegistry, type Registry } from '@prometheus-io/client'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { dirname, resolve } from 'node:path'
import { ConfigError } from './lib/config/errors.js'
import { loadConfigFile } from './lib/config/load.js'
import { parseConfig, type ParsedConfig } from './lib/config/parse.js'
import { decorateFrom } from './lib/forward/reply-from.js'
import { trackRoutes } from './lib/forward/routes.js'
import { DEFAULT_CACHE_LIMITS, type CacheLimits } from './lib/cache/cache.js'
import { publishTo } from './lib/metrics/collector.js'
import { PoolRegistry } from './lib/registry/registry.js'
import { watchConfig } from './lib/registry/watch.js'
import './types/augment.js'

export interface FastifyHttpPoolsOptions {
  /** Path of an http-connection-pool.cfg.xml file. */
  config?: string
  /** Inline XML, instead of `config`. */
  xml?: string
  /** Where keystore and truststore names resolve; default: the config file's folder, else the working directory. */
  configRoot?: string
  /** The origin service: reply-from's `base`. */
  origin?: string
  /** Passed to @fastify/reply-from, except the options the plugin owns (base, undici, http, http2, globalAgent, destroyAgent, retries). */
  replyFrom?: Record<string, unknown>
  /** Memory bounds of each pool's response cache (`cache.ttl`). */
  cacheLimits?: Partial<CacheLimits>
  /** Reload when the `config` file, or the content of a pool's keystore or truststore, changes (file events, backed by polling). */
  watch?: boolean
  /**
   * Prometheus metrics of the pools (`http_client_pool_*`): published to
   * `registry` (the application's), by default to the client's default
   * registry; `false`: none.
   */
  metrics?: false | MetricsOptions
}

export interface MetricsOptions {
  /** The @prometheus-io/client registry the metrics go to; default: its default registry. */
  registry?: Registry
}

// With neither `config` nor `xml`: one pool, `default`, with every default.
const DEFAULT_XML = '<http-connection-pools xmlns="http://docs.openrepose.org/repose/http-connection-pool/v1.0"><pool id="default" default="true"/></http-connection-pools>'

function configRootOf (opts: FastifyHttpPoolsOptions): string {
  return resolve(opts.configRoot ?? (opts.config !== undefined ? dirname(resolve(opts.config)) : process.cwd()))
}

/** The config from `xml` when given (reload), else the file, else the inline XML. */
async function loadConfig (opts: FastifyHttpPoolsOptions, xml?: string): Promise<ParsedConfig> {
  if (xml === undefined && opts.config !== undefined) return await loadConfigFile(opts.config, configRootOf(opts))
  return parseConfig(xml ?? opts.xml ?? DEFAULT_XML, { configRoot: configRootOf(opts) })
}

async function fastifyHttpPools (fastify: FastifyInstance, opts: FastifyHttpPoolsOptions): Promise<void> {
  if (opts.config !== undefined && opts.xml !== undefined) throw new TypeError('fastify-http-pools: give either `config` or `xml`, not both')
  if (opts.watch === true && opts.config === undefined) throw new TypeError('fastify-http-pools: `watch` needs a `config` file')
  // reply.from is this plugin's: a second reply-from in the same context would fail with a bare duplicate-decorator error.
  if (fastify.hasReplyDecorator('from')) {
    throw new Error('fastify-http-pools registers @fastify/reply-from itself, and reply.from() is already decorated here (is @fastify/reply-from registered?). ' +
      'Remove that registration and pass its options as the `replyFrom` option of fastify-http-pools; ' +
      'to forward a prefix elsewhere, use @fastify/http-proxy with ...fastify.pools.httpProxyOptions(id)')
  }
  const inFile = (err: unknown, file = opts.config): unknown => err instanceof ConfigError && file !== undefined && err.file === undefined ? err.inFile(file) : err
  const cacheLimits = { ...DEFAULT_CACHE_LIMITS, ...opts.cacheLimits }
  let usedPools: () => string[] = () => []
  let registry: PoolRegistry
  const metrics = opts.metrics === false ? undefined : publishTo(opts.metrics?.registry ?? defaultRegistry)
  try {
    registry = new PoolRegistry(await loadConfig(opts), {
      configRoot: configRootOf(opts),
      log: fastify.log,
      cacheLimits,
      load: async (xml, file) => await loadConfig(opts, xml).catch((err: unknown) => { throw inFile(err, xml === undefined ? opts.config : file) }),
      usedPools: () => usedPools(),
      observe: metrics?.pools.observe
    })
  } catch (err) {
    metrics?.detach()
    throw inFile(err)
  }
  fastify.decorate('pools', registry)
  if (metrics !== undefined) {
    metrics.pools.watch(registry)
    fastify.addHook('onClose', async () => { metrics.detach() })
  }
  usedPools = trackRoutes(fastify, (id) => registry.has(id), () => registry.ids)
  decorateFrom(fastify, {
    ...(opts.origin !== undefined ? { origin: opts.origin } : {}),
    ...(opts.replyFrom !== undefined ? { replyFrom: opts.replyFrom } : {}),
    targetFor: (pool) => registry.entryFor(pool),
    defaultPool: () => registry.defaultId,
    maxBodyBytes: cacheLimits.maxBodyBytes
  })
  if (opts.watch === true) {
    const file = opts.config!
    const stop = watchConfig(resolve(file), async (content) => await registry.reloadWith(async () => {
      try {
        return parseConfig(content(), { configRoot: configRootOf(opts) })
      } catch (err) {
        throw inFile(err, file)
      }
    }), {
      // A renewed keystore keeps its name: the XML alone would look unchanged.
      dependencies: () => registry.storeFiles(),
      stale: () => registry.storesChanged()
    })
    fastify.addHook('onClose', async () => { stop() })
  }
  fastify.addHook('onClose', async () => { await registry.close() })
}

// Typed as Fastify's own plugins are, so it registers on an instance of any server, logger or type provider.
const plugin: FastifyPluginAsync<FastifyHttpPoolsOptions> = fp(fastifyHttpPools, { fastify: '5.x', name: 'fastify-http-pools' })

export default plugin
export { plugin as fastifyHttpPools, parseConfig, ConfigError }
export type { ConfigProblem } from './lib/config/errors.js'
export type { PoolSettings, Header } from './lib/config/schema.js'
export type { ParsedConfig, ParseOptions } from './lib/config/parse.js'
export type { HttpClient, RequestOptions } from './lib/client/http-client.js'
export type { PoolRegistry, RegistryStats } from './lib/registry/registry.js'
export type { HttpProxyOptions } from './lib/forward/http-proxy.js'
