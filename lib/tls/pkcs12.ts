// PKCS#12 (RFC 7292) in the password-integrity, password-privacy mode that
// keytool, OpenSSL and most other tools write:
//
//   PFX { version 3, authSafe ContentInfo(data), macData? }
//   authSafe = SEQUENCE OF ContentInfo: data (plain SafeContents) or
//              encryptedData (SafeContents encrypted under a PBE algorithm)
//   SafeContents = SEQUENCE OF SafeBag: keyBag, pkcs8ShroudedKeyBag, certBag,
//                  safeContentsBag (nested); other bags are skipped.
//
// Implemented: the MAC (HMAC-SHA-1/-2 with the PKCS#12 key derivation; not
// RFC 9579's PBMAC1), PBES2 with PBKDF2 + AES-CBC or DES-EDE3-CBC (OpenSSL 3's and
// keytool's defaults). The older PKCS#12 PBE algorithms (RC2, RC4, 3DES under
// the SHA-1 PKCS#12 KDF, made by `openssl pkcs12 -legacy` or old JDKs) are
// refused with re-export advice, as OpenSSL 3 itself refuses them.
import { createDecipheriv, createHash, createHmac, createPrivateKey, pbkdf2Sync, timingSafeEqual, type KeyObject, type X509Certificate } from 'node:crypto'
import { Asn1Error, algorithm, readDer, TAG, type Asn1 } from './der.js'
import { certificate, StoreError, utf16be, type KeyEntry, type StoreContents } from './store.js'

const OID = {
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  envelopedData: '1.2.840.113549.1.7.3',
  encryptedData: '1.2.840.113549.1.7.6',
  keyBag: '1.2.840.113549.1.12.10.1.1',
  shroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  safeContentsBag: '1.2.840.113549.1.12.10.1.6',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  friendlyName: '1.2.840.113549.1.9.20',
  localKeyId: '1.2.840.113549.1.9.21',
  /** Java's "trusted key usage" attribute: keytool marks trustedCertEntry bags with it. */
  javaTrusted: '2.16.840.1.113894.746875.1.1',
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
  pbmac1: '1.2.840.113549.1.5.14',
  /** pkcs-12PbeIds: pbeWithSHAAnd128BitRC4 .. pbeWithSHAAnd40BitRC2-CBC */
  pkcs12PbePrefix: '1.2.840.113549.1.12.1.',
} as const
/** PBES1: pbeWith{MD2,MD5,SHA1}And{DES,RC2}-CBC */
const PBES1 = new Set(['1', '3', '4', '6', '10', '11'].map((n) => `1.2.840.113549.1.5.${n}`))

const DIGESTS: Record<string, { name: string, blockSize: number }> = {
  '1.3.14.3.2.26': { name: 'sha1', blockSize: 64 },
  '2.16.840.1.101.3.4.2.4': { name: 'sha224', blockSize: 64 },
  '2.16.840.1.101.3.4.2.1': { name: 'sha256', blockSize: 64 },
  '2.16.840.1.101.3.4.2.2': { name: 'sha384', blockSize: 128 },
  '2.16.840.1.101.3.4.2.3': { name: 'sha512', blockSize: 128 }
}
const HMACS: Record<string, string> = {
  '1.2.840.113549.2.7': 'sha1',
  '1.2.840.113549.2.8': 'sha224',
  '1.2.840.113549.2.9': 'sha256',
  '1.2.840.113549.2.10': 'sha384',
  '1.2.840.113549.2.11': 'sha512'
}
const CIPHERS: Record<string, { name: string, keyLength: number }> = {
  '2.16.840.1.101.3.4.1.2': { name: 'aes-128-cbc', keyLength: 16 },
  '2.16.840.1.101.3.4.1.22': { name: 'aes-192-cbc', keyLength: 24 },
  '2.16.840.1.101.3.4.1.42': { name: 'aes-256-cbc', keyLength: 32 },
  '1.2.840.113549.3.7': { name: 'des-ede3-cbc', keyLength: 24 }
}
const MAX_ITERATIONS = 10_000_000
/** The PKCS#12 KDF runs in JavaScript, one hash per iteration. */
const MAX_KDF_ITERATIONS = 1_000_000

