// Small helpers shared by the config tests.
import { resolve } from 'node:path'
import { ConfigError } from '../../lib/config/errors.js'
import { parseConfig, type ParseOptions } from '../../lib/config/parse.js'

export const REPOSE_NS = 'http://docs.openrepose.org/repose/http-connection-pool/v1.0'
export const EXT_NS = 'urn:fastify-http-pools:1'

/** test/fixtures/config: repose-full.cfg.xml with client.jks and servers.jks next to it. */
export const FIXTURES = resolve(__dirname, '..', 'fixtures', 'config')

/**
 * A complete config: the Repose root (with `x:` bound to the extension
 * namespace) around `body`. Line 1 is the root start tag, so the first line of
 * `body` is line 2.
 */
export function wrap (body: string, rootAttributes = ''): string {
  return `<http-connection-pools xmlns="${REPOSE_NS}" xmlns:x="${EXT_NS}"${rootAttributes}>\n${body}\n</http-connection-pools>\n`
}

/** One default pool `a` carrying `attributes` (and `inner` as its content). */
export function onePool (attributes: string, inner = ''): string {
  return wrap(inner === '' ? `<pool id="a" default="true" ${attributes}/>` : `<pool id="a" default="true" ${attributes}>${inner}</pool>`)
}

/** The ConfigError that `fn` throws; fails loudly when it throws nothing or something else. */
export function configError (fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  throw new Error('expected a ConfigError, but the config was accepted')
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
