// Shared by the lib/tls tests: pool settings for a keystore / truststore, and
// checks that an error names the right attribute without leaking a password.
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { X509Certificate } from 'node:crypto'
import type { ConfigError } from '../../lib/config/errors.js'
import { parseConfig } from '../../lib/config/parse.js'
import type { PoolSettings } from '../../lib/config/schema.js'
import { loadTlsMaterial, type TlsMaterial } from '../../lib/tls/index.js'
import { configError as thrownConfigError } from '../helpers/config.js'
import { REPOSE_NS, xmlAttr } from '../helpers/xml.js'

/** test/fixtures/tls: the shared certificates and stores (see its README). */
export const SHARED = resolve(__dirname, '..', 'fixtures', 'tls')
/** test/tls/fixtures: extra stores only these tests use (see generate.sh there). */
export const EXTRA = resolve(__dirname, 'fixtures')

export type Attributes = Partial<Record<'keystore-filename' | 'keystore-password' | 'key-password' | 'truststore-filename' | 'truststore-password', string>>

/** The settings of pool "p" with these attributes, parsed the way the plugin parses them. */
export function pool (attributes: Attributes, configRoot = SHARED): PoolSettings {
  const attrs = Object.entries(attributes).map(([k, v]) => ` ${k}="${xmlAttr(v)}"`).join('')
  const xml = `<http-connection-pools xmlns="${REPOSE_NS}"><pool id="p" default="true"${attrs}/></http-connection-pools>`
  return parseConfig(xml, { configRoot }).pools[0]!
}

/** A keystore's three attributes. */
export function keystore (file: string, storePassword: string, keyPassword: string): Attributes {
  return { 'keystore-filename': file, 'keystore-password': storePassword, 'key-password': keyPassword }
}

export function load (attributes: Attributes, configRoot = SHARED): TlsMaterial {
  return loadTlsMaterial(pool(attributes, configRoot), configRoot)
}

/** The ConfigError that `fn` throws. */
export function configError (fn: () => unknown): ConfigError {
  return thrownConfigError(fn, 'the material loaded')
}

/** Every password of the settings that could be told apart from ordinary text in a message (not "x", not "password"). */
export function secretsOf (settings: PoolSettings): string[] {
  return (['keystore-password', 'key-password', 'truststore-password'] as const)
    .map((k) => settings[k])
    .filter((v): v is string => v !== null && v.length >= 4 && v !== 'password')
}

export function shared (file: string): string {
  return readFileSync(resolve(SHARED, file), 'latin1')
}

/** SHA-256 fingerprints of the certificates in a PEM text, in order. */
export function fingerprints (pem: string | readonly string[] | undefined): string[] {
  const text = typeof pem === 'string' ? pem : (pem ?? []).join('\n')
  return [...text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)].map((m) => new X509Certificate(m[0]).fingerprint256)
}