export const LEGACY_ADVICE = 'uses legacy encryption (RC2/3DES) that OpenSSL 3 refuses; re-export it: ' +
  'openssl pkcs12 -legacy -in OLD.p12 -nodes -out tmp.pem && openssl pkcs12 -export -in tmp.pem -out NEW.p12'

/**
 * True when `buf` starts like a PFX: a SEQUENCE whose first element is
 * INTEGER 3, followed by a SEQUENCE. Only the header is looked at, so a
 * truncated or damaged PKCS#12 file is still reported as one.
 */
export function looksLikePkcs12 (buf: Buffer): boolean {
  if (buf.length < 6 || buf[0] !== TAG.SEQUENCE) return false
  const len = buf[1]!
  const start = len < 0x80 || len === 0x80 ? 2 : 2 + (len & 0x7f)
  return buf[start] === TAG.INTEGER && buf[start + 1] === 1 && buf[start + 2] === 3 && buf[start + 3] === TAG.SEQUENCE
}

interface Bag {
  kind: 'key' | 'shrouded' | 'cert'
  value: Asn1
  alias: string | undefined
  localKeyId: Buffer | undefined
  javaTrusted: boolean
}

/** Everything that is a malformed structure (not a wrong password) becomes a 'corrupt' StoreError. */
function structure<T> (what: string, fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    if (err instanceof Asn1Error) throw new StoreError('corrupt', `not a valid PKCS#12 file: ${what}: ${err.message}`)
    throw err
  }
}

export function readPkcs12 (buf: Buffer, storePassword: string | null): StoreContents {
  const { authSafe, macData } = structure('PFX', () => {
    const [version, content, mac] = readDer(buf, 'PFX').seq('PFX', 2)
    if (version!.int('PFX version') !== 3) throw new Asn1Error('version is not 3')
    const [type, body] = content!.seq('authSafe', 1)
    const t = type!.oid('authSafe content type')
    if (t === OID.signedData) return { authSafe: undefined, macData: mac }
    if (t !== OID.data || body === undefined) throw new Asn1Error(`authSafe has content type ${t}`)
    return { authSafe: body.explicit(0, 'authSafe').octets('authSafe'), macData: mac }
  })
  if (authSafe === undefined) throw new StoreError('unsupported', 'this PKCS#12 file uses public-key integrity (signedData), which is not supported; re-export it with a password')

  let verified = macData === undefined
  if (macData !== undefined && storePassword !== null) {
    verifyMac(macData, authSafe, storePassword)
    verified = true
  }

  const bags: Bag[] = []
  const contents = structure('authSafe', () => readDer(authSafe, 'authSafe').seq('authSafe'))
  for (const info of contents) {
    const [type, body] = structure('authSafe', () => info.seq('ContentInfo', 1))
    const t = structure('ContentInfo', () => type!.oid('content type'))
    if (t === OID.data) {
      structure('SafeContents', () => readBags(readDer(body!.explicit(0, 'data').octets('data'), 'SafeContents'), bags, 0))
    } else if (t === OID.encryptedData) {
      const { alg, encrypted } = structure('encryptedData', () => {
        const [, eci] = body!.explicit(0, 'encryptedData').seq('EncryptedData', 2)
        const [, a, content] = eci!.seq('EncryptedContentInfo', 2)
        return { alg: algorithm(a!, 'content encryption algorithm'), encrypted: content === undefined ? Buffer.alloc(0) : content.octets('encryptedContent') }
      })
      if (storePassword === null) throw new StoreError('store-password', 'a password is needed: the certificates of this PKCS#12 file are encrypted')
      const plain = decrypt(alg, encrypted, storePassword, 'the certificates')
      try {
        readBags(readDer(plain, 'SafeContents'), bags, 0)
      } catch (err) {
        // Without a MAC a wrong password can decrypt to garbage with valid padding.
        if (err instanceof Asn1Error) throw wrongStorePassword()
        throw err
      }
    } else if (t === OID.envelopedData) {
      throw new StoreError('unsupported', 'this PKCS#12 file uses public-key privacy (envelopedData), which is not supported; re-export it with a password')
    }
  }

  const certs: { cert: X509Certificate, bag: Bag }[] = []
  for (const bag of bags.filter((b) => b.kind === 'cert')) {
    const der = structure('certBag', () => {
      const [id, value] = bag.value.seq('CertBag', 2)
      if (id!.oid('certificate type') !== OID.x509Certificate) return undefined
      return Buffer.from(value!.explicit(0, 'certValue').expect(TAG.OCTET_STRING, 'certValue').octets())
    })
    if (der !== undefined) certs.push({ cert: certificate(der, `certificate "${bag.alias ?? certs.length + 1}"`), bag })
  }
  const trusted = certs.filter((c) => c.bag.javaTrusted).map((c) => c.cert)
  const chainCerts = certs.filter((c) => !c.bag.javaTrusted)
  const keys: KeyEntry[] = bags.filter((b) => b.kind !== 'cert').map((bag, i) => {
    const where = bag.alias === undefined ? `private key ${i + 1}` : `private key "${bag.alias}"`
    // The key's own certificate (same localKeyId) first: it is the leaf.
    const own = chainCerts.filter((c) => bag.localKeyId !== undefined && c.bag.localKeyId?.equals(bag.localKeyId) === true)
    const certificates = [...own, ...chainCerts.filter((c) => !own.includes(c))].map((c) => c.cert)
    return { alias: bag.alias, certificates, decrypt: (password: string | null) => keyOf(bag, password, where) }
  })
  return { format: 'PKCS#12', keys, trusted, anchors: certs.map((c) => c.cert), verified }
}

