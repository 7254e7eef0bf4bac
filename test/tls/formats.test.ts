// Every keystore and truststore fixture loads into the TLS options it should:
// the right key, the chain leaf first, and the right set of trusted CAs.
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto'
import * as tls from 'node:tls'
import t from 'tap'
import { EXTRA, SHARED, fingerprints, keystore, load, pool, shared } from './helpers.js'
import { defaultCaCertificates, loadTlsMaterial } from '../../lib/tls/index.js'

const CA = fingerprints(shared('ca.pem'))
const OTHER_CA = fingerprints(shared('other-ca.pem'))
const CLIENT_CHAIN = fingerprints(shared('client.pem')) // leaf, then ca
const CLIENT_SPKI = createPublicKey(shared('client.key')).export({ type: 'spki', format: 'der' })
const ROOTS = fingerprints(tls.rootCertificates)
/** Node's default CAs: its bundled roots plus NODE_EXTRA_CA_CERTS, without repeats. */
const DEFAULTS = [...new Set(fingerprints(defaultCaCertificates()))]
const extra = (file: string): string => relative(SHARED, join(EXTRA, file))

const spkiOfKey = (pem: string): Buffer => createPublicKey(pem).export({ type: 'spki', format: 'der' })

t.test('a pool without keystore and truststore gets nothing: Node defaults apply', async (t) => {
  t.same(loadTlsMaterial(pool({}), SHARED), { warnings: [] })
  t.strictSame(Object.keys(loadTlsMaterial(pool({}), SHARED)), ['warnings'])
})

t.test('keystores from the shared fixtures: the client key and its chain, leaf first', async (t) => {
  const cases = [
    { file: 'client.jks', store: 'password', key: 'keypass', chain: CLIENT_CHAIN, trusted: CA },
    { file: 'client-samepass.jks', store: 'password', key: 'password', chain: CLIENT_CHAIN, trusted: CA },
    // openssl-made: the CA is part of the chain, not a trusted entry.
    { file: 'client.p12', store: 'password', key: 'password', chain: CLIENT_CHAIN, trusted: [] },
    // A PEM keystore opens with any store password; it holds the leaf only.
    { file: 'client-combined.pem', store: 'anything', key: 'keypass', chain: CLIENT_CHAIN.slice(0, 1), trusted: [] },
    { file: 'client-combined.pem', store: '', key: 'keypass', chain: CLIENT_CHAIN.slice(0, 1), trusted: [] }
  ]
  for (const c of cases) {
    t.test(`${c.file} (store password "${c.store}")`, async (t) => {
      const m = load(keystore(c.file, c.store, c.key))
      t.match(m.key, /^-----BEGIN PRIVATE KEY-----\n/, 'the key is unencrypted PKCS#8 PEM')
      t.ok(spkiOfKey(m.key!).equals(CLIENT_SPKI), 'it is the client key')
      t.doesNotThrow(() => createPrivateKey(m.key!))
      t.strictSame(fingerprints(m.cert), c.chain, 'the chain, leaf first')
      if (c.trusted.length === 0) t.equal(m.ca, undefined, 'no trusted entries: ca stays undefined (Node defaults)')
      else t.strictSame(fingerprints(m.ca), [...DEFAULTS, ...c.trusted], 'Node\'s default CAs plus the trusted entries')
      t.strictSame(m.warnings, [])
    })
  }
})

t.test('keystores in the other formats and variants', async (t) => {
  const cases = [
    // JCEKS (PBEWithMD5AndTripleDES key protector), key password differs from the store password.
    { file: 'client.jceks', store: 'password', key: 'keypass', chainLength: 2, trusted: 1 },
    // keytool-made PKCS#12: "ca" is a trusted entry (Java attribute), so it joins the CAs.
    { file: 'client-keytool.p12', store: 'password', key: 'password', chainLength: 2, trusted: 1 },
    // Nothing encrypted, no MAC: a plain keyBag.
    { file: 'client-plain.p12', store: '', key: '', chainLength: 2, trusted: 0 },
    // PBES2 with AES-128-CBC and DES-EDE3-CBC, SHA-1 MAC.
    { file: 'client-sha1-3des.p12', store: 'password', key: 'password', chainLength: 2, trusted: 0 },
    // OpenSSL's traditional encrypted RSA key (Proc-Type: 4,ENCRYPTED).
    { file: 'client-traditional.pem', store: 'x', key: 'keypass', chainLength: 1, trusted: 0 }
  ]
  for (const c of cases) {
    t.test(c.file, async (t) => {
      const m = load(keystore(extra(c.file), c.store, c.key))
      const chain = fingerprints(m.cert)
      t.equal(chain.length, c.chainLength)
      const leaf = new X509Certificate(m.cert!)
      t.equal(leaf.subject, 'CN=fhp-client')
      t.ok(spkiOfKey(m.key!).equals(leaf.publicKey.export({ type: 'spki', format: 'der' })), 'the key matches the leaf')
      if (c.chainLength > 1) t.equal(new X509Certificate(m.cert!.slice(m.cert!.indexOf('-----END CERTIFICATE-----') + 26)).subject, 'CN=fhp-test-ca')
      if (c.trusted === 0) t.equal(m.ca, undefined)
      else {
        t.equal(m.ca!.length, DEFAULTS.length + c.trusted)
        t.equal(new X509Certificate(m.ca![m.ca!.length - 1]!).subject, 'CN=fhp-test-ca')
      }
      t.strictSame(m.warnings, [])
    })
  }
})

