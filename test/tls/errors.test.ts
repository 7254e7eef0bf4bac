// Every way a keystore or truststore can be wrong is one ConfigError problem
// naming the pool and the attribute to fix, and never shows a password.
import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import t, { type Test } from 'tap'
import type { PoolSettings } from '../../lib/config/schema.js'
import { loadPoolContext, loadTlsMaterial } from '../../lib/tls/index.js'
import { keystoreMaker } from '../helpers/keystores.js'
import { EXTRA, SHARED, configError, keystore, pool, secretsOf, shared, type Attributes } from './helpers.js'

const extra = (file: string): string => relative(SHARED, join(EXTRA, file))
// Passwords that could not appear in a message by accident.
const WRONG_STORE = 'Wr0ng-Store-Pw'
const WRONG_KEY = 'Wr0ng-Key-Pw'
const LEGACY_ADVICE = 'uses legacy encryption (RC2/3DES) that OpenSSL 3 refuses; re-export it: ' +
  'openssl pkcs12 -legacy -in OLD.p12 -nodes -out tmp.pem && openssl pkcs12 -export -in tmp.pem -out NEW.p12'

interface Case {
  label: string
  attributes: Attributes
  /** Settings changed after parsing (parseConfig itself refuses missing files). */
  override?: Partial<Record<keyof PoolSettings, string>>
  root?: string
  attribute: string
  message: RegExp | string
  /** What is loaded: the material by default. */
  load?: (settings: PoolSettings, configRoot: string) => unknown
}

/** Runs a case: one problem, the right pool and attribute, the message, and no password anywhere. */
function check (t: Test, c: Case): void {
  const root = c.root ?? SHARED
  // parseConfig refuses missing files itself: an override replaces a name that exists in the shared fixtures.
  const settings = { ...pool(c.attributes, c.override === undefined ? root : SHARED), ...c.override } as PoolSettings
  const err = configError(() => (c.load ?? loadTlsMaterial)(settings, root))
  t.equal(err.errors.length, 1, `${c.label}: one problem`)
  const p = err.errors[0]!
  t.equal(p.pool, 'p', `${c.label}: pool`)
  t.equal(p.attribute, c.attribute, `${c.label}: attribute`)
  if (typeof c.message === 'string') t.ok(p.message.includes(c.message), `${c.label}: message ${JSON.stringify(p.message)} includes ${JSON.stringify(c.message)}`)
  else t.match(p.message, c.message, `${c.label}: message`)
  t.equal(err.code, 'FST_HTTP_POOLS_CONFIG')
  const everything = [err.message, String(err), JSON.stringify(err.errors), JSON.stringify(err), err.stack ?? ''].join('\n')
  for (const secret of secretsOf(settings)) t.notOk(everything.includes(secret), `${c.label}: no password in the error`)
}

t.test('missing and unreadable files: the filename attribute', async (t) => {
  const dir = t.testdir({ 'empty.jks': '', sub: {} })
  const cases: Case[] = [
    {
      label: 'missing keystore',
      attributes: keystore('client.jks', 'password', 'keypass'),
      override: { 'keystore-filename': 'no-such.jks' },
      attribute: 'keystore-filename',
      message: /^keystore "no-such\.jks" does not exist \(resolved to .*no-such\.jks\)$/
    },
    {
      label: 'missing truststore',
      attributes: { 'truststore-filename': 'truststore.jks', 'truststore-password': 'S3cret-Trust' },
      override: { 'truststore-filename': 'gone/truststore.jks' },
      attribute: 'truststore-filename',
      message: /^truststore "gone\/truststore\.jks" does not exist/
    },
    {
      label: 'a directory',
      attributes: keystore('client.jks', 'password', 'keypass'),
      override: { 'keystore-filename': 'sub' },
      root: dir,
      attribute: 'keystore-filename',
      message: /^keystore "sub" is a directory, not a file/
    },
    {
      label: 'an empty file',
      attributes: keystore('empty.jks', 'S3cret-Store', 'S3cret-Key'),
      root: dir,
      attribute: 'keystore-filename',
      message: /^keystore "empty\.jks" is empty/
    }
  ]
  for (const c of cases) check(t, c)
})

t.test('a keystore the process may not read', { skip: process.getuid?.() === 0 ? 'running as root: permissions do not apply' : false }, async (t) => {
  const dir = t.testdir({ 'locked.jks': readFileSync(join(SHARED, 'client.jks')) })
  chmodSync(join(dir, 'locked.jks'), 0o000)
  t.teardown(() => chmodSync(join(dir, 'locked.jks'), 0o644))
  check(t, { label: 'unreadable', attributes: keystore('locked.jks', 'password', 'keypass'), root: dir, attribute: 'keystore-filename', message: /permission denied/ })
})

