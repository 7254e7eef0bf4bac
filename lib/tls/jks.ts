// Sun's JKS keystore format (and JCEKS, its JCE variant), as written by
// sun.security.provider.JavaKeyStore / com.sun.crypto.provider.JceKeyStore:
//
//   magic u32 (FEEDFEED, or CECECECE for JCEKS) | version u32 (1 or 2) | count u32
//   entries:
//     tag 1 (private key): alias UTF | date u64 | len u32 + EncryptedPrivateKeyInfo DER
//                          | chain count u32 | per cert: [v2: type UTF] len u32 + DER
//     tag 2 (trusted certificate): alias UTF | date u64 | [v2: type UTF] len u32 + DER
//     tag 3 (JCEKS secret key): a Java-serialized SealedObject (not supported)
//   digest: SHA-1(password as UTF-16BE || "Mighty Aphrodite" || every preceding byte)
//
// UTF = u16 length + (modified) UTF-8. All integers are big-endian.
import { createDecipheriv, createHash, createPrivateKey, timingSafeEqual, type KeyObject, type X509Certificate } from 'node:crypto'
import { Asn1Error, algorithm, readDer, TAG } from './der.js'
import { certificate, StoreError, utf16be, type KeyEntry, type StoreContents } from './store.js'

const JKS_MAGIC = 0xfeedfeed
const JCEKS_MAGIC = 0xcececece
const INTEGRITY_SALT = Buffer.from('Mighty Aphrodite', 'utf8')
/** Sun's proprietary JKS key protector (SHA-1 keystream). */
const OID_SUN_KEY_PROTECTOR = '1.3.6.1.4.1.42.2.17.1.1'
/** PBEWithMD5AndTripleDES, Sun's JCEKS key protector. */
const OID_SUN_JCE_PROTECTOR = '1.3.6.1.4.1.42.2.19.1'
/** Java refuses more (com.sun.crypto.provider.KeyProtector). */
const MAX_JCE_ITERATIONS = 5_000_000

export type JksFlavour = 'JKS' | 'JCEKS'

/** The flavour when `buf` starts with a JKS or JCEKS magic number. */
export function jksFlavour (buf: Buffer): JksFlavour | undefined {
  if (buf.length < 4) return undefined
  const magic = buf.readUInt32BE(0)
  return magic === JKS_MAGIC ? 'JKS' : magic === JCEKS_MAGIC ? 'JCEKS' : undefined
}

class Reader {
  pos = 0
  constructor (private readonly buf: Buffer, private readonly flavour: JksFlavour) {}

  private need (n: number, what: string): void {
    if (this.pos + n > this.buf.length) throw new StoreError('corrupt', `not a valid ${this.flavour} file: truncated in ${what}`)
  }

  u16 (what: string): number { this.need(2, what); const v = this.buf.readUInt16BE(this.pos); this.pos += 2; return v }
  u32 (what: string): number { this.need(4, what); const v = this.buf.readUInt32BE(this.pos); this.pos += 4; return v }
  skip (n: number, what: string): void { this.need(n, what); this.pos += n }
  bytes (n: number, what: string): Buffer { this.need(n, what); const v = this.buf.subarray(this.pos, this.pos + n); this.pos += n; return v }
  utf (what: string): string { return this.bytes(this.u16(what), what).toString('utf8') }
}

export function readJks (buf: Buffer, storePassword: string | null): StoreContents {
  const flavour = jksFlavour(buf)
  if (flavour === undefined) throw new StoreError('corrupt', 'not a JKS file')
  const r = new Reader(buf, flavour)
  r.skip(4, 'the header')
  const version = r.u32('the header')
  if (version !== 1 && version !== 2) throw new StoreError('corrupt', `not a valid ${flavour} file: unknown version ${version}`)
  const count = r.u32('the header')
  const keys: KeyEntry[] = []
  const trusted: X509Certificate[] = []
  const anchors: X509Certificate[] = []

  const readCert = (where: string): X509Certificate => {
    if (version === 2) {
      const type = r.utf(where)
      if (type !== 'X.509') throw new StoreError('unsupported', `${where} is a "${type}" certificate; only X.509 is supported`)
    }
    return certificate(Buffer.from(r.bytes(r.u32(where), where)), where)
  }

  for (let i = 0; i < count; i++) {
    const tag = r.u32(`entry ${i + 1}`)
    if (tag !== 1 && tag !== 2 && !(tag === 3 && flavour === 'JCEKS')) {
      throw new StoreError('corrupt', `not a valid ${flavour} file: unrecognised entry type ${tag} in entry ${i + 1}`)
    }
    const alias = r.utf(`entry ${i + 1}`)
    const where = `entry "${alias}"`
    r.skip(8, where) // creation date
    if (tag === 1) {
      const protectedKey = Buffer.from(r.bytes(r.u32(where), where))
      const chainLength = r.u32(where)
      const certificates: X509Certificate[] = []
      for (let c = 0; c < chainLength; c++) certificates.push(readCert(`certificate ${c + 1} of ${where}`))
      keys.push({ alias, certificates, decrypt: (password) => recoverKey(protectedKey, password, where) })
      // Java trusts the first certificate of a key entry when the store is a truststore.
      if (certificates[0] !== undefined) anchors.push(certificates[0])
    } else if (tag === 2) {
      const cert = readCert(where)
      trusted.push(cert)
      anchors.push(cert)
    } else {
      throw new StoreError('unsupported', `${where} is a JCEKS secret-key entry, which is not supported; remove it, or convert the keystore with keytool -importkeystore -deststoretype PKCS12`)
    }
  }
  if (buf.length - r.pos !== 20) {
    throw new StoreError('corrupt', `not a valid ${flavour} file: ${buf.length - r.pos} bytes after the entries where the 20-byte integrity digest should be`)
  }
  const verified = storePassword !== null
  if (storePassword !== null) {
    const digest = createHash('sha1').update(utf16be(storePassword)).update(INTEGRITY_SALT).update(buf.subarray(0, r.pos)).digest()
    if (!timingSafeEqual(digest, buf.subarray(r.pos))) {
      throw new StoreError('store-password', `the password does not open this ${flavour} file (integrity check failed: wrong password, or the file was modified)`)
    }
  }
  return { format: flavour, keys, trusted, anchors, verified }
}