/**
 * defaultCaCertificates() and the ca a keystore with one trusted entry (client.jks)
 * gets, as SHA-256 fingerprints, in a new process started with this
 * NODE_EXTRA_CA_CERTS: Node reads the variable once, at startup.
 */
function inNewProcess (extraCaCerts: string | undefined): { defaults: string[], keystoreCa: string[], stderr: string } {
  const env = { ...process.env }
  delete env['NODE_EXTRA_CA_CERTS']
  if (extraCaCerts !== undefined) env['NODE_EXTRA_CA_CERTS'] = extraCaCerts
  const script = `
    const { defaultCaCertificates } = require(${JSON.stringify(join(__dirname, '..', '..', 'lib', 'tls', 'index.ts'))})
    const { fingerprints, keystore, load } = require(${JSON.stringify(join(__dirname, 'helpers.ts'))})
    process.stdout.write(JSON.stringify({
      defaults: fingerprints(defaultCaCertificates()),
      keystoreCa: fingerprints(load(keystore('client.jks', 'password', 'keypass')).ca)
    }))`
  // process.execArgv: the loaders this test runs with, so the child can load TypeScript.
  const r = spawnSync(process.execPath, [...process.execArgv, '-e', script], { encoding: 'utf8', env })
  if (r.status !== 0) throw new Error(`child exited ${String(r.status ?? r.signal)}: ${r.stderr}`)
  return { ...JSON.parse(r.stdout) as { defaults: string[], keystoreCa: string[] }, stderr: r.stderr }
}

t.test('Node\'s default CAs: the bundled roots, then NODE_EXTRA_CA_CERTS when set', async (t) => {
  const plain = inNewProcess(undefined)
  t.strictSame(plain.defaults, ROOTS, 'without NODE_EXTRA_CA_CERTS: exactly tls.rootCertificates')
  t.strictSame(plain.keystoreCa, [...ROOTS, ...CA], 'without extras: exactly tls.rootCertificates plus the keystore\'s "ca" entry')
  const extra = inNewProcess(join(SHARED, 'other-ca.pem'))
  t.strictSame(extra.defaults, [...ROOTS, ...OTHER_CA])
  t.strictSame(extra.keystoreCa, [...ROOTS, ...OTHER_CA, ...CA])
  const missing = inNewProcess(join(SHARED, 'missing.pem'))
  t.strictSame(missing.defaults, ROOTS, 'an unreadable extra file is skipped')
  t.match(missing.stderr, /Ignoring extra certs from .*missing\.pem/, 'Node warned about it at startup')
  t.strictSame(missing.keystoreCa, [...ROOTS, ...CA])
})

t.test('truststores: ca is exactly their certificates, Node roots are not added', async (t) => {
  const cases: [string, string | undefined, string[]][] = [
    ['truststore.jks', 'password', CA],
    ['truststore.p12', 'password', CA],
    ['truststore.pem', undefined, CA],
    ['truststore.pem', 'ignored', CA],
    ['ca.pem', undefined, CA],
    ['other-truststore.jks', 'password', OTHER_CA],
    [extra('truststore-openssl.p12'), 'password', CA], // openssl-made, no Java attribute
    [extra('ca.der'), undefined, CA] // a single DER certificate
  ]
  for (const [file, password, expected] of cases) {
    const attrs = password === undefined ? { 'truststore-filename': file } : { 'truststore-filename': file, 'truststore-password': password }
    const m = load(attrs)
    t.strictSame(fingerprints(m.ca), expected, `${file}: ca`)
    t.equal(m.key, undefined, `${file}: no key`)
    t.equal(m.cert, undefined, `${file}: no cert`)
    t.strictSame(m.warnings, [], `${file}: no warning`)
  }
})

t.test('a truststore replaces the keystore\'s trusted entries', async (t) => {
  const m = load({ ...keystore('client.jks', 'password', 'keypass'), 'truststore-filename': 'other-truststore.jks', 'truststore-password': 'password' })
  t.strictSame(fingerprints(m.ca), OTHER_CA)
  t.strictSame(fingerprints(m.cert), CLIENT_CHAIN)
})

