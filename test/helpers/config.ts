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