function recoverKey (protectedKey: Buffer, password: string | null, where: string): KeyObject {
  let alg: { oid: string, params: ReturnType<typeof algorithm>['params'] }
  let encrypted: Buffer
  try {
    const [a, data] = readDer(protectedKey, where).seq(`the private key of ${where}`, 2)
    alg = algorithm(a!, `the key algorithm of ${where}`)
    encrypted = data!.expect(TAG.OCTET_STRING, `the private key of ${where}`).octets()
  } catch (err) {
    if (err instanceof Asn1Error) throw new StoreError('corrupt', `the private key of ${where} is damaged (${err.message})`)
    throw err
  }
  if (password === null) throw new StoreError('key-password', `a key password is needed to decrypt the private key of ${where}`)
  let plain: Buffer
  if (alg.oid === OID_SUN_KEY_PROTECTOR) plain = sunKeyProtector(encrypted, password, where)
  else if (alg.oid === OID_SUN_JCE_PROTECTOR) plain = sunJceProtector(encrypted, alg.params, password, where)
  else throw new StoreError('unsupported', `the private key of ${where} is protected with algorithm ${alg.oid}, which is not supported`)
  try {
    return createPrivateKey({ key: plain, format: 'der', type: 'pkcs8' })
  } catch (err) {
    // The JCE protector has no check value: a wrong password usually fails the padding, rarely only here.
    if (alg.oid === OID_SUN_JCE_PROTECTOR) throw wrongKeyPassword(where)
    throw new StoreError('corrupt', `the private key of ${where} is not a valid PKCS#8 key (${(err as Error).message})`)
  }
}

function wrongKeyPassword (where: string): StoreError {
  return new StoreError('key-password', `the key password does not decrypt the private key of ${where}`)
}

/** JKS: salt (20) | ciphertext | check (20); keystream blocks SHA-1(password || previous block), starting from the salt. */
function sunKeyProtector (encrypted: Buffer, password: string, where: string): Buffer {
  if (encrypted.length < 41) throw new StoreError('corrupt', `the private key of ${where} is too short`)
  const pw = utf16be(password)
  const salt = encrypted.subarray(0, 20)
  const cipher = encrypted.subarray(20, encrypted.length - 20)
  const check = encrypted.subarray(encrypted.length - 20)
  const plain = Buffer.alloc(cipher.length)
  let block: Buffer = salt
  for (let i = 0; i < cipher.length; i += 20) {
    block = createHash('sha1').update(pw).update(block).digest()
    for (let j = 0; j < 20 && i + j < cipher.length; j++) plain[i + j] = cipher[i + j]! ^ block[j]!
  }
  const actual = createHash('sha1').update(pw).update(plain).digest()
  if (!timingSafeEqual(actual, check)) throw wrongKeyPassword(where)
  return plain
}

/** JCEKS: PBEWithMD5AndTripleDES (com.sun.crypto.provider.PBES1Core), DES-EDE3-CBC with PKCS#5 padding. */
function sunJceProtector (encrypted: Buffer, params: ReturnType<typeof algorithm>['params'], password: string, where: string): Buffer {
  let salt: Buffer
  let iterations: number
  try {
    if (params === undefined) throw new Asn1Error('no parameters')
    const [s, n] = params.seq('PBE parameters', 2)
    salt = Buffer.from(s!.expect(TAG.OCTET_STRING, 'PBE salt').octets())
    iterations = n!.int('PBE iteration count')
  } catch (err) {
    if (err instanceof Asn1Error) throw new StoreError('corrupt', `the private key of ${where} has damaged parameters (${err.message})`)
    throw err
  }
  if (salt.length !== 8) throw new StoreError('corrupt', `the private key of ${where} has a ${salt.length}-byte salt; 8 expected`)
  if (iterations < 1 || iterations > MAX_JCE_ITERATIONS) throw new StoreError('corrupt', `the private key of ${where} has an iteration count of ${iterations}`)
  // Java's PBEKey takes printable ASCII only: no other password can have written this key.
  if (!/^[\x20-\x7e]*$/.test(password)) throw wrongKeyPassword(where)
  const pw = Buffer.from(password, 'latin1')
  if (salt.subarray(0, 4).equals(salt.subarray(4))) salt.subarray(0, 4).reverse()
  const derived = Buffer.alloc(32)
  for (let half = 0; half < 2; half++) {
    let h: Buffer = salt.subarray(half * 4, half * 4 + 4)
    for (let i = 0; i < iterations; i++) h = createHash('md5').update(h).update(pw).digest()
    h.copy(derived, half * 16)
  }
  try {
    const d = createDecipheriv('des-ede3-cbc', derived.subarray(0, 24), derived.subarray(24, 32))
    return Buffer.concat([d.update(encrypted), d.final()])
  } catch {
    throw wrongKeyPassword(where)
  }
}
