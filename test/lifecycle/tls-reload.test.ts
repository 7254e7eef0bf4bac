// Issue 12: a renewed keystore keeps its file name, so a reload compares the
// content of each pool's keystore and truststore, not their names. A pool
// whose store content changed is rebuilt even when the XML did not change;
// one whose settings and store contents are the same keeps its dispatcher and
// connections; a store replaced by a broken file is a rejected reload, as a
// bad XML is, and the running pools keep serving. `watch` sees such a change
// by itself. An upstream that requires a client certificate records the one
// each connection presented.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import type { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ConfigError } from '../../index.js'
import { codesOf, httpsUpstream, mutualTls, peerFingerprint, poolGet, rejection, TLS_ROOT, tlsFile } from '../helpers/e2e.js'
import { keystoreMaker, replaceFile } from '../helpers/keystores.js'
import { BOUND_MS, config, gateway, pool, waitFor, type Gateway, type Teardown } from '../helpers/lifecycle.js'

// Distinctive, so that any leak into an error or a log line is found.
const PASSWORD = 'Renewed-Store-Secret'

interface Presented { fingerprint: string, socket: Socket }

interface Setup {
  dir: string
  file: string
  keystore: string
  truststore: string
  gw: Gateway
  /** The upstream's URL. */
  target: string
  /** A request of pool `id` to the upstream: the client certificate and connection the upstream saw. */
  present: (id?: string) => Promise<Presented>
}

/**
 * A config file in a temp folder, its stores in `certs/` beside it:
 * `mtls` (the default) with the given keystore bytes and a copy of the test CA as
 * truststore, and `steady`, whose stores are the shared fixtures and never change.
 */
