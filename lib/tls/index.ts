// A pool's keystore / truststore settings as Node TLS material (key, cert,
// ca), and as the one TLS context that all of the pool's connections share.
//
// Files are recognised by content, whatever their extension:
// - JKS (0xFEEDFEED) and JCEKS (0xCECECECE): integrity digest checked with the
//   store password, private key entries decrypted with key-password (JKS's
//   SHA-1 key protector, JCEKS's PBEWithMD5AndTripleDES). JCEKS secret-key
//   entries are refused.
// - PKCS#12: MAC checked with the store password (HMAC-SHA-1/-2), PBES2
//   (PBKDF2 + AES-CBC / DES-EDE3-CBC) decrypted: certificates with the store
//   password, the key with key-password. Refused with advice: the legacy
//   RC2/RC4/3DES PKCS#12 algorithms, PBMAC1, public-key modes.
// - PEM: certificates, and private keys (PKCS#8, encrypted PKCS#8,
//   traditional RSA/EC, encrypted or not; decrypted with key-password). The
//   store password is not used.
// - As a truststore, also a single DER certificate.
// Which certificates are trusted: a truststore's trusted entries and the first
// certificate of each key entry (as Java does) for JKS/JCEKS, every
// certificate for PKCS#12 and PEM. Without a truststore, the keystore's
// trusted entries (JKS/JCEKS trustedCertEntry, PKCS#12 bags carrying Java's
// trusted-key-usage attribute) are added to Node's default CAs.
//
// Every failure is a ConfigError with one problem naming the pool and the
// attribute to fix; messages never contain a password.
import { readFileSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import { createHash, createPublicKey, type KeyObject, X509Certificate } from 'node:crypto'
import * as tls from 'node:tls'
import { ConfigError } from '../config/errors.js'
import type { PoolSettings } from '../config/schema.js'
import { Asn1Error } from './der.js'
import { jksFlavour, readJks } from './jks.js'
import { looksLikePem, readPem } from './pem.js'
import { looksLikePkcs12, readPkcs12 } from './pkcs12.js'
import { StoreError, type StoreContents } from './store.js'

export { LEGACY_ADVICE } from './pkcs12.js'

export interface TlsMaterial {
  /** For tls.connect / undici connect options. Undefined fields are omitted. */
  key?: string
  /** PEM client certificate chain (leaf first). */
  cert?: string
  /**
   * PEM CA certificates to trust. Without a truststore: Node's default CAs
   * plus the keystore's trusted-certificate entries (undefined when the
   * keystore has none, so Node's defaults apply untouched); with a
   * truststore: only its certificates.
   */
  ca?: string[]
  /** E.g. client certificate expired / not yet valid. Never contains a password. */
  warnings: string[]
}

/** Files larger than this are not keystores; refusing them avoids reading a wrong path into memory. */
const MAX_STORE_BYTES = 10 * 1024 * 1024

type Role = 'keystore' | 'truststore'

/**
 * Reads the pool's keystore (client certificate and key for mutual TLS) and
 * truststore. Relative file names resolve against `configRoot`.
 * @throws ConfigError with one problem `{ message, pool, attribute }`.
 */
export function loadTlsMaterial (settings: PoolSettings, configRoot: string): TlsMaterial {
  const keystore = settings['keystore-filename']
  const truststore = settings['truststore-filename']
  const material: TlsMaterial = { warnings: [] }
  if (keystore === null && truststore === null) return material
  const ctx = new Context(settings, configRoot, material.warnings)

  let keystoreTrusted: X509Certificate[] = []
  if (keystore !== null) {
    ctx.guard('keystore', keystore, () => {
      const store = ctx.open('keystore', keystore, settings['keystore-password'])
      const { key, chain } = ctx.clientIdentity(store, keystore)
      material.key = key.export({ format: 'pem', type: 'pkcs8' }).toString()
      material.cert = chain.map((c) => c.toString()).join('')
      keystoreTrusted = unique(store.trusted)
    })
  }

  if (truststore !== null) {
    ctx.guard('truststore', truststore, () => {
      const store = ctx.open('truststore', truststore, settings['truststore-password'])
      const anchors = unique(store.anchors)
      if (anchors.length === 0) {
        throw ctx.error('truststore-filename', `truststore "${truststore}" (${store.format}) holds no certificate, so no server could be trusted`)
      }
      for (const cert of anchors) ctx.checkValidity(cert, `trusted certificate "${subjectOf(cert)}" in truststore "${truststore}"`, 'servers whose chain ends at it will be refused')
      material.ca = anchors.map((c) => c.toString())
    })
  } else if (keystoreTrusted.length > 0) {
    // Repose uses the keystore as truststore when there is none; this project
    // verifies servers, so Node's defaults stay trusted next to those entries.
    material.ca = uniquePem([...defaultCaCertificates(), ...keystoreTrusted.map((c) => c.toString())])
  }
  return material
}

export interface PoolContext {
  /** Keys, certificates and CAs, parsed once: pass as `secureContext` to every connection of the pool. */
  secureContext: tls.SecureContext
  /** As in TlsMaterial. */
  warnings: string[]
}

/**
 * The pool's TLS context, built once from its keystore and truststore.
 * Handed key/cert/ca instead, tls.connect builds a context per connection,
 * parsing every CA again: with a keystore's trusted entries next to Node's
 * ~140 roots, tens of milliseconds of CPU per new connection.
 * @throws ConfigError as loadTlsMaterial, or when OpenSSL refuses the material (e.g. a key too small for its security level).
 */
export function loadPoolContext (settings: PoolSettings, configRoot: string): PoolContext {
  const { warnings, ...material } = loadTlsMaterial(settings, configRoot)
  try {
    return { secureContext: tls.createSecureContext(material), warnings }
  } catch (err) {
    // The readers already matched the key to its certificate and parsed every CA: what is left is OpenSSL's policy on the client identity.
    const role: Role = material.key !== undefined ? 'keystore' : 'truststore'
    const file = settings[`${role}-filename`]
    const ctx = new Context(settings, configRoot, [])
    throw ctx.error(`${role}-filename`, `${role} "${file}": OpenSSL refuses its ${role === 'keystore' ? 'key or certificate' : 'certificates'} (${ctx.scrub(String((err as Error).message))})`)
  }
}

/** Per store: a digest of the file's content, null when the pool has no such store. */
export interface StoreDigests {
  readonly keystore: string | null
  readonly truststore: string | null
}

/**
 * What the pool's TLS was built from, by content rather than by name: a
 * renewed keystore keeps its file name. A file that cannot be read gets a
 * value no content has, so it never passes for the content last loaded.
 */
export function storeDigests (settings: PoolSettings, configRoot: string): StoreDigests {
  return {
    keystore: fileDigest(settings['keystore-filename'], configRoot),
    truststore: fileDigest(settings['truststore-filename'], configRoot)
  }
}

/** Absolute paths of the pool's keystore and truststore files. */
export function storePaths (settings: PoolSettings, configRoot: string): string[] {
  return [settings['keystore-filename'], settings['truststore-filename']].filter((f) => f !== null).map((f) => resolve(configRoot, f))
}

export function sameStores (a: StoreDigests, b: StoreDigests): boolean {
  return a.keystore === b.keystore && a.truststore === b.truststore
}

function fileDigest (file: string | null, configRoot: string): string | null {
  if (file === null) return null
  const path = resolve(configRoot, file)
  try {
    // Not read: the loader refuses it anyway.
    const { size } = statSync(path)
    if (size > MAX_STORE_BYTES) return `too large: ${size}`
    return createHash('sha256').update(readFileSync(path)).digest('hex')
  } catch (err) {
    return `unreadable: ${(err as NodeJS.ErrnoException).code ?? 'error'}`
  }
}

class Context {
  constructor (
    private readonly settings: PoolSettings,
    private readonly configRoot: string,
    private readonly warnings: string[]
  ) {}

  error (attribute: string, message: string): ConfigError {
    return new ConfigError([{ message, pool: this.settings.id, attribute }])
  }

  warn (message: string): void {
    this.warnings.push(`pool "${this.settings.id}": ${message}`)
  }

  /** For a message from an unexpected error: no message built here holds a password, but a foreign one might. */
  scrub (message: string): string {
    let out = message
    for (const key of ['keystore-password', 'key-password', 'truststore-password'] as const) {
      const secret = this.settings[key]
      if (secret !== null && secret.length >= 4) out = out.split(secret).join('***')
    }
    return out
  }

  /** Runs one store's work; anything but a ConfigError (a damaged file the readers did not foresee) becomes one. */
  guard (role: Role, file: string, fn: () => void): void {
    try {
      fn()
    } catch (err) {
      if (err instanceof ConfigError) throw err
      throw this.storeError(err, role, `${role} "${file}"`)
    }
  }

  open (role: Role, file: string, password: string | null): StoreContents {
    const path = resolve(this.configRoot, file)
    const fileAttr = `${role}-filename`
    const name = `${role} "${file}"`
    let buf: Buffer
    try {
      buf = readFileSync(path)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      const why = code === 'ENOENT'
        ? 'does not exist'
        : code === 'EACCES' || code === 'EPERM'
          ? 'cannot be read (permission denied)'
          : code === 'EISDIR' ? 'is a directory, not a file' : `cannot be read (${code ?? (err as Error).message})`
      throw this.error(fileAttr, `${name} ${why} (resolved to ${path})`)
    }
    if (buf.length === 0) throw this.error(fileAttr, `${name} is empty (resolved to ${path})`)
    if (buf.length > MAX_STORE_BYTES) throw this.error(fileAttr, `${name} is ${buf.length} bytes: too large for a keystore or truststore (resolved to ${path})`)
    let store: StoreContents
    try {
      store = readStore(buf, password)
    } catch (err) {
      throw this.storeError(err, role, name)
    }
    if (!store.verified) this.warn(`${name} (${store.format}) has no ${role}-password, so its integrity was not verified`)
    return store
  }

  storeError (err: unknown, role: Role, name: string): ConfigError {
    if (err instanceof StoreError) {
      const attribute = err.kind === 'store-password' ? `${role}-password` : err.kind === 'key-password' ? 'key-password' : `${role}-filename`
      return this.error(attribute, `${name}: ${err.message}`)
    }
    if (err instanceof Asn1Error) return this.error(`${role}-filename`, `${name} is damaged (${err.message})`)
    return this.error(`${role}-filename`, `${name} cannot be read (${this.scrub(String((err as Error).message))})`)
  }

  /** The keystore's private key and the certificate chain to send, leaf first. */
  clientIdentity (store: StoreContents, file: string): { key: KeyObject, chain: X509Certificate[] } {
    const name = `keystore "${file}"`
    const entry = store.keys[0]
    if (entry === undefined) {
      const n = store.anchors.length
      const held = n === 0 ? 'nothing usable' : `only ${n} certificate${n === 1 ? '' : 's'}`
      throw this.error('keystore-filename', `${name} (${store.format}) has no private key entry (it holds ${held}); a keystore for TLS client authentication needs a private key and its certificate`)
    }
    const label = entry.alias === undefined ? 'the private key' : `the private key "${entry.alias}"`
    if (store.keys.length > 1) this.warn(`${name} holds ${store.keys.length} private keys; using the first one (${label.replace(/^the /, '')})`)
    let key: KeyObject
    try {
      key = entry.decrypt(this.settings['key-password'])
    } catch (err) {
      throw this.storeError(err, 'keystore', name)
    }
    if (entry.certificates.length === 0) {
      throw this.error('keystore-filename', `${name}: ${label} has no certificate; the keystore needs the client certificate next to its key`)
    }
    const spki = spkiOf(key)
    const leaf = entry.certificates.find((c) => certSpki(c)?.equals(spki) === true)
    if (leaf === undefined) {
      const subjects = entry.certificates.map((c) => `"${subjectOf(c)}"`).join(', ')
      throw this.error('keystore-filename', `${name}: ${label} does not match the certificate${entry.certificates.length > 1 ? 's' : ''} stored with it (${subjects})`)
    }
    const explicit = store.format === 'JKS' || store.format === 'JCEKS'
    const chain = explicit ? [leaf, ...entry.certificates.filter((c) => c !== leaf)] : buildChain(leaf, entry.certificates)
    chain.forEach((cert, i) => {
      const what = i === 0 ? 'client certificate' : 'certificate'
      this.checkValidity(cert, `${what} "${subjectOf(cert)}" in ${name}`, 'servers that require client certificates will refuse it')
    })
    return { key, chain }
  }

  checkValidity (cert: X509Certificate, what: string, consequence: string): void {
    const from = new Date(cert.validFrom)
    const to = new Date(cert.validTo)
    const now = Date.now()
    const range = `valid from ${iso(from)} to ${iso(to)}`
    if (now > to.getTime()) this.warn(`${what} expired on ${iso(to)} (${range}); ${consequence}`)
    else if (now < from.getTime()) this.warn(`${what} is not valid yet (${range}); ${consequence}`)
  }
}

function readStore (buf: Buffer, password: string | null): StoreContents {
  if (jksFlavour(buf) !== undefined) return readJks(buf, password)
  if (looksLikePkcs12(buf)) return readPkcs12(buf, password)
  if (buf[0] === 0x30) {
    let cert: X509Certificate | undefined
    try {
      cert = new X509Certificate(buf)
    } catch {}
    if (cert !== undefined) return { format: 'DER certificate', keys: [], trusted: [], anchors: [cert], verified: true }
  }
  if (looksLikePem(buf)) return readPem(buf)
  throw new StoreError('corrupt', 'not a JKS, JCEKS, PKCS#12 or PEM file (recognised by content, not by name)')
}

function spkiOf (key: KeyObject): Buffer {
  return (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'der' })
}