function wrongStorePassword (): StoreError {
  return new StoreError('store-password', 'the password does not open this PKCS#12 file (wrong password, or the file was modified)')
}

function readBags (safeContents: Asn1, out: Bag[], depth: number): void {
  if (depth > 4) throw new Asn1Error('safeContentsBag nested too deeply')
  for (const bag of safeContents.seq('SafeContents')) {
    const [id, value, attrs] = bag.seq('SafeBag', 2)
    const bagId = id!.oid('bag type')
    const v = value!.explicit(0, 'bagValue')
    if (bagId === OID.safeContentsBag) {
      readBags(v, out, depth + 1)
      continue
    }
    const kind = bagId === OID.keyBag ? 'key' : bagId === OID.shroudedKeyBag ? 'shrouded' : bagId === OID.certBag ? 'cert' : undefined
    if (kind === undefined) continue // CRL and secret bags: nothing for TLS
    const b: Bag = { kind, value: v, alias: undefined, localKeyId: undefined, javaTrusted: false }
    for (const attr of attrs === undefined ? [] : attrs.seq('bagAttributes', 0, TAG.SET)) {
      const [attrId, values] = attr.seq('attribute', 2)
      const first = values!.seq('attribute values', 0, TAG.SET)[0]
      const a = attrId!.oid('attribute type')
      if (a === OID.friendlyName && first?.tag === 0x1e) b.alias = first.value.length % 2 === 0 ? Buffer.from(first.value).swap16().toString('utf16le') : undefined
      else if (a === OID.localKeyId && first !== undefined) b.localKeyId = first.octets()
      else if (a === OID.javaTrusted) b.javaTrusted = true
    }
    out.push(b)
  }
}

function keyOf (bag: Bag, password: string | null, where: string): KeyObject {
  let pkcs8: Buffer
  if (bag.kind === 'key') {
    pkcs8 = structure(where, () => Buffer.from(bag.value.encoded))
  } else {
    const { alg, encrypted } = structure(where, () => {
      const [a, data] = bag.value.seq('EncryptedPrivateKeyInfo', 2)
      return { alg: algorithm(a!, 'key encryption algorithm'), encrypted: data!.expect(TAG.OCTET_STRING, 'encryptedData').octets() }
    })
    if (password === null) throw new StoreError('key-password', `a key password is needed to decrypt the ${where}`)
    pkcs8 = decrypt(alg, encrypted, password, `the ${where}`, 'key-password')
  }
  try {
    return createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })
  } catch (err) {
    if (bag.kind === 'shrouded') throw wrongKeyPassword(where)
    throw new StoreError('corrupt', `the ${where} is not a valid PKCS#8 key (${(err as Error).message})`)
  }
}