t.test('wrong store password: the password attribute of that store', async (t) => {
  const cases: Case[] = [
    { label: 'JKS', attributes: keystore('client.jks', WRONG_STORE, 'keypass'), attribute: 'keystore-password', message: /^keystore "client\.jks": the password does not open this JKS file \(integrity check failed/ },
    { label: 'JKS, both wrong: the store password is reported first', attributes: keystore('client.jks', WRONG_STORE, WRONG_KEY), attribute: 'keystore-password', message: 'does not open this JKS file' },
    { label: 'JCEKS', attributes: keystore(extra('client.jceks'), WRONG_STORE, 'keypass'), attribute: 'keystore-password', message: 'does not open this JCEKS file' },
    { label: 'PKCS#12', attributes: keystore('client.p12', WRONG_STORE, 'password'), attribute: 'keystore-password', message: /^keystore "client\.p12": the password does not open this PKCS#12 file/ },
    { label: 'PKCS#12, SHA-1 MAC', attributes: keystore(extra('client-sha1-3des.p12'), WRONG_STORE, 'password'), attribute: 'keystore-password', message: 'does not open this PKCS#12 file' },
    { label: 'legacy PKCS#12 (its SHA-1 MAC is checked first)', attributes: keystore('client-legacy.p12', WRONG_STORE, 'password'), attribute: 'keystore-password', message: 'does not open this PKCS#12 file' },
    { label: 'JKS truststore', attributes: { 'truststore-filename': 'truststore.jks', 'truststore-password': WRONG_STORE }, attribute: 'truststore-password', message: /^truststore "truststore\.jks": the password does not open this JKS file/ },
    { label: 'PKCS#12 truststore', attributes: { 'truststore-filename': 'truststore.p12', 'truststore-password': WRONG_STORE }, attribute: 'truststore-password', message: /^truststore "truststore\.p12": the password does not open/ },
    { label: 'PKCS#12 truststore without password', attributes: { 'truststore-filename': 'truststore.p12' }, attribute: 'truststore-password', message: 'a password is needed' },
    { label: 'the right keystore password on the truststore', attributes: { ...keystore('client.jks', 'password', 'keypass'), 'truststore-filename': 'other-truststore.jks', 'truststore-password': WRONG_STORE }, attribute: 'truststore-password', message: 'truststore "other-truststore.jks"' }
  ]
  for (const c of cases) check(t, c)
})

t.test('wrong key password: key-password', async (t) => {
  const cases: Case[] = [
    { label: 'JKS', attributes: keystore('client.jks', 'password', WRONG_KEY), attribute: 'key-password', message: /^keystore "client\.jks": the key password does not decrypt the private key of entry "client"$/ },
    // The usual mistake: the store password given as key password.
    { label: 'JKS, store password as key password', attributes: keystore('client.jks', 'password', 'password'), attribute: 'key-password', message: 'the key password does not decrypt' },
    { label: 'JKS, empty key password', attributes: keystore('client.jks', 'password', ''), attribute: 'key-password', message: 'the key password does not decrypt' },
    { label: 'JCEKS', attributes: keystore(extra('client.jceks'), 'password', WRONG_KEY), attribute: 'key-password', message: 'the key password does not decrypt the private key of entry "client"' },
    { label: 'JCEKS, non-ASCII key password', attributes: keystore(extra('client.jceks'), 'password', 'kéypass'), attribute: 'key-password', message: 'the key password does not decrypt' },
    { label: 'PKCS#12', attributes: keystore('client.p12', 'password', WRONG_KEY), attribute: 'key-password', message: /^keystore "client\.p12": the key password does not decrypt the private key "client" \(PKCS#12 files made by keytool or openssl use the store password for the key too\)$/ },
    { label: 'PKCS#12, DES-EDE3 key', attributes: keystore(extra('client-sha1-3des.p12'), 'password', WRONG_KEY), attribute: 'key-password', message: 'the key password does not decrypt' },
    { label: 'PEM, encrypted PKCS#8', attributes: keystore('client-combined.pem', 'password', WRONG_KEY), attribute: 'key-password', message: /^keystore "client-combined\.pem": the key password does not decrypt the PEM private key$/ },
    { label: 'PEM, traditional encrypted RSA', attributes: keystore(extra('client-traditional.pem'), 'password', WRONG_KEY), attribute: 'key-password', message: 'the key password does not decrypt the PEM private key' }
  ]
  for (const c of cases) check(t, c)
})

t.test('stores that hold no private key, used as keystore: keystore-filename', async (t) => {
  const cases: Case[] = [
    { label: 'ca-only.jks', attributes: keystore('ca-only.jks', 'password', 'keypass'), attribute: 'keystore-filename', message: /^keystore "ca-only\.jks" \(JKS\) has no private key entry \(it holds only 1 certificate\); a keystore for TLS client authentication needs a private key and its certificate$/ },
    { label: 'truststore.jks', attributes: keystore('truststore.jks', 'password', 'keypass'), attribute: 'keystore-filename', message: 'has no private key entry' },
    { label: 'truststore.p12', attributes: keystore('truststore.p12', 'password', 'keypass'), attribute: 'keystore-filename', message: '(PKCS#12) has no private key entry' },
    { label: 'a PEM certificate', attributes: keystore('client.pem', 'password', 'keypass'), attribute: 'keystore-filename', message: '(PEM) has no private key entry (it holds only 2 certificates)' },
    { label: 'a DER certificate', attributes: keystore(extra('ca.der'), 'password', 'keypass'), attribute: 'keystore-filename', message: '(DER certificate) has no private key entry' }
  ]
  for (const c of cases) check(t, c)
})

t.test('corrupt and unrecognised files: the filename attribute', async (t) => {
  const jks = readFileSync(join(SHARED, 'client.jks'))
  const p12 = readFileSync(join(SHARED, 'client.p12'))
  const dir = t.testdir({
    'truncated.jks': jks.subarray(0, 1000),
    'trailing.jks': Buffer.concat([jks, Buffer.from('x')]),
    'truncated.p12': p12.subarray(0, 1000),
    'garbage.der': Buffer.from([0x30, 0x03, 0x02, 0x01, 0x05]),
    'key-only.pem': shared('client.key'),
    'bad-base64.pem': '-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n',
    'csr.pem': '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n',
    'not-a-cert.pem': '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
    'v3.jks': Buffer.concat([jks.subarray(0, 4), Buffer.from([0, 0, 0, 3]), jks.subarray(8)])
  })
  const cases: Case[] = [
    { label: 'corrupt.jks', attributes: keystore('corrupt.jks', 'password', 'keypass'), attribute: 'keystore-filename', message: /^keystore "corrupt\.jks": not a valid JKS file: / },
    { label: 'corrupt.jks as truststore', attributes: { 'truststore-filename': 'corrupt.jks', 'truststore-password': 'S3cret-Trust' }, attribute: 'truststore-filename', message: /^truststore "corrupt\.jks": not a valid JKS file/ },
    { label: 'not-a-store.txt', attributes: keystore('not-a-store.txt', 'S3cret-Store', 'S3cret-Key'), attribute: 'keystore-filename', message: /^keystore "not-a-store\.txt": not a JKS, JCEKS, PKCS#12 or PEM file \(recognised by content, not by name\)$/ },
    { label: 'not-a-store.txt as truststore', attributes: { 'truststore-filename': 'not-a-store.txt' }, attribute: 'truststore-filename', message: 'not a JKS, JCEKS, PKCS#12 or PEM file' },
    { label: 'a truncated JKS', attributes: keystore('truncated.jks', 'password', 'keypass'), root: dir, attribute: 'keystore-filename', message: /^keystore "truncated\.jks": not a valid JKS file: truncated/ },
    { label: 'a JKS with bytes after the digest', attributes: keystore('trailing.jks', 'password', 'keypass'), root: dir, attribute: 'keystore-filename', message: '21 bytes after the entries where the 20-byte integrity digest should be' },
    { label: 'a JKS of unknown version', attributes: keystore('v3.jks', 'password', 'keypass'), root: dir, attribute: 'keystore-filename', message: 'not a valid JKS file: unknown version 3' },
    { label: 'a truncated PKCS#12', attributes: keystore('truncated.p12', 'password', 'password'), root: dir, attribute: 'keystore-filename', message: /^keystore "truncated\.p12": not a valid PKCS#12 file: PFX: truncated$/ },
    { label: 'a DER structure that is neither', attributes: { 'truststore-filename': 'garbage.der' }, root: dir, attribute: 'truststore-filename', message: 'not a JKS, JCEKS, PKCS#12 or PEM file' },
    { label: 'PEM: a key and no certificate, as keystore', attributes: keystore('key-only.pem', 'S3cret-Store', 'S3cret-Key'), root: dir, attribute: 'keystore-filename', message: /^keystore "key-only\.pem": the private key has no certificate/ },
    { label: 'PEM: a key and no certificate, as truststore', attributes: { 'truststore-filename': 'key-only.pem' }, root: dir, attribute: 'truststore-filename', message: /^truststore "key-only\.pem" \(PEM\) holds no certificate, so no server could be trusted$/ },
    { label: 'PEM: bad base64', attributes: { 'truststore-filename': 'bad-base64.pem' }, root: dir, attribute: 'truststore-filename', message: 'PEM certificate 1 is not valid base64' },
    { label: 'PEM: a certificate that does not parse', attributes: { 'truststore-filename': 'not-a-cert.pem' }, root: dir, attribute: 'truststore-filename', message: 'PEM certificate 1 is not a valid X.509 certificate' },
    { label: 'PEM: only other blocks', attributes: { 'truststore-filename': 'csr.pem' }, root: dir, attribute: 'truststore-filename', message: 'the PEM file has no certificate or private key (found only "CERTIFICATE REQUEST" blocks)' },
    { label: 'JCEKS with a secret-key entry', attributes: keystore(extra('secret.jceks'), 'password', 'password'), attribute: 'keystore-filename', message: 'entry "secret" is a JCEKS secret-key entry, which is not supported; remove it, or convert the keystore with keytool -importkeystore -deststoretype PKCS12' }
  ]
  for (const c of cases) check(t, c)
})

t.test('a JKS whose bytes were changed fails its integrity check', async (t) => {
  const jks = Buffer.from(readFileSync(join(SHARED, 'client.jks')))
  const at = jks.indexOf('client', 0, 'utf8')
  jks[at] = 'C'.charCodeAt(0) // alias "client" -> "Client": still parses
  const dir = t.testdir({ 'tampered.jks': jks })
  check(t, { label: 'tampered', attributes: keystore('tampered.jks', 'password', 'keypass'), root: dir, attribute: 'keystore-password', message: 'integrity check failed: wrong password, or the file was modified' })
})

t.test('legacy PKCS#12 (RC2/3DES): the filename attribute, with the re-export advice', async (t) => {
  check(t, { label: 'keystore', attributes: keystore('client-legacy.p12', 'password', 'password'), attribute: 'keystore-filename', message: `keystore "client-legacy.p12": this PKCS#12 file ${LEGACY_ADVICE}` })
  check(t, { label: 'truststore', attributes: { 'truststore-filename': 'client-legacy.p12', 'truststore-password': 'password' }, attribute: 'truststore-filename', message: LEGACY_ADVICE })
})

t.test('a private key that does not match its certificate: keystore-filename', async (t) => {
  const dir = t.testdir({ 'mismatch.pem': shared('server.pem') + shared('ca.pem') + shared('client-encrypted.key') })
  check(t, {
    label: 'PEM',
    attributes: keystore('mismatch.pem', 'Any-Store-Value', 'keypass'),
    root: dir,
    attribute: 'keystore-filename',
    message: /^keystore "mismatch\.pem": the private key does not match the certificates stored with it \("CN=localhost", "CN=fhp-test-ca"\)$/
  })
})

t.test('a client key OpenSSL will not use (RSA 512): keystore-filename when the pool is built, not a TLS failure on every connection', async (t) => {
  const dir = t.testdir({ 'small.pem': keystoreMaker(t).pem({ rsaBits: 512 }).bytes })
  check(t, {
    label: 'RSA 512',
    attributes: keystore('small.pem', 'Any-Store-Value', 'Any-Key-Value'),
    root: dir,
    attribute: 'keystore-filename',
    message: /^keystore "small\.pem": OpenSSL refuses its key or certificate \(.*key too small\)$/,
    load: loadPoolContext
  })
})

t.test('the passwords of a pool never reach an error, whatever the case', async (t) => {
  // Distinctive passwords on every failing fixture.
  const files = ['client.jks', 'client-samepass.jks', 'client.p12', 'client-legacy.p12', 'client-combined.pem', 'ca-only.jks', 'corrupt.jks', 'not-a-store.txt', 'truststore.p12', extra('client.jceks'), extra('client-keytool.p12')]
  for (const file of files) {
    const settings = pool({ ...keystore(file, 'Sekr1t-Store-Value', 'Sekr1t-Key-Value'), 'truststore-filename': file, 'truststore-password': 'Sekr1t-Trust-Value' })
    let text = ''
    try {
      text = JSON.stringify(loadTlsMaterial(settings, SHARED))
    } catch (err) {
      text = [String(err), JSON.stringify(err), (err as Error).stack].join('\n')
    }
    t.notMatch(text, /Sekr1t/, file)
  }
})

t.test('a keystore whose file is replaced by a PEM with a key but the certificate of another key', async (t) => {
  // The check compares public keys, so a certificate for the same subject but another key is refused too.
  const dir = t.testdir({ 'other.pem': shared('client-expired.pem') + shared('client.key') })
  check(t, { label: 'same subject, other key', attributes: keystore('other.pem', 'Any-Store-Value', 'Any-Key-Value'), root: dir, attribute: 'keystore-filename', message: 'does not match the certificate stored with it ("CN=fhp-client")' })
})

t.test('a file written as JKS with no digest after zero entries is corrupt, not empty', async (t) => {
  const dir = t.testdir()
  writeFileSync(join(dir, 'header.jks'), Buffer.from([0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2, 0, 0, 0, 0]))
  check(t, { label: 'header only', attributes: keystore('header.jks', 'password', 'keypass'), root: dir, attribute: 'keystore-filename', message: '0 bytes after the entries' })
})
