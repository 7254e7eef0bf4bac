// Issue 4, end to end: a keystore or truststore that cannot be opened makes
// the plugin's registration reject with a ConfigError naming the pool and the
// attribute to fix, without the password in the message.
import Fastify from 'fastify'
import t from 'tap'
import plugin, { ConfigError } from '../../index.js'
import { config, JKS_KEYSTORE, pool, TLS_ROOT } from '../helpers/e2e.js'

interface Case {
  label: string
  attributes: Record<string, string>
  attribute: string
  /** Distinctive passwords that must not appear in the message. */
  secrets: string[]
}

const cases: Case[] = [
  {
    label: 'JKS keystore, wrong keystore-password',
    attributes: { ...JKS_KEYSTORE, 'keystore-password': 'Wr0ngStorePw' },
    attribute: 'keystore-password',
    secrets: ['Wr0ngStorePw']
  },
  {
    label: 'JKS keystore, wrong key-password',
    attributes: { ...JKS_KEYSTORE, 'key-password': 'Wr0ngKeyPw' },
    attribute: 'key-password',
    secrets: ['Wr0ngKeyPw']
  },
  {
    label: 'PKCS#12 keystore, wrong keystore-password',
    attributes: { 'keystore-filename': 'client.p12', 'keystore-password': 'Wr0ngStorePw', 'key-password': 'password' },
    attribute: 'keystore-password',
    secrets: ['Wr0ngStorePw']
  },
  {
    label: 'PEM keystore, wrong key-password',
    attributes: { 'keystore-filename': 'client-combined.pem', 'keystore-password': 'Unus3dStorePw', 'key-password': 'Wr0ngKeyPw' },
    attribute: 'key-password',
    secrets: ['Unus3dStorePw', 'Wr0ngKeyPw']
  },
  {
    label: 'keystore without a private key (ca-only.jks)',
    attributes: { 'keystore-filename': 'ca-only.jks', 'keystore-password': 'password', 'key-password': 'S0meKeyPw' },
    attribute: 'keystore-filename',
    secrets: ['S0meKeyPw']
  },
  {
    label: 'JKS truststore, wrong truststore-password',
    attributes: { 'truststore-filename': 'truststore.jks', 'truststore-password': 'Wr0ngTrustPw' },
    attribute: 'truststore-password',
    secrets: ['Wr0ngTrustPw']
  }
]

for (const c of cases) {
  t.test(c.label, async (t) => {
    const app = Fastify()
    t.teardown(async () => { await app.close().catch(() => {}) })
    // A valid pool first: the broken one must be named, not the first one.
    const xml = config(pool('fine', { default: 'true' }), pool('broken', c.attributes))
    app.register(plugin, { xml, configRoot: TLS_ROOT })
    let err: unknown
    try {
      await app.ready()
    } catch (e) {
      err = e
    }
    t.ok(err instanceof ConfigError, `ready() rejects with a ConfigError (${String(err)})`)
    if (!(err instanceof ConfigError)) return
    t.equal(err.code, 'FST_HTTP_POOLS_CONFIG', 'code FST_HTTP_POOLS_CONFIG')
    t.match(err.errors, [{ pool: 'broken', attribute: c.attribute }], `errors[0] names pool "broken" and ${c.attribute}`)
    t.match(err.message, 'pool "broken"', 'the message names the pool')
    t.match(err.message, c.attribute, `the message names ${c.attribute}`)
    for (const secret of c.secrets) {
      t.notOk(err.message.includes(secret), `the message does not contain the password ${secret}`)
      t.notOk(JSON.stringify(err.errors).includes(secret), `errors[] does not contain the password ${secret}`)
    }
  })
}