function wrongKeyPassword (where: string): StoreError {
  return new StoreError('key-password', `the key password does not decrypt the ${where} (PKCS#12 files made by keytool or openssl use the store password for the key too)`)
}

/** Decrypts with a PBES2 algorithm; the legacy PKCS#12 and PBES1 algorithms are refused with re-export advice. */
function decrypt (alg: { oid: string, params: Asn1 | undefined }, data: Buffer, password: string, what: string, wrong: 'store-password' | 'key-password' = 'store-password'): Buffer {
  if (alg.oid.startsWith(OID.pkcs12PbePrefix) || PBES1.has(alg.oid)) {
    throw new StoreError('unsupported', `this PKCS#12 file ${LEGACY_ADVICE}`)
  }
  if (alg.oid !== OID.pbes2) throw new StoreError('unsupported', `${what} in this PKCS#12 file are encrypted with algorithm ${alg.oid}, which is not supported; re-export the file with OpenSSL 3 or keytool`)
  const { salt, iterations, keyLength, prf, cipher, iv } = structure(`encryption parameters of ${what}`, () => {
    if (alg.params === undefined) throw new Asn1Error('no PBES2 parameters')
    const [kdf, scheme] = alg.params.seq('PBES2-params', 2)
    const k = algorithm(kdf!, 'key derivation function')
    if (k.oid !== OID.pbkdf2) return { salt: undefined, iterations: 0, keyLength: undefined, prf: k.oid, cipher: undefined, iv: Buffer.alloc(0) }
    const p = pbkdf2Params(k.params)
    const s = algorithm(scheme!, 'encryption scheme')
    const c = CIPHERS[s.oid]
    if (c === undefined) return { ...p, cipher: s.oid, iv: Buffer.alloc(0) }
    if (s.params === undefined) throw new Asn1Error('no IV')
    return { ...p, cipher: c, iv: s.params.expect(TAG.OCTET_STRING, 'IV').octets() }
  })
  if (salt === undefined) throw new StoreError('unsupported', `${what} in this PKCS#12 file use key derivation ${prf}; only PBKDF2 is supported`)
  if (typeof cipher === 'string' || cipher === undefined) throw new StoreError('unsupported', `${what} in this PKCS#12 file are encrypted with ${cipher}; only AES-CBC and DES-EDE3-CBC are supported`)
  const key = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, keyLength ?? cipher.keyLength, prf)
  try {
    const d = createDecipheriv(cipher.name, key, iv)
    return Buffer.concat([d.update(data), d.final()])
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_CRYPTO_INVALID_IV') throw new StoreError('corrupt', `not a valid PKCS#12 file: the IV of ${what} has the wrong length`)
    throw wrong === 'key-password' ? wrongKeyPassword(what.replace(/^the /, '')) : wrongStorePassword()
  }
}

function pbkdf2Params (params: Asn1 | undefined): { salt: Buffer, iterations: number, keyLength: number | undefined, prf: string } {
  if (params === undefined) throw new Asn1Error('no PBKDF2 parameters')
  const [salt, iter, ...rest] = params.seq('PBKDF2-params', 2)
  if (salt!.tag !== TAG.OCTET_STRING) throw new Asn1Error('PBKDF2 salt from another source is not supported')
  const iterations = iter!.int('iteration count')
  if (iterations < 1 || iterations > MAX_ITERATIONS) throw new Asn1Error(`iteration count ${iterations} is out of range`)
  let keyLength: number | undefined
  let prf = 'sha1'
  for (const r of rest) {
    if (r.tag === TAG.INTEGER) keyLength = r.int('key length')
    else {
      const p = algorithm(r, 'PBKDF2 PRF').oid
      const h = HMACS[p]
      if (h === undefined) throw new Asn1Error(`PBKDF2 PRF ${p} is not supported`)
      prf = h
    }
  }
  if (keyLength !== undefined && (keyLength < 1 || keyLength > 64)) throw new Asn1Error(`key length ${keyLength} is out of range`)
  return { salt: salt!.octets(), iterations, keyLength, prf }
}