t.test('a keystore used as truststore: as in Java, its trusted entries and the first certificate of each key entry', async (t) => {
  t.strictSame(fingerprints(load({ 'truststore-filename': 'client.jks', 'truststore-password': 'password' }).ca).sort(), [...CLIENT_CHAIN].sort())
  // PKCS#12: every certificate bag.
  t.strictSame(fingerprints(load({ 'truststore-filename': 'client.p12', 'truststore-password': 'password' }).ca).sort(), [...CLIENT_CHAIN].sort())
  // A keystore-only file that holds no certificate at all is refused elsewhere (errors.test.ts).
})

t.test('a JKS truststore without password loads (as in Java) with a warning that its integrity was not checked', async (t) => {
  const m = load({ 'truststore-filename': 'truststore.jks' })
  t.strictSame(fingerprints(m.ca), CA)
  t.equal(m.warnings.length, 1)
  t.match(m.warnings[0], /^pool "p": truststore "truststore\.jks" \(JKS\) has no truststore-password, so its integrity was not verified$/)
})

t.test('an expired client certificate loads, with a warning naming the pool and the dates', async (t) => {
  const dir = t.testdir({ 'expired.pem': shared('client-expired.pem') + shared('client-expired.key') })
  const m = load(keystore('expired.pem', 'password', 'Sekr1t-Key-Pw'), dir)
  t.ok(m.key)
  t.equal(m.warnings.length, 1)
  const w = m.warnings[0]!
  t.match(w, /^pool "p": client certificate "CN=fhp-client" in keystore "expired\.pem" expired on 2021-01-01T00:00:00Z \(valid from 2020-01-01T00:00:00Z to 2021-01-01T00:00:00Z\)/)
  t.notMatch(w, 'Sekr1t-Key-Pw')
})

t.test('a client certificate that is not valid yet: a warning', async (t) => {
  const now = Date.now
  Date.now = () => Date.parse('2019-06-01T00:00:00Z')
  t.teardown(() => { Date.now = now })
  const m = load(keystore('client.jks', 'password', 'keypass'))
  t.ok(m.key)
  t.match(m.warnings, [/^pool "p": client certificate "CN=fhp-client" in keystore "client\.jks" is not valid yet \(valid from 2020-01-01T00:00:00Z to 2119-12-08T00:00:00Z\)/,
    /^pool "p": certificate "CN=fhp-test-ca" in keystore "client\.jks" is not valid yet/])
  t.equal(m.warnings.length, 2)
})

t.test('an expired certificate in a truststore: a warning', async (t) => {
  const m = load({ 'truststore-filename': 'client-expired.pem' })
  t.equal(m.warnings.length, 1)
  t.match(m.warnings[0], /^pool "p": trusted certificate "CN=fhp-client" in truststore "client-expired\.pem" expired on 2021-01-01T00:00:00Z/)
})

t.test('a PEM keystore: the leaf is the certificate that matches the key, whatever the order', async (t) => {
  const dir = t.testdir({ 'mixed.pem': shared('ca.pem') + shared('client.key') + shared('client.pem') + shared('other-ca.pem') })
  const m = load(keystore('mixed.pem', 'x', 'x'), dir)
  // leaf, then its issuer; the unrelated other-ca is not sent.
  t.strictSame(fingerprints(m.cert), CLIENT_CHAIN)
})

t.test('a PEM keystore with two keys uses the first, with a warning', async (t) => {
  const dir = t.testdir({ 'two.pem': shared('client.pem') + shared('client.key') + shared('server.key') })
  const m = load(keystore('two.pem', 'x', 'x'), dir)
  t.ok(spkiOfKey(m.key!).equals(CLIENT_SPKI))
  t.match(m.warnings, [/^pool "p": keystore "two\.pem" holds 2 private keys; using the first one/])
})

t.test('files are recognised by content, not by extension', async (t) => {
  const dir = t.testdir()
  const copy = (from: string, to: string): void => writeFileSync(join(dir, to), shared(from), 'latin1')
  copy('client.jks', 'client.p12')
  copy('client.p12', 'client.pem')
  copy('client-combined.pem', 'client.jks')
  copy('truststore.p12', 'truststore.txt')
  t.strictSame(fingerprints(load(keystore('client.p12', 'password', 'keypass'), dir).cert), CLIENT_CHAIN)
  t.strictSame(fingerprints(load(keystore('client.pem', 'password', 'password'), dir).cert), CLIENT_CHAIN)
  t.strictSame(fingerprints(load(keystore('client.jks', 'password', 'keypass'), dir).cert), CLIENT_CHAIN.slice(0, 1))
  t.strictSame(fingerprints(load({ 'truststore-filename': 'truststore.txt', 'truststore-password': 'password' }, dir).ca), CA)
})

t.test('relative names resolve against configRoot, absolute ones are used as they are', async (t) => {
  const settings = pool({ 'truststore-filename': join(SHARED, 'truststore.pem') }, SHARED)
  t.strictSame(fingerprints(loadTlsMaterial(settings, '/nonexistent').ca), CA)
})