/** The certificate's public key as SPKI DER; undefined when OpenSSL cannot decode it. */
function certSpki (cert: X509Certificate): Buffer | undefined {
  try {
    return spkiOf(cert.publicKey)
  } catch {
    return undefined
  }
}

function subjectOf (cert: X509Certificate): string {
  return cert.subject.replace(/\n/g, ', ')
}

/** `cert` was issued (and signed) by `issuer`; false when either cannot be decoded. */
function issuedBy (cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return cert.checkIssued(issuer) && cert.verify(issuer.publicKey)
  } catch {
    return false
  }
}

/** The leaf, then its issuers as far as the given certificates reach; certificates outside the chain are dropped. */
function buildChain (leaf: X509Certificate, certs: readonly X509Certificate[]): X509Certificate[] {
  const chain = [leaf]
  const rest = certs.filter((c) => c !== leaf)
  let current = leaf
  while (!current.checkIssued(current)) {
    const c = current
    const i = rest.findIndex((issuer) => issuedBy(c, issuer))
    if (i < 0) break
    current = rest.splice(i, 1)[0]!
    chain.push(current)
  }
  return chain
}

function unique (certs: readonly X509Certificate[]): X509Certificate[] {
  const seen = new Set<string>()
  return certs.filter((c) => !seen.has(c.fingerprint256) && seen.add(c.fingerprint256) !== undefined)
}

/** Drops repeated certificates, compared by their base64 body (no parsing needed). */
function uniquePem (pems: string[]): string[] {
  const seen = new Set<string>()
  return pems.filter((p) => {
    const body = p.replace(/-----[^-]+-----|\s/g, '')
    return !seen.has(body) && seen.add(body) !== undefined
  })
}

function iso (d: Date): string {
  return Number.isNaN(d.getTime()) ? 'an unreadable date' : d.toISOString().replace('.000Z', 'Z')
}

/**
 * What Node trusts by default. `ca` replaces that set, so the keystore's
 * entries are added to it: Node's bundled roots, plus the certificates of
 * NODE_EXTRA_CA_CERTS (read once, when the process starts) and the system
 * store under --use-system-ca.
 */
export function defaultCaCertificates (): string[] {
  return [...tls.getCACertificates('default')]
}
