import type { FastifyBaseLogger } from 'fastify'
import type { ConnectionOptions } from 'node:tls'
import type { PoolSettings } from '../config/schema.js'
import { PoolDispatcher } from '../pool/dispatcher.js'

export interface BuildContext {
  configRoot: string
  log: FastifyBaseLogger
}

/** TLS options of a pool: verification on unless `x:tls.insecure` restores Repose's trust-all. */
function tlsOptions (settings: PoolSettings, ctx: BuildContext): ConnectionOptions {
  if (!settings['tls.insecure']) return { rejectUnauthorized: true }
  ctx.log.warn({ pool: settings.id }, `pool "${settings.id}" has x:tls.insecure="true": upstream certificates and host names are NOT verified`)
  return { rejectUnauthorized: false, checkServerIdentity: () => undefined }
}

/** Settings to a live dispatcher, with everything that needs the file system or the logger. */
export function buildDispatcher (settings: PoolSettings, ctx: BuildContext): PoolDispatcher {
  return new PoolDispatcher(settings, { tls: tlsOptions(settings, ctx) })
}
