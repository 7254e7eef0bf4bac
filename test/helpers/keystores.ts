// Client keystores made at test time by openssl, for the tests that renew a
// pool's certificate: each call issues a new certificate (CN=fhp-client, EKU
// clientAuth, a fresh key, P-256 unless told, a random serial) signed by the
// test CA of test/fixtures/tls, so every keystore is told apart by its
// certificate's fingerprint, as the upstream sees it. openssl only: the tests
// need no JDK (keytool made the fixtures once, see their generate.sh).
import { randomBytes, X509Certificate } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { Teardown } from './tap.js'

const CA_DIR = resolve(__dirname, '..', 'fixtures', 'tls')
const CA_PEM = join(CA_DIR, 'ca.pem')

export interface Issued {
  /** The keystore's bytes. */
  bytes: Buffer
  /** SHA-256 fingerprint of the client certificate, as `getPeerCertificate().fingerprint256` gives it. */
  fingerprint: string
}

export interface KeystoreMaker {
  /** PKCS#12 by openssl: key, certificate and the CA in the chain; the store password opens the key too. */
  p12: (password: string) => Issued
  /** PEM: the certificate, then its unencrypted PKCS#8 key; with an RSA key of `rsaBits` (a size OpenSSL may refuse to use). */
  pem: (options?: { rsaBits?: number }) => Issued
}

function run (cmd: string, args: string[]): void {
  // Output only when it fails.
  try {
    execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' })
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string, stderr?: string }
    throw new Error(`${cmd} ${args[0]} failed: ${`${stdout ?? ''}${stderr ?? ''}`.trim()}`)
  }
}

/** Issues keystores in a scratch folder removed at teardown. */
export function keystoreMaker (t: Teardown): KeystoreMaker {
  const dir = mkdtempSync(join(tmpdir(), 'fhp-keystores-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  let n = 0
  const ext = join(dir, 'client.ext')
  writeFileSync(ext, 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n')

  const issue = (rsaBits?: number): { key: string, cert: string, fingerprint: string, base: string } => {
    const base = join(dir, `client-${++n}`)
    const newKey = rsaBits === undefined ? ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] : ['rsa', '-pkeyopt', `rsa_keygen_bits:${rsaBits}`]
    run('openssl', ['req', '-new', '-newkey', ...newKey, '-nodes', '-subj', '/CN=fhp-client',
      '-keyout', `${base}.key`, '-out', `${base}.csr`])
    run('openssl', ['x509', '-req', '-in', `${base}.csr`, '-CA', CA_PEM, '-CAkey', join(CA_DIR, 'ca.key'), '-set_serial', `0x${randomSerial()}`,
      '-days', '30', '-sha256', '-extfile', ext, '-out', `${base}.pem`])
    const fingerprint = new X509Certificate(readFileSync(`${base}.pem`)).fingerprint256
    return { key: `${base}.key`, cert: `${base}.pem`, fingerprint, base }
  }
  return {
    p12: (password) => {
      const { key, cert, fingerprint, base } = issue()
      run('openssl', ['pkcs12', '-export', '-inkey', key, '-in', cert, '-certfile', CA_PEM, '-name', 'client', '-passout', `pass:${password}`, '-out', `${base}.p12`])
      return { bytes: readFileSync(`${base}.p12`), fingerprint }
    },
    pem: (options = {}) => {
      const { key, cert, fingerprint } = issue(options.rsaBits)
      return { bytes: Buffer.concat([readFileSync(cert), readFileSync(key)]), fingerprint }
    }
  }
}

function randomSerial (): string {
  const bytes = randomBytes(8)
  // A serial is a positive integer: the top bit clear.
  bytes[0]! &= 0x7f
  return bytes.toString('hex')
}

/** Puts `bytes` at `file` the way renewal tools do: written aside, then renamed over it (a new inode, never a half-written file). */
export function replaceFile (file: string, bytes: Buffer | string): void {
  const aside = `${file}.new-${process.pid}`
  writeFileSync(aside, bytes)
  renameSync(aside, file)
}