async function setup (t: Teardown, keystore: Buffer, options: { watch?: boolean } = {}): Promise<Setup> {
  const seen: Presented[] = []
  const upstream = await httpsUpstream(t, mutualTls(), (req, res) => {
    seen.push({ fingerprint: peerFingerprint(req), socket: req.socket })
    res.end('ok')
  })
  const dir = mkdtempSync(join(tmpdir(), 'fhp-tls-reload-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  mkdirSync(join(dir, 'certs'))
  const file = join(dir, 'http-connection-pool.cfg.xml')
  const keystoreFile = join(dir, 'certs', 'client.keystore')
  const truststoreFile = join(dir, 'certs', 'ca.pem')
  writeFileSync(keystoreFile, keystore)
  writeFileSync(truststoreFile, tlsFile('ca.pem'))
  writeFileSync(file, mtlsConfig('certs/client.keystore'))
  const gw = await gateway(t, { plugin: { config: file, ...(options.watch === true ? { watch: true } : {}) }, routes: {} })
  const target = `https://localhost:${upstream.port}/`
  return {
    dir,
    file,
    keystore: keystoreFile,
    truststore: truststoreFile,
    gw,
    target,
    present: async (id = 'mtls') => {
      const before = seen.length
      const res = await poolGet(gw.app, id, target)
      if (res.statusCode !== 200 || seen.length !== before + 1) throw new Error(`pool ${id}: ${res.statusCode} ${res.text}, ${seen.length - before} request(s) seen upstream`)
      return seen[before]!
    }
  }
}

function mtlsConfig (keystore: string): string {
  return config(
    pool('mtls', {
      default: 'true',
      'keystore-filename': keystore,
      'keystore-password': PASSWORD,
      'key-password': PASSWORD,
      'truststore-filename': 'certs/ca.pem'
    }),
    pool('steady', { 'keystore-filename': join(TLS_ROOT, 'client.jks'), 'keystore-password': 'password', 'key-password': 'keypass', 'truststore-filename': join(TLS_ROOT, 'truststore.pem') }))
}

t.test('reload: a pool is rebuilt when its keystore or truststore content changed, and kept when nothing did', async (t) => {
  const issue = keystoreMaker(t)
  const first = issue.p12(PASSWORD)
  const s = await setup(t, first.bytes)
  const pools = s.gw.app.pools
  const dispatcher = (id = 'mtls'): unknown => pools.entryFor(id).dispatcher
  const steady = dispatcher('steady')

  const a = await s.present()
  t.equal(a.fingerprint, first.fingerprint, 'the upstream sees the keystore\'s certificate')

  t.test('nothing changed: same dispatcher, same connection', async (t) => {
    const before = dispatcher()
    // The same bytes written anew (new inode, new mtime): content counts, not the file's metadata.
    replaceFile(s.keystore, first.bytes)
    await pools.reload()
    t.equal(dispatcher(), before, 'the pool keeps its dispatcher')
    const again = await s.present()
    t.equal(again.socket, a.socket, 'the request went on the connection already open')
    t.equal(again.fingerprint, first.fingerprint)
  })

  const renewed = issue.p12(PASSWORD)
  t.test('a renewed keystore under the same name: the pool is rebuilt, new connections present the new certificate', async (t) => {
    const before = dispatcher()
    replaceFile(s.keystore, renewed.bytes)
    await pools.reload()
    t.not(dispatcher(), before, 'the pool got a new dispatcher')
    t.equal(dispatcher('steady'), steady, 'the pool whose stores did not change kept its dispatcher')
    const b = await s.present()
    t.equal(b.fingerprint, renewed.fingerprint, 'the upstream sees the renewed certificate')
    t.not(b.socket, a.socket, 'on a new connection')
    const line = s.gw.logs.find((l) => typeof l.msg === 'string' && l.msg.startsWith('config reloaded') && l.msg.includes('keystore'))
    t.match(line?.msg, /mtls: changed: keystore-filename \(file content\); steady: unchanged/, 'the reload log says what changed')
  })

  t.test('a truststore whose content changed: rebuilt, and the new trust applies', async (t) => {
    const before = dispatcher()
    // Now trusting only another CA: the upstream's certificate no longer verifies.
    replaceFile(s.truststore, tlsFile('other-ca.pem'))
    await pools.reload()
    t.not(dispatcher(), before, 'the pool got a new dispatcher')
    const err = await rejection(poolGet(s.gw.app, 'mtls', s.target))
    t.match(codesOf(err).join(' '), /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/, `the upstream is no longer trusted (${codesOf(err).join(' <- ')})`)
    replaceFile(s.truststore, tlsFile('ca.pem'))
    await pools.reload()
    t.equal((await s.present()).fingerprint, renewed.fingerprint, 'trusted again once the CA is back')
  })

  t.test('a keystore replaced by a broken file, or removed: the reload is rejected and the pool keeps serving', async (t) => {
    const before = dispatcher()
    for (const [label, damage] of [
      ['not a keystore', () => { replaceFile(s.keystore, 'this is not a keystore\n') }],
      ['cut short', () => { replaceFile(s.keystore, renewed.bytes.subarray(0, 100)) }],
      ['removed', () => { rmSync(s.keystore) }]
    ] as const) {
      damage()
      const err = await rejection(pools.reload())
      t.ok(err instanceof ConfigError, `${label}: rejected with a ConfigError`)
      t.match((err as ConfigError).errors, [{ pool: 'mtls', attribute: 'keystore-filename' }], `${label}: naming the pool and the attribute`)
      t.notMatch(`${err.message} ${JSON.stringify(err)} ${err.stack ?? ''}`, PASSWORD, `${label}: without the password`)
      t.equal(pools.stats().mtls!.lastReloadError, err.message, `${label}: stats() shows the error`)
      t.equal(dispatcher(), before, `${label}: the pool keeps its dispatcher`)
      t.equal((await s.present()).fingerprint, renewed.fingerprint, `${label}: and serves with the certificate it was built with`)
    }
    // The content the pool was built from is back: nothing to rebuild.
    replaceFile(s.keystore, renewed.bytes)
    await pools.reload()
    t.equal(dispatcher(), before, 'the same content back: the pool is kept')
    t.equal(pools.stats().mtls!.lastReloadError, null)
  })

  t.test('no password in any log line', async (t) => {
    t.notMatch(JSON.stringify(s.gw.logs), PASSWORD)
  })
})

t.test('watch: a renewed keystore is picked up with the XML unchanged; new connections present the new certificate', async (t) => {
  const issue = keystoreMaker(t)
  const first = issue.p12(PASSWORD)
  const s = await setup(t, first.bytes, { watch: true })
  const stats = (): { reloads: number, lastReloadError: string | null } => s.gw.app.pools.stats().mtls!
  const reloaded = async (n: number): Promise<void> => {
    await waitFor(() => stats().reloads === n && stats().lastReloadError === null, BOUND_MS, () => `reload ${n} (stats: ${JSON.stringify(stats())})`)
  }
  const a = await s.present()
  t.equal(a.fingerprint, first.fingerprint, 'the upstream sees the keystore\'s certificate')

  const renewed = issue.p12(PASSWORD)
  replaceFile(s.keystore, renewed.bytes)
  await reloaded(1)
  const b = await s.present()
  t.equal(b.fingerprint, renewed.fingerprint, 'replaced by rename: the upstream sees the renewed certificate')
  t.not(b.socket, a.socket, 'on a new connection')

  // Rewritten in place this time, and as PEM: stores are recognised by content, not by name.
  const third = issue.pem()
  writeFileSync(s.keystore, third.bytes)
  await reloaded(2)
  t.equal((await s.present()).fingerprint, third.fingerprint, 'rewritten in place: the upstream sees the new certificate')

  replaceFile(s.keystore, 'half a keystore')
  await waitFor(() => stats().lastReloadError !== null, BOUND_MS, 'the broken keystore to be refused')
  t.match(stats().lastReloadError, /keystore "certs\/client\.keystore"/, 'a broken keystore: the reload is refused, naming the keystore')
  t.notMatch(stats().lastReloadError, PASSWORD, 'without the password')
  t.equal((await s.present()).fingerprint, third.fingerprint, 'the pool keeps serving with the certificate it has')
  replaceFile(s.keystore, renewed.bytes)
  await reloaded(3)
  t.equal((await s.present()).fingerprint, renewed.fingerprint, 'a good keystore again: picked up')

  // The config now names another file: that file is the one watched from then on.
  const other = join(s.dir, 'certs', 'other.p12')
  const fourth = issue.p12(PASSWORD)
  writeFileSync(other, fourth.bytes)
  replaceFile(s.file, mtlsConfig('certs/other.p12'))
  await reloaded(4)
  t.equal((await s.present()).fingerprint, fourth.fingerprint, 'the config names another keystore: its certificate')
  const fifth = issue.p12(PASSWORD)
  replaceFile(other, fifth.bytes)
  await reloaded(5)
  t.equal((await s.present()).fingerprint, fifth.fingerprint, 'that keystore renewed: picked up too')
  t.notMatch(JSON.stringify(s.gw.logs), PASSWORD, 'no password in any log line')
})
