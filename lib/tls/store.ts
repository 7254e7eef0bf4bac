import { X509Certificate, type KeyObject } from 'node:crypto'

/**
 * What went wrong while reading a store, independent of whether the file is
 * the keystore or the truststore (index.ts maps it to the attribute).
 * Messages never contain a password.
 */
export type StoreProblemKind =
  /** The store password does not open the file (integrity check or decryption failed). */
  | 'store-password'
  /** The key password does not decrypt the private key. */
  | 'key-password'
  /** Not a store of any supported kind, or damaged. */
  | 'corrupt'
  /** A store of a known kind using something this reader does not implement. */
  | 'unsupported'

export class StoreError extends Error {
  override readonly name = 'StoreError'
  constructor (readonly kind: StoreProblemKind, message: string) {
    super(message)
  }
}

export interface KeyEntry {
  /** JKS alias or PKCS#12 friendlyName, when the format has one. */
  readonly alias: string | undefined
  /** Certificates stored with the key: for JKS its chain (leaf first); for PKCS#12 and PEM every certificate that is not a trusted entry. */
  readonly certificates: readonly X509Certificate[]
  /** Decrypts the key. Throws StoreError ('key-password' when the password is wrong). */
  readonly decrypt: (keyPassword: string | null) => KeyObject
}

export interface StoreContents {
  /** 'JKS', 'JCEKS', 'PKCS#12', 'PEM' or 'DER certificate'. */
  readonly format: string
  readonly keys: readonly KeyEntry[]
  /** Trusted-certificate entries: what the store adds to the trusted CAs when it is the keystore. */
  readonly trusted: readonly X509Certificate[]
  /** What the store trusts when it is the truststore. */
  readonly anchors: readonly X509Certificate[]
  /** False when the store has an integrity check that could not be run (no password given). */
  readonly verified: boolean
}

/** Parses a DER certificate; a failure is a corrupt store. */
export function certificate (der: Buffer, where: string): X509Certificate {
  try {
    return new X509Certificate(der)
  } catch (err) {
    throw new StoreError('corrupt', `${where} is not a valid X.509 certificate (${(err as Error).message})`)
  }
}

/** UTF-16 big-endian code units of a password, as Java's char[] holds it. */
export function utf16be (s: string): Buffer {
  const b = Buffer.from(s, 'utf16le')
  return b.swap16()
}
