// PEM files: certificates and private keys (PKCS#8, encrypted PKCS#8, and
// OpenSSL's traditional RSA / EC keys, encrypted or not), in any order and
// mixed with other text such as OpenSSL's "Bag Attributes" lines.
import { createPrivateKey, type KeyObject, type X509Certificate } from 'node:crypto'
import { certificate, StoreError, type KeyEntry, type StoreContents } from './store.js'

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g
const CERT_LABELS = new Set(['CERTIFICATE', 'X509 CERTIFICATE'])
const KEY_LABELS = new Set(['PRIVATE KEY', 'ENCRYPTED PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY', 'DSA PRIVATE KEY'])

/** True when the file has at least one PEM block. */
export function looksLikePem (buf: Buffer): boolean {
  return buf.includes('-----BEGIN ')
}

export function readPem (buf: Buffer): StoreContents {
  const text = buf.toString('latin1')
  const certs: X509Certificate[] = []
  const keyBlocks: string[] = []
  const other = new Set<string>()
  for (const m of text.matchAll(BLOCK)) {
    const label = m[1]!
    if (CERT_LABELS.has(label)) {
      const body = m[2]!.replace(/\s+/g, '')
      if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) throw new StoreError('corrupt', `PEM certificate ${certs.length + 1} is not valid base64`)
      certs.push(certificate(Buffer.from(body, 'base64'), `PEM certificate ${certs.length + 1}`))
    } else if (KEY_LABELS.has(label)) {
      keyBlocks.push(m[0])
    } else {
      other.add(label)
    }
  }
  if (certs.length === 0 && keyBlocks.length === 0) {
    const found = other.size > 0 ? `only ${[...other].map((l) => `"${l}"`).join(', ')} blocks` : 'no complete PEM block'
    throw new StoreError('corrupt', `the PEM file has no certificate or private key (found ${found})`)
  }
  const keys: KeyEntry[] = keyBlocks.map((pem, i) => {
    const where = keyBlocks.length === 1 ? 'the PEM private key' : `PEM private key ${i + 1}`
    return { alias: undefined, certificates: certs, decrypt: (password) => decryptPem(pem, password, where) }
  })
  return { format: 'PEM', keys, trusted: [], anchors: certs, verified: true }
}

function decryptPem (pem: string, password: string | null, where: string): KeyObject {
  const encrypted = pem.startsWith('-----BEGIN ENCRYPTED PRIVATE KEY-----') || /^Proc-Type:\s*4,ENCRYPTED/m.test(pem)
  if (encrypted && password === null) throw new StoreError('key-password', `${where} is encrypted and needs a key password`)
  try {
    // A passphrase is always passed, so an encrypted key never waits for a prompt.
    return createPrivateKey({ key: pem, format: 'pem', passphrase: password ?? '' })
  } catch (err) {
    const e = err as { code?: string, message: string }
    if (encrypted && (e.code === 'ERR_OSSL_BAD_DECRYPT' || /bad decrypt|decrypt/i.test(e.message))) {
      throw new StoreError('key-password', `the key password does not decrypt ${where}`)
    }
    if (e.code === 'ERR_OSSL_EVP_UNSUPPORTED' || /unsupported/i.test(e.message)) {
      throw new StoreError('unsupported', `${where} uses an algorithm OpenSSL 3 does not support by default (${e.message}); re-encrypt it: openssl pkcs8 -topk8 -v2 aes-256-cbc -in OLD.key -out NEW.key`)
    }
    throw new StoreError('corrupt', `${where} cannot be read (${e.message})`)
  }
}