function verifyMac (macData: Asn1, authSafe: Buffer, password: string): void {
  const { alg, digest, macSalt, iterations } = structure('macData', () => {
    const [digestInfo, salt, iter] = macData.seq('MacData', 2)
    const [a, d] = digestInfo!.seq('DigestInfo', 2)
    return {
      alg: algorithm(a!, 'MAC algorithm'),
      digest: d!.expect(TAG.OCTET_STRING, 'MAC').octets(),
      macSalt: salt!.expect(TAG.OCTET_STRING, 'MAC salt').octets(),
      iterations: iter === undefined ? 1 : iter.int('MAC iteration count')
    }
  })
  if (alg.oid === OID.pbmac1) {
    throw new StoreError('unsupported', 'this PKCS#12 file\'s integrity MAC is PBMAC1 (RFC 9579), which is not supported; re-export it with the default MAC: openssl pkcs12 -export')
  }
  const d = DIGESTS[alg.oid]
  if (d === undefined) throw new StoreError('unsupported', `this PKCS#12 file's integrity MAC uses algorithm ${alg.oid}, which is not supported`)
  if (iterations < 1 || iterations > MAX_KDF_ITERATIONS) throw new StoreError('corrupt', `not a valid PKCS#12 file: MAC iteration count ${iterations} is out of range`)
  const length = createHash(d.name).digest().length
  // OpenSSL tries an absent password as well as the empty one.
  const passwords = password === '' ? [Buffer.from([0, 0]), Buffer.alloc(0)] : [Buffer.concat([utf16be(password), Buffer.from([0, 0])])]
  const candidates = passwords.map((p) => ({ hash: d.name, key: pkcs12Kdf(d.name, d.blockSize, p, macSalt, 3, iterations, length) }))
  for (const { hash, key } of candidates) {
    const mac = createHmac(hash, key).update(authSafe).digest()
    if (mac.length === digest.length && timingSafeEqual(mac, digest)) return
  }
  throw wrongStorePassword()
}

/** RFC 7292 appendix B.2: the PKCS#12 key derivation (ID 3 = MAC key). `password` is the BMPString with its terminating 00 00. */
export function pkcs12Kdf (hash: string, v: number, password: Buffer, salt: Buffer, id: number, iterations: number, n: number): Buffer {
  const fill = (src: Buffer): Buffer => {
    if (src.length === 0) return Buffer.alloc(0)
    const out = Buffer.alloc(v * Math.ceil(src.length / v))
    for (let i = 0; i < out.length; i++) out[i] = src[i % src.length]!
    return out
  }
  const D = Buffer.alloc(v, id)
  const I = Buffer.concat([fill(salt), fill(password)])
  const out: Buffer[] = []
  let produced = 0
  for (;;) {
    let A = createHash(hash).update(D).update(I).digest()
    for (let r = 1; r < iterations; r++) A = createHash(hash).update(A).digest()
    out.push(A)
    produced += A.length
    if (produced >= n) break
    const B = Buffer.alloc(v)
    for (let i = 0; i < v; i++) B[i] = A[i % A.length]!
    // I_j = (I_j + B + 1) mod 2^(8v) for every v-byte block of I
    for (let j = 0; j < I.length; j += v) {
      let carry = 1
      for (let k = v - 1; k >= 0; k--) {
        const sum = I[j + k]! + B[k]! + carry
        I[j + k] = sum & 0xff
        carry = sum >> 8
      }
    }
  }
  return Buffer.concat(out).subarray(0, n)
}
