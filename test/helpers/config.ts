// Small helpers shared by the config tests.
import { resolve } from 'node:path'
import { ConfigError } from '../../lib/config/errors.js'
import { parseConfig, type ParseOptions } from '../../lib/config/parse.js'

export { EXT_NS, REPOSE_NS, onePool, wrap } from './xml.js'

/** test/fixtures/config: repose-full.cfg.xml with client.jks and servers.jks next to it. */
export const FIXTURES = resolve(__dirname, '..', 'fixtures', 'config')

/**
 * The ConfigError that `fn` throws; fails loudly when it throws nothing
 * (saying `accepted`) or something else.
 */
export function configError (fn: () => unknown, accepted = 'the config was accepted'): ConfigError {
  try {
    fn()
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  throw new Error(`expected a ConfigError, but ${accepted}`)
}

/** The ConfigError that `parseConfig(xml, options)` throws. */
export function parseError (xml: string, options?: ParseOptions): ConfigError {
  return configError(() => parseConfig(xml, options))
}

/** The ConfigError that a promise rejects with. */
export async function rejection (p: Promise<unknown>): Promise<ConfigError> {
  try {
    await p
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  throw new Error('expected a ConfigError, but the config was accepted')
}

/** Every attribute's default, as SPEC.md's tables give them, keyed as `settings` are. */
export const DEFAULTS = {
  default: false,
  'cache.ttl': 500,
  'http.conn-manager.max-total': 400,
  'http.conn-manager.max-per-route': 200,
  'http.socket.timeout': 30000,
  'http.socket.buffer-size': 8192,
  'http.connection.timeout': 30000,
  'http.connection.max-line-length': 8192,
  'http.connection.max-header-count': 100,
  'http.tcp.nodelay': true,
  'http.route.default-proxy': null,
  'keepalive.timeout': 0,
  'keystore-filename': null,
  'keystore-password': null,
  'key-password': null,
  'truststore-filename': null,
  'truststore-password': null,
  headers: [],
  'retry.max-attempts': 3,
  'retry.methods': ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'],
  'retry.statuses': [408, 429, 500, 502, 503, 504],
  'retry.base-delay': 100,
  'retry.max-delay': 10000,
  'queue.timeout': 0,
  'request.timeout': 0,
  'circuit-breaker.threshold': 0,
  'circuit-breaker.reset': 30000,
  'queue.max-pending': 1024,
  'retry.budget': 20,
  'retry.min-concurrent': 3,
  'connection.max-lifetime': 0,
  http2: false,
  'tls.insecure': false
}
