import type { FastifyBaseLogger } from 'fastify'
import type { ConnectionOptions } from 'node:tls'
import type { PoolSettings } from '../config/schema.js'
import { ResilientDispatcher } from '../resilience/dispatcher.js'
import { PoolDispatcher } from '../pool/dispatcher.js'
import { loadPoolContext } from '../tls/index.js'
import type { PoolTally } from './tallies.js'

export interface BuildContext {
  configRoot: string
  log: FastifyBaseLogger
}

/**
 * TLS options of a pool: one context (client certificate, trusted CAs) for
 * all its connections, direct or through a proxy's tunnel; verification on
 * unless `x:tls.insecure` restores Repose's trust-all. Throws ConfigError.
 */
function tlsOptions (settings: PoolSettings, ctx: BuildContext): ConnectionOptions {
  const { warnings, secureContext } = loadPoolContext(settings, ctx.configRoot)
  for (const warning of warnings) ctx.log.warn({ pool: settings.id }, warning)
  if (!settings['tls.insecure']) return { secureContext, rejectUnauthorized: true }
  ctx.log.warn({ pool: settings.id }, `pool "${settings.id}" has x:tls.insecure="true": upstream certificates and host names are NOT verified`)
  return { secureContext, rejectUnauthorized: false, checkServerIdentity: () => undefined }
}

/**
 * Settings to a live dispatcher (connections, then retries and breaker), with
 * everything that needs the file system or the logger; counting into the pool id's tally.
 */
export function buildDispatcher (settings: PoolSettings, ctx: BuildContext, tally: PoolTally): ResilientDispatcher {
  const pool = new PoolDispatcher(settings, { tls: tlsOptions(settings, ctx), counters: tally.exchanges, observer: tally.observer })
  return new ResilientDispatcher(pool, settings, undefined, tally.resilience)
}
